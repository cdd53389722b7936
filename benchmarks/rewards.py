"""Rewards benchmark: split + cumulative tree for N accounts (default 1M), one proof, and gas
per publish and per claim on the embedded chain.

    PYTHONPATH=. python benchmarks/rewards.py [--accounts 1000000] [--usage 100000]

Targets (issue 19): split + tree of 1M accounts <= 60 s; one proof <= 10 ms.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from datanet.rewards.config import EMBEDDED_CHAIN_ID
from datanet.rewards.epoch import reward_leaf, reward_tree
from datanet.rewards.split import allocate
from datanet.schemas.ids import datanet_key


def _accounts(rng: np.random.Generator, n: int) -> list[str]:
    raw = rng.integers(0, 256, (n, 20), dtype=np.uint8).tobytes().hex()
    return ["0x" + raw[i : i + 40] for i in range(0, len(raw), 40)]


def split_and_tree(n: int, n_usage: int) -> None:
    rng = np.random.default_rng(0)
    accounts = _accounts(rng, n)
    words = dict(zip(accounts, rng.integers(1, 5000, n).tolist(), strict=True))
    py = random.Random(1)
    usage = {a: Fraction(str(round(py.random(), 6))) for a in accounts[:n_usage]}
    pool = 10**24 + 7
    t0 = time.perf_counter()
    allocs = allocate(pool, words, usage, (Fraction(1), Fraction(1)),
                      datanet_key=datanet_key("bench"), epoch=1)
    t1 = time.perf_counter()
    tree = reward_tree(EMBEDDED_CHAIN_ID, "bench", [(a.account, a.amount) for a in allocs])
    t2 = time.perf_counter()
    assert sum(a.amount for a in allocs) == pool
    picks = [py.randrange(n) for _ in range(1000)]
    t3 = time.perf_counter()
    for i in picks:
        tree.get_proof(i)
    t4 = time.perf_counter()
    a = allocs[picks[0]]
    tree.leaf_lookup(reward_leaf(EMBEDDED_CHAIN_ID, "bench", a.account, a.amount))  # index
    t5 = time.perf_counter()
    for i in picks[:200]:
        b = allocs[i]
        tree.get_proof(tree.leaf_lookup(reward_leaf(EMBEDDED_CHAIN_ID, "bench", b.account,
                                                    b.amount)))
    t6 = time.perf_counter()
    text = tree.dumps()
    t7 = time.perf_counter()
    print(f"accounts {n:,} (usage for {n_usage:,}); pool {pool}")
    print(f"  split (exact integers)           {t1 - t0:7.2f} s")
    print(f"  cumulative tree                  {t2 - t1:7.2f} s")
    print(f"  split + tree                     {t2 - t0:7.2f} s   (target <= 60 s)")
    proof_ms = (t4 - t3) / 1000 * 1e3
    print(f"  one proof by index (mean of 1000) {proof_ms:6.3f} ms  (target <= 10 ms)")
    print(f"  leaf-hash index, built once      {t5 - t4:7.2f} s")
    print(f"  one proof by leaf value (mean)   {(t6 - t5) / 200 * 1e3:7.3f} ms")
    print(f"  standard-v1 dump                 {t7 - t6:7.2f} s, {len(text) / 1e6:.0f} MB")
    proof_index(tree, allocs, pool, text, picks)


def proof_index(tree: object, allocs: list, pool: int, text: str, picks: list[int]) -> None:
    """What `datanet rewards proof` costs per call: the dump path parses the whole dump (the
    baseline, same run), the proof index path opens the index and reads O(log n) rows/nodes."""
    from datanet.anchoring.merkle import StandardMerkleTree
    from datanet.rewards.epoch import Settlement
    from datanet.rewards.proofindex import index_pieces, open_index_file

    rec = Settlement(datanet="bench", epoch=1, chain_id=EMBEDDED_CHAIN_ID, pool=pool,
                     root=tree.root, previous_root=None, inputs={}, rule={},
                     allocations=tuple((a.account, 0, Fraction(0), a.amount, a.amount)
                                       for a in allocs))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "1.proofs"
        t0 = time.perf_counter()
        with open(path, "wb") as fh:
            for piece in index_pieces(rec, tree):
                fh.write(piece)
        t1 = time.perf_counter()
        for i in picks:
            index = open_index_file(path)
            pos, cumulative = index.find(allocs[i].account)
            assert index.proof(pos) == tree.get_proof(i) and cumulative == allocs[i].amount
        t2 = time.perf_counter()
        loaded = StandardMerkleTree.loads(text, validate=False)
        a = allocs[picks[0]]
        loaded.get_proof(loaded.leaf_lookup(reward_leaf(EMBEDDED_CHAIN_ID, "bench", a.account,
                                                        a.amount)))
        t3 = time.perf_counter()
        size = path.stat().st_size
    per_index = (t2 - t1) / len(picks)
    print(f"  proof index written              {t1 - t0:7.2f} s, {size / 1e6:.0f} MB")
    print(f"  one proof from the index (open + find + proof, mean of {len(picks)}) "
          f"{per_index * 1e3:.3f} ms")
    print(f"  one proof from the dump (parse + lookup + proof: the baseline) "
          f"{t3 - t2:.2f} s  ({(t3 - t2) / per_index:,.0f}x the index)")


def baseline(n: int) -> None:
    """Same work the obvious way at ``n`` accounts: Fraction arithmetic per account and the
    generic ``StandardMerkleTree.of`` (eth-abi encoding per leaf)."""
    from datanet.anchoring.merkle import StandardMerkleTree
    from datanet.rewards.epoch import REWARD_LEAF_ENCODING

    rng = np.random.default_rng(0)
    accounts = _accounts(rng, n)
    words = dict(zip(accounts, rng.integers(1, 5000, n).tolist(), strict=True))
    pool = 10**24 + 7
    t0 = time.perf_counter()
    total = sum(words.values())
    quotas = {a: Fraction(pool * w, total) for a, w in words.items()}
    floors = {a: q.numerator // q.denominator for a, q in quotas.items()}
    left = pool - sum(floors.values())
    for a in sorted(quotas, key=lambda a: quotas[a] - floors[a], reverse=True)[:left]:
        floors[a] += 1
    t1 = time.perf_counter()
    ours = allocate(pool, words, {}, (Fraction(1), Fraction(1)),
                    datanet_key=datanet_key("bench"), epoch=1)
    t2 = time.perf_counter()
    values = [reward_leaf(EMBEDDED_CHAIN_ID, "bench", a.account, a.amount) for a in ours]
    generic = StandardMerkleTree.of(values, REWARD_LEAF_ENCODING)
    t3 = time.perf_counter()
    fast = reward_tree(EMBEDDED_CHAIN_ID, "bench", [(a.account, a.amount) for a in ours])
    t4 = time.perf_counter()
    print(f"baseline at {n:,} accounts (same run):")
    same = all(floors[a.account] - a.amount in (-1, 0, 1) for a in ours)
    print(f"  split: Fraction per account {t1 - t0:6.2f} s; ours {t2 - t1:6.2f} s"
          f" (amounts equal up to the tie-break: {same})")
    print(f"  tree: StandardMerkleTree.of {t3 - t2:6.2f} s; ours {t4 - t3:6.2f} s"
          f" (same root: {generic.root == fast.root})")


def gas() -> None:
    from eth_tester.backends.pyevm.main import get_default_account_keys

    from datanet.rewards.chain import (
        claim_client,
        proof_bundle,
        publish_epoch,
        send_claim,
    )
    from datanet.rewards.epoch import compute_epoch
    from tests.rewards.helpers import A, B, C, commit_texts, make_store

    store = make_store(Path(tempfile.mkdtemp()))
    commit_texts(store, "b1", [(A, "one two three"), (B, "four five")])
    compute_epoch(store, 1, 10**21 + 7)
    first = publish_epoch(store, 1).gas_used
    commit_texts(store, "b2", [(B, "six"), (C, "seven")])
    compute_epoch(store, 2, 10**21)
    second = publish_epoch(store, 2).gas_used
    key = get_default_account_keys()[1].to_bytes()
    claims = [send_claim(claim_client(key, store=store), proof_bundle(store, 2, acc))
              for acc in (A, A, B)]
    print("gas (embedded chain, DatanetRewards + OpenZeppelin ERC20):")
    print(f"  publish epoch 1 (first root, pulls pool)  {first:>8,}")
    print(f"  publish epoch 2                           {second:>8,}")
    print(f"  claim (first, pays)                       {claims[0].gas_used:>8,}")
    print(f"  claim (repeated, pays 0)                  {claims[1].gas_used:>8,}")
    print(f"  claim (another account)                   {claims[2].gas_used:>8,}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=1_000_000)
    ap.add_argument("--usage", type=int, default=100_000)
    ap.add_argument("--no-gas", action="store_true")
    ap.add_argument("--baseline", type=int, default=100_000,
                    help="accounts for the baseline comparison (0: skip)")
    args = ap.parse_args()
    split_and_tree(args.accounts, min(args.usage, args.accounts))
    if args.baseline:
        baseline(args.baseline)
    if not args.no_gas:
        gas()


if __name__ == "__main__":
    main()
