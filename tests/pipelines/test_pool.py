"""Chunk work in forked processes on the in-process DirectRunner (``datanet.pipelines.pool``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from datanet import _pool as pool_mod
from datanet._pool import cgroup_cpus
from datanet.errors import DatanetError, WorkerLost
from datanet.pipelines.ahead import ParseAhead
from datanet.pipelines.pool import ChunkPool, ForkedDoFn, local_workers, pool_size, usable_cores
from datanet.pipelines.run import run_datanet
from datanet.store.query import connect
from tests.pipelines.test_run import _awkward_inputs


def test_local_workers_only_for_the_in_memory_direct_runner() -> None:
    assert 1 <= usable_cores() <= len(os.sched_getaffinity(0))
    assert local_workers(0, "DirectRunner", []) == usable_cores()
    assert local_workers(3, "DirectRunner", ["--direct_running_mode=in_memory"]) == 3
    assert local_workers(1, "FnApiRunner", []) == 1
    assert local_workers(4, "DirectRunner", ["--direct_running_mode=multi_processing"]) == 1
    assert local_workers(4, "DirectRunner", ["--direct_num_workers=2"]) == 1
    assert local_workers(4, "DirectRunner", ["--direct_num_workers=1"]) == 4
    assert local_workers(4, "apache_beam.runners.dask.dask_runner.DaskRunner", []) == 1


def _size_in_daemon(queue) -> None:
    queue.put((pool_size(0), pool_size(3)))


def test_cgroup_quota_caps_the_cores() -> None:
    assert cgroup_cpus("200000 100000\n") == 2
    assert cgroup_cpus("150000 100000") == 2  # 1.5 CPUs: rounded up
    assert cgroup_cpus("50000 100000") == 1
    assert cgroup_cpus("max 100000") is None
    assert cgroup_cpus("garbage") is None and cgroup_cpus("-1 100000") is None


_ORPHAN = """
import os, sys, time
from datanet._pool import ChunkPool
pool = ChunkPool(time.sleep, 2)
list(pool.submit(60)) + list(pool.submit(60))
print(" ".join(str(q.pid) for q in pool._executor._processes.values()), flush=True)
time.sleep(60)
"""


def test_workers_die_with_a_killed_parent() -> None:
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-c", _ORPHAN], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(x) for x in proc.stdout.readline().split()]
        assert len(pids) == 2
        proc.send_signal(signal.SIGKILL)  # as the OOM killer would
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        alive = pids
        while alive and time.monotonic() < deadline:
            alive = [q for q in pids if _running(q)]
            time.sleep(0.1)
        assert alive == []  # no orphan keeps the run's lock or scratch
    finally:
        proc.kill()


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_no_pool_in_a_daemonic_process() -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_size_in_daemon, args=(queue,), daemon=True)
    proc.start()
    assert queue.get(timeout=30) == (1, 1)  # multiprocessing refuses a daemon's children
    proc.join()
    assert pool_size(3) == 3 and pool_size(0) == usable_cores()


class _Custom(Exception):
    def __init__(self, a: int, b: int):
        super().__init__(f"{a}/{b}")

    def __reduce__(self):  # rebuilt with one argument: unpickling it fails
        return type(self), (1,)


def test_chunk_pool_runs_inherited_work_in_order_within_its_bound() -> None:
    state = {"offset": 100}  # set up before the fork, inherited by the workers

    def work(i: int) -> tuple[int, int]:
        if i == -1:
            raise ValueError("bad chunk")
        if i == -2:
            raise _Custom(1, 2)
        return i + state["offset"], os.getpid()

    p = ChunkPool(work, 2)
    try:
        out = []
        for i in range(10):
            out.extend(p.submit(i))
            assert len(p._pending) <= 4
        assert len(out) >= 6  # the bound made the pool hand results back before the end
        out.extend(p.drain())
        assert [v for v, _ in out] == list(range(100, 110))
        assert os.getpid() not in {pid for _, pid in out}
        with pytest.raises(ValueError, match="bad chunk"):
            list(p.submit(-1)) + list(p.drain())
        with pytest.raises(DatanetError, match=r"_Custom: 1/2"):
            list(p.submit(-2)) + list(p.drain())
    finally:
        p.close()

    p = ChunkPool(work, 2, ahead=1)
    try:
        got = []
        for i in range(5):
            got.extend(p.submit(i))
            assert len(p._pending) <= 1
        got.extend(p.drain())
        assert [v for v, _ in got] == list(range(100, 105))
    finally:
        p.close()

    def dies(i: int) -> int:
        os._exit(3)  # as a worker the OS kills

    p = ChunkPool(dies, 2)
    try:
        with pytest.raises(WorkerLost, match=r"chunk worker process \(test_chunk_pool_runs_"
                                             r".*dies\) died mid-task") as err:
            list(p.submit(1)) + list(p.drain())
        assert err.value.retryable
    finally:
        p.close()
    with pytest.raises(DatanetError, match="2 or more workers"):
        ChunkPool(work, 1)


def test_forked_validation_gives_identical_results(tmp_path, monkeypatch) -> None:
    from datanet.store.layout import init_datanet
    from tests.conftest import TINY_SPEC

    submitted = []

    class Spy(ChunkPool):
        def submit(self, *args):
            submitted.append(self.work.__qualname__.split(".")[0])
            return super().submit(*args)

    monkeypatch.setattr("datanet.pipelines.pool.ChunkPool", Spy)
    monkeypatch.setattr("datanet.attribution.index.ChunkPool", Spy)
    handed = []
    take = ParseAhead.take

    def spy_take(self, path, time_us):
        i = self._index.get(path)
        deadline = time.monotonic() + 30  # the process claims the file first (no race)
        while i is not None and not os.path.exists(self._claim_path(i)):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        chunks = take(self, path, time_us)
        handed.append((Path(path).name, chunks is not None))
        return chunks

    shipped = ParseAhead.shipped

    def spy_shipped(self, batch):
        ref = shipped(self, batch)
        handed.append(("shipped as parsed", ref is not None))
        return ref

    monkeypatch.setattr(ParseAhead, "take", spy_take)
    monkeypatch.setattr(ParseAhead, "shipped", spy_shipped)
    inputs = _awkward_inputs(tmp_path)
    results = []
    for workers in (1, 2):
        store = init_datanet(tmp_path / f"w{workers}", TINY_SPEC.replace(
            "[limits]", f"[pipeline]\nbatch_rows = 2\nlocal_workers = {workers}\n\n[limits]", 1))
        r = run_datanet(store, inputs, runner="DirectRunner")
        con = connect(store)
        rows = {k: con.execute(f"SELECT * EXCLUDE (batch) FROM {k} ORDER BY ALL").fetchall()
                for k in ("accepted", "rejected", "deadletter", "votes")}
        files = {k: sorted((f.path, f.sha256, f.rows) for f in v)
                 for k, v in r.manifest.files.items()}
        results.append((r.batch_id, r.manifest.merkle_root, r.counts, rows, files, r.report))
        # with 2: every chunk (2 records each: more than the 4 a pool keeps in flight, so
        # results come back from process() and from finish_bundle) validated and decided, the
        # keyed shards resolved and each kind's files written in the workers (the attribution
        # n-grams of so few records stay in the driver; tests/attribution covers that pool)
        assert sorted(set(submitted)) == ([] if workers == 1 else
                                          ["_BatchValidate", "_DecideWrite", "_ResolveShard",
                                           "_WriteParts"])
        assert submitted.count("_BatchValidate") == (0 if workers == 1 else 6)
        # with 2, both files parsed ahead while the driver set up (.ahead), and each chunk
        # shipped to its worker in the file it was parsed into; none of it with 1
        assert sorted(handed) == ([] if workers == 1 else [
            ("a.jsonl", True), ("b.jsonl.gz", True), *[("shipped as parsed", True)] * 6])
    assert results[0] == results[1]
    assert pool_mod._WORK is None  # every pool closed, nothing of the run kept alive


def test_chunk_reports_merge_in_chunk_order_whoever_validated_them() -> None:
    from datanet.pipelines.run import merge_reports

    def entry(chunk, results):
        return {"kind": "_report", "chunk": chunk, "report": {
            "expectations": {"suite": "s", "batch_expectations": results},
            "pii": {"ner": "disabled"}}}

    entries = [entry("b", [{"n": 2}]), entry("a", [{"n": 1}]), entry("c", [])]
    want = {"expectations": {"suite": "s", "batch_expectations": [{"n": 1}, {"n": 2}]},
            "pii": {"ner": "disabled"}}
    assert merge_reports(entries) == want
    assert merge_reports(entries[::-1]) == want
    assert entries[1]["report"]["expectations"]["batch_expectations"] == [{"n": 1}]  # untouched


class _Tally(ForkedDoFn):
    """Doubles each number in a worker; its note (the worker's pid, 1) is counted in the
    driver."""

    def __init__(self, workers: int):
        self.workers = workers

    def work(self, element: int) -> tuple[list[int], dict[str, int]]:
        return [2 * element], {"elements": 1, "in_worker": int(os.getpid() != _DRIVER[0])}

    def received(self, note: dict[str, int]) -> None:
        self.count("tally", note)


_DRIVER = [os.getpid()]


@pytest.mark.parametrize("workers", [1, 2])
def test_notes_become_driver_side_counters(workers: int) -> None:
    """Counters a forked worker increments would be lost; its note is counted in the driver,
    so the pipeline's metrics are the same with and without workers (13 elements: more than
    the in-flight bound, so results come back through process() and finish_bundle)."""
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.testing.util import assert_that, equal_to

    from datanet.pipelines.run import _runner_object, beam_options

    p = beam.Pipeline(runner=_runner_object("DirectRunner"), options=beam_options("DirectRunner"))
    out = p | beam.Create(list(range(13)), reshuffle=False) | beam.ParDo(_Tally(workers))
    assert_that(out, equal_to([2 * i for i in range(13)]))
    result = p.run()
    result.wait_until_finish()
    got = {m.key.metric.name: m.committed for m in
           result.metrics().query(MetricsFilter().with_namespace("tally"))["counters"]}
    assert got == {"elements": 13, "in_worker": 13 if workers > 1 else 0}


def test_small_inputs_run_in_one_process_unless_workers_are_set() -> None:
    from datanet.pipelines.pool import POOL_MIN_INPUT_BYTES

    cores = usable_cores()
    assert local_workers(0, "DirectRunner", [], POOL_MIN_INPUT_BYTES - 1) == 1
    assert local_workers(0, "DirectRunner", [], POOL_MIN_INPUT_BYTES) == cores
    assert local_workers(0, "DirectRunner", [], None) == cores  # unknown (remote): the pool
    assert local_workers(2, "DirectRunner", [], 10) == 2  # set explicitly: honoured


def test_local_input_bytes(tmp_path) -> None:
    from datanet.pipelines.run import _local_bytes

    (tmp_path / "a.jsonl").write_bytes(b"x" * 100)
    (tmp_path / "b.jsonl.gz").write_bytes(b"y" * 10)
    assert _local_bytes([str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl.gz")]) == 140
    assert _local_bytes([str(tmp_path / "a.jsonl"), "s3://bucket/c.jsonl"]) is None
