"""Each entity type is found, offsets point at the original text, and the windowed fast
path returns exactly what AnalyzerEngine.analyze returns on the whole record."""

from __future__ import annotations

import pytest

from datanet.privacy.detector import PiiDetector

CASES = [
    ("EMAIL_ADDRESS", "Write to jane.doe@example.org for details.", "jane.doe@example.org"),
    ("PHONE_NUMBER", "Call me on (212) 555-0147 tonight.", "(212) 555-0147"),
    ("PHONE_NUMBER", "Ring +44 20 7946 0958 after lunch.", "+44 20 7946 0958"),
    ("CREDIT_CARD", "Paid with 4111 1111 1111 1111 yesterday.", "4111 1111 1111 1111"),
    ("CREDIT_CARD", "Mastercard 2223 0031 2200 3222 on file.", "2223 0031 2200 3222"),
    ("IBAN_CODE", "Transfer to GB82 WEST 1234 5698 7654 32 please.",
     "GB82 WEST 1234 5698 7654 32"),
    ("IP_ADDRESS", "The server at 192.168.10.24 is down.", "192.168.10.24"),
    ("IP_ADDRESS", "Host 2001:db8:85a3::8a2e:370:7334 answered.", "2001:db8:85a3::8a2e:370:7334"),
    ("US_SSN", "My SSN is 536-22-8726 okay.", "536-22-8726"),
    ("CRYPTO", "Send BTC to 1BoatSLRHtKNngkdXEeobR76b53LETtpyT now.",
     "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"),
    ("CRYPTO", "Wallet 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed is mine.",
     "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
    ("URL", "See https://datanet.example.com/docs for more.", "https://datanet.example.com/docs"),
]


@pytest.mark.parametrize(("entity", "text", "value"), CASES)
def test_each_entity_is_detected_at_its_offsets(detector: PiiDetector, entity, text, value):
    found = [f for f in detector.detect([text])[0] if f.entity == entity]
    assert [(text[f.start:f.end]) for f in found] == [value]


OBFUSCATED = [
    ("EMAIL_ADDRESS", "mail jane dot doe at example dot org", "jane dot doe at example dot org"),
    ("EMAIL_ADDRESS", "mail jane [at] example [dot] org", "jane [at] example [dot] org"),
    ("EMAIL_ADDRESS", "mail jаne@exаmple.org", "jаne@exаmple.org"),  # Cyrillic а
    ("EMAIL_ADDRESS", "mail ｊａｎｅ＠ｅｘａｍｐｌｅ．ｏｒｇ", "ｊａｎｅ＠ｅｘａｍｐｌｅ．ｏｒｇ"),
    ("EMAIL_ADDRESS", "mail ja\u200bne@exam\u200bple.org", "ja\u200bne@exam\u200bple.org"),
    ("PHONE_NUMBER", "call ２１２-５５５-０１４７ now", "２１２-５５５-０１４７"),
    ("CREDIT_CARD", "card 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 ok",
     "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"),
    ("US_SSN", "ssn 5 3 6 - 2 2 - 8 7 2 6 ok", "5 3 6 - 2 2 - 8 7 2 6"),
    ("IP_ADDRESS", "ip 1\u200b92.168.10.24 ok", "1\u200b92.168.10.24"),
]


@pytest.mark.parametrize(("entity", "text", "value"), OBFUSCATED)
def test_obfuscated_variants_are_caught(detector: PiiDetector, entity, text, value):
    found = [f for f in detector.detect([text])[0] if f.entity == entity]
    assert [text[f.start:f.end] for f in found] == [value]


def test_vanilla_presidio_misses_the_obfuscated_variants(full_detector: PiiDetector):
    """Control: without the detection view Presidio finds only the homoglyph e-mail (its
    regex uses Unicode ``\\w``), the fullwidth phone (phonenumbers folds digits) and a
    wrong IP (``92.168.10.24``, after the zero-width space)."""
    from datanet.privacy.detector import LANGUAGE

    engine = full_detector.engine
    caught = [text for entity, text, _ in OBFUSCATED
              if engine.analyze(text, language=LANGUAGE, entities=[entity], score_threshold=0.3)]
    assert caught == ["mail jаne@exаmple.org", "call ２１２-５５５-０１４７ now",
                      "ip 1\u200b92.168.10.24 ok"]


def test_windowed_fast_path_equals_whole_record_analysis(detector, full_detector):
    from faker import Faker

    fake = Faker("en_US")
    Faker.seed(7)
    texts = []
    for i in range(40):
        parts = [fake.paragraph(nb_sentences=6) for _ in range(4)]
        extra = [fake.email(), fake.phone_number(), fake.credit_card_number(), fake.iban(),
                 fake.ipv4(), fake.ipv6(), fake.ssn(), fake.url(), str(fake.random_int()),
                 fake.date(), fake.street_address()]
        parts.insert(i % 4, extra[i % len(extra)] + " and " + extra[(i * 3) % len(extra)])
        texts.append(" ".join(parts))
    fast = detector.detect(texts)
    slow = full_detector.detect(texts)
    assert fast == slow
    assert sum(len(f) for f in fast) >= 40


def test_nulls_and_empty_texts(detector: PiiDetector):
    import pyarrow as pa

    assert detector.detect(pa.array([None, ""], pa.string())) == [[], []]


def test_ner_is_off_without_an_installed_model():
    d = PiiDetector(frozenset({"EMAIL_ADDRESS"}), ner_model="en_core_web_lg")
    assert not d.ner_enabled
    assert "not installed" in d.ner_status()
    assert PiiDetector(frozenset({"EMAIL_ADDRESS"})).ner_status().startswith("disabled: no")


def test_unknown_entity_fails_with_the_supported_list():
    from datanet.errors import ValidatorError

    d = PiiDetector(frozenset({"PERSON"}))
    with pytest.raises(ValidatorError, match=r"PERSON.*no recognizer supports"):
        d.setup()


def test_digit_anchor_keeps_every_digit_entity():
    """The digit-chain anchor (fewest digits per entity) loses no bank / NHS / ITIN / SSN /
    card match, including the 8-digit bank numbers and dates next to them."""
    entities = frozenset({"US_BANK_NUMBER", "UK_NHS", "US_ITIN", "US_SSN", "CREDIT_CARD"})
    texts = ["acct 12345678 on 2004-05-12", "nhs 943 476 5919 and 9434765919.",
             "itin 912-70-1234 or 912701234", "ssn 536-22-8726, 53622-8726, 536-228726",
             "card 4111-1111-1111-1111 and 2221 0012 3412 3456", "order 1234567 (7 digits)",
             "ref 12 345 678 9 and 1.2.3.4.5.6.7.8.9"]
    # threshold 0.01: the very weak (0.05) bank / SSN patterns count too
    fast = PiiDetector(entities, score_threshold=0.01).detect(texts)
    slow = PiiDetector(entities, score_threshold=0.01, windowed=False).detect(texts)
    assert fast == slow
    assert [sorted({f.entity for f in found}) for found in fast] == [
        ["US_BANK_NUMBER"], ["UK_NHS", "US_BANK_NUMBER"],
        ["US_BANK_NUMBER", "US_ITIN", "US_SSN"], ["US_SSN"], ["CREDIT_CARD"], [], []]


def test_tokenless_enhancer_equals_presidio_enhancer() -> None:
    """Same results as LemmaContextAwareEnhancer (NoOp NLP: no tokens), also for a
    recognizer whose context holds "" (which matches the empty surrounding word)."""
    import warnings

    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer
    from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
    from presidio_analyzer.nlp_engine import NoOpNlpEngine

    from datanet.privacy.recognizers import TokenlessContextEnhancer

    odd = PatternRecognizer(supported_entity="ODD", patterns=[Pattern("odd", r"ODD-\d+", 0.2)],
                            context=["", "odd"])
    texts = ["card 4111 1111 1111 1111, ssn 078-05-1120, ip 10.0.0.1, ODD-12",
             "call (212) 555-0123 or mail jane@example.com about ODD-7 and 192.168.1.300"]
    found = []
    for enhancer in (LemmaContextAwareEnhancer(), TokenlessContextEnhancer()):
        nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "no_op"}])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            engine = AnalyzerEngine(nlp_engine=nlp, context_aware_enhancer=enhancer)
        engine.registry.add_recognizer(odd)
        found.append([sorted((r.entity_type, r.start, r.end, r.score)
                             for r in engine.analyze(t, language="en")) for t in texts])
    assert found[0] == found[1]
    assert {r[3] for doc in found[1] for r in doc if r[0] == "ODD"} == {0.2}  # no boost
    assert sum(len(doc) for doc in found[1]) >= 7


def test_margin_windows_from_re2_marks_equal_finditer() -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    from datanet.privacy import detector

    det = PiiDetector(frozenset({"CREDIT_CARD", "IP_ADDRESS", "IBAN_CODE", "CRYPTO"}))
    texts = ["ip 1.2.3.4 and ::1 or fe80::1:2, card 4111 1111 1111 1111 and 4111-1111",
             "\u00e9 DE89 3704 0044 0532 0130 00 \u00fc 0x" + "ab" * 20 + " \u00e8 10.0.0.1",
             "a mark \x02 inside 192.168.0.1", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"]
    groups, _ = det._plan()
    seen = 0
    for group, _ents in groups:
        marked = pc.replace_substring_regex(
            pa.array(texts), group.pattern,
            f"{detector._MARK_START}\\0{detector._MARK_END}").to_pylist()
        for text, mark in zip(texts, marked, strict=True):
            windows = det._windows(group, text, mark)
            assert windows == det._windows(group, text)
            seen += len(windows)
    assert seen >= 6


def test_scan_flags_every_record_the_anchor_patterns_match() -> None:
    """The compiled pass flags a record for an anchor group whenever the group's RE2 pattern
    matches it (the flags gate those passes: a miss would lose findings); the digit-chain
    flag is the pattern itself."""
    import random

    import pyarrow as pa
    import pyarrow.compute as pc

    from datanet.privacy._kernels import FLAGS
    from datanet.privacy.detector import ANCHOR_GROUPS, _digit_chain, _scan_views

    rng = random.Random(5)
    alphabet = "0123456789" * 4 + "abcdefxABCDEFZ" + " .-:,;/()#" * 2 + "\n"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
             for _ in range(6000)]
    b58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    for _ in range(300):
        noise = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        iban = "".join(rng.choice("ABCDEFZ") for _ in range(2)) + rng.choice(["", " ", "-"])
        iban += "".join(rng.choice("0123456789ABZ -") for _ in range(rng.randint(11, 20)))
        wallet = rng.choice(["1", "3", "bc1", "0x"]) + "".join(
            rng.choice(b58) for _ in range(rng.randint(20, 44)))
        texts += [noise + iban + noise, noise + wallet + rng.choice([" ", "", "."]) + noise]
    texts += ["IP 10.0.0.1 ok", "fe80::1", "a:b:", "DE89 3704 0044 0532 0130 00",
              "1BoatSLRHtKNngkdXEeobR76b53LETtpyT", "0x" + "ab12" * 10, "4111-1111 1111,1111",
              "12, 34; 56 78 9", "1 2 3 4 5 6 7 8 9", "12a345678901"]
    arr = pa.array(texts)
    patterns = {g.name: g.pattern for g in ANCHOR_GROUPS if g.name in FLAGS}
    patterns["digits"] = _digit_chain(9)
    scan = _scan_views(arr, 9)
    flagged = 0
    for k, name in enumerate(FLAGS):
        want = pc.match_substring_regex(arr, patterns[name]).to_numpy(zero_copy_only=False)
        got = scan.flags[:, k]
        missed = [t for t, w, g in zip(texts, want, got, strict=True) if w and not g]
        assert not missed, (name, missed[:5])
        if name == "digits":
            assert (want == got).all()
        flagged += int(want.sum())
    assert flagged > 500
