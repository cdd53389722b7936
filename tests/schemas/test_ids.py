"""Content hashes from an Arrow buffer equal the per-string ones."""

from __future__ import annotations

import pyarrow as pa

from datanet.schemas.ids import content_hash, content_hashes


def test_arrow_content_hashes_equal_per_string() -> None:
    texts = ["", "plain", "naïve café — 日本語 😀", "x" * 5000, "a\x00b", "\ud7ff\ue000"]
    want = [content_hash(t) for t in texts]
    arr = pa.array(["skip", *texts, "skip"])
    assert content_hashes(arr.slice(1, len(texts))) == want  # a slice: offsets not at 0
    assert content_hashes(pa.array(texts)) == want
    assert content_hashes(texts) == want
    assert content_hashes(pa.array([], pa.string())) == []
    # the known vector: keccak256("") as Ethereum uses it
    assert want[0] == "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
