"""The Arrow shuffle helpers of the keyed stages."""

from __future__ import annotations

import pickle

import pyarrow as pa

from datanet.pipelines.dedup import by_chunk, shard_of, split_by_shard


def _table(n: int) -> pa.Table:
    return pa.table({
        "content_hash": [f"0x{i * 0x9E3779B97F4A7C15 % 2**64:016x}" + "ab" * 24
                         for i in range(n)],
        "chunk": [f"file.jsonl#{i % 5}" for i in range(n)],
        "payload": ["x" * 200] * n,
    })


def test_by_chunk_parts_pickle_only_their_rows():
    """A part must not drag its parent's buffers through the shuffle (slices pickle whole)."""
    table = _table(5000)
    parts = dict(by_chunk(table))
    assert sorted(parts) == [f"file.jsonl#{k}" for k in range(5)]
    for key, part in parts.items():
        assert part.num_rows == 1000 and part.column_names == ["content_hash", "payload"]
        fresh = len(pickle.dumps(pa.table(part.to_pydict())))
        assert len(pickle.dumps(part)) < 1.05 * fresh, key
    assert sum(p.num_rows for p in parts.values()) == table.num_rows
    # what the check guards against: a slice of the same size pickles the whole parent
    assert len(pickle.dumps(table.slice(0, 1000))) > 4 * fresh


def test_split_by_shard_is_a_partition_by_hex_prefix():
    table = _table(4000)
    parts = dict(split_by_shard(table, shard_of(table.column("content_hash"), 16)))
    assert len(parts) == 16
    for shard, part in parts.items():
        assert {int(h[2:18], 16) % 16 for h in part.column("content_hash").to_pylist()} == {shard}
        assert len(pickle.dumps(part)) < 1.05 * len(pickle.dumps(pa.table(part.to_pydict())))
    assert sorted(h for p in parts.values() for h in p.column("content_hash").to_pylist()) == \
        sorted(table.column("content_hash").to_pylist())
