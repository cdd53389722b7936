"""Spec checks at load: veto names, PII entity names, schedule, TOML syntax errors."""

from __future__ import annotations

import pickle

import pytest

from datanet.errors import SpecError, SpecSyntaxError
from datanet.schemas.schedule import check_schedule
from datanet.schemas.spec import load_spec, parse_spec


def _load(tmp_path, text: str):
    p = tmp_path / "datanet.toml"
    p.write_text(text)
    return load_spec(p)


def test_veto_must_name_a_validator(tmp_path) -> None:
    with pytest.raises(SpecError) as exc:
        _load(tmp_path, 'id = "x"\n[policy]\nveto = ["pii", "spamm"]\n')
    assert str(exc.value).startswith(
        f"{tmp_path / 'datanet.toml'}: policy.veto[1]='spamm' is not a validator; "
        "did you mean 'spam'? a veto names a validator (c4_quality, exact_duplicate,")
    addr = "0x" + "ab" * 20
    spec = _load(tmp_path, f'id = "x"\n[policy]\nveto = ["spam", "flood", "{addr}"]\n')
    assert spec.policy["veto"] == ("spam", "flood", addr)


def test_weight_keys_must_name_validators(tmp_path) -> None:
    with pytest.raises(SpecError, match=r"policy\.weights\.quality='quality' is not a validator; "
                                        r"did you mean '(gopher|c4|fineweb)_quality'\? a weight "
                                        r"names a validator"):
        _load(tmp_path, 'id = "x"\n[policy]\nweights = { quality = 2.0 }\n')
    addr = "0x" + "cd" * 20
    spec = _load(tmp_path, f'id = "x"\n[policy]\nweights = {{ gopher_quality = 2.0, '
                           f'"{addr}" = 5.0 }}\n')
    assert dict(spec.policy["weights"]) == {"gopher_quality": 2.0, addr: 5.0}


def test_pii_entities_must_be_known(tmp_path) -> None:
    with pytest.raises(SpecError, match=r"validators\.pii\.entities\.PHONE='PHONE' is not an "
                                        r"entity any recognizer detects; did you mean "
                                        r"PHONE_NUMBER\?"):
        _load(tmp_path, 'id = "x"\n[validators.pii.entities]\nPHONE = "redact"\n')
    with pytest.raises(SpecError, match=r"entities\.PERSON='PERSON' is found by NER only: set "
                                        r"\[validators\.pii\]\.ner_model"):
        _load(tmp_path, 'id = "x"\n[validators.pii.entities]\nPERSON = "redact"\n')
    spec = parse_spec({"id": "x", "validators": {"pii": {
        "ner_model": "en_core_web_lg", "entities": {"PERSON": "redact", "UUID": "allow",
                                                    "EMPLOYEE_ID": "reject"},
        "recognizers": {"EMPLOYEE_ID": {"patterns": [r"EMP-\d{6}"]}}}}})
    assert spec.validators["pii"]["entities"]["EMPLOYEE_ID"] == "reject"


def test_pattern_entities_match_presidios_registry() -> None:
    """The static list used at load is what Presidio's English pattern recognizers detect."""
    from presidio_analyzer import RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    from datanet.privacy.policy import NER_ENTITIES, PATTERN_ENTITIES

    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "no_op"}])
    nlp.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp)
    assert {e for r in registry.recognizers for e in r.supported_entities} == PATTERN_ENTITIES
    assert set(SpacyRecognizer.ENTITIES) == NER_ENTITIES


@pytest.mark.parametrize("schedule", [
    "@daily", "@hourly", "@once", "@continuous", "@quarterly", "@YEARLY", "0 3 * * *",
    "30 2 * * 1-5", "*/15 * * * *", "0 0 1,15 * *", "0 12 * JAN-MAR mon-fri", "0 0 L * *",
    "0 9 * * 1#2", "0 9 * * 5L", "5-55/10 */2 ? * 7", "0 0 29 2 *",
])
def test_valid_schedules(schedule) -> None:
    check_schedule(schedule)


@pytest.mark.parametrize(("schedule", "detail"), [
    ("every hour", "2 fields"),
    ("@every_hour", "unknown preset"),
    ("0 3 * *", "4 fields"),
    ("0 3 * * * *", "6 fields"),
    ("60 * * * *", "minute 60 is outside 0-59"),
    ("0 24 * * *", "hour 24 is outside 0-23"),
    ("0 0 0 * *", "day-of-month 0 is outside 1-31"),
    ("0 0 * 13 *", "month 13 is outside 1-12"),
    ("0 0 * * 8", "day-of-week 8 is outside 0-7"),
    ("0 0 * FOO *", "month 'FOO' is not a number or a name"),
    ("*/0 * * * *", "minute step '0' must be 1-60"),
    ("0 5-1 * * *", "hour range '5-1' runs backwards"),
    ("0 0 1,,2 * *", "day-of-month '1,,2' has an empty list item"),
])
def test_invalid_schedules(schedule, detail) -> None:
    with pytest.raises(SpecError) as exc:
        parse_spec({"id": "x", "schedule": schedule})
    assert exc.value.key == "schedule" and exc.value.value == schedule
    assert f"is not a valid Airflow schedule ({detail}" in str(exc.value)


@pytest.mark.parametrize(("text", "where", "what"), [
    ('id = "x"\n[policy\nveto = []\n', "2:8", "Expected ']' at the end of a table declaration"),
    ('id = "x"\nname = \n', "2:8", "Invalid value"),
    ('id = "x"\nname = "unterminated', "2:21", "Unterminated string"),
])
def test_toml_syntax_error_is_one_line_with_position(tmp_path, text, where, what) -> None:
    with pytest.raises(SpecSyntaxError) as exc:
        _load(tmp_path, text)
    assert str(exc.value) == f"{tmp_path / 'datanet.toml'}:{where}: invalid TOML: {what}"
    again = pickle.loads(pickle.dumps(exc.value))
    assert str(again) == str(exc.value) and again.line == exc.value.line


def test_cli_init_reports_spec_errors_in_one_line(tmp_path) -> None:
    from typer.testing import CliRunner

    from datanet.cli import app

    spec = tmp_path / "spec.toml"
    spec.write_text('id = "x"\n[policy\n')
    res = CliRunner().invoke(app, ["init", str(tmp_path / "dn"), "--spec", str(spec)])
    assert res.exit_code == 1
    assert " ".join(res.output.split()) == (
        f"error: {spec}:2:8: invalid TOML: Expected ']' at the end of a table declaration")
    assert not (tmp_path / "dn").exists()
