"""`datanet vote` end to end: quarantine by the pipeline, external votes, a new batch."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from typer.testing import CliRunner

from datanet.cli import app
from datanet.schemas.votes import vote_to_json
from datanet.store.layout import init_datanet
from datanet.store.query import connect
from datanet.validators.external import sign_vote
from datanet.validators.review import apply_votes

from ..conftest import record, write_jsonl

VALIDATORS = [Account.from_key(bytes([i + 60]) * 32) for i in range(3)]

SPEC = """
id = "review"

[limits]
min_chars = 20

[policy]
quorum = 5           # automatic validators cast 2: every record waits for external votes
registry_file = "validators.toml"

""" + "".join(
    # keeps the count of automatic votes at 2 (limits, signature)
    f"\n[validators.{name}]\nenabled = false\n"
    for name in ("pii", "gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality",
                 "spam", "language", "expectations", "near_duplicate", "flood",
                 "exact_duplicate")
)


@pytest.fixture
def quarantined(tmp_path):
    """A datanet whose first batch left 4 records in needs_review and rejected 1."""
    from datanet.pipelines.run import run_datanet

    store = init_datanet(tmp_path / "dn", SPEC)
    (store.root / "validators.toml").write_text(
        "".join(f'"{v.address}" = 2\n' for v in VALIDATORS[:2]))
    inp = write_jsonl(tmp_path / "in.jsonl",
                      [record(i) for i in range(4)] + [record(5, text="too short")])
    result = run_datanet(store, [str(inp)], runner="DirectRunner")
    assert (result.counts["quarantine"], result.counts["rejected"]) == (4, 1)
    con = connect(store)
    ids = [r[0] for r in con.execute(
        "SELECT contribution_id FROM quarantine ORDER BY contribution_id").fetchall()]
    rejected = con.execute("SELECT contribution_id FROM rejected").fetchone()[0]
    return store, ids, rejected


def votes_file(path, *votes) -> str:
    path.write_text("".join(vote_to_json(v) + "\n" for v in votes))
    return str(path)


def vote(i: int, cid: str, verdict: str = "accept", ts: int = 1000, datanet: str = "review",
         reason: str = ""):
    return sign_vote(VALIDATORS[i].key, datanet_id=datanet, contribution_id=cid,
                     verdict=verdict, reason=reason, timestamp=ts)


def test_quarantined_record_accepted_by_votes_appears_once_in_a_later_batch(
        quarantined, tmp_path):
    store, ids, rejected = quarantined
    a, b, c, d = ids
    first = votes_file(
        tmp_path / "v1.jsonl",
        vote(0, a), vote(1, a),                          # 2+2+2 automatic = 6 ≥ 5: accepted
        vote(0, b),                                      # 4 < 5: still open
        vote(0, c), vote(1, c, "reject", reason="off_topic"),  # 4 vs 2: rejected
        vote(2, d),                                      # not in the registry
        vote(0, rejected),                               # already decided
        vote(0, "0x" + "ee" * 32),                       # unknown record
        vote(1, d, datanet="other"),                     # signed for another datanet
    )
    r1 = apply_votes(store, [first])
    assert r1.committed and (r1.accepted, r1.rejected, r1.still_open) == (1, 1, 2)
    assert {k: v for k, v in r1.statuses.items() if v} == {
        "counted": 5, "unknown_validator": 1, "already_decided": 1,
        "unknown_contribution": 1, "wrong_datanet": 1}
    m2 = store.last_manifest()
    assert (m2.seq, m2.leaf_count, m2.counts["accepted"], m2.counts["rejected"]) == (2, 1, 1, 1)
    assert m2.merkle_root is not None and m2.prev_batch == store.manifests()[0].batch_id

    # the same file again: nothing new
    again = apply_votes(store, [first])
    assert not again.committed and len(store.manifests()) == 2

    # a later vote completes b's quorum; a duplicate vote of validator 0 on b does not count
    second = votes_file(tmp_path / "v2.jsonl", vote(1, b, ts=2000), vote(0, b, "reject",
                                                                         ts=2001))
    r2 = apply_votes(store, [second])
    assert r2.statuses["counted"] == 1 and r2.statuses["duplicate_vote"] == 1
    assert (r2.accepted, r2.rejected, r2.still_open) == (1, 0, 1)

    con = connect(store)
    rows = con.execute("SELECT contribution_id, batch FROM accepted ORDER BY batch").fetchall()
    batches = {m.seq: m.batch_id for m in store.manifests()}
    assert sorted(rows) == sorted([(a, batches[2]), (b, batches[3])])  # each exactly once
    assert con.execute("SELECT reasons, tally.decided_by FROM rejected WHERE contribution_id = ?",
                       [c]).fetchone() == (["off_topic"], "threshold")
    # why a vote did not count is visible in the votes view
    seen = dict(con.execute(
        "SELECT reason, count(*) FROM votes WHERE verdict = 'abstain' AND "
        "json_extract_string(details, '$.external') = 'true' GROUP BY reason").fetchall())
    assert seen == {"unknown_validator": 1, "already_decided": 1, "unknown_contribution": 1,
                    "wrong_datanet": 1, "duplicate_vote": 1}
    # d is still open: it stays in quarantine of batch 1 only
    assert con.execute("SELECT count(*) FROM quarantine WHERE contribution_id = ?",
                       [d]).fetchone() == (1,)


def test_cli_vote_sign_and_vote(quarantined, tmp_path, monkeypatch):
    store, ids, _ = quarantined
    runner = CliRunner()
    keys = []
    for i in range(2):
        k = tmp_path / f"k{i}"
        k.write_text(VALIDATORS[i].key.hex())
        keys.append(k)
    out = tmp_path / "votes.jsonl"
    for k in keys:
        res = runner.invoke(app, ["vote-sign", ids[0], "--datanet", str(store.root),
                                  "--key-file", str(k), "-o", str(out), "--timestamp", "7"])
        assert res.exit_code == 0, res.output
    monkeypatch.setenv("DATANET_PRIVATE_KEY", "0x" + VALIDATORS[0].key.hex())
    res = runner.invoke(app, ["vote-sign", ids[1], "--datanet", "review", "--verdict",
                              "reject", "--reason", "spam", "--score", "0.5"])
    assert res.exit_code == 0, res.output
    printed = json.loads(res.stdout.strip().splitlines()[-1])
    assert (printed["verdict"], printed["reason"], printed["score"]) == ("reject", "spam", 5000)
    with open(out, "a") as fh:
        fh.write(res.stdout)
    res = runner.invoke(app, ["vote", str(store.root), str(out), "--no-anchor"])
    assert res.exit_code == 0, res.output
    # ids[1]: one reject of weight 2 + 2 automatic = 4 < quorum 5: still waiting
    assert "1 accepted, 0 rejected, 3 still need review" in res.output
    con = connect(store)
    assert con.execute("SELECT count(*) FROM accepted").fetchone() == (1,)
    assert con.execute("SELECT verdict, reason, score FROM votes WHERE contribution_id = ? "
                       "AND validator = ?", [ids[1], VALIDATORS[0].address.lower()]
                       ).fetchone() == ("reject", "spam", 0.5)
    # missing key
    monkeypatch.delenv("DATANET_PRIVATE_KEY")
    res = runner.invoke(app, ["vote-sign", ids[0], "--datanet", "review"])
    assert res.exit_code == 1 and "DATANET_PRIVATE_KEY" in res.output


def test_cli_sign_then_run_with_required_signatures(tmp_path):
    from datanet.pipelines.run import run_datanet

    alice = Account.from_key(bytes([9]) * 32)
    store = init_datanet(tmp_path / "dn", 'id = "signed"\n[policy]\nsignatures = "required"\n')
    records = [{"text": f"A carefully written contribution number {i} on bread baking."}
               for i in range(3)]
    raw = write_jsonl(tmp_path / "raw.jsonl", records)
    key = tmp_path / "alice.key"
    key.write_text("0x" + alice.key.hex() + "\n")
    signed = tmp_path / "signed.jsonl"
    res = CliRunner().invoke(app, ["sign", str(raw), "-o", str(signed), "--key-file", str(key),
                                   "--datanet", "signed"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in signed.read_text().splitlines()]
    assert all(x["contributor"] == alice.address for x in lines)
    lines[1]["text"] = lines[1]["text"].replace("bread", "cake")  # tampered after signing
    del lines[2]["signature"]
    lines.append({"contributor": alice.address,
                  "text": "An unsigned contribution that is long enough to pass."})
    tampered = write_jsonl(tmp_path / "tampered.jsonl", lines)
    run_datanet(store, [str(tampered)], runner="DirectRunner")
    con = connect(store)
    assert con.execute("SELECT count(*) FROM accepted").fetchone() == (1,)
    got = sorted(r[0] for r in con.execute("SELECT reasons FROM rejected").fetchall())
    assert got == [["bad_signature"], ["signature_required"], ["signature_required"]]

    # signing someone else's record is refused
    bob = write_jsonl(tmp_path / "bob.jsonl",
                      [{"contributor": Account.from_key(bytes([8]) * 32).address,
                        "text": "Bob's record that Alice must not sign for him."}])
    res = CliRunner().invoke(app, ["sign", str(bob), "-o", str(tmp_path / "x.jsonl"),
                                   "--key-file", str(key), "--datanet", "signed"])
    assert res.exit_code == 1 and "sign only your own records" in res.output


def test_uncounted_vote_is_re_evaluated_when_ingested_again(quarantined, tmp_path):
    """Votes ingested while their signer was unregistered count once the registry knows it."""
    store, ids, _ = quarantined
    d = ids[3]
    f = votes_file(tmp_path / "v.jsonl", vote(2, d), vote(0, d))
    r1 = apply_votes(store, [f])
    assert r1.committed and {k: v for k, v in r1.statuses.items() if v} == {
        "counted": 1, "unknown_validator": 1}
    assert (r1.accepted, r1.still_open) == (0, 4)  # 2 automatic + 2 < quorum 5
    # the registry is fixed: validator 2 registered with weight 2
    with open(store.root / "validators.toml", "a") as fh:
        fh.write(f'"{VALIDATORS[2].address}" = 2\n')
    r2 = apply_votes(store, [f])
    assert r2.committed, r2.message
    assert {k: v for k, v in r2.statuses.items() if v} == {"counted": 1, "duplicate_vote": 1}
    assert (r2.accepted, r2.rejected, r2.still_open) == (1, 0, 3)  # 2 + 2 + 2 = 6 >= 5
    m3 = store.last_manifest()
    assert (m3.seq, m3.counts["votes"], m3.counts["votes_counted"]) == (3, 1, 1)
    con = connect(store)
    assert con.execute("SELECT count(*) FROM accepted WHERE contribution_id = ?",
                       [d]).fetchone() == (1,)
    ledger = con.execute("SELECT status, batch FROM external_votes WHERE validator = ? "
                         "ORDER BY batch", [VALIDATORS[2].address.lower()]).fetchall()
    batches = {m.seq: m.batch_id for m in store.manifests()}
    assert sorted(ledger) == sorted([("unknown_validator", batches[2]),
                                     ("counted", batches[3])])
    # a third time: every vote is settled, nothing is committed
    r3 = apply_votes(store, [f])
    assert not r3.committed and len(store.manifests()) == 3
    assert r3.message == ("nothing new: every vote in these files is already committed with "
                          "this status")


def test_vote_before_its_record_counts_once_the_record_arrives(quarantined, tmp_path):
    from datanet.pipelines.run import run_datanet

    store, _, _ = quarantined
    late = record(7, text="Brown the butter until it smells of hazelnuts, then cool it.")
    from datanet.privacy.normalise import normalise_text
    from datanet.schemas.ids import content_hash, contribution_id

    cid = contribution_id("review", late["contributor"],
                          content_hash(normalise_text(late["text"])))
    f = votes_file(tmp_path / "early.jsonl", vote(0, cid), vote(1, cid))
    r1 = apply_votes(store, [f])
    assert r1.committed and r1.statuses["unknown_contribution"] == 2
    result = run_datanet(store, [str(write_jsonl(tmp_path / "late.jsonl", [late]))],
                         runner="DirectRunner")
    assert result.counts["quarantine"] == 1
    r2 = apply_votes(store, [f])
    assert r2.committed and r2.statuses["counted"] == 2
    assert (r2.accepted, r2.rejected) == (1, 0)
    assert connect(store).execute("SELECT count(*) FROM accepted WHERE contribution_id = ?",
                                  [cid]).fetchone() == (1,)
