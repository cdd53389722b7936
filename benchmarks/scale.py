"""Scale benchmark: the full pipeline on the DirectRunner and on a Dask cluster (DaskRunner).

For each size (default 100k and 300k; add 1M with ``--sizes 100000,300000,1000000``), ~1 KB
records from ``benchmarks/_data.py`` are written as ``--shards`` JSONL files, then each runner
ingests them into a fresh datanet with the default spec (every registered validator on at its
defaults), builds the batch's Merkle tree, commits, and anchors the root on the embedded chain.
Each measurement runs in its own process so peak RSS is per run:

- ``seconds``: ``run_datanet`` / ``run_on_dask`` wall time (cluster start-up excluded, reported
  apart), ``records_per_s`` = input records / seconds; ``anchor_s`` the on-chain anchor;
- ``driver_rss_mb``: peak RSS of the driver process (for Dask it hosts the scheduler);
- ``worker_rss_mb``: peak RSS of each Dask worker process; for ``direct``, the largest peak
  of its forked chunk workers (``pipeline.local_workers``, one per usable core);
- ``scaling``: time(largest) / time(smallest) per runner (linear ≈ the size ratio);
- ``cpu_s`` / ``records_per_cpu_s``: CPU seconds (user + system) of the driver process and of
  its ended child processes (``direct`` is the DirectRunner as ``datanet run`` runs it, its
  chunk work in forked processes; ``direct-1`` the same with ``local_workers = 1``, all in one
  process; ``one-core`` the default run confined to one CPU (``sched_setaffinity``: what the
  issue's "time of one core" means — its threads share that core too); ``direct-mp`` is the
  DirectRunner's ``multi_processing`` mode with ``--workers`` processes; Dask's local workers
  count with their start-up) and input records per CPU-second; ``x one process`` /
  ``x one core``: wall time over ``direct-1``'s / ``one-core``'s at that size;
- ``files``: committed files of the batch (all kinds);
- ``floor``: the same files through a bare pyarrow pipeline that validates nothing (``pyarrow.json``
  read, keccak256 of every text, Parquet write), measured in the same run; ``x floor`` is our
  records per CPU-second over the floor's (the issue's yardstick, 1.0 would be free).

    python benchmarks/scale.py --sizes 100000,300000 --workers 2 --out scale.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _peak_rss_mb() -> float:
    """Peak RSS of this process in MB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _generate(data_dir: Path, n: int, shards: int, size: int) -> list[str]:
    from _data import write_records

    data_dir.mkdir(parents=True, exist_ok=True)
    per = -(-n // shards)
    paths = []
    for i in range(shards):
        lo, count = i * per, min(per, n - i * per)
        if count <= 0:
            break
        paths.append(str(write_records(data_dir / f"part-{i:03d}.jsonl", count, size=size,
                                       seed=i, start=lo)))
    return paths


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process and of its child processes that ended
    (the worker processes of a multi-process runner or of a local Dask cluster)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


def _floor(args: argparse.Namespace, inputs: list[str], out: dict[str, Any]) -> dict[str, Any]:
    """Read, hash and write the same records with pyarrow alone (no validation at all)."""
    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    from datanet.schemas.ids import keccak

    t0, c0 = time.perf_counter(), _cpu_s()
    for i, path in enumerate(inputs):
        table = pj.read_json(path)
        hashes = [keccak(t.encode()) for t in table.column("text").to_pylist()]
        table = table.append_column("content_hash", pa.array(hashes, pa.binary(32)))
        pq.write_table(table, Path(args.store).parent / f"floor-{i}.parquet", compression="zstd")
    out.update(seconds=round(time.perf_counter() - t0, 2), cpu_s=round(_cpu_s() - c0, 2),
               counts={}, root=None, driver_rss_mb=round(_peak_rss_mb()), anchor="-")
    out["records_per_s"] = round(args.records / out["seconds"])
    out["records_per_cpu_s"] = round(args.records / out["cpu_s"])
    return out


def _one(args: argparse.Namespace) -> dict[str, Any]:
    """One measurement (run in a child process)."""
    if args.runner == "one-core":  # before any thread pool starts: every thread on one CPU
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    from datanet.store.layout import init_datanet
    from datanet.validators.registry import default_spec_text

    spec = default_spec_text("bench")
    if args.runner == "direct-1":
        spec = spec.replace("[pipeline]\n", "[pipeline]\nlocal_workers = 1\n", 1)
    store = init_datanet(Path(args.store), spec)
    inputs = sorted(str(p) for p in Path(args.data).glob("*.jsonl"))
    out: dict[str, Any] = {"runner": args.runner, "records": args.records,
                           "validators": sorted(store.spec.validators or {})}
    if args.runner == "floor":
        return _floor(args, inputs, out)
    if args.runner in ("direct", "direct-1", "direct-mp", "one-core"):
        from datanet.pipelines.run import run_datanet

        extra = ([] if args.runner != "direct-mp" else
                 ["--direct_running_mode=multi_processing", f"--direct_num_workers={args.workers}"])
        t0, c0 = time.perf_counter(), _cpu_s()
        result = run_datanet(store, inputs, runner="DirectRunner", beam_args=extra)
        out["seconds"] = time.perf_counter() - t0
        out["cpu_s"] = round(_cpu_s() - c0, 2)
        out["records_per_cpu_s"] = round(args.records / out["cpu_s"])
        if args.runner == "direct":
            children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            out["worker_rss_mb"] = [round(children)] if children else []
    else:
        from distributed import Client

        from datanet.pipelines.dask import local_cluster, run_on_dask

        t0, c0 = time.perf_counter(), _cpu_s()
        with local_cluster(args.workers) as address:
            out["cluster_start_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            result = run_on_dask(store, inputs, address=address)
            out["seconds"] = time.perf_counter() - t0
            with Client(address, set_as_default=False) as client:
                rss = client.run(_peak_rss_mb)
            out["worker_rss_mb"] = [round(v) for _, v in sorted(rss.items())]
        # the workers' CPU counts once the cluster's processes ended (start-up included)
        out["cpu_s"] = round(_cpu_s() - c0, 2)
        out["records_per_cpu_s"] = round(args.records / out["cpu_s"])
    out["counts"] = result.counts
    out["files"] = (sum(len(v) for v in result.manifest.files.values())
                    if result.manifest else 0)
    out["root"] = result.manifest.merkle_root if result.manifest else None
    out["records_per_s"] = round(args.records / out["seconds"])
    try:
        from datanet.anchoring.outbox import anchor_pending

        t0 = time.perf_counter()
        states = anchor_pending(store)
        out["anchor_s"] = round(time.perf_counter() - t0, 2)
        out["anchor"] = [str(getattr(s, "status", s)) for s in states]
    except ImportError:
        out["anchor"] = "unavailable"
    out["driver_rss_mb"] = round(_peak_rss_mb())
    out["seconds"] = round(out["seconds"], 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,300000",
                    help="comma-separated record counts (default: %(default)s)")
    ap.add_argument("--runners", default="direct,dask",
                    help="of direct, direct-1, one-core, direct-mp, dask (default: %(default)s)")
    ap.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    ap.add_argument("--shards", type=int, default=8, help="input files per size")
    ap.add_argument("--size", type=int, default=1024, help="bytes per record")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--keep", help="directory for data and datanets (default: a temp dir)")
    # internal: one measurement in a child process
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--runner", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    ap.add_argument("--records", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(_one(args)))
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    runners = args.runners.split(",")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=args.keep) as tmp:
        for n in sizes:
            data = Path(tmp) / f"data-{n}"
            t0 = time.perf_counter()
            _generate(data, n, args.shards, args.size)
            mb = sum(p.stat().st_size for p in data.glob("*")) / 1e6
            print(f"# {n} records, {mb:.0f} MB in {args.shards} files "
                  f"({time.perf_counter() - t0:.0f}s to generate)", flush=True)
            for i, runner in enumerate(["floor", *runners]):  # a runner may be listed twice
                cmd = [sys.executable, __file__, "--one", "--runner", runner, "--data", str(data),
                       "--store", str(Path(tmp) / f"dn-{runner}-{n}-{i}"), "--records", str(n),
                       "--workers", str(args.workers)]
                proc = subprocess.run(cmd, capture_output=True, text=True,
                                      env={**os.environ, "PYTHONWARNINGS": "ignore"})
                if proc.returncode:
                    print(proc.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"{runner} at {n} failed")
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                results.append(res)
                print(json.dumps(res), flush=True)
    _table(results, sizes, runners)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def _table(results: list[dict[str, Any]], sizes: list[int], runners: list[str]) -> None:
    floor = {r["records"]: r for r in results if r["runner"] == "floor"}
    print("\n| runner | records | seconds | records/s | records/CPU-s | x floor | driver RSS MB "
          "| worker RSS MB | files | root |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        workers = ", ".join(str(w) for w in r.get("worker_rss_mb", [])) or "-"
        per_cpu = r.get("records_per_cpu_s")
        base = floor.get(r["records"], {}).get("records_per_cpu_s")
        ratio = f"{per_cpu / base:.3f}" if per_cpu and base else "-"
        print(f"| {r['runner']} | {r['records']:,} | {r['seconds']} | {r['records_per_s']:,} | "
              f"{f'{per_cpu:,}' if per_cpu else '-'} | {ratio} | {r['driver_rss_mb']} | "
              f"{workers} | {r.get('files', '-')} | {(r['root'] or '-')[:10]}… |")
    runners = [x for x in runners if x != "floor"]
    for base, what in (("direct-1", "one process"), ("one-core", "one core")):
        one = {r["records"]: r["seconds"] for r in results if r["runner"] == base}
        for r in results:
            if r["runner"] not in ("floor", "direct-1", "one-core") and r["records"] in one:
                print(f"{r['records']:,} on {r['runner']}: {r['seconds'] / one[r['records']]:.2f}x "
                      f"the wall time of {base} ({what})")
    if len(sizes) > 1:
        for runner in runners:
            t = {r["records"]: r["seconds"] for r in results if r["runner"] == runner}
            if sizes[0] in t and sizes[-1] in t:
                print(f"time({sizes[-1]:,}) / time({sizes[0]:,}) on {runner}: "
                      f"{t[sizes[-1]] / t[sizes[0]]:.2f} (size ratio {sizes[-1] / sizes[0]:.0f})")
    for n in sizes:
        roots = {r["root"] for r in results if r["records"] == n and r["runner"] != "floor"}
        print(f"{n:,}: {'same root on every runner' if len(roots) == 1 else 'ROOTS DIFFER'}")


if __name__ == "__main__":
    main()
