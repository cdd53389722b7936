from __future__ import annotations

import pytest

from datanet.privacy.offsets import MappedText


def test_identity_span_is_itself():
    m = MappedText.identity("hello")
    assert m.is_identity
    assert m.span(1, 3) == (1, 3)


def test_chained_edits_map_back_to_original():
    original = "ab  XYZ cd"
    m = MappedText.identity(original).apply([(2, 4, " "), (4, 7, "Q")])
    assert m.text == "ab Q cd"
    assert m.span(3, 4) == (4, 7)  # "Q" came from "XYZ"
    m2 = m.apply([(0, 2, "")])  # delete "ab"
    assert m2.text == " Q cd"
    assert m2.span(1, 2) == (4, 7)
    assert original[slice(*m2.span(3, 5))] == "cd"


def test_expansion_maps_every_char_to_source():
    m = MappedText.identity("x\ufb01y").apply([(1, 2, "fi")])  # ligature -> two chars
    assert m.text == "xfiy"
    assert m.span(1, 3) == (1, 2)
    assert m.span(3, 4) == (2, 3)


def test_overlapping_edits_are_refused():
    with pytest.raises(ValueError, match="overlaps"):
        MappedText.identity("abcdef").apply([(0, 3, "x"), (2, 4, "y")])


def _eager(original: str, chain: list[list[tuple[int, int, str]]]
           ) -> tuple[str, list[tuple[int, int]]]:
    """Reference: apply edit lists keeping one original span per character."""
    text, spans = original, [(i, i + 1) for i in range(len(original))]
    for edits in chain:
        out_text, out_spans, pos = [], [], 0
        for s, e, repl in sorted(edits):
            out_text.append(text[pos:s])
            out_spans += spans[pos:s]
            if s < e:
                lo, hi = spans[s][0], spans[e - 1][1]
            else:  # insertion: the next character's start, or the end of the original
                lo = hi = spans[s][0] if s < len(spans) else len(original)
            out_text.append(repl)
            out_spans += [(lo, hi)] * len(repl)
            pos = e
        out_text.append(text[pos:])
        out_spans += spans[pos:]
        text, spans = "".join(out_text), out_spans
    return text, spans


def test_lazy_map_equals_eager_map_on_random_edit_chains():
    import random

    rng = random.Random(11)
    checked = 0
    for _ in range(3000):
        original = "".join(rng.choice("abcXYZ") for _ in range(rng.randint(0, 10)))
        lazy, chain, text = MappedText.identity(original), [], original
        for _ in range(rng.randint(1, 4)):
            pts = sorted(rng.choice(range(len(text) + 1)) for _ in range(rng.randint(0, 6)))
            edits, i = [], 0
            while i < len(pts):
                two = i + 1 < len(pts) and pts[i] < pts[i + 1] and rng.random() < 0.7
                s, e = (pts[i], pts[i + 1]) if two else (pts[i], pts[i])
                i += 2 if two else 1
                if edits and (s < edits[-1][1] or s == e == edits[-1][0]):
                    continue
                edits.append((s, e, "".join(rng.choice("qr") for _ in range(rng.randint(0, 3)))))
            lazy = lazy.apply(edits)
            chain.append(edits)
            text, spans = _eager(original, chain)
            assert lazy.text == text
            for s in range(len(text)):
                for e in range(s + 1, len(text) + 1):
                    assert lazy.span(s, e) == (spans[s][0], spans[e - 1][1])
                    checked += 1
    assert checked > 10_000
