"""The reward proof index: the same claim bundles as the dump, in a few reads; tamper-evident."""

from __future__ import annotations

import pytest

from datanet.errors import RewardsError
from datanet.rewards.chain import proof_bundle
from datanet.rewards.epoch import compute_epoch, load_reward_tree, load_settlement
from datanet.rewards.proofindex import check_index, index_rel, open_index
from tests.rewards.helpers import A, B, C, D, commit_texts, make_store

#: 37 more accounts with words in epoch 3 (an odd, non-power-of-two tree)
MANY = [f"0x{0xABC0000 + 7919 * i:040x}" for i in range(37)]


@pytest.fixture()
def store(tmp_path):
    s = make_store(tmp_path)
    commit_texts(s, "b1", [(A, "one two three")])                       # 1 account
    compute_epoch(s, 1, 1000)
    commit_texts(s, "b2", [(B, "four five"), (C, "six seven eight")])   # 3 accounts
    compute_epoch(s, 2, 10**21 + 7)
    commit_texts(s, "b3", [(D, "nine"), *((a, f"word{i} w x") for i, a in enumerate(MANY))])
    compute_epoch(s, 3, 999_999)                                         # 41 accounts
    return s


def _dump_bundle(store, epoch, account):
    return proof_bundle(store, epoch, account, tree=load_reward_tree(store, epoch))


def test_index_bundles_equal_dump_bundles_for_every_account(store):
    for epoch, n in ((1, 1), (2, 3), (3, 41)):
        index = open_index(store, epoch)
        assert index is not None and index.meta["accounts"] == n
        accounts = [a[0] for a in load_settlement(store, epoch).allocations]
        assert len(accounts) == n
        for account in accounts:
            assert proof_bundle(store, epoch, account) == _dump_bundle(store, epoch, account)
        # mixed-case input finds the same account
        assert proof_bundle(store, epoch, accounts[-1].upper().replace("0X", "0x")) == \
            _dump_bundle(store, epoch, accounts[-1])
    assert proof_bundle(store, 1, A)["proof"] == []  # a one-leaf tree: the leaf is the root


def test_unknown_account_and_unsettled_epoch_errors_are_the_dump_path_s(store):
    stranger = "0x" + "9" * 40
    for epoch in (1, 3):
        with pytest.raises(RewardsError, match=f"account {stranger} has no reward up to epoch"):
            proof_bundle(store, epoch, stranger)
    assert open_index(store, 1).find("not-an-address") is None
    with pytest.raises(RewardsError, match="epoch 4 is not computed"):
        proof_bundle(store, 4, A)


def test_recompute_is_a_noop_and_backfills_a_missing_index(store):
    path = store.path(index_rel(3))
    before = path.read_bytes()
    compute_epoch(store, 3, 999_999)
    assert path.read_bytes() == before
    path.unlink()  # an epoch settled before the index existed: the dump path still answers
    assert proof_bundle(store, 3, D) == _dump_bundle(store, 3, D)
    compute_epoch(store, 3, 999_999)
    assert path.read_bytes() == before


def test_a_flipped_byte_is_caught(store):
    path = store.path(index_rel(3))
    data = bytearray(path.read_bytes())
    rec, tree = load_settlement(store, 3), load_reward_tree(store, 3)
    assert check_index(store, rec, tree) == []
    node_at = 12 + int.from_bytes(data[8:12], "big") + 32 * 5  # node 5
    data[node_at] ^= 1
    path.write_bytes(bytes(data))
    assert check_index(store, rec, tree) == [
        f"rewards/3.proofs: differs from the settlement's tree at byte {node_at}"]
    # a proof through node 5 no longer reaches the root: refused, not handed out
    bad = [a[0] for a in rec.allocations
           if 5 in _path(tree.tree_index(tree.leaf_lookup(
               [str(rec.chain_id), rec.datanet_key, a[0], str(a[4])])))]
    assert bad
    with pytest.raises(RewardsError, match="does not lead to the epoch's root"):
        proof_bundle(store, 3, bad[0])
    from datanet.anchoring.history import verify_history

    problems, _ = verify_history(store, data=False)
    assert any("rewards/3.proofs: differs" in p for p in problems)


def _path(i: int) -> set[int]:
    """Tree positions whose hash a proof from leaf position ``i`` uses (its siblings)."""
    out = set()
    while i > 0:
        out.add(i + 1 if i % 2 else i - 1)
        i = (i - 1) // 2
    return out
