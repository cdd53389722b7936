"""Epoch settlement on a store: commit, immutability, cumulative trees, CLI JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datanet.anchoring.merkle import StandardMerkleTree
from datanet.cli import app
from datanet.errors import RewardsError
from datanet.rewards.epoch import (
    REWARD_LEAF_ENCODING,
    compute_epoch,
    load_reward_tree,
    load_settlement,
    reward_leaf,
)
from tests.rewards.helpers import A, B, C, commit_texts, make_store

POOL = 10**21 + 7
runner = CliRunner()


@pytest.fixture
def store(tmp_path):
    s = make_store(tmp_path)
    commit_texts(s, "b1", [(A, "one two three"), (B, "four five"), (A, "six")])
    return s


def test_epoch_is_committed_with_exact_amounts_and_its_tree(store):
    s, created = compute_epoch(store, 1, POOL)
    assert created
    # A has 4 words, B 2: quotas 2/3 and 1/3 of 10^21+7, remainders 2/3 and 1/3
    assert [(a[0], a[3], a[4]) for a in s.allocations] == [
        (A, 666666666666666666671, 666666666666666666671),
        (B, 333333333333333333336, 333333333333333333336)]
    tree = load_reward_tree(store, 1)
    assert tree.root == s.root and tree.leaf_encoding == REWARD_LEAF_ENCODING
    assert sorted(tree.values) == sorted([
        reward_leaf(131277322940537, "rewards-test", A, 666666666666666666671),
        reward_leaf(131277322940537, "rewards-test", B, 333333333333333333336)])
    rec = json.loads(Path(store.abs("rewards/1.settlement.json")).read_text())
    assert rec["inputs"]["batches"]["from_seq"] == 0 and rec["inputs"]["batches"]["to_seq"] == 1
    assert rec["inputs"]["data"]["total_words"] == "6"
    assert rec["rule"]["tie_break"].startswith("keccak256(datanetKey")


def test_recompute_is_a_noop_and_different_inputs_are_refused(store, tmp_path):
    s, _ = compute_epoch(store, 1, POOL)
    before = Path(store.abs("rewards/1.settlement.json")).read_bytes()
    again, created = compute_epoch(store, 1, POOL)
    assert not created and again.root == s.root
    commit_texts(store, "b2", [(C, "seven eight")])  # a later batch does not enter epoch 1
    assert compute_epoch(store, 1, POOL)[0].root == s.root
    with pytest.raises(RewardsError, match=r"immutable.*different pool"):
        compute_epoch(store, 1, POOL + 1)
    att = [{"id": "r", "attributions": [{"contributor": C, "weight": 1.0}]}]
    with pytest.raises(RewardsError, match=r"immutable.*different inputs"):
        compute_epoch(store, 1, POOL, attributions=att, attributions_source="x")
    with pytest.raises(RewardsError, match="epoch 2 is not computed"):
        compute_epoch(store, 3, POOL)
    assert Path(store.abs("rewards/1.settlement.json")).read_bytes() == before


def test_second_epoch_covers_new_batches_and_carries_cumulative_amounts(store):
    compute_epoch(store, 1, POOL)
    commit_texts(store, "b2", [(C, "seven eight nine"), (B, "ten")])
    s2, _ = compute_epoch(store, 2, 4000)
    rows = {a[0]: (a[1], a[3], a[4]) for a in s2.allocations}
    assert rows == {A: (0, 0, 666666666666666666671),
                    B: (1, 1000, 333333333333333333336 + 1000),
                    C: (3, 3000, 3000)}
    assert s2.previous_root == load_settlement(store, 1).root
    assert s2.inputs["batches"]["from_seq"] == 1 and s2.inputs["batches"]["to_seq"] == 2


def test_usage_share_from_an_attributions_file(store, tmp_path):
    lines = [{"id": "o1", "output_hash": "0x" + "00" * 32, "snapshot": {"seq": 1},
              "attributions": [{"contribution_id": "0x" + "11" * 32, "contributor": B,
                                "batch_id": "0x" + "22" * 32, "weight": 0.75,
                                "spans": [[0, 9]]},
                               {"contribution_id": "0x" + "33" * 32, "contributor": C,
                                "batch_id": "0x" + "22" * 32, "weight": 0.25,
                                "spans": [[3, 8]]}], "unattributed": []}]
    f = tmp_path / "att.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    r = runner.invoke(app, ["rewards", "compute", str(store.root), "--epoch", "1", "--pool",
                            "1200", "--attributions", str(f), "--format", "json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    # data: A 4/6, B 2/6; usage: B 3/4, C 1/4; weights 1:1 -> A 400, B 200+450, C 150
    assert got == {"epoch": 1, "pool": "1200", "root": load_settlement(store, 1).root,
                   "allocations": [{"account": A, "amount": "400", "cumulative": "400"},
                                   {"account": B, "amount": "650", "cumulative": "650"},
                                   {"account": C, "amount": "150", "cumulative": "150"}]}
    rec = load_settlement(store, 1)
    assert rec.inputs["usage"]["source"].startswith("file sha256:")
    r = runner.invoke(app, ["rewards", "compute", str(store.root), "--epoch", "1", "--pool",
                            "1200"])
    assert r.exit_code == 1 and "immutable" in r.output


def test_spec_weights_and_bad_values(tmp_path):
    s = make_store(tmp_path, 'id = "w"\n[rewards]\ndata_weight = 0.3\nusage_weight = 0.7\n')
    commit_texts(s, "b1", [(A, "a b c")])
    att = [{"id": "r", "attributions": [{"contributor": B, "weight": 2}]}]
    got = compute_epoch(s, 1, 1000, attributions=att)[0]
    assert {a[0]: a[3] for a in got.allocations} == {A: 300, B: 700}
    assert got.rule["data_weight"] == "3/10"
    from datanet.errors import SpecError
    from datanet.schemas.spec import parse_spec

    with pytest.raises(SpecError, match=r"rewards.usage_weight=-1 must be between 0"):
        parse_spec({"id": "x", "rewards": {"usage_weight": -1}})
    with pytest.raises(SpecError, match=r"rewards.chain_id=None is required"):
        from datanet.rewards.config import leaf_chain_id

        leaf_chain_id(parse_spec({"id": "x", "anchoring": {"chain": "rpc", "deploy": True}}))


def test_reward_tree_matches_generic_standard_tree(store):
    s, _ = compute_epoch(store, 1, POOL)
    values = [reward_leaf(s.chain_id, s.datanet, a[0], a[4]) for a in s.allocations]
    assert StandardMerkleTree.of(values, REWARD_LEAF_ENCODING).root == s.root
