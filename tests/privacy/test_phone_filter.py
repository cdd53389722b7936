"""The phone region filter never drops a region in which python-phonenumbers matches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from datanet.privacy.detector import _core_bounds, _phone_windows
from datanet.privacy.phone import PhoneFinder

DEFAULT = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")
# Regions with national-prefix transform rules / odd prefixes, to exercise the general path.
EXTRA = ("AR", "MX", "IT", "JP", "RU", "AU", "CN", "SG")
FORMATS = (PhoneNumberFormat.NATIONAL, PhoneNumberFormat.INTERNATIONAL,
           PhoneNumberFormat.E164)
TYPES = (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE)


def _examples(regions: tuple[str, ...]) -> list[str]:
    out = []
    for region in regions:
        for kind in TYPES:
            num = phonenumbers.example_number_for_type(region, kind)
            if num is None:
                continue
            for fmt in FORMATS:
                text = phonenumbers.format_number(num, fmt)
                out.append(f"call {text} now")
                out.append(f"call {text.replace(' ', '')}, thanks")
                out.append(f"({text.lstrip('+')})")
    return out


EVERYDAY = [
    "In 1987 the team shipped 45123 units.", "Order 90210 shipped on 2004-05-12.",
    "The budget was $1,234,567 over 12 months.", "See page 1234 of the 2019 report.",
    "Meet at 10:30:45 on 12/05/2020.", "IBAN DE89 3704 0044 0532 0130 00 paid.",
    "card 4111 1111 1111 1111 ok", "ssn 078-05-1120 ok", "ip 192.168.100.200 ok",
    "0049 30 1234567 and 011 44 20 7946 0958", "1-800-555-0199 or 555 0199",
    "020 7946 0958 / 030 1234567", "08 12 34 56 78 and 06 12 34 56 78",
]


def _check(regions: tuple[str, ...], texts: list[str]) -> tuple[int, int]:
    finder = PhoneFinder(regions, 1, 0.4, "PHONE_NUMBER")
    kept = dropped = 0
    for text in texts:
        for _s, _e, key, _p in _phone_windows(text):
            lo, hi = _core_bounds(key)
            allowed = set(finder.candidate_regions(key[lo:hi]))
            for region in regions:
                matched = list(phonenumbers.PhoneNumberMatcher(key, region, leniency=1))
                if region in allowed:
                    kept += 1
                else:
                    dropped += 1
                    assert not matched, (text, key, region)
    return kept, dropped


@pytest.mark.parametrize("regions", [DEFAULT, EXTRA])
def test_filter_is_a_superset_on_example_numbers(regions: tuple[str, ...]) -> None:
    kept, dropped = _check(regions, _examples(DEFAULT + EXTRA) + EVERYDAY)
    assert kept > 0 and dropped > 0


def test_filter_drops_everyday_numbers() -> None:
    finder = PhoneFinder(DEFAULT, 1, 0.4, "PHONE_NUMBER")
    assert finder.candidate_regions(" 1987 ") == ()
    assert finder.candidate_regions(" 45123 ") == ()
    assert finder.candidate_regions(" 2004-05-12.") == ()
    assert finder.candidate_regions(" +49 30 1234567 ") == DEFAULT  # '+': any country code
    assert finder.candidate_regions(" 020 7946 0958 ") == ("GB", "IN")
    assert finder.candidate_regions(" (555) 123-4567 ") == ("BR",)  # 555: no US area code
    _check(DEFAULT, [" 1987 ", " 45123 ", " 2004-05-12.", " 020 7946 0958 ", " (555) 123-4567 "])


def test_find_matches_presidio_recognizer() -> None:
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    text = "a (212) 555-0123 or +44 20 7946 0958 ext. 12 a"
    finder = PhoneFinder(DEFAULT, 1, 0.4, "PHONE_NUMBER")
    ours = finder.find(text, DEFAULT)
    theirs = sorted((r.start, r.end) for r in PhoneRecognizer().analyze(text, ["PHONE_NUMBER"]))
    assert ours == theirs == [(2, 16), (20, 44)]


@pytest.mark.parametrize(("regions", "findings", "runs", "dropped"),
                         [(DEFAULT, 378, 394, 14), (EXTRA, 392, 439, 0)])
def test_detector_phone_path_equals_whole_record_presidio(regions: tuple[str, ...],
                                                          findings: int, runs: int,
                                                          dropped: int) -> None:
    from datanet.privacy.detector import PiiDetector

    examples = _examples(DEFAULT + EXTRA)
    texts = [" ".join(examples[i:i + 6]) for i in range(0, len(examples), 6)]
    texts += EVERYDAY
    # Presidio's own findings only: the context rule adds numbers Presidio rejects
    # (tests/privacy/test_phone_context.py)
    fast = PiiDetector(frozenset({"PHONE_NUMBER"}), phone_regions=regions, phone_context=False)
    slow = PiiDetector(frozenset({"PHONE_NUMBER"}), phone_regions=regions, windowed=False,
                       phone_context=False)
    found = fast.detect(texts)
    assert found == slow.detect(texts)
    assert sum(len(f) for f in found) == findings
    # matcher runs: 407 windows x 8 regions = 3256 without the filter and the early stop;
    # the batch screen drops runs no region can match before their windows are built
    assert (fast.stats.phone_windows, fast.stats.phone_runs_dropped,
            fast.stats.phone_region_runs) == (407 - dropped, dropped, runs)


def _example_digit_groups(formats: tuple[int, ...]) -> Iterator[tuple[Any, int, list[str]]]:
    """(number, format, digit groups) of phonenumbers' example number of every region and type."""
    for region in DEFAULT + EXTRA:
        for kind in TYPES:
            num = phonenumbers.example_number_for_type(region, kind)
            if num is None:
                continue
            for fmt in formats:
                text = phonenumbers.format_number(num, fmt).lstrip("+")
                yield num, fmt, "".join(c if c.isdigit() else " " for c in text).split()


def _keys_and_cores(texts: list[str]) -> tuple[list[str], list[str]]:
    """Every phone window key of ``texts`` and its core (what the filter screens)."""
    keys = [key for text in texts for _s, _e, key, _p in _phone_windows(text)]
    return keys, [key[slice(*_core_bounds(key))] for key in keys]


def _whole_candidates() -> list[str]:
    """Texts whose windows are whole-candidate cores (digits joined by single hyphens)."""
    import random

    rng = random.Random(7)
    out = []
    formats = (PhoneNumberFormat.NATIONAL, PhoneNumberFormat.INTERNATIONAL)
    for num, fmt, digits in _example_digit_groups(formats):
        out.append(f"call {'-'.join(digits)} now")
        out.append(f"call {''.join(digits)}.")
        if fmt == PhoneNumberFormat.INTERNATIONAL:
            # international (IDD) prefixes instead of "+": US / CA 011, most others 00,
            # IL 01x; also too short after the prefix, and a 0 after it (not stripped)
            for idd in ("011", "00", "013", "0011"):
                out.append(f"dial {idd}{''.join(digits)} now")
                out.append(f"dial {idd}-{'-'.join(digits)} now")
            out.append(f"dial 00{''.join(digits)[:2]} now")
            out.append(f"dial 000{''.join(digits)} now")
        if fmt == PhoneNumberFormat.NATIONAL:
            # calling code without "+", then national prefixes (parse strips up to two)
            cc = str(num.country_code)
            nsn = str(num.national_number)
            out += [f"ref {cc}{zeros}{nsn} ok" for zeros in ("0", "00", "000")]
    for _ in range(300):
        n = rng.randint(4, 16)
        digits = "".join(rng.choice("0123456789") for _ in range(n))
        cut = sorted(rng.sample(range(1, n), k=rng.randint(0, min(3, n - 1))))
        parts = [digits[i:j] for i, j in zip([0, *cut], [*cut, n], strict=True)]
        out.append(f"ref {'-'.join(parts)} ok")
    out += [f"on {rng.randint(1900, 2099)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}."
            for _ in range(100)]
    return out


@pytest.mark.parametrize("regions", [DEFAULT, EXTRA])
def test_screened_filter_is_a_superset_on_whole_candidates(regions: tuple[str, ...]) -> None:
    from datanet.privacy.phone import _WHOLE

    finder = PhoneFinder(regions, 1, 0.4, "PHONE_NUMBER")
    keys, cores = _keys_and_cores(_whole_candidates())
    assert sum(bool(_WHOLE.fullmatch(c)) for c in cores) == len(cores)
    kept = matched_total = 0
    for key, core, screened in zip(keys, cores, finder.screen(cores), strict=True):
        allowed = set(finder.candidate_regions(core, screened))
        kept += len(allowed)
        for region in regions:
            matched = bool(list(phonenumbers.PhoneNumberMatcher(key, region, leniency=1)))
            matched_total += matched
            assert region in allowed or not matched, (key, region)
    assert matched_total > 20 and kept < len(cores) * len(regions) // 2


def test_numpy_phone_windows_equal_the_regex_windows() -> None:
    import pyarrow as pa

    from datanet.privacy.detector import _phone_window_lists

    texts = [*EVERYDAY, *_examples(DEFAULT)[:60], "", "1234", "12-34 ext. 55x",
             "call 555-1234:30 now", "a(555) 123 4567 x12;ext=4", "\u0664\u0662 1234 5678",
             "xxxxx9999", "1234 5678\n9999:2", "(  555)--123...4567  ", "ends with 12345"]
    arr = pa.array(["pad", *texts, "pad"])
    expected = [[(s, e, key) for s, e, key, _ in _phone_windows(t)] for t in texts]
    assert _phone_window_lists(arr.slice(1, len(texts)), texts)[0] == expected
    assert sum(map(len, expected)) > 60


def test_calling_code_then_two_national_prefixes() -> None:
    """parse("4900283217839419", "DE") strips the calling code and the national prefix "0"
    twice: a valid DE number, which the filter must keep (found by the benchmark)."""
    from datanet.privacy.detector import PiiDetector

    text = "Ref 4900283217839419 thanks."
    finder = PhoneFinder(DEFAULT, 1, 0.4, "PHONE_NUMBER")
    core = " 4900283217839419 "
    assert finder.candidate_regions(core, finder.screen([core])[0]) == ("DE",)
    fast = PiiDetector(frozenset({"PHONE_NUMBER"})).detect([text])
    assert fast == PiiDetector(frozenset({"PHONE_NUMBER"}), windowed=False).detect([text])
    assert [(f.start, f.end) for f in fast[0]] == [(4, 20)]


def _split_candidates() -> list[str]:
    """Texts whose windows are digit blocks joined by single blanks or single full stops."""
    import random

    rng = random.Random(13)
    out = []
    for num, _fmt, digits in _example_digit_groups((PhoneNumberFormat.NATIONAL,)):
        out += [f"call {' '.join(digits)} now", f"call {'.'.join(digits)}.",
                f"dial 00 {' '.join(digits)} now", f"dial 011 {' '.join(digits)} now",
                f"ref {num.country_code} {' '.join(digits)} ok",
                f"ref {num.country_code}.{'.'.join(digits)} ok"]
    for _ in range(300):
        blocks = [str(rng.randint(0, 10 ** rng.randint(1, 6))).zfill(rng.randint(1, 4))
                  for _ in range(rng.randint(2, 6))]
        out.append(f"no {rng.choice(' .').join(blocks)} end")
    return out


@pytest.mark.parametrize("regions", [DEFAULT, EXTRA])
def test_filter_is_a_superset_on_split_candidates(regions: tuple[str, ...]) -> None:
    from datanet.privacy.phone import _SPLIT

    finder = PhoneFinder(regions, 1, 0.4, "PHONE_NUMBER")
    keys, cores = _keys_and_cores(_split_candidates())
    assert sum(bool(_SPLIT.fullmatch(c)) for c in cores) > len(cores) * 0.9
    matched_total = 0
    for key, core, screened in zip(keys, cores, finder.screen(cores), strict=True):
        allowed = set(finder.candidate_regions(core, screened))
        for region in regions:
            matched = bool(list(phonenumbers.PhoneNumberMatcher(key, region, leniency=1)))
            matched_total += matched
            assert region in allowed or not matched, (key, region)
    assert matched_total > 50


def test_screened_runs_keep_extensions_and_findings() -> None:
    """Runs the batch screen drops never hold a finding; runs an extension may follow are
    kept for the regex (``ext.``, ``x``, ``#``, ``;ext=``, commas and tabs before it)."""
    import pyarrow as pa

    from datanet.privacy.detector import PiiDetector, _phone_window_lists

    texts = ["call 212-555-0147 ext. 12 or 2019 ext 5", "1999 x12 and 2001, ext 7",
             "room 2024;ext=55 today", "order 12345 #9 shipped", "year 1998\t, ext: 4",
             "tel 030 901820 anexo 33", "id 7777 extension 8 end", "plain 2020 and 2021"]
    finder = PiiDetector(frozenset({"PHONE_NUMBER"}))._phone_finder()
    lists, screened = _phone_window_lists(pa.array(texts), texts, finder)
    full = [[(s, e, key) for s, e, key, _ in _phone_windows(t)] for t in texts]
    # every kept window is a regex window; the dropped ones are whole years / numbers
    assert all(set(got) <= set(want) for got, want in zip(lists, full, strict=True))
    kept = {key for got in lists for _s, _e, key in got}
    assert {"a 2019 ext 5", "1999 x12 a", "a 2001, ext 7", "a 2024;ext=55\n"} <= kept
    assert "a 2020 a" not in kept and "a 2021" not in kept
    assert set(screened) <= kept  # keys the screen decided (runs without an extension)
    fast = PiiDetector(frozenset({"PHONE_NUMBER"})).detect(texts)
    assert fast == PiiDetector(frozenset({"PHONE_NUMBER"}), windowed=False).detect(texts)
    assert [(f.start, f.end) for f in fast[0]][:1] == [(5, 25)]
