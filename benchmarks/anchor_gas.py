"""Anchoring benchmark: batch tree build + all proofs at 1k / 100k / 1M leaves, and gas per
anchor at each size on the embedded chain (execution gas must not depend on the leaf count).

    PYTHONPATH=. python benchmarks/anchor_gas.py [--sizes 1000,100000,1000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import pyarrow as pa

from datanet.anchoring.client import ZERO32, EmbeddedChain
from datanet.anchoring.merkle import batch_tree
from datanet.schemas.ids import datanet_key


def _hex_col(rng: np.random.Generator, n: int, nbytes: int) -> pa.Array:
    raw = rng.integers(0, 256, (n, nbytes), dtype=np.uint8).tobytes().hex()
    w = 2 * nbytes
    return pa.array(["0x" + raw[i : i + w] for i in range(0, len(raw), w)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,100000,1000000")
    sizes = [int(s) for s in ap.parse_args().sizes.split(",")]
    rng = np.random.default_rng(0)
    client = EmbeddedChain(tempfile.mkdtemp() + "/chain.bin").client()
    key = "0x" + datanet_key("bench").hex()
    prev = ZERO32
    print(f"{'leaves':>9} {'build s':>8} {'proofs s':>9} {'gas':>8} {'exec gas':>9}")
    for i, n in enumerate(sizes):
        table = pa.table({"contribution_id": _hex_col(rng, n, 32),
                          "contributor": _hex_col(rng, n, 20),
                          "content_hash": _hex_col(rng, n, 32)})
        bid = "0x" + f"{i + 1:064x}"
        t0 = time.perf_counter()
        tree = batch_tree("bench", bid, table)
        t1 = time.perf_counter()
        proofs = tree.all_proofs()
        t2 = time.perf_counter()
        call = client.anchor_call(key, bid, tree.root, n, prev)
        raw, tx = client.sign_anchor(call, nonce=client.nonce(pending=True),
                                     gas=client.estimate_anchor_gas(call) * 2,
                                     fees=client.fees())
        client.send_raw(raw)
        r = client.receipt(tx)
        data = bytes(client.w3.eth.get_transaction(tx)["input"])
        calldata = sum(4 if b == 0 else 16 for b in data)
        prev = tree.root
        print(f"{n:>9} {t1 - t0:>8.2f} {t2 - t1:>9.2f} {r['gas_used']:>8} "
              f"{r['gas_used'] - calldata:>9}  (proof length {len(proofs[0])})")
        del proofs, tree


if __name__ == "__main__":
    main()
