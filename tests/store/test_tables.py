"""Delta tables over committed batches: what engines outside datanet read (polars, DuckDB via
Arrow, delta-rs), time travel, idempotent batch transactions, ``datanet migrate``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from typer.testing import CliRunner

from datanet.anchoring.history import verify_history
from datanet.cli import app
from datanet.pipelines.run import run_datanet
from datanet.schemas.manifest import FileEntry
from datanet.store.layout import init_datanet
from datanet.store.query import connect
from datanet.store.tables import (
    APP_ID,
    TABLE_KINDS,
    open_table,
    sync_tables,
    synced_seq,
    table_rows,
    table_version,
)
from tests.conftest import TINY_SPEC, record, write_jsonl

runner = CliRunner()


def _run(store, tmp_path: Path, name: str, idx: range, **extra):
    recs = [record(i, text=f"{record(i)['text']} ({name})", **extra) for i in idx]
    # one line that cannot parse: a deadletter row in the first batch
    path = write_jsonl(tmp_path / name, [*recs, b"{not json"] if name == "a.jsonl" else recs)
    return run_datanet(store, [str(path)], runner="DirectRunner")


@pytest.fixture(scope="module")
def two_batches(tmp_path_factory):
    """A datanet with two committed batches plus a stray uncommitted accepted file."""
    tmp = tmp_path_factory.mktemp("tables")
    store = init_datanet(tmp / "dn", TINY_SPEC)
    first = _run(store, tmp, "a.jsonl", range(5))
    second = _run(store, tmp, "b.jsonl", range(5, 8))
    stray = store.root / "accepted" / ("batch=0x" + "ee" * 32) / "part-stray.parquet"
    stray.parent.mkdir(parents=True)
    committed = pq.read_table(store.abs(first.manifest.files["accepted"][0].path))
    pq.write_table(committed.slice(0, 2), stray)
    return store, first.manifest, second.manifest


def _ids(table: pa.Table) -> list[str]:
    return sorted(table.column("contribution_id").to_pylist())


def test_outside_readers_see_exactly_the_committed_rows(two_batches):
    store, m1, m2 = two_batches
    view = connect(store)
    want = sorted(r[0] for r in view.execute("SELECT contribution_id FROM accepted").fetchall())
    assert len(want) == m1.counts["accepted"] + m2.counts["accepted"] == 8
    # a plain glob over the folder also sees the stray file's 2 rows
    con = duckdb.connect()
    glob = f"read_parquet('{store.root}/accepted/**/*.parquet')"
    assert con.execute(f"SELECT count(*) FROM {glob}").fetchall() == [(10,)]
    # polars (delta-rs underneath)
    assert sorted(pl.read_delta(str(store.root / "accepted"))["contribution_id"]) == want
    # DuckDB without extensions: over the table's Arrow dataset
    con.register("accepted_table", DeltaTable(str(store.root / "accepted")).to_pyarrow_dataset())
    got = con.execute("SELECT contribution_id FROM accepted_table ORDER BY 1").fetchall()
    assert [r[0] for r in got] == want
    for kind in ("rejected", "deadletter", "votes"):
        n = view.execute(f"SELECT count(*) FROM {kind}").fetchone()[0]
        assert open_table(store, kind).to_pyarrow_dataset().count_rows() == n, kind
        assert table_rows(open_table(store, kind)) == n, kind
    assert open_table(store, "deadletter").to_pyarrow_dataset().count_rows() == 1


def test_time_travel_gives_an_earlier_batch(two_batches):
    store, m1, _ = two_batches
    early = open_table(store, "accepted", as_of=1)
    assert early.version() == 0
    want = connect(store, as_of=1).execute("SELECT contribution_id FROM accepted").fetchall()
    assert _ids(early.to_pyarrow_table()) == sorted(r[0] for r in want)
    assert len(want) == m1.counts["accepted"] == 5
    assert set(early.to_pyarrow_table().column("batch").to_pylist()) == {m1.batch_id}
    # polars the same way, by Delta version
    version = table_version(DeltaTable(str(store.root / "accepted")), 1)
    assert pl.read_delta(str(store.root / "accepted"), version=version).height == 5


def test_each_commit_carries_batch_txn_and_roots(two_batches):
    store, m1, m2 = two_batches
    for kind in TABLE_KINDS:
        dt = open_table(store, kind)
        assert dt.version() == 1 and synced_seq(dt) == 2
        assert dt.transaction_version(APP_ID) == 2
        assert dt.transaction_version(m1.batch_id) == 1
        assert dt.transaction_version(m2.batch_id) == 2
        assert dt.metadata().configuration == {"delta.appendOnly": "true"}
        info = {h["version"]: h for h in dt.history()}
        assert info[0]["datanet.batch_id"] == m1.batch_id and info[0]["datanet.seq"] == "1"
        assert info[1]["datanet.merkle_root"] == m2.merkle_root
        assert info[1]["datanet.prev_root"] == m1.merkle_root == m2.prev_root
        assert info[0]["datanet.prev_root"] == ""
    # the table's files are exactly the manifests' files: nothing written twice
    acc = open_table(store, "accepted")
    assert sorted(Path(u).relative_to(store.root).as_posix() for u in
                  [x.removeprefix("file://") for x in acc.file_uris()]) == sorted(
        [*m1.paths("accepted"), *m2.paths("accepted")])


def test_resync_and_recommit_are_noops(two_batches):
    store, m1, _ = two_batches
    before = {k: open_table(store, k).version() for k in TABLE_KINDS}
    assert sync_tables(store) == dict.fromkeys(TABLE_KINDS, 0)
    assert store.commit(batch_id=m1.batch_id, files={}, counts={}, history_seq=2, sources=[],
                        report={}, tree=None) is None
    assert {k: open_table(store, k).version() for k in TABLE_KINDS} == before


def test_migrate_builds_the_log_and_keeps_roots(two_batches, tmp_path):
    store, _, _ = two_batches
    copy = tmp_path / "old"
    shutil.copytree(store.root, copy)
    for kind in TABLE_KINDS:  # a datanet from before the tables
        shutil.rmtree(copy / kind / "_delta_log", ignore_errors=True)
    from datanet.store.layout import DatanetStore

    old = DatanetStore(copy)
    roots = [(m.seq, m.merkle_root, m.prev_root) for m in old.manifests()]
    manifests = sorted(p.read_bytes() for p in (copy / "batches").glob("*.json"))
    problems, _ = verify_history(old, data=True)
    assert problems == []
    r = runner.invoke(app, ["migrate", str(copy)])
    assert r.exit_code == 0, r.output
    assert "accepted: 2 batches added; table at batch 2, Delta version 1, 8 rows" in r.stdout
    assert [(m.seq, m.merkle_root, m.prev_root) for m in old.manifests()] == roots
    assert sorted(p.read_bytes() for p in (copy / "batches").glob("*.json")) == manifests
    assert verify_history(DatanetStore(copy), data=True)[0] == []
    assert sorted(pl.read_delta(str(copy / "accepted"))["contribution_id"]) == sorted(
        pl.read_delta(str(store.root / "accepted"))["contribution_id"])
    logs = {k: sorted((copy / k / "_delta_log").glob("*.json")) for k in TABLE_KINDS}
    r = runner.invoke(app, ["migrate", str(copy)])
    assert r.exit_code == 0, r.output
    assert "0 batches added" in r.stdout and "nothing to do" in r.output
    assert {k: sorted((copy / k / "_delta_log").glob("*.json")) for k in TABLE_KINDS} == logs


# -- without Beam: hand-written files through store.commit ------------------------------------

def _file(store, kind: str, batch: str, table: pa.Table) -> FileEntry:
    rel = f"{kind}/batch={batch}/part-0.parquet"
    p = store.root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    table = table.append_column("batch", pa.array([batch] * table.num_rows))
    pq.write_table(table, p)
    return FileEntry(rel, "0" * 64, table.num_rows, p.stat().st_size)


def _votes(n: int, **extra) -> pa.Table:
    cols = {"contribution_id": [f"0x{i:064x}" for i in range(n)],
            "validator": ["v"] * n, "verdict": ["accept"] * n}
    return pa.table({**cols, **extra})


def _commit(store, seq: int, files) -> object:
    return store.commit(batch_id=f"0x{seq:064x}", files=files, counts={}, history_seq=seq - 1,
                        sources=[], report={}, tree=None)


def test_a_new_column_is_added_to_the_table(tiny_store):
    b1, b2 = f"0x{1:064x}", f"0x{2:064x}"
    _commit(tiny_store, 1, {"votes": [_file(tiny_store, "votes", b1, _votes(2))]})
    _commit(tiny_store, 2, {"votes": [_file(tiny_store, "votes", b2,
                                            _votes(3, extra_col=["x", "y", "z"]))]})
    dt = open_table(tiny_store, "votes")
    assert [h["operation"] for h in dt.history()][:2] == ["WRITE", "ADD COLUMN"]
    t = dt.to_pyarrow_table().sort_by("batch")
    assert t.column("extra_col").to_pylist() == [None, None, "x", "y", "z"]
    assert table_version(dt, 1) == 0 and table_version(dt, 2) == 2
    assert open_table(tiny_store, "votes", as_of=1).to_pyarrow_dataset().count_rows() == 2


def test_a_failed_publish_keeps_the_batch_and_the_next_commit_catches_up(tiny_store,
                                                                         monkeypatch):
    import datanet.store.tables as tables

    real = tables.sync_tables

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(tables, "sync_tables", broken)
    b1 = f"0x{1:064x}"
    assert _commit(tiny_store, 1, {"votes": [_file(tiny_store, "votes", b1, _votes(2))]})
    assert [m.seq for m in tiny_store.manifests()] == [1]
    assert not DeltaTable.is_deltatable(str(tiny_store.root / "votes"))
    monkeypatch.setattr(tables, "sync_tables", real)
    b2 = f"0x{2:064x}"
    _commit(tiny_store, 2, {"votes": [_file(tiny_store, "votes", b2, _votes(4))]})
    dt = open_table(tiny_store, "votes")
    assert synced_seq(dt) == 2 and dt.to_pyarrow_dataset().count_rows() == 6
    assert [h["datanet.seq"] for h in reversed(dt.history())] == ["1", "2"]


def test_a_type_change_is_refused_and_reported(tiny_store):
    b1, b2 = f"0x{1:064x}", f"0x{2:064x}"
    _commit(tiny_store, 1, {"votes": [_file(tiny_store, "votes", b1, _votes(1, score2=[1]))]})
    _commit(tiny_store, 2, {"votes": [_file(tiny_store, "votes", b2, _votes(1, score2=["a"]))]})
    problem = json.dumps(tiny_store.problems)
    assert [m.seq for m in tiny_store.manifests()] == [1, 2]
    assert synced_seq(open_table(tiny_store, "votes")) == 1
    assert "column 'score2' is int64 in earlier files and string in this batch" in problem


def test_a_table_with_only_empty_commits_takes_the_first_files_types(tiny_store):
    from datanet.schemas.contribution import VOTE_SCHEMA

    assert VOTE_SCHEMA.field("verdict").type == pa.string()
    _commit(tiny_store, 1, {})  # no votes yet: the table starts from the kind's columns
    assert open_table(tiny_store, "votes").schema().to_arrow().field("verdict").type == \
        open_table(tiny_store, "votes").schema().to_arrow().field("validator").type
    b2 = f"0x{2:064x}"
    votes = _votes(2).set_column(2, "verdict", pa.array([1, 0]))
    _commit(tiny_store, 2, {"votes": [_file(tiny_store, "votes", b2, votes)]})
    assert tiny_store.problems == []
    dt = open_table(tiny_store, "votes")
    assert [h["operation"] for h in dt.history()] == ["CREATE OR REPLACE TABLE", "CREATE TABLE"]
    assert dt.to_pyarrow_table().column("verdict").to_pylist() == [1, 0]
    assert synced_seq(dt) == 2 and dt.metadata().configuration == {"delta.appendOnly": "true"}
    assert open_table(tiny_store, "votes", as_of=1).to_pyarrow_dataset().count_rows() == 0


def test_quarantine_and_external_votes_tables_after_a_vote_batch(tmp_path):
    """The review flow (pipeline quarantine, then `datanet vote`) publishes real
    quarantine / external_votes files; each table holds exactly the committed rows."""
    from datanet.validators.review import apply_votes
    from tests.validators.test_external_review import SPEC, VALIDATORS, vote, votes_file

    store = init_datanet(tmp_path / "dn", SPEC)
    (store.root / "validators.toml").write_text(
        "".join(f'"{v.address}" = 2\n' for v in VALIDATORS[:2]))
    inp = write_jsonl(tmp_path / "in.jsonl", [record(i) for i in range(4)])
    run_datanet(store, [str(inp)], runner="DirectRunner")
    quarantined = sorted(r[0] for r in connect(store).execute(
        "SELECT contribution_id FROM quarantine").fetchall())
    assert len(quarantined) == 4
    a = quarantined[0]
    assert apply_votes(store, [votes_file(tmp_path / "v.jsonl", vote(0, a), vote(1, a))]
                       ).committed
    con = connect(store)
    for kind in ("accepted", "external_votes", "votes"):
        want = sorted(con.execute(f"SELECT contribution_id FROM {kind}").fetchall())
        got = open_table(store, kind).to_pyarrow_table()
        assert sorted((x,) for x in got.column("contribution_id").to_pylist()) == want, kind
    assert pl.read_delta(str(store.root / "external_votes")).height == 2
    # the quarantine table is append-only: it keeps a's quarantine row of batch 1, which the
    # `quarantine` view hides once a later batch decided it
    q = open_table(store, "quarantine").to_pyarrow_table()
    assert _ids(q) == quarantined
    assert con.execute("SELECT count(*) FROM quarantine").fetchall() == [(3,)]
    assert open_table(store, "accepted", as_of=1).to_pyarrow_dataset().count_rows() == 0
    assert _ids(open_table(store, "accepted").to_pyarrow_table()) == [a]


def test_concurrent_publishers_add_each_batch_exactly_once(tiny_store, monkeypatch):
    """Four publishers race over ten committed batches without the commit lock (as committers
    on an object store do): every Delta version is taken once, no batch is added twice."""
    import threading

    import datanet.store.tables as tables

    real = tables.sync_tables
    monkeypatch.setattr(tables, "sync_tables", lambda *a, **k: {})
    for seq in range(1, 11):
        b = f"0x{seq:064x}"
        _commit(tiny_store, seq, {"votes": [_file(tiny_store, "votes", b, _votes(seq))]})
    manifests = tiny_store.manifests()
    assert not DeltaTable.is_deltatable(str(tiny_store.root / "votes"))
    barrier, added, errors = threading.Barrier(4), [], []

    def publish() -> None:
        barrier.wait()
        try:
            added.append(real(tiny_store, manifests))
        except Exception as exc:  # the test reports it below
            errors.append(exc)

    threads = [threading.Thread(target=publish) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for kind in TABLE_KINDS:
        dt = open_table(tiny_store, kind)
        seqs = [h.get("datanet.seq") for h in reversed(dt.history())]
        assert seqs == [str(s) for s in range(1, 11)], kind
        assert synced_seq(dt) == 10 and sum(a[kind] for a in added) == 10, kind
    assert open_table(tiny_store, "votes").to_pyarrow_dataset().count_rows() == sum(range(11))
    assert open_table(tiny_store, "votes", as_of=4).to_pyarrow_dataset().count_rows() == 10


def test_migrate_refuses_a_folder_that_is_not_a_datanet(tmp_path):
    r = runner.invoke(app, ["migrate", str(tmp_path)])
    assert r.exit_code == 1
    assert "not a datanet (datanet.toml missing)" in r.output
    assert not (tmp_path / "accepted").exists()
    assert "migrate" in runner.invoke(app, ["--help"]).output
