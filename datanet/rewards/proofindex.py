"""Reward proof index: one account's claim proof in a few small reads, without the dump.

``rewards/<epoch>.json`` (the OpenZeppelin ``standard-v1`` dump) must be parsed whole to answer
one proof: 323 MB at 1M accounts. Beside it, written before the settlement record (the commit
point) and derived from the same tree, ``rewards/<epoch>.proofs`` holds (all integers big-endian):

* ``b"DNRWPI01"``, a u32 length, then that many bytes of UTF-8 JSON metadata: ``epoch``,
  ``datanet``, ``chain_id``, ``root``, ``nodes`` (count), ``accounts`` (count);
* the tree's nodes, 32 bytes each, in flat-tree order (node ``i`` = the dump's ``tree[i]``);
* one 60-byte row per account, sorted by address bytes: address (20) | leaf position in the
  flat tree (u64) | cumulative amount (u256).

A lookup bisects the rows of a memory map (O(log n) reads of 60 bytes), and the proof is the
leaf's sibling chain (O(log n) reads of 32 bytes), as OpenZeppelin's ``getProof``: sibling
``i + 1`` for odd ``i``, ``i - 1`` for even, parent ``(i - 1) // 2``. The index is derived data:
``datanet verify-history`` checks every node and row against the dump and the settlement.
"""

from __future__ import annotations

import json
import mmap
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from datanet.errors import RewardsError

if TYPE_CHECKING:
    from datanet.anchoring.merkle import StandardMerkleTree
    from datanet.rewards.epoch import Settlement
    from datanet.store.layout import DatanetStore

__all__ = ["MAGIC", "ROW", "ProofIndex", "index_pieces", "index_rel", "open_index",
           "open_index_file", "check_index"]

MAGIC = b"DNRWPI01"
ROW = 60


def index_rel(epoch: int) -> str:
    """The index file of ``epoch`` under the datanet."""
    return f"rewards/{epoch}.proofs"


def index_pieces(settlement: Settlement, tree: StandardMerkleTree) -> Iterator[bytes]:
    """The index file's bytes, in pieces (for :func:`datanet.store.atomic.write_atomic`).
    ``tree`` is the settlement's cumulative tree (its values in allocation order)."""
    rows = settlement.allocations
    n = len(rows)
    if len(tree) != n:
        raise RewardsError(f"epoch {settlement.epoch}: tree has {len(tree)} leaves, the "
                           f"settlement {n} accounts")
    nodes = tree.node_bytes()
    meta = json.dumps({"epoch": settlement.epoch, "datanet": settlement.datanet,
                       "chain_id": settlement.chain_id, "root": settlement.root,
                       "nodes": len(nodes) // 32, "accounts": n},
                      sort_keys=True, separators=(",", ":")).encode()
    yield MAGIC + struct.pack(">I", len(meta)) + meta
    yield nodes
    table = np.zeros((n, ROW), dtype=np.uint8)
    table[:, 0:20] = np.frombuffer(bytes.fromhex("".join(r[0][2:] for r in rows)),
                                   dtype=np.uint8).reshape(n, 20)
    table[:, 20:28] = tree.tree_indices().astype(">u8").view(np.uint8).reshape(n, 8)
    table[:, 28:60] = np.frombuffer(b"".join(r[4].to_bytes(32, "big") for r in rows),
                                    dtype=np.uint8).reshape(n, 32)
    order = np.lexsort(table[:, 19::-1].T)  # by address bytes, first byte most significant
    for lo in range(0, n, 1 << 16):
        yield table[order[lo:lo + (1 << 16)]].tobytes()


@dataclass
class ProofIndex:
    """An open index (memory-mapped)."""

    meta: dict[str, Any]
    _data: Any
    _nodes_at: int
    _rows_at: int

    def find(self, account: str) -> tuple[int, int] | None:
        """``(leaf position, cumulative)`` of ``account``, or None."""
        try:
            want = bytes.fromhex(account.lower().removeprefix("0x"))
        except ValueError:
            return None
        if len(want) != 20:
            return None
        lo, hi = 0, int(self.meta["accounts"])
        while lo < hi:
            mid = (lo + hi) // 2
            at = self._rows_at + mid * ROW
            if self._data[at:at + 20] < want:
                lo = mid + 1
            else:
                hi = mid
        at = self._rows_at + lo * ROW
        if lo == int(self.meta["accounts"]) or self._data[at:at + 20] != want:
            return None
        return (int.from_bytes(self._data[at + 20:at + 28], "big"),
                int.from_bytes(self._data[at + 28:at + 60], "big"))

    def node(self, i: int) -> bytes:
        """The 32 bytes of flat-tree node ``i``."""
        at = self._nodes_at + 32 * i
        return bytes(self._data[at:at + 32])

    def proof(self, leaf_position: int) -> list[str]:
        """Sibling hashes from the leaf up to the root (OpenZeppelin ``getProof`` order)."""
        i, out = leaf_position, []
        while i > 0:
            out.append("0x" + self.node(i + 1 if i % 2 else i - 1).hex())
            i = (i - 1) // 2
        return out


def open_index(store: DatanetStore, epoch: int) -> ProofIndex | None:
    """The index of ``epoch``, or None when the epoch has none (settled before it existed)."""
    path = store.path(index_rel(epoch))
    if not path.exists():
        return None
    index = open_index_file(path, index_rel(epoch))
    if index.meta.get("epoch") != epoch:
        raise RewardsError(f"{index_rel(epoch)} belongs to epoch {index.meta.get('epoch')}")
    return index


def open_index_file(path: Any, name: str | None = None) -> ProofIndex:
    """Open an index file (a local path is memory-mapped: only the pages read are loaded; an
    object is read with one get, still a fraction of the dump and no JSON parse)."""
    name = name or str(path)
    data: Any
    if isinstance(path, Path):
        with open(path, "rb") as fh:
            data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if fh.seek(0, 2) else b""
    else:
        data = path.read_bytes()
    if data[:8] != MAGIC:
        raise RewardsError(f"{name} is not a reward proof index")
    (size,) = struct.unpack(">I", data[8:12])
    meta = json.loads(bytes(data[12:12 + size]))
    nodes_at = 12 + size
    rows_at = nodes_at + 32 * int(meta["nodes"])
    if len(data) != rows_at + ROW * int(meta["accounts"]):
        raise RewardsError(f"{name} is truncated ({len(data)} bytes)")
    return ProofIndex(meta, data, nodes_at, rows_at)


def check_index(store: DatanetStore, settlement: Settlement, tree: StandardMerkleTree
                ) -> list[str]:
    """Problems of ``epoch``'s index against its settlement and dump tree (empty: it matches
    byte for byte what the commit writes)."""
    rel = index_rel(settlement.epoch)
    path = store.path(rel)
    if not path.exists():
        return []
    want = b"".join(index_pieces(settlement, tree))
    got = path.read_bytes()
    if got == want:
        return []
    if len(got) != len(want):
        return [f"{rel}: {len(got)} bytes, the settlement's tree gives {len(want)}"]
    first = next(i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b)
    return [f"{rel}: differs from the settlement's tree at byte {first}"]
