from __future__ import annotations

import pyarrow as pa
import pytest

from datanet.privacy.evasion import detection_view, needs_rewrite


@pytest.mark.parametrize(
    ("text", "view"),
    [
        ("mail john at example dot com now", "mail john@example.com now"),
        ("mail john [at] example [dot] co [dot] uk", "mail john@example.co.uk"),
        ("mail John (AT) Example (DOT) org", "mail John@Example.org"),
        ("mail john @ example . com", "mail john@example.com"),
        ("call ４１５-５５５-０１９９", "call 415-555-0199"),
        ("card 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", "card 4111111111111111"),
        ("ssn 1 2 3 - 4 5 - 6 7 8 9", "ssn 123-45-6789"),
        ("j\u200bohn@exa\u200dmple.com", "john@example.com"),
        ("jоhn@exаmple.com", "john@example.com"),  # Cyrillic о and а
        ("ip ١٩٢.١٦٨.١.٢٠", "ip 192.168.1.20"),  # Arabic-Indic digits
        ("call five zero three five five five zero one five three", "call 5035550153"),
        ("ring Four-One-Five, five five five, oh one five nine", "ring 4155550159"),
    ],
)
def test_obfuscations_are_decoded(text: str, view: str):
    assert detection_view(text).text == view
    assert needs_rewrite(pa.array([text])).to_pylist() == [True]


def test_plain_prose_is_left_alone():
    for text in ("we met at the cafe. It was fine", "look at example.com today",
                 "crowding the pan at once. Next time", "ask at home. com is fine",
                 "chapter 1 2 and 3"):
        assert detection_view(text).text == text


def test_plain_ascii_needs_no_rewrite():
    assert needs_rewrite(pa.array(["just words and 2024", None])).to_pylist() == [False, False]


def test_view_offsets_map_to_original():
    text = "write to ｊｏｈｎ [at] exаmple [dot] com please"
    view = detection_view(text)
    start = view.text.index("john@example.com")
    s, e = view.span(start, start + len("john@example.com"))
    assert text[s:e] == "ｊｏｈｎ [at] exаmple [dot] com"


def test_unicode_edits_scan_only_non_ascii_runs() -> None:
    """Scanning only around non-ASCII runs finds the clusters a whole-text scan finds."""
    import random

    from datanet.privacy import evasion

    def whole_scan(text: str) -> list[tuple[int, int, str]]:
        out = []
        for m in evasion._CLUSTER_RE.finditer(text):
            folded = evasion._fold_cluster(m.group())
            if folded != m.group():
                out.append((m.start(), m.end(), folded))
        return out

    rng = random.Random(3)
    pool = "ab1 \u0301\u0308\u200b\uff21\u0663\u00e9\u00a0\ufb01\u2460x"
    texts = ["".join(rng.choice(pool) for _ in range(rng.randint(0, 30))) for _ in range(3000)]
    assert all(evasion._unicode_edits(t) == whole_scan(t) for t in texts)
    assert evasion._unicode_edits("e\u0301 \uff21") == [(0, 2, "\u00e9"), (3, 4, "A")]


def test_at_candidates_equal_finditer() -> None:
    """``_at_matches`` tries the at-pattern only around "at" / "@" and must find exactly
    what ``finditer`` finds."""
    import random

    from datanet.privacy import evasion

    rng = random.Random(3)
    alphabet = " \t\n at AT@([{<)]}>.xyz"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
             for _ in range(5000)]
    texts += ["write to jane at example dot com", "a [at] b", "x  @  y", "that cat sat at"]
    found = 0
    for text in texts:
        want = [(m.start(), m.end()) for m in evasion._AT_ANY.finditer(text)]
        assert [(m.start(), m.end()) for m in evasion._at_matches(text)] == want, text
        found += len(want)
    assert found > 1000


def test_engine_neutral_text_gives_re_hints_under_re2() -> None:
    """Folded non-ASCII texts: RE2 on the stand-in text finds exactly the hints ``re`` finds
    on the text (Unicode spaces, digits, letters, case folds such as ſ / K / ı / İ)."""
    import random

    import pyarrow as pa

    from datanet.privacy.evasion import (
        _STEP_HINTS_PY,
        _engine_neutral,
        _hint_steps,
        _neutral_char,
    )

    rng = random.Random(5)
    specials = ["\u00a0", "\u2003", "\u3000", "\x0b", "\x1c", "\x85", "\u2028", "٣", "߂", "𝟘",
                "ſ", "\u212a", "ı", "İ", "é", "°", "—", "\u0301", "ﬁ", "ß", "Ω", "日", "_", "@",
                " ", "\t", ".", "-", ",", "(", "[", "<", ">", ")", "]", "at", "dot", "DOT",
                "one", "two", "fıve", "ſix", "\u212aNOW", "3", "45", "6 7", "8.9"]
    texts = ["".join(rng.choice(specials) for _ in range(rng.randint(1, 25)))
             for _ in range(3000)]
    mapped, exact = _engine_neutral(pa.array(texts))
    got = _hint_steps(mapped, ascii=True)
    want = [sum(bit for bit, hint in _STEP_HINTS_PY.items() if hint.search(t)) for t in texts]
    assert all(m.isascii() for m, ok in zip(mapped.to_pylist(), exact, strict=True) if ok)
    assert [int(g) for g, ok in zip(got, exact, strict=True) if ok] == [
        w for w, ok in zip(want, exact, strict=True) if ok]
    assert exact.all() and 0 < sum(want) and len(set(want)) >= 5
    # the stand-ins copy re's reading: a long s is an s, a Kelvin sign a k, NBSP a blank,
    # ARABIC-INDIC THREE a digit, é a word character, ° nothing; a combining mark is \w
    assert [_neutral_char(c) for c in ("ſ", "\u212a", "\u00a0", "٣", "é", "°", "\x1c")] == [
        "s", "k", "\f", "0", "_", "#", "\f"]


@pytest.mark.slow
def test_one_class_test_equals_one_test_per_character_over_unicode() -> None:
    """``_neutral_char``'s shortcuts: ``(?i)[a-z]`` and the punctuation class match, over
    every code point, exactly what the per-character ``(?i)x`` tests match."""
    import re

    from datanet.privacy.evasion import _ANY_LETTER, _ANY_PUNCTUATION, _HINT_PUNCTUATION

    letters = [re.compile("(?i)" + x) for x in "abcdefghijklmnopqrstuvwxyz"]
    puncts = [re.compile("(?i)" + re.escape(p)) for p in _HINT_PUNCTUATION]
    odd = [cp for cp in range(0x110000)
           if bool(_ANY_LETTER.fullmatch(chr(cp))) != any(x.fullmatch(chr(cp)) for x in letters)
           or bool(_ANY_PUNCTUATION.fullmatch(chr(cp))) != any(
               p.fullmatch(chr(cp)) for p in puncts)]
    assert odd == []
    # and the class does reach beyond ASCII: the case folds re applies
    assert [c for c in "ſKıİé" if _ANY_LETTER.fullmatch(c)] == ["ſ", "K", "ı", "İ"]
