"""Scratch spills: what one stage writes, the next reads back exactly."""

from __future__ import annotations

import pyarrow as pa
import pytest

from datanet.pipelines.io import load_spilled, read_spilled_batch, spill_batches


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_spill_batches_reads_back_each_table_alone(tmp_path, compression):
    chunked = pa.concat_tables([pa.table({"a": [1, 2], "s": ["x", None]}),
                                pa.table({"a": [3], "s": ["é"]})])  # two chunks: one batch
    empty = chunked.slice(0, 0)
    big = pa.table({"a": list(range(1000)), "s": [str(i) * 20 for i in range(1000)]})
    tables = [chunked, empty, big.slice(990, 10), big]
    refs = spill_batches(str(tmp_path), "chunk\x00key", "rows", tables, compression=compression)

    [path] = {r[0] for r in refs}
    assert path.endswith("-rows.arrow") and path.startswith(str(tmp_path))
    # one schema message, then the batches back to back to the stream's end-of-stream marker
    [schema_bytes] = {r[1] for r in refs}
    assert refs[0][2] == schema_bytes
    assert [r[2] for r in refs[1:]] == [r[2] + r[3] for r in refs[:-1]]
    size = (tmp_path / path.rsplit("/", 1)[1]).stat().st_size
    assert refs[-1][2] + refs[-1][3] == size - 8
    assert refs[2][3] < refs[3][3] / 20  # a slice is written compactly
    for ref, table in zip(refs, tables, strict=True):
        got = load_spilled(ref)
        assert got.equals(table) and got.schema == table.schema
        assert [c.num_chunks for c in got.columns] == [1] * got.num_columns  # one batch
    assert spill_batches(str(tmp_path), "k", "none", []) == []


def test_read_spilled_batch_refuses_a_short_file(tmp_path):
    [(path, head, offset, length)] = spill_batches(str(tmp_path), "k", "rows",
                                                   [pa.table({"a": list(range(100))})])
    with open(path, "r+b") as fh:
        fh.truncate(offset + length - 8)
    with pytest.raises(OSError, match=f"{length - 8} of {length} bytes"):
        read_spilled_batch(path, head, offset, length)


def test_spill_batches_refuses_dictionary_columns(tmp_path):
    table = pa.table({"d": pa.array(["x", "y"]).dictionary_encode()})
    with pytest.raises(ValueError, match="dictionary"):
        spill_batches(str(tmp_path), "k", "rows", [table])
