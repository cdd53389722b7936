"""Number-shaped strings after a phone word are PHONE_NUMBER even when libphonenumber says no."""

from __future__ import annotations

import pytest

from datanet.privacy.detector import PHONE_CONTEXT_SCORE, Finding, PiiDetector
from datanet.privacy.policy import PiiConfig
from datanet.validators.pii import PiiValidator

CAUGHT = [
    ("The number on file is 348-989-4905.", "348-989-4905"),  # the unassigned code
    ("Phone: 348 989 4905", "348 989 4905"),
    ("my cell is 348.989.4905 if the oven dies", "348.989.4905"),
    ("Reach me on 111 989 49 05 after six", "111 989 49 05"),
    ("Contact: 348\u2011989\u2011490\u0665", "348\u2011989\u2011490\u0665"),  # folded view
    ("text me at +999 348 989 4905", "+999 348 989 4905"),  # no such country code
    ("call 8123 4567 now", "8123 4567"),  # a Singapore number, outside the default regions
]

NOT_CAUGHT = [
    "call for 2 cups of flour and 350 g sugar",
    "Order number 2024-10-15 shipped on time",  # an ISO date
    "tracking number 1Z999AA10123456784",
    "the number is 3.14159265, roughly",
    "call it 1,000,000 crumbs",
    "Bake at 180 for 25-30 minutes; my number one tip",
    "The recipe number 12 34 56 is great",  # 6 digits
    "348-989-4905 is written on the jar lid",  # no phone word before it
    "Call the butcher.\n348-989-4905 grams is a lot",  # the word is on another line
    "Call the butcher and ask for the bones of the 2 lamb shoulders: 348-989-4905",  # > 40 chars
]


@pytest.fixture(scope="module")
def detector() -> PiiDetector:
    return PiiDetector(frozenset({"PHONE_NUMBER"}))


@pytest.mark.parametrize(("text", "number"), CAUGHT)
def test_phone_context_catches(detector, text, number) -> None:
    start = text.index(number)
    assert detector.detect([text]) == [[Finding(start, start + len(number), "PHONE_NUMBER",
                                                PHONE_CONTEXT_SCORE)]]
    off = PiiDetector(frozenset({"PHONE_NUMBER"}), phone_context=False)
    assert off.detect([text]) == [[]]  # libphonenumber alone rejects each of them


@pytest.mark.parametrize("text", NOT_CAUGHT)
def test_phone_context_leaves_other_numbers(detector, text) -> None:
    assert detector.detect([text]) == [[]]


def test_valid_numbers_are_reported_once(detector) -> None:
    text = "Call me at +44 20 7946 0958 about the cake"
    (found,) = detector.detect([text])
    assert [(text[f.start:f.end], f.entity) for f in found] == [
        ("+44 20 7946 0958", "PHONE_NUMBER")]


def test_validator_rejects_and_the_key_turns_it_off() -> None:
    import pyarrow as pa

    texts = pa.array(["The number on file is 348-989-4905.", "A plain tip about bread."])
    batch = pa.RecordBatch.from_arrays(
        [pa.array(["0x" + "11" * 32, "0x" + "22" * 32]), texts], ["contribution_id", "text"])
    on = PiiValidator(PiiConfig(), None)
    on.setup()
    votes = on.validate(batch).votes
    assert votes.column("verdict").to_pylist() == ["reject", "accept"]
    assert votes.column("reason").to_pylist() == ["pii:PHONE_NUMBER", None]
    off = PiiValidator(PiiConfig(phone_context=False), None)
    off.setup()
    votes = off.validate(batch).votes
    assert votes.column("verdict").to_pylist() == ["accept", "accept"]


def test_a_span_found_as_another_entity_is_not_reported_again() -> None:
    """An SSN after a phone word stays one US_SSN finding (the example's votes are unchanged)."""
    text = "my number is 536-22-8751"
    both = PiiDetector(frozenset({"PHONE_NUMBER", "US_SSN"}))
    assert both.detect([text]) == [[Finding(13, 24, "US_SSN", 0.5)]]
    phone_only = PiiDetector(frozenset({"PHONE_NUMBER"}))
    assert phone_only.detect([text]) == [[Finding(13, 24, "PHONE_NUMBER", PHONE_CONTEXT_SCORE)]]
