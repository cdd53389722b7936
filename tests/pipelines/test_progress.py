"""Live run progress: counts written by the DoFns, summed by the driver, shown by the CLI."""

from __future__ import annotations

import gzip
import os
import pickle

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from datanet.cli import app
from datanet.pipelines.progress import (
    Progress,
    StageCounter,
    estimate_records,
    read_progress,
)
from datanet.pipelines.run import run_datanet
from tests.conftest import TINY_SPEC, record, write_jsonl


def test_counts_are_per_chunk_and_a_recomputed_chunk_counts_once(tmp_path):
    d = str(tmp_path / "progress")
    a, b = StageCounter(d, "read"), StageCounter(d, "read")
    a.add("f.jsonl:0", 5)
    a.add("f.jsonl:1", 2)
    b.add("g.jsonl:0", 4)
    StageCounter(d, "validate").add("f.jsonl:0", 3)
    assert read_progress(d) == {"read": 11, "validate": 3, "write": 0}
    # a recomputed / retried chunk (another worker's unpickled DoFn) rewrites its file
    pickle.loads(pickle.dumps(a)).add("f.jsonl:0", 5)
    assert read_progress(d)["read"] == 11
    assert not [n for n in os.listdir(d) if n.endswith(".tmp")]
    # remote scratch: nothing written, nothing raised
    StageCounter("gs://bucket/x", "read").add("k", 3)
    assert read_progress(str(tmp_path / "missing")) == {"read": 0, "validate": 0, "write": 0}


def test_progress_stage_rate_eta():
    p = Progress({"read": 400, "validate": 200, "write": 0}, 2.0, 1000)
    assert (p.stage, p.rate, p.eta) == ("validating", 100.0, 8.0)
    p = Progress({"read": 1000, "validate": 1000, "write": 0}, 4.0, 1000)
    assert p.stage == "duplicate and flood checks" and p.eta is None
    assert Progress({"read": 0, "validate": 0, "write": 0}, 1.0, None).stage == "starting"
    assert Progress({"read": 10, "validate": 0, "write": 0}, 1.0, None).eta is None


def test_estimate_records(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(b"{}\n" * 7)
    with gzip.open(tmp_path / "b.jsonl.gz", "wb") as fh:
        fh.write(b"{}\n" * 5)
    (tmp_path / "c.csv").write_text("text,contributor\nx,y\nz,w\n")
    pq.write_table(pa.table({"text": ["a"] * 4}), tmp_path / "d.parquet")
    files = [str(tmp_path / n) for n in ("a.jsonl", "b.jsonl.gz", "c.csv", "d.parquet")]
    assert estimate_records(files) == 7 + 5 + 2 + 4
    assert estimate_records([*files, "gs://bucket/e.jsonl"]) is None
    assert estimate_records(files, max_bytes=10) is None


def test_run_reports_progress_and_results_do_not_change(tiny_store, tmp_path):
    recs = [record(i) for i in range(6)] + [b"{bad"]
    inp = write_jsonl(tmp_path / "in.jsonl", recs)
    seen: list[Progress] = []
    result = run_datanet(tiny_store, [str(inp)], runner="DirectRunner", progress=seen.append)
    assert result.committed and result.counts["accepted"] == 6
    last = seen[-1]
    assert last.counts == {"read": 7, "validate": 6, "write": 7}
    assert last.estimated_total == 7 and last.stage == "deciding and writing" and last.final
    assert not any(p.final for p in seen[:-1])
    # the scratch (with the progress files) is gone
    assert not any((tiny_store.root / "_runs").iterdir())


def test_cli_progress_plain_lines_and_quiet(tmp_path):
    runner = CliRunner()
    (tmp_path / "spec.toml").write_text(TINY_SPEC)
    dn = tmp_path / "dn"
    runner.invoke(app, ["init", str(dn), "--spec", str(tmp_path / "spec.toml")])
    inp = write_jsonl(tmp_path / "in.jsonl", [record(i) for i in range(4)])
    r = runner.invoke(app, ["run", str(dn), str(inp), "--no-anchor"])
    assert r.exit_code == 0, r.output
    lines = r.stderr.splitlines()
    assert lines[-1] == ("tiny: deciding and writing: 4 records read of ~4, "
                         + lines[-1].split(" of ~4, ")[1])
    assert "records/s, ETA" in lines[-1]
    assert "4 records → 4 accepted" in r.stdout
    more = write_jsonl(tmp_path / "more.jsonl", [record(i, text=f"Another tip, number {i} here.")
                                                 for i in range(3)])
    r = runner.invoke(app, ["--quiet", "run", str(dn), str(more), "--no-anchor"])
    assert r.exit_code == 0 and r.stderr == ""
    assert "3 records → 3 accepted" in r.stdout
