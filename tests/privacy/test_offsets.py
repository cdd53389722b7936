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
