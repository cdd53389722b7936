"""The compiled keccak256 loops (``datanet.anchoring._keccak``) against the C keccak of
:mod:`datanet.schemas.ids` and published digests."""

from __future__ import annotations

import numpy as np
import pytest

from datanet.anchoring import _keccak, merkle
from datanet.schemas.ids import keccak


def _rows(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, width), dtype=np.uint8)


def test_known_digests() -> None:
    # keccak256("") and keccak256("abc"): Ethereum's pre-standard padding (0x01), not SHA3's
    empty = _keccak.keccak_rows(np.zeros((1, 0), dtype=np.uint8))
    assert bytes(empty[0]).hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
    abc = _keccak.keccak_rows(np.frombuffer(b"abc", dtype=np.uint8).reshape(1, 3))
    assert bytes(abc[0]).hex() == (
        "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45")


def test_every_width_across_block_boundaries_equals_the_c_keccak() -> None:
    """Widths 0-300 (one, two and three 136-byte blocks, a full last block then a padding
    block) and a few long rows."""
    rng = np.random.default_rng(7)
    for width in [*range(301), 543, 544, 545, 1000]:
        rows = _rows(rng, 3, width)
        got = _keccak.keccak_rows(rows)
        assert [bytes(g) for g in got] == [keccak(r.tobytes()) for r in rows], width


def test_leaf_hashes_are_double_keccak() -> None:
    rng = np.random.default_rng(8)
    rows = _rows(rng, 50, 160)
    out = np.empty((50, 32), dtype=np.uint8)
    _keccak.leaf_hashes(rows, out)
    assert [bytes(o) for o in out] == [keccak(keccak(r.tobytes())) for r in rows]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 33, 1000])
def test_inner_nodes_equal_the_call_per_hash_levels(n: int) -> None:
    rng = np.random.default_rng(n)
    leaves = _rows(rng, n, 32)
    if n > 1:  # equal siblings: the byte order of a pair decides nothing, the hash is the same
        leaves[1] = leaves[0]
    expected = merkle._build_nodes(leaves)  # below _COMPILED_ROWS: one keccak call per node
    tree = np.empty_like(expected)
    tree[n - 1:] = leaves[::-1]
    _keccak.fill_inner_nodes(tree, n)
    assert np.array_equal(tree, expected)
    # and node by node the OpenZeppelin pair hash of the children
    for i in range(n - 1):
        assert bytes(tree[i]) == merkle.hash_pair(bytes(tree[2 * i + 1]), bytes(tree[2 * i + 2]))
