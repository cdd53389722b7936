"""The pii validator: policy per entity, votes without values, stored bytes without PII."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datanet.errors import SpecError, ValidatorError
from datanet.privacy.policy import PiiConfig, Pseudonymiser, contains_pii_reason
from datanet.schemas.spec import parse_spec
from datanet.validators.pii import PiiValidator
from datanet.validators.registry import enabled_validators

from .conftest import KEY

EMAIL = "jane.doe@example.org"
PHONE = "(212) 555-0147"
IP = "192.168.10.24"


def pii_validator(table: dict | None = None, *, setup: bool = True) -> PiiValidator:
    spec = parse_spec({"id": "t", "validators": {"pii": table or {}}})
    (v,) = [x for x in enabled_validators(spec) if x.name == "pii"]
    if setup:
        v.setup()
    return v


def stored_bytes(batch: pa.RecordBatch, result, *, verdicts: list[str]) -> bytes:
    """What a writer following the contract stores: the validator's text replaces ``text``;
    a row rejected for PII keeps no text at all. Uncompressed, so a grep is meaningful."""
    text = result.text if result.text is not None else batch.column("text")
    reasons = result.votes.column("reason").to_pylist()
    text = [None if v == "reject" and contains_pii_reason([r]) else t
            for t, v, r in zip(text.to_pylist(), verdicts, reasons, strict=True)]
    table = pa.table({"contribution_id": batch.column("contribution_id"),
                      "text": pa.array(text, pa.string()),
                      "details": result.votes.column("details")})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="none")
    return buf.getvalue()


def test_private_by_default_rejects_with_entity_reasons(make_batch):
    v = pii_validator()
    texts = [f"mail {EMAIL}", f"call {PHONE}", "card 4111 1111 1111 1111",
             "iban GB82 WEST 1234 5698 7654 32", f"ip {IP}", "ssn 536-22-8726",
             "btc 1BoatSLRHtKNngkdXEeobR76b53LETtpyT", "see https://example.com/x",
             "nothing personal here"]
    votes = v.validate(make_batch(texts)).votes
    assert votes.column("reason").to_pylist() == [
        "pii:EMAIL_ADDRESS", "pii:PHONE_NUMBER", "pii:CREDIT_CARD", "pii:IBAN_CODE",
        "pii:IP_ADDRESS", "pii:US_SSN", "pii:CRYPTO", None, None]
    assert votes.column("verdict").to_pylist() == ["reject"] * 7 + ["accept"] * 2
    assert votes.column("validator").to_pylist() == ["pii"] * 9


def test_details_hold_types_and_offsets_never_values(make_batch):
    v = pii_validator()
    result = v.validate(make_batch([f"mail {EMAIL} or {PHONE}"]))
    details = json.loads(result.votes.column("details")[0].as_py())
    assert details == {"entities": ["EMAIL_ADDRESS", "PHONE_NUMBER"],
                       "spans": [[5, 25, "EMAIL_ADDRESS", "reject"],
                                 [29, 43, "PHONE_NUMBER", "reject"]]}
    raw = result.votes.to_pandas().to_json()
    assert EMAIL not in raw and "555-0147" not in raw


@pytest.mark.parametrize("action", ["reject", "redact", "pseudonymise", "allow"])
def test_each_policy_stored_bytes(make_batch, monkeypatch, action):
    monkeypatch.setenv("DATANET_PII_KEY", KEY)
    v = pii_validator({"entities": {"EMAIL_ADDRESS": action}})
    batch = make_batch([f"Reach me at {EMAIL} any time.", "clean text"])
    result = v.validate(batch)
    verdicts = result.votes.column("verdict").to_pylist()
    data = stored_bytes(batch, result, verdicts=verdicts)
    assert b"clean text" in data
    if action == "allow":
        assert verdicts == ["accept", "accept"]
        assert EMAIL.encode() in data  # control: the grep does see plain values
        assert result.text is None
        return
    assert EMAIL.encode() not in data
    assert b"jane.doe" not in data
    if action == "reject":
        assert verdicts == ["reject", "accept"]
    elif action == "redact":
        assert verdicts == ["accept", "accept"]
        assert result.text.to_pylist()[0] == "Reach me at <EMAIL_ADDRESS> any time."
    else:
        token = Pseudonymiser(KEY.encode()).token("EMAIL_ADDRESS", EMAIL)
        assert verdicts == ["accept", "accept"]
        assert result.text.to_pylist()[0] == f"Reach me at {token} any time."
        assert token.encode() in data


def test_pseudonyms_are_stable_across_batches_and_evasions(make_batch, monkeypatch):
    monkeypatch.setenv("DATANET_PII_KEY", KEY)
    v = pii_validator({"entities": {"EMAIL_ADDRESS": "pseudonymise",
                                    "PHONE_NUMBER": "pseudonymise"}})
    a = v.validate(make_batch([f"{EMAIL} {PHONE}"])).text.to_pylist()[0]
    b = v.validate(make_batch(["x", "JANE.DOE [at] example [dot] org 212-555-0147"])).text
    tok_a = a.split(" ")
    tok_b = b.to_pylist()[1].split(" ")
    assert tok_a[0] == tok_b[0] and tok_a[0].startswith("<EMAIL_ADDRESS:")
    assert tok_a[1] == tok_b[1] and tok_a[1].startswith("<PHONE_NUMBER:")
    other = Pseudonymiser(b"another-key-0123456789").token("EMAIL_ADDRESS", EMAIL)
    assert other != tok_a[0]


def test_pseudonymise_without_key_fails_clearly(make_batch, monkeypatch):
    monkeypatch.delenv("DATANET_PII_KEY", raising=False)
    v = pii_validator({"entities": {"EMAIL_ADDRESS": "pseudonymise"}}, setup=False)
    with pytest.raises(ValidatorError, match=r"\$DATANET_PII_KEY is not set"):
        v.setup()


def test_rejected_rows_text_is_redacted_too(make_batch):
    """Belt and braces: even if a writer kept the text, it holds no value."""
    v = pii_validator({"entities": {"IP_ADDRESS": "redact"}})
    result = v.validate(make_batch([f"{EMAIL} from {IP}"]))
    assert result.votes.column("reason").to_pylist() == ["pii:EMAIL_ADDRESS"]
    assert result.text.to_pylist() == ["<EMAIL_ADDRESS> from <IP_ADDRESS>"]


def test_reject_only_rows_are_masked_without_the_anonymizer(make_batch, monkeypatch):
    """A row whose findings are all ``reject`` is masked by a plain splice (overlapping
    spans merged); presidio-anonymizer is not called for it."""
    from presidio_anonymizer import AnonymizerEngine

    from datanet.privacy.detector import Finding
    from datanet.privacy.policy import mask_findings

    def boom(*_a, **_k):
        raise AssertionError("anonymizer called for a reject-only row")

    monkeypatch.setattr(AnonymizerEngine, "anonymize", boom)
    v = pii_validator()
    result = v.validate(make_batch([f"mail {EMAIL} or call {PHONE}.", "nothing here"]))
    assert result.votes.column("reason").to_pylist() == ["pii:EMAIL_ADDRESS", None]
    assert result.text.to_pylist() == ["mail <EMAIL_ADDRESS> or call <PHONE_NUMBER>.",
                                       "nothing here"]
    found = [Finding(2, 9, "US_SSN", 0.5), Finding(0, 4, "PHONE_NUMBER", 0.4),
             Finding(5, 7, "IP_ADDRESS", 0.6)]
    assert mask_findings("0123456789ab", found) == "<PHONE_NUMBER>9ab"
    assert mask_findings("0123456789ab", []) == "0123456789ab"


def test_obfuscated_redaction_replaces_the_original_span(make_batch):
    v = pii_validator({"entities": {"EMAIL_ADDRESS": "redact"}})
    result = v.validate(make_batch(["write jane [at] exаmple [dot] org today"]))
    assert result.text.to_pylist() == ["write <EMAIL_ADDRESS> today"]


def test_spec_recognizer_and_deny_list(make_batch):
    v = pii_validator({"recognizers": {
        "EMPLOYEE_ID": {"patterns": [r"\bEMP-[0-9]{6}\b"]},
        "CODENAME": {"deny_list": ["Bluebird"]},
    }, "entities": {"CODENAME": "redact"}})
    result = v.validate(make_batch(["badge EMP-123456", "project bluebird", "EMP-12"]))
    assert result.votes.column("reason").to_pylist() == ["pii:EMPLOYEE_ID", None, None]
    assert result.text.to_pylist()[1] == "project <CODENAME>"


def test_report_says_ner_is_off_once():
    report = pii_validator().report()
    assert report["ner"] == ("disabled: no spaCy model named in [validators.pii].ner_model; "
                             "patterns only")
    assert report["entities"]["URL"] == "allow"
    assert report["entities"]["CRYPTO"] == "reject"


@pytest.mark.parametrize(("table", "key"), [
    ({"entities": {"EMAIL_ADDRESS": "hide"}}, "validators.pii.entities.EMAIL_ADDRESS"),
    ({"entities": {"email": "reject"}}, "validators.pii.entities.email"),
    ({"score_threshold": 1.5}, "validators.pii.score_threshold"),
    ({"recognizers": {"X_ID": {"patterns": ["(unclosed"]}}},
     "validators.pii.recognizers.X_ID.patterns[0]"),
    ({"recognizers": {"X_ID": {}}}, "validators.pii.recognizers.X_ID.patterns"),
    ({"colour": "red"}, "validators.pii.colour"),
    ({"phone_regions": ["XX"]}, "validators.pii.phone_regions[0]"),
])
def test_bad_config_names_the_key(table, key):
    with pytest.raises(SpecError) as exc:
        parse_spec({"id": "t", "validators": {"pii": table}})
    assert exc.value.key == key


def test_phone_regions_narrow_phone_matching(make_batch):
    """+44 numbers have a country code (any region set finds them); a national-format UK
    number is found only when GB is among the regions."""
    texts = ["ring +44 20 7946 0958 now", "ring 020 7946 0958 now"]
    us_only = pii_validator({"phone_regions": ["US"], "phone_context": False}).validate(
        make_batch(texts)).votes
    default = pii_validator().validate(make_batch(texts)).votes
    assert us_only.column("reason").to_pylist() == ["pii:PHONE_NUMBER", None]
    assert default.column("reason").to_pylist() == ["pii:PHONE_NUMBER", "pii:PHONE_NUMBER"]
    # with the context rule (default) "ring" + a number shape is a phone number in any region
    us_ctx = pii_validator({"phone_regions": ["US"]}).validate(make_batch(texts)).votes
    assert us_ctx.column("reason").to_pylist() == ["pii:PHONE_NUMBER", "pii:PHONE_NUMBER"]


def test_contains_pii_reason():
    assert contains_pii_reason(["too_short", "pii:EMAIL_ADDRESS"])
    assert not contains_pii_reason(["too_short", "exact_duplicate"])
    assert not contains_pii_reason([])


def test_default_config_detects_the_private_set():
    assert PiiConfig().detected == frozenset({
        "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "US_SSN",
        "CRYPTO"})
