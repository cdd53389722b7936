"""Outbox on the embedded chain with a real datanet store: chain of roots, resume after a
kill at every state, persistence across runs, proof bundles off- and on-chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datanet.anchoring.client import ZERO32, open_client
from datanet.anchoring.config import AnchoringConfig, anchoring_config
from datanet.anchoring.outbox import AnchorStatus, anchor_pending
from datanet.anchoring.proofs import make_proof_bundle, verify_bundle
from datanet.errors import AnchoringError, SpecError
from datanet.schemas.spec import parse_spec
from datanet.store.layout import DatanetStore
from tests.anchoring.helpers import commit_batch, make_store


class Killed(BaseException):
    """Stands for the process dying at a checkpoint (nothing after it runs)."""


def test_anchor_pending_chains_roots_and_skips_empty_batches(tmp_path) -> None:
    store = make_store(tmp_path)
    b1, _ = commit_batch(store, "one", 4)
    commit_batch(store, "empty", 0)
    b3, _ = commit_batch(store, "three", 7)
    states = anchor_pending(store)
    assert [s.batch_id for s in states] == [b1, b3]
    assert [s.status for s in states] == [AnchorStatus.FINAL] * 2
    ms = {m.batch_id: m for m in store.manifests()}
    assert states[0].prev_root == ZERO32 and states[1].prev_root == ms[b1].merkle_root
    client = open_client(store)
    assert client.last_root(states[1].datanet_key) == ms[b3].merkle_root
    assert client.batch_of(states[1].datanet_key, b3).seq == 2
    nonce = client.nonce()
    assert nonce == 3  # deploy + two anchors
    again = anchor_pending(DatanetStore(store.root))  # a new process: nothing to send
    assert [s.status for s in again] == [AnchorStatus.FINAL] * 2
    assert open_client(store).nonce() == nonce
    saved = json.loads(Path(store.abs(f"anchors/{b3}.json")).read_text())
    assert [h["status"] for h in saved["history"]] == ["PENDING", "SENT", "INCLUDED", "FINAL"]
    assert saved["block_hash"] == client.block_hash(saved["block_number"])


@pytest.mark.parametrize("point", ["sent", "broadcast", "included", "final"])
def test_kill_at_each_state_then_resume_anchors_exactly_once(tmp_path, point) -> None:
    store = make_store(tmp_path)
    bid, _ = commit_batch(store, "kill", 5)

    def die(name, state):
        if name == point:
            raise Killed(name)

    with pytest.raises(Killed):
        anchor_pending(store, checkpoint=die)
    saved = json.loads(Path(store.abs(f"anchors/{bid}.json")).read_text())
    expected = {"sent": "SENT", "broadcast": "SENT", "included": "INCLUDED", "final": "FINAL"}
    assert saved["status"] == expected[point]
    states = anchor_pending(DatanetStore(store.root))  # restart: chain reopened from disk
    assert states[0].status is AnchorStatus.FINAL
    client = open_client(store)
    assert client.nonce() == 2  # deploy + exactly one anchor transaction
    assert client.batch_of(states[0].datanet_key, bid).seq == 1
    assert len(states[0].attempts) == 1


def test_lost_outbox_file_adopts_existing_anchor(tmp_path) -> None:
    store = make_store(tmp_path)
    bid, _ = commit_batch(store, "lost", 3)
    first = anchor_pending(store)[0]
    Path(store.abs(f"anchors/{bid}.json")).unlink()
    again = anchor_pending(store)[0]
    assert again.status is AnchorStatus.FINAL and again.attempts == []
    assert again.tx_hash == first.tx_hash
    assert open_client(store).nonce() == 2


def test_broken_chain_and_conflicting_outbox_are_refused(tmp_path) -> None:
    store = make_store(tmp_path)
    bid, _ = commit_batch(store, "a", 3)
    path = Path(store.abs(f"anchors/{bid}.json"))
    anchor_pending(store)
    saved = json.loads(path.read_text())
    saved["root"] = "0x" + "ab" * 32
    path.write_text(json.dumps(saved))
    with pytest.raises(AnchoringError, match="belongs to another tree"):
        anchor_pending(store)


def test_disabled_anchoring_does_nothing(tmp_path) -> None:
    store = make_store(tmp_path, 'id = "anchor-test"\n[anchoring]\nenabled = false\n')
    commit_batch(store, "x", 2)
    assert anchor_pending(store) == []
    assert not Path(store.abs("anchors/embedded-chain.bin")).exists()


def test_proof_bundles_verify_off_and_on_chain_and_tampering_fails(tmp_path) -> None:
    store = make_store(tmp_path)
    commit_batch(store, "p1", 6)
    bid, table = commit_batch(store, "p2", 11)
    anchor_pending(store)
    cid = table["contribution_id"][7].as_py()
    bundle = make_proof_bundle(DatanetStore(store.root), cid)
    assert bundle["batch_id"] == bid and bundle["seq"] == 2
    assert bundle["leaf"]["contribution_id"] == cid
    assert bundle["anchor"]["status"] == "FINAL" and bundle["anchor"]["tx_hash"]
    off = verify_bundle(bundle)
    assert off.ok and off.offchain and off.onchain is None
    on = verify_bundle(bundle, store=DatanetStore(store.root))
    assert on.ok and on.onchain is True
    assert {c.name for c in on.checks} >= {"merkle_proof", "contract_verify", "anchored_root",
                                           "anchor_tx", "chain_id"}
    for field, value in (("contributor", "0x" + "42" * 20), ("content_hash", "0x" + "00" * 32)):
        bad = json.loads(json.dumps(bundle))
        bad["leaf"][field] = value
        res = verify_bundle(bad, store=store)
        assert not res.ok and "merkle_proof" in res.failed and "contract_verify" in res.failed
    bad = json.loads(json.dumps(bundle))
    bad["proof"][0] = "0x" + "11" * 32
    res = verify_bundle(bad, store=store)
    assert res.failed == ("merkle_proof", "contract_verify")
    with pytest.raises(AnchoringError, match="not among the accepted records"):
        make_proof_bundle(store, "0x" + "00" * 32)


def test_config_defaults_and_errors() -> None:
    cfg = anchoring_config(parse_spec({"id": "x"}))
    assert cfg == AnchoringConfig() and cfg.required_confirmations == 1
    rpc = anchoring_config(parse_spec({"id": "x", "anchoring": {
        "chain": "rpc", "contract": "0x" + "12" * 20}}))
    assert rpc.required_confirmations == 12
    with pytest.raises(SpecError, match=r"anchoring.contract=None is required on an rpc"):
        parse_spec({"id": "x", "anchoring": {"chain": "rpc"}})
    with pytest.raises(SpecError, match=r"anchoring.fee_bump=1.05 must be between 1.1 and 10"):
        parse_spec({"id": "x", "anchoring": {"fee_bump": 1.05}})
    with pytest.raises(SpecError, match=r"anchoring.chain=.mainnet. must be one of"):
        parse_spec({"id": "x", "anchoring": {"chain": "mainnet"}})
    with pytest.raises(SpecError, match=r"anchoring.private_key=.* is not a known key"):
        parse_spec({"id": "x", "anchoring": {"private_key": "0x01"}})
