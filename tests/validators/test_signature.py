"""Contributor signatures (EIP-191): round trips with fresh keys, tampering, modes."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from datanet.errors import SignatureError
from datanet.privacy.normalise import normalise_text
from datanet.schemas.contribution import RECORD_SCHEMA, VOTE_SCHEMA
from datanet.schemas.ids import content_hash, contribution_id
from datanet.schemas.spec import parse_spec
from datanet.schemas.votes import contribution_message
from datanet.validators.policy import decide, policy_config
from datanet.validators.registry import BATCH_VALIDATORS, enabled_validators, validator_class
from datanet.validators.signature import (
    SignatureValidator,
    recover_contributor,
    sign_contribution,
)

DATANET = "legal-qa"


def record(text: str, contributor: str, signature: str | None, datanet: str = DATANET) -> dict:
    norm = normalise_text(text)
    h = content_hash(norm)
    return {
        "contribution_id": contribution_id(datanet, contributor, h),
        "datanet": datanet,
        "contributor": contributor,
        "submitted_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "text": text,
        "text_norm": norm,
        "content_hash": h,
        "metadata": None,
        "signature": signature,
        "source_file": "in.jsonl",
        "source_line": 1,
    }


def batch(*records: dict) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(list(records), schema=RECORD_SCHEMA)


def validator(mode: str | None = None) -> SignatureValidator:
    spec = parse_spec({"id": DATANET, **({"policy": {"signatures": mode}} if mode else {})})
    return SignatureValidator(SignatureValidator.config_cls(), spec)


@pytest.fixture(scope="module")
def alice():
    return Account.create()


@pytest.fixture(scope="module")
def mallory():
    return Account.create()


def signed(account, text: str, datanet: str = DATANET) -> dict:
    h = content_hash(normalise_text(text))
    return record(text, account.address.lower(), sign_contribution(account.key, datanet, h))


TEXT = "What is the statute of limitations for breach of contract in Ontario?"


def test_round_trip_recovers_the_signer_with_a_fresh_key(alice):
    h = content_hash(normalise_text(TEXT))
    sig = sign_contribution(alice.key, DATANET, h)
    assert len(bytes.fromhex(sig[2:])) == 65
    assert recover_contributor(DATANET, h, sig) == alice.address.lower()
    # The signed text is plain EIP-191 personal_sign: any wallet produces the same signature.
    wallet = Account.sign_message(encode_defunct(text=contribution_message(DATANET, h)),
                                  alice.key).signature.to_0x_hex()
    assert wallet == sig
    assert contribution_message(DATANET, h) == (
        f"datanet contribution\ndatanet: {DATANET}\ncontent_hash: {h}")


def test_malformed_signature_raises():
    with pytest.raises(SignatureError):
        recover_contributor(DATANET, "0x" + "00" * 32, "0x1234")


def test_validator_votes_accept_bad_and_missing(alice, mallory):
    good = signed(alice, TEXT)
    tampered = {**signed(alice, TEXT)}
    tampered_text = TEXT.replace("Ontario", "Quebec")
    tampered.update(record(tampered_text, alice.address.lower(), good["signature"]))
    stolen = record("Another question about easements and rights of way.",
                    alice.address.lower(),
                    signed(mallory, "Another question about easements and rights of way.")
                    ["signature"])
    malformed = record("Some other text that is long enough.", alice.address.lower(), "0xzz")
    unsigned = record("An unsigned but fine question about leases.", alice.address, None)
    empty = record("An empty signature string on a record here.", alice.address, "")
    checksummed = signed(alice, "Checksummed contributor address is fine too.")
    checksummed["contributor"] = alice.address  # mixed case
    b = batch(good, tampered, stolen, malformed, unsigned, empty, checksummed)

    votes = validator().validate(b).votes
    assert votes.schema == VOTE_SCHEMA
    assert votes.column("validator").to_pylist() == ["signature"] * 7
    assert votes.column("verdict").to_pylist() == [
        "accept", "reject", "reject", "reject", "abstain", "abstain", "accept"]
    assert votes.column("reason").to_pylist() == [
        None, "bad_signature", "bad_signature", "bad_signature", None, None, None]
    assert votes.column("score").to_pylist() == [1.0, 0.0, 0.0, 0.0, None, None, 1.0]
    details = [json.loads(d) if d else None for d in votes.column("details").to_pylist()]
    assert details[2] == {"recovered": mallory.address.lower()}
    assert details[3] == {"recovered": None}
    assert details[1]["recovered"] not in (alice.address.lower(), None)

    required = validator("required").validate(b).votes
    assert required.column("reason").to_pylist() == [
        None, "bad_signature", "bad_signature", "bad_signature", "signature_required",
        "signature_required", None]

    off = validator("off").validate(b).votes
    assert off.column("verdict").to_pylist() == ["abstain"] * 7


def test_signature_for_another_datanet_is_bad(alice):
    other = signed(alice, TEXT, datanet="medical-faq")
    # Same record submitted to legal-qa with the medical-faq signature.
    moved = record(TEXT, alice.address.lower(), other["signature"])
    votes = validator().validate(batch(moved)).votes
    assert votes.column("reason").to_pylist() == ["bad_signature"]


def test_whitespace_and_invisible_changes_keep_the_signature(alice):
    # The signature covers the normalised text, so NFKC / zero-width changes do not break it.
    base = signed(alice, TEXT)
    variant = record(TEXT.replace(" ", "\u200b  "), alice.address.lower(), base["signature"])
    assert variant["content_hash"] == base["content_hash"]
    assert validator().validate(batch(variant)).votes.column("verdict").to_pylist() == ["accept"]


def test_registered_and_vetoing_by_default(alice, mallory):
    assert BATCH_VALIDATORS["signature"] == "datanet.validators.signature:SignatureValidator"
    assert validator_class("signature") is SignatureValidator
    spec = parse_spec({"id": DATANET, "policy": {"signatures": "required",
                                                 "accept_threshold": 0.5},
                       "validators": {"signature": {}}})
    names = [v.name for v in enabled_validators(spec)]
    assert "signature" in names
    stolen = record(TEXT, alice.address.lower(), signed(mallory, TEXT)["signature"])
    b = batch(signed(alice, "A good signed question about tenancy law."), stolen)
    v = SignatureValidator(SignatureValidator.config_cls(), spec).validate(b).votes
    other = pa.Table.from_pylist(
        [{"contribution_id": c, "validator": f"auto{i}", "verdict": "accept", "score": None,
          "reason": None, "details": None}
         for c in b.column("contribution_id").to_pylist() for i in range(3)],
        schema=VOTE_SCHEMA)
    out = decide(b.column("contribution_id"), pa.concat_tables([v, other]), policy_config(spec))
    assert out.column("outcome").to_pylist() == ["accepted", "rejected"]
    assert out.column("reasons").to_pylist() == [[], ["bad_signature"]]


def test_throughput_uses_the_fast_backend(alice):
    import time

    import eth_keys

    assert "CoinCurve" in type(eth_keys.KeyAPI().backend).__name__
    records = [signed(alice, f"Question number {i} about contract law and remedies.")
               for i in range(300)]
    b = batch(*records)
    v = validator()
    t = time.perf_counter()
    votes = v.validate(b).votes
    elapsed = time.perf_counter() - t
    assert votes.column("verdict").to_pylist() == ["accept"] * 300
    assert elapsed < 3.0  # ~0.1 ms per record with coincurve, ~7 ms without
