"""The exception hierarchy says by type whether a step may succeed when run again."""

import pickle

import pytest

from datanet import errors


@pytest.mark.parametrize(("cls", "retryable"), [
    (errors.SpecError, False), (errors.SpecSyntaxError, False), (errors.OptionError, False),
    (errors.IntakeError, False), (errors.ValidatorError, False), (errors.SignatureError, False),
    (errors.RewardsError, False), (errors.StoreError, True), (errors.CommitConflict, True),
    (errors.AnchoringError, True), (errors.WorkerLost, True),
])
def test_retryable_by_type(cls, retryable):
    assert cls.retryable is retryable


def test_every_exported_error_is_classified():
    exported = {getattr(errors, name) for name in errors.__all__}
    assert {c for c in exported if c.retryable} == {
        errors.StoreError, errors.CommitConflict, errors.AnchoringError, errors.WorkerLost}


def test_spec_error_keeps_its_type_and_fields_across_pickling():
    exc = errors.SpecError("limits.min_chars", -4, "must be >= 0", source="x/datanet.toml")
    back = pickle.loads(pickle.dumps(exc))
    assert (type(back), back.key, back.value, str(back)) == (
        errors.SpecError, "limits.min_chars", -4,
        "x/datanet.toml: limits.min_chars=-4 must be >= 0")
    assert back.retryable is False
