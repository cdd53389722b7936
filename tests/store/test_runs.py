"""Scratch of runs killed with ``kill -9`` is swept by the next run; live runs are untouched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from datanet.pipelines.run import run_datanet
from tests.conftest import record, write_jsonl

_HOLDER = """
import sys, time
from datanet.store.layout import DatanetStore
store = DatanetStore(sys.argv[1])
with store.run_scratch() as (run_id, d):
    open(d + "/chunk.parquet", "wb").write(b"x" * 4096)
    print(run_id, flush=True)
    time.sleep(600)
"""


def _start_run(root: Path) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(root)], stdout=subprocess.PIPE,
                            text=True, env=env)
    run_id = proc.stdout.readline().strip()
    assert len(run_id) == 32, run_id
    return proc, run_id


def test_killed_run_is_swept_live_run_is_kept(tiny_store, tmp_path) -> None:
    runs = tiny_store.root / "_runs"
    dead, dead_id = _start_run(tiny_store.root)
    alive, alive_id = _start_run(tiny_store.root)
    try:
        os.kill(dead.pid, signal.SIGKILL)
        dead.wait(10)
        assert (runs / dead_id / "chunk.parquet").exists()  # kill -9 left its scratch
        legacy_new = runs / "legacy-new"
        legacy_old = runs / "legacy-old"
        for d in (legacy_old, legacy_new):
            d.mkdir()
            (d / "part.parquet").write_bytes(b"y")
        old = time.time() - 7 * 3600
        os.utime(legacy_old, (old, old))
        (runs / ".0123.tmp").write_bytes(b"1\n")  # a run killed between create and rename
        assert sorted(tiny_store.sweep_runs()) == sorted([dead_id, "legacy-old"])
        assert not (runs / ".0123.tmp").exists()
        assert not (runs / dead_id).exists() and not (runs / f"{dead_id}.lock").exists()
        assert (runs / alive_id / "chunk.parquet").read_bytes() == b"x" * 4096
        assert (runs / f"{alive_id}.lock").exists() and (runs / "legacy-new").exists()
        # a real run sweeps too, and leaves nothing of its own behind
        result = run_datanet(tiny_store, [str(write_jsonl(tmp_path / "a.jsonl",
                                                          [record(i) for i in range(3)]))],
                             runner="DirectRunner")
        assert result.committed
        assert sorted(p.name for p in runs.iterdir()) == sorted(
            [alive_id, f"{alive_id}.lock", "legacy-new"])
    finally:
        alive.kill()
        alive.wait(10)
    assert tiny_store.sweep_runs() == [alive_id]
    assert sorted(p.name for p in runs.iterdir()) == ["legacy-new"]
