"""Delta Lake (delta-rs) vs Apache Iceberg (pyiceberg, SQLite ``SqlCatalog``) for the record
tables, measured against today's files (DuckDB ``read_parquet`` over the manifests' file list).

A synthetic ``accepted`` kind: ``--batches`` batches of ``--files`` Parquet files of ``--rows``
rows each (accepted-record columns, ~300-byte texts), written once with datanet's own
``write_table`` (content-addressed, ``accepted/batch=<id>/part-*.parquet``). Then, per format:

* commit latency per batch when the table *references* the existing files (Delta add actions
  via ``create_write_transaction``; Iceberg ``Table.add_files``), with the batch id as
  transaction id and the Merkle root / previous root in the commit metadata;
* for Delta also the alternative of writing the data through the table (``write_deltalake``:
  every byte written a second time);
* files and bytes each table adds (logs, manifests, catalog);
* read time of the same queries (count, group-by over contributors, a text-length filter) with
  DuckDB over the Parquet file list (today), DuckDB over the table's Arrow dataset / reader (no
  DuckDB extension: those are downloads) and polars (``scan_delta`` / ``scan_iceberg``);
* time travel to the middle batch and the idempotency check (is batch X in the table?);
* what the hook adds to a datanet commit (``DatanetStore.commit`` with and without it).

Every figure is printed with its ratio to today's files measured in the same run. Runs in well
under a minute with the defaults:

    python benchmarks/table_format.py --batches 20 --files 4 --rows 5000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datanet.schemas.manifest import FileEntry
from datanet.store.files import write_table

QUERIES = {
    "count": "SELECT count(*) FROM {t}",
    "group_by": "SELECT contributor, count(*), sum(length(text)) FROM {t} GROUP BY 1",
    "filter": "SELECT count(*) FROM {t} WHERE length(text) > 320 AND source_line % 7 = 0",
}


def _batch_table(rng: np.random.Generator, rows: int, seq: int, part: int) -> pa.Table:
    words = np.array("the salt dough pan heat rest slow oil knife bread stock onion".split())
    texts = [" ".join(words[rng.integers(0, len(words), 55)]) for _ in range(rows)]
    base = (seq * 1000 + part) * rows
    return pa.table({
        "contribution_id": [f"0x{base + i:064x}" for i in range(rows)],
        "datanet": pa.array(["bench"] * rows),
        "contributor": [f"0x{int(x):040x}" for x in rng.integers(0, 500, rows)],
        "submitted_at": pa.array(np.full(rows, 1_790_000_000_000_000, "int64"),
                                 pa.timestamp("us", tz="UTC")),
        "text": texts,
        "content_hash": [f"0x{base + i + 7:064x}" for i in range(rows)],
        "source_file": pa.array([f"in-{seq}.jsonl"] * rows),
        "source_line": pa.array(np.arange(rows, dtype="int64")),
    })


def _timed(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """Median wall time of ``repeat`` calls (seconds) and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _tree(path: Path, skip: Path | None = None) -> tuple[int, int]:
    """Files and bytes under ``path`` (excluding ``skip``)."""
    n = size = 0
    for p in path.rglob("*"):
        if p.is_file() and (skip is None or skip not in p.parents):
            n, size = n + 1, size + p.stat().st_size
    return n, size


def _duckdb_over(source: Callable[[], Any]) -> dict[str, float]:
    """Query times with DuckDB over an Arrow dataset / reader built by ``source`` per query."""
    out = {}
    for name, sql in QUERIES.items():
        def run(sql=sql):
            con = duckdb.connect()
            con.register("t", source())
            return con.execute(sql.format(t="t")).fetchall()
        out[name], _ = _timed(run)
    return out


def _files_queries(paths: list[str]) -> tuple[dict[str, float], dict[str, Any]]:
    listing = ", ".join(f"'{p}'" for p in paths)
    src = f"read_parquet([{listing}])"
    times, results = {}, {}
    for name, sql in QUERIES.items():
        def run(sql=sql):
            return duckdb.connect().execute(sql.format(t=src)).fetchall()
        times[name], res = _timed(run)
        results[name] = sorted(res)
    return times, results


def _polars_times(scan: Callable[[], pl.LazyFrame]) -> dict[str, float]:
    out = {}
    out["count"], _ = _timed(lambda: scan().select(pl.len()).collect())
    out["group_by"], _ = _timed(lambda: scan().group_by("contributor").agg(
        pl.len(), pl.col("text").str.len_chars().sum()).collect())
    out["filter"], _ = _timed(lambda: scan().filter(
        (pl.col("text").str.len_chars() > 320) & (pl.col("source_line") % 7 == 0))
        .select(pl.len()).collect())
    return out


def _polars_native_error(catalog: Any) -> str:
    """polars' native Iceberg reader needs Parquet field ids, which ``add_files`` of files
    written without them (all of today's) lack: the error, or "ok"."""
    try:
        pl.scan_iceberg(catalog.load_table("dn.accepted")).select(pl.col("text").first()).collect()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc)[:90]}"
    return "ok"


def _meta(seq: int, batch: str) -> dict[str, str]:
    return {"datanet.seq": str(seq), "datanet.batch_id": batch,
            "datanet.merkle_root": f"0x{seq:064x}", "datanet.prev_root": f"0x{seq - 1:064x}"}


def bench_delta_reference(root: Path, batches: list[tuple[int, str, list[FileEntry]]],
                          schema: pa.Schema) -> dict[str, Any]:
    import deltalake
    from deltalake import CommitProperties, DeltaTable
    from deltalake.transaction import AddAction, Transaction, create_table_with_add_actions

    uri = str(root / "accepted")
    dschema = deltalake.Schema.from_arrow(schema)
    lat = []
    for seq, batch, entries in batches:
        acts = [AddAction(e.path.split("/", 1)[1], e.bytes, {}, 0, True,
                          json.dumps({"numRecords": e.rows})) for e in entries]
        props = CommitProperties(custom_metadata=_meta(seq, batch),
                                 app_transactions=[Transaction("datanet", seq),
                                                   Transaction(batch, seq)])
        t = time.perf_counter()
        if seq == 1:
            create_table_with_add_actions(uri, dschema, acts, mode="error",
                                          configuration={"delta.appendOnly": "true"},
                                          commit_properties=props)
        else:
            DeltaTable(uri).create_write_transaction(acts, mode="append", schema=dschema,
                                                     commit_properties=props)
        lat.append(time.perf_counter() - t)
    mid = len(batches) // 2
    mid_batch = batches[mid - 1][1]
    tt, rows_mid = _timed(lambda: DeltaTable(uri, version=mid - 1).to_pyarrow_dataset()
                          .count_rows())
    idem, seen = _timed(lambda: DeltaTable(uri).transaction_version(mid_batch))
    assert seen == mid
    return {"commit_s": lat, "log": _tree(root / "accepted" / "_delta_log"),
            "duckdb": _duckdb_over(lambda: DeltaTable(uri).to_pyarrow_dataset()),
            "polars": _polars_times(lambda: pl.scan_delta(uri)),
            "time_travel_s": tt, "rows_at_mid": rows_mid, "idempotency_check_s": idem,
            "open": _timed(lambda: DeltaTable(uri))[0],
            "source": lambda: DeltaTable(uri).to_pyarrow_dataset()}


def bench_delta_write(root: Path, tables: list[tuple[int, str, pa.Table]]) -> dict[str, Any]:
    from deltalake import CommitProperties, write_deltalake
    from deltalake.transaction import Transaction

    uri = str(root / "delta_copy")
    lat = []
    for seq, batch, table in tables:
        t = time.perf_counter()
        write_deltalake(uri, table, mode="append", commit_properties=CommitProperties(
            custom_metadata=_meta(seq, batch), app_transactions=[Transaction(batch, seq)]))
        lat.append(time.perf_counter() - t)
    return {"commit_s": lat, "tree": _tree(Path(uri))}


def bench_iceberg(root: Path, batches: list[tuple[int, str, list[FileEntry]]],
                  schema: pa.Schema) -> dict[str, Any]:
    from pyiceberg.catalog.sql import SqlCatalog

    wh = root / "iceberg"
    wh.mkdir()
    catalog = SqlCatalog("bench", uri=f"sqlite:///{wh}/catalog.db", warehouse=f"file://{wh}")
    catalog.create_namespace("dn")
    table = catalog.create_table("dn.accepted", schema=schema, location=f"file://{wh}/accepted")
    lat = []
    for seq, batch, entries in batches:
        paths = [f"file://{root / e.path}" for e in entries]
        t = time.perf_counter()
        table = catalog.load_table("dn.accepted")
        # idempotency is ours to check: Iceberg has no transaction-id action
        if any(s.summary.additional_properties.get("datanet.batch_id") == batch
               for s in table.snapshots()):
            continue
        table.add_files(paths, snapshot_properties=_meta(seq, batch),
                        check_duplicate_files=False)
        lat.append(time.perf_counter() - t)
    table = catalog.load_table("dn.accepted")
    snaps = table.snapshots()
    mid = len(batches) // 2
    mid_batch = batches[mid - 1][1]

    def travel() -> int:
        t = catalog.load_table("dn.accepted")
        sid = next(s.snapshot_id for s in t.snapshots()
                   if s.summary.additional_properties.get("datanet.seq") == str(mid))
        return t.scan(snapshot_id=sid).to_arrow().num_rows

    def idem() -> bool:
        t = catalog.load_table("dn.accepted")
        return any(s.summary.additional_properties.get("datanet.batch_id") == mid_batch
                   for s in t.snapshots())

    tt, rows_mid = _timed(travel)
    idem_s, seen = _timed(idem)
    assert seen and len(snaps) == len(batches)
    return {"commit_s": lat, "meta": _tree(wh / "accepted"),
            "catalog": _tree(wh, skip=wh / "accepted"),
            "duckdb": _duckdb_over(
                lambda: catalog.load_table("dn.accepted").scan().to_arrow_batch_reader()),
            "polars_native": _polars_native_error(catalog),
            "polars": _polars_times(lambda: pl.scan_iceberg(catalog.load_table("dn.accepted"),
                                                            reader_override="pyiceberg")),
            "time_travel_s": tt, "rows_at_mid": rows_mid, "idempotency_check_s": idem_s,
            "open": _timed(lambda: catalog.load_table("dn.accepted"))[0],
            "source": lambda: catalog.load_table("dn.accepted").scan().to_arrow_batch_reader()}


def s3_race(rounds: int = 5) -> list[str]:
    """Two Delta writers that both read version 0 race for version 1 on a real S3 API
    (``moto_server`` on 127.0.0.1, default delta-rs options: no DynamoDB lock, no unsafe
    rename): the outcome of each round."""
    import io
    import socket
    import subprocess
    import threading

    import boto3
    import deltalake
    from deltalake import CommitProperties, DeltaTable
    from deltalake.transaction import AddAction, create_table_with_add_actions

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H",
                               "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        creds = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench",
                 "region_name": "us-east-1"}
        s3 = boto3.client("s3", endpoint_url=endpoint, **creds)
        for _ in range(100):
            try:
                s3.create_bucket(Bucket="datanet-bench")
                break
            except Exception:
                time.sleep(0.1)
        opts = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1",
                "AWS_ALLOW_HTTP": "true"}
        buf = io.BytesIO()
        pq.write_table(pa.table({"a": [1, 2]}), buf)
        schema = deltalake.Schema.from_arrow(pa.schema([("a", pa.int64())]))
        out = []
        for r in range(rounds):
            for i in range(3):
                s3.put_object(Bucket="datanet-bench", Key=f"r{r}/f{i}.parquet",
                              Body=buf.getvalue())
            uri = f"s3://datanet-bench/r{r}"

            def add(i: int) -> Any:
                return AddAction(f"f{i}.parquet", len(buf.getvalue()), {}, 0, True,
                                 '{"numRecords":2}')

            create_table_with_add_actions(uri, schema, [add(0)], mode="error",
                                          storage_options=opts)
            writers = [DeltaTable(uri, storage_options=opts) for _ in range(2)]
            res: list[str] = []

            def commit(i: int, writers=writers, res=res) -> None:
                try:
                    writers[i].create_write_transaction(
                        [add(i + 1)], mode="append", schema=schema,
                        commit_properties=CommitProperties(max_commit_retries=0))
                    res.append("won")
                except Exception as exc:
                    res.append(type(exc).__name__)

            threads = [threading.Thread(target=commit, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            final = DeltaTable(uri, storage_options=opts)
            out.append(f"{sorted(res)} -> version {final.version()}, "
                       f"{final.to_pyarrow_dataset().count_rows()} rows")
        return out
    finally:
        server.terminate()
        server.wait()


def datanet_commit_overhead(work: Path, batches: int = 20) -> tuple[float, float]:
    """Median ``DatanetStore.commit`` time (s) without and with the Delta tables hook (six
    tables, one small votes file per batch), each on a fresh datanet."""
    import datanet.store.tables as tables
    from datanet.store.layout import init_datanet

    spec = 'id = "bench"\nname = "Bench"\n'
    medians = []
    real = tables.sync_tables
    for publish in (False, True):
        store = init_datanet(work / f"dn-{publish}", spec)
        tables.sync_tables = real if publish else (lambda *a, **k: {})
        lat = []
        try:
            for seq in range(1, batches + 1):
                b = f"0x{seq:064x}"
                rel = f"votes/batch={b}/part-0.parquet"
                path = store.root / rel
                path.parent.mkdir(parents=True)
                pq.write_table(pa.table({"contribution_id": ["0x00"] * 100,
                                         "validator": ["v"] * 100, "batch": [b] * 100}), path)
                entry = FileEntry(rel, "0" * 64, 100, path.stat().st_size)
                t = time.perf_counter()
                store.commit(batch_id=b, files={"votes": [entry]}, counts={},
                             history_seq=seq - 1, sources=[], report={}, tree=None)
                lat.append(time.perf_counter() - t)
        finally:
            tables.sync_tables = real
        medians.append(statistics.median(lat[1:]))
    return medians[0], medians[1]


def _ms(x: float) -> str:
    return f"{x * 1000:8.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--files", type=int, default=4, help="Parquet files per batch")
    ap.add_argument("--rows", type=int, default=5000, help="rows per file")
    ap.add_argument("--s3", action="store_true",
                    help="also race two Delta committers on a moto S3 server (127.0.0.1)")
    args = ap.parse_args()
    rng = np.random.default_rng(18)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        batches, tables = [], []
        for seq in range(1, args.batches + 1):
            batch = f"0x{seq:064x}"
            parts = [_batch_table(rng, args.rows, seq, p) for p in range(args.files)]
            batches.append((seq, batch, [write_table(str(root), "accepted", batch, t)
                                         for t in parts]))
            tables.append((seq, batch, pa.concat_tables(parts).append_column(
                "batch", pa.array([batch] * args.rows * args.files))))
        data_files, data_bytes = _tree(root / "accepted")
        total_rows = args.batches * args.files * args.rows
        paths = [str(root / e.path) for _, _, es in batches for e in es]
        schema = pa.schema([f.with_nullable(True) for f in pq.read_schema(paths[0])])
        # a stray uncommitted file, as a killed run leaves: outside readers must not see it
        stray = root / "accepted" / "batch=0xstray" / "part-stray.parquet"
        stray.parent.mkdir()
        pq.write_table(tables[0][2].slice(0, 10), stray)
        today, want = _files_queries(paths)
        t0 = time.perf_counter()
        delta = bench_delta_reference(root, batches, schema)
        delta_total = time.perf_counter() - t0
        iceberg = bench_iceberg(root, batches, schema)
        copy = bench_delta_write(root, tables)
        without, with_tables = datanet_commit_overhead(root)
        glob_rows = duckdb.connect().execute(
            f"SELECT count(*) FROM read_parquet('{root}/accepted/**/*.parquet')").fetchall()
        for name, res in (("delta", delta), ("iceberg", iceberg)):
            got = {}
            for n, q in QUERIES.items():
                con = duckdb.connect()
                con.register("t", res["source"]())
                got[n] = sorted(con.execute(q.format(t="t")).fetchall())
            assert got == want, f"{name}: results differ from today's files"
        for name, scan in (("delta", lambda: pl.scan_delta(str(root / "accepted"))),):
            assert scan().select(pl.len()).collect().item() == total_rows, name

    print(f"data: {args.batches} batches x {args.files} files x {args.rows} rows = "
          f"{total_rows:,} rows, {data_files} Parquet files, {data_bytes / 1e6:.1f} MB; "
          f"a stray uncommitted file with 10 rows sits in the folder")
    print(f"plain glob over accepted/**: {glob_rows[0][0]:,} rows (committed: {total_rows:,})")
    print("\ncommit latency per batch (median / max; table references the existing files)")
    for name, res in (("delta add actions", delta), ("iceberg add_files", iceberg),
                      ("delta write_deltalake (copy)", copy)):
        lat = res["commit_s"]
        print(f"  {name:30s} {_ms(statistics.median(lat))} / {_ms(max(lat))}")
    ratio = statistics.median(iceberg["commit_s"]) / statistics.median(delta["commit_s"])
    print(f"  iceberg / delta median: {ratio:.1f}x   (delta total incl. reads: "
          f"{delta_total:.1f} s)")
    print(f"  datanet commit (DatanetStore.commit, 6 tables): {_ms(with_tables)} with the "
          f"tables hook vs {_ms(without)} without")
    print("\nfiles written by the table format (data files are today's, not rewritten)")
    print(f"  delta   _delta_log: {delta['log'][0]} files, {delta['log'][1] / 1e3:.1f} kB")
    print(f"  iceberg metadata:   {iceberg['meta'][0]} files, {iceberg['meta'][1] / 1e3:.1f} kB"
          f" + catalog {iceberg['catalog'][0]} file, {iceberg['catalog'][1] / 1e3:.1f} kB")
    print(f"  delta copy:         {copy['tree'][0]} files, {copy['tree'][1] / 1e6:.1f} MB "
          f"(data written twice; vs {data_bytes / 1e6:.1f} MB)")
    print("\nread time (median of 3), ratio to DuckDB over today's file list")
    print(f"  {'query':10s} {'today':>11s} {'duck/delta':>11s} {'duck/iceb':>11s} "
          f"{'pl/delta':>11s} {'pl/iceb':>11s}")
    for q in QUERIES:
        base = today[q]
        cells = [delta["duckdb"][q], iceberg["duckdb"][q], delta["polars"][q],
                 iceberg["polars"][q]]
        print(f"  {q:10s} {_ms(base)} " + " ".join(
            f"{_ms(c)}({c / base:4.1f}x)" for c in cells))
    print(f"  polars scan_iceberg native reader: {iceberg['polars_native']}"
          " (pl/iceb column: reader_override='pyiceberg')")
    print("\nopen table / time travel to batch "
          f"{args.batches // 2} / is-batch-committed check")
    for name, res in (("delta", delta), ("iceberg", iceberg)):
        print(f"  {name:8s} open {_ms(res['open'])}  travel {_ms(res['time_travel_s'])} "
              f"({res['rows_at_mid']:,} rows)  idempotency {_ms(res['idempotency_check_s'])}")
    if args.s3:
        print("\ns3 (moto_server, default delta-rs options): two writers race for version 1")
        for line in s3_race():
            print(f"  {line}")
    print(f"\nfinished {datetime.now(UTC).isoformat(timespec='seconds')}")


if __name__ == "__main__":
    main()
