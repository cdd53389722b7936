"""External validator votes (EIP-712): round trips, tampering, replay, registry, duplicates."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from datanet.schemas.contribution import VOTE_SCHEMA
from datanet.schemas.votes import (
    EXTERNAL_VOTE_SCHEMA,
    SignedVote,
    vote_from_json,
    vote_to_json,
    vote_typed_data,
)
from datanet.validators.external import (
    read_vote_lines,
    recover_voter,
    sign_vote,
    to_policy_votes,
    verify_votes,
)
from datanet.validators.policy import PolicyConfig, decide

DATANET = "legal-qa"
C1, C2, C3, C4 = ("0x" + f"{i:02x}" * 32 for i in (1, 2, 3, 4))


@pytest.fixture(scope="module")
def keys():
    return [Account.create() for _ in range(3)]


def lines(*votes: SignedVote | str) -> list[tuple[str, int, str]]:
    return [("votes.jsonl", i, v if isinstance(v, str) else vote_to_json(v))
            for i, v in enumerate(votes, 1)]


def test_round_trip_and_wallet_compatibility(keys):
    v = sign_vote(keys[0].key, datanet_id=DATANET, contribution_id=C1, verdict="accept",
                  score=9000, reason="", timestamp=1_760_000_000)
    assert recover_voter(v) == keys[0].address.lower()
    assert vote_from_json(json.loads(vote_to_json(v))) == v
    # The typed data is standard EIP-712: signing it with eth-account directly is identical.
    direct = Account.sign_message(encode_typed_data(full_message=vote_typed_data(v.message())),
                                  keys[0].key).signature.to_0x_hex()
    assert direct == v.signature


def _status(table: pa.Table) -> list[str]:
    return table.column("status").to_pylist()


def test_every_status(keys):
    a, b, outsider = keys
    registry = {a.address.lower(): 10.0, b.address.lower(): 2.5}
    status_of = {C1: "needs_review", C2: "needs_review", C3: "accepted"}

    good_a = sign_vote(a.key, datanet_id=DATANET, contribution_id=C1, verdict="accept",
                       timestamp=100)
    good_b = sign_vote(b.key, datanet_id=DATANET, contribution_id=C1, verdict="reject",
                       reason="off_topic", score=8000, timestamp=101)
    # tampered vote: verdict flipped after signing
    tampered = SignedVote(**{**good_b.__dict__, "verdict": "accept"})
    tampered_score = SignedVote(**{**good_b.__dict__, "score": 10})
    # replay for another datanet: signed for medical-faq, as is, and with the datanet edited
    other = sign_vote(a.key, datanet_id="medical-faq", contribution_id=C2, verdict="accept",
                      timestamp=102)
    replay_edited = SignedVote(**{**other.__dict__, "datanet": DATANET})
    unknown_signer = sign_vote(outsider.key, datanet_id=DATANET, contribution_id=C2,
                               verdict="accept", timestamp=103)
    unknown_record = sign_vote(a.key, datanet_id=DATANET, contribution_id=C4, verdict="accept",
                               timestamp=104)
    decided = sign_vote(a.key, datanet_id=DATANET, contribution_id=C3, verdict="reject",
                        timestamp=105)
    # duplicate: a second (later) vote of a on C1, and an exact resubmission of good_b
    second = sign_vote(a.key, datanet_id=DATANET, contribution_id=C1, verdict="reject",
                       timestamp=200)
    # an earlier-timestamped vote listed later in the file wins over a later one
    late_first = sign_vote(b.key, datanet_id=DATANET, contribution_id=C2, verdict="accept",
                           timestamp=300)
    early_second = sign_vote(b.key, datanet_id=DATANET, contribution_id=C2, verdict="reject",
                             timestamp=50)
    forged_claim = SignedVote(**{**unknown_signer.__dict__, "validator": a.address.lower()})

    table = verify_votes(
        lines(good_a, good_b, tampered, tampered_score, other, replay_edited, unknown_signer,
              unknown_record, decided, second, good_b, late_first, early_second, forged_claim,
              "{not json", '{"validator": "0x12"}'),
        datanet_id=DATANET, registry=registry, status_of=status_of,
    )
    assert table.schema == EXTERNAL_VOTE_SCHEMA
    assert _status(table) == [
        "counted", "counted", "bad_signature", "bad_signature", "wrong_datanet",
        "bad_signature", "unknown_validator", "unknown_contribution", "already_decided",
        "duplicate_vote", "duplicate_vote", "duplicate_vote", "counted", "bad_signature",
        "malformed_vote", "malformed_vote",
    ]
    assert table.column("weight").to_pylist()[:2] == [10.0, 2.5]
    assert table.column("score").to_pylist()[1] == 0.8
    assert table.column("source_line").to_pylist() == list(range(1, 17))
    # the same vote bytes always get the same id; the duplicate resubmission shares it
    ids = table.column("vote_id").to_pylist()
    assert ids[1] == ids[10] and len(set(ids)) == 15


def test_prior_votes_make_new_ones_duplicates(keys):
    a = keys[0]
    v = sign_vote(a.key, datanet_id=DATANET, contribution_id=C1, verdict="accept", timestamp=1)
    table = verify_votes(lines(v), datanet_id=DATANET, registry={a.address.lower(): 1.0},
                         status_of={C1: "needs_review"},
                         prior=[(a.address, C1.upper().replace("0X", "0x"))])
    assert _status(table) == ["duplicate_vote"]


def test_policy_votes_carry_status_and_weight_into_the_tally(keys):
    a, b, outsider = keys
    registry = {a.address.lower(): 3.0, b.address.lower(): 1.0}
    table = verify_votes(
        lines(sign_vote(a.key, datanet_id=DATANET, contribution_id=C1, verdict="accept",
                        timestamp=1),
              sign_vote(b.key, datanet_id=DATANET, contribution_id=C1, verdict="reject",
                        reason="wrong_answer", timestamp=2),
              sign_vote(outsider.key, datanet_id=DATANET, contribution_id=C1, verdict="reject",
                        reason="spam", timestamp=3),
              "garbage"),
        datanet_id=DATANET, registry=registry, status_of={C1: "needs_review"},
    )
    pv = to_policy_votes(table)
    assert pv.schema == VOTE_SCHEMA
    assert pv.num_rows == 3  # the malformed line names no record: kept in the ledger only
    assert pv.column("verdict").to_pylist() == ["accept", "reject", "abstain"]
    assert pv.column("reason").to_pylist() == [None, "wrong_answer", "unknown_validator"]
    assert [json.loads(d)["status"] for d in pv.column("details").to_pylist()] == [
        "counted", "counted", "unknown_validator"]
    config = PolicyConfig(accept_threshold=0.7, registry=registry, quorum=2.0)
    row = decide(pa.array([C1]), pv, config).to_pylist()[0]
    assert (row["outcome"], row["accept_weight"], row["reject_weight"]) == ("accepted", 3.0, 1.0)
    assert row["reasons"] == ["wrong_answer"]


def test_read_vote_lines_jsonl_and_array(tmp_path, keys):
    v = sign_vote(keys[0].key, datanet_id=DATANET, contribution_id=C1, verdict="accept",
                  timestamp=1)
    (tmp_path / "a.jsonl").write_text(vote_to_json(v) + "\n\n" + vote_to_json(v) + "\n")
    (tmp_path / "b.json").write_text(json.dumps([json.loads(vote_to_json(v))]))
    got = list(read_vote_lines([tmp_path / "a.jsonl", tmp_path / "b.json"]))
    assert [(p.rsplit("/", 1)[1], n) for p, n, _ in got] == [
        ("a.jsonl", 1), ("a.jsonl", 3), ("b.json", 1)]
    assert all(vote_from_json(json.loads(raw)) == v for _, _, raw in got)


@pytest.mark.parametrize(("patch", "field"), [
    ({"verdict": "maybe"}, "verdict"),
    ({"score": 10001}, "score"),
    ({"score": 0.5}, "score"),
    ({"timestamp": -1}, "timestamp"),
    ({"contribution_id": "0x1234"}, "contribution_id"),
    ({"extra": 1}, "extra"),
])
def test_malformed_fields_are_named(keys, patch, field):
    v = json.loads(vote_to_json(sign_vote(keys[0].key, datanet_id=DATANET, contribution_id=C1,
                                          verdict="accept", timestamp=1)))
    with pytest.raises(ValueError, match=field):
        vote_from_json({**v, **patch})
