"""Content-addressed Parquet writers: one table per file, and many tables coalesced."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datanet.store.files import write_table, write_tables

BATCH = "0x" + "ab" * 32


def _tables(n: int, rows: int = 100, width: int = 200) -> list[pa.Table]:
    return [pa.table({"i": pa.array(range(k * rows, (k + 1) * rows), pa.int64()),
                      "text": pa.array([f"{k:04d}-{j:04d}-" + hashlib.sha256(
                          f"{k}/{j}".encode()).hexdigest() * (width // 64)
                          for j in range(rows)])})
            for k in range(n)]


def test_one_file_holds_every_table_in_order(tmp_path):
    tables = _tables(30)
    (entry,) = write_tables(str(tmp_path), "accepted", BATCH, iter(tables),
                            target_bytes=128_000_000)
    t = pq.read_table(tmp_path / entry.path)
    assert entry.rows == t.num_rows == 3000
    assert t.column("i").to_pylist() == list(range(3000))
    assert set(t.column("batch").to_pylist()) == {BATCH}
    data = (tmp_path / entry.path).read_bytes()
    assert entry.bytes == len(data) and entry.sha256 == hashlib.sha256(data).hexdigest()
    assert entry.path == f"accepted/batch={BATCH}/part-{entry.sha256[:32]}.parquet"


def test_files_are_cut_at_the_target_size(tmp_path):
    tables = _tables(40, rows=500)
    entries = list(write_tables(str(tmp_path), "votes", BATCH, iter(tables),
                                target_bytes=60_000, row_group_bytes=50_000))
    assert len(entries) > 2
    assert sum(e.rows for e in entries) == 20_000
    assert all(e.bytes >= 60_000 for e in entries[:-1])
    got = pa.concat_tables(pq.read_table(tmp_path / e.path) for e in entries)
    assert got.column("i").to_pylist() == list(range(20_000))
    # deterministic: the same tables give the same files
    again = list(write_tables(str(tmp_path / "again"), "votes", BATCH, iter(tables),
                              target_bytes=60_000, row_group_bytes=50_000))
    assert [e.sha256 for e in again] == [e.sha256 for e in entries]


def test_a_single_table_matches_write_table_rows(tmp_path):
    (t,) = _tables(1)
    (a,) = write_tables(str(tmp_path / "a"), "accepted", BATCH, [t], target_bytes=1 << 30)
    b = write_table(str(tmp_path / "b"), "accepted", BATCH, t)
    assert pq.read_table(tmp_path / "a" / a.path).equals(pq.read_table(tmp_path / "b" / b.path))


def test_schema_change_starts_a_new_file_and_empty_tables_write_nothing(tmp_path):
    a = pa.table({"x": pa.array([1, 2], pa.int64())})
    castable = pa.table({"x": pa.array([3], pa.int32())})  # cast to the open file's int64
    other = pa.table({"y": pa.array(["z"])})
    empty = a.slice(0, 0)
    entries = list(write_tables(str(tmp_path), "deadletter", BATCH,
                                [empty, a, castable, other], target_bytes=1 << 30))
    assert [e.rows for e in entries] == [3, 1]
    assert pq.read_table(tmp_path / entries[0].path).column("x").to_pylist() == [1, 2, 3]
    assert list(write_tables(str(tmp_path), "x", BATCH, [empty], target_bytes=1)) == []


def test_target_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="target_bytes=0 must be >= 1"):
        list(write_tables(str(tmp_path), "x", BATCH, [], target_bytes=0))


def test_a_failing_source_leaves_no_file_behind(tmp_path):
    def tables():
        yield from _tables(2)
        raise OSError("scratch file vanished")

    with pytest.raises(OSError, match="scratch file vanished"):
        list(write_tables(str(tmp_path), "accepted", BATCH, tables(), target_bytes=1 << 30))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_local_atomic_path_renames_on_success_and_cleans_up_on_failure(tmp_path) -> None:
    from datanet.store.files import local_atomic_path

    target = tmp_path / "sub" / "x.arrow"
    with local_atomic_path(str(target)) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(b"done")
        assert not target.exists()  # nobody sees it before the block ends
    assert target.read_bytes() == b"done"
    try:
        with local_atomic_path(str(target)) as tmp, open(tmp, "wb") as fh:
            fh.write(b"torn")
            raise OSError("disk full")
    except OSError:
        pass
    assert target.read_bytes() == b"done"
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.arrow"]
