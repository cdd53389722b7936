"""The datanet pipeline on Beam's DaskRunner (dask.distributed LocalCluster of 2 processes).

Same committed rows and Merkle roots as the DirectRunner; a worker killed mid-run either fails
the run with nothing committed (no retries allowed) or gets its task retried (the default),
and a re-run commits exactly one correct batch.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import dask
import distributed  # noqa: F401  (its config defaults must load before dask.config.set)
import pytest

from datanet.errors import DatanetError
from datanet.pipelines.dask import check_cluster, dask_beam_args, local_cluster, run_on_dask
from datanet.pipelines.run import run_datanet
from datanet.store.layout import init_datanet
from datanet.store.query import VIEWS, connect
from tests.conftest import ADDRS, TINY_SPEC, record, write_jsonl

pytestmark = pytest.mark.dask

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cooking-qa"


def _committed(store) -> dict[str, list[tuple]]:
    """Every committed row of every view (file names not involved), plus the batch chain."""
    con = connect(store)
    rows = {kind: con.execute(f"SELECT * FROM {kind} ORDER BY ALL").fetchall()
            for kind in VIEWS if kind != "batches"}
    rows["batches"] = [
        (m.seq, m.batch_id, m.merkle_root, m.prev_root, m.prev_batch, m.leaf_count,
         tuple(sorted(m.counts.items())), tuple(sorted(m.sources)),
         tuple(sorted((k, sum(f.rows for f in fs)) for k, fs in m.files.items())))
        for m in store.manifests()]
    return rows


def _example_runs(store, run) -> list:
    return [run(store, [str(EXAMPLE / "contributions" / "*")]),
            run(store, [str(EXAMPLE / "more" / "part-4.jsonl")])]


def test_example_datanet_identical_on_direct_and_dask(tmp_path):
    spec = (EXAMPLE / "datanet.toml").read_text(encoding="utf-8")
    direct = init_datanet(tmp_path / "direct" / "cooking-qa", spec)
    on_dask = init_datanet(tmp_path / "dask" / "cooking-qa", spec)
    d = _example_runs(direct, lambda s, i: run_datanet(s, i, runner="DirectRunner"))
    with local_cluster(2) as address:
        k = _example_runs(on_dask, lambda s, i: run_on_dask(s, i, address=address))
        again = run_on_dask(on_dask, [str(EXAMPLE / "more" / "part-4.jsonl")], address=address)
    assert [r.committed for r in d] == [r.committed for r in k] == [True, True]
    assert [r.manifest.merkle_root for r in k] == [r.manifest.merkle_root for r in d]
    assert [r.counts for r in k] == [r.counts for r in d]
    assert d[0].counts["input"] == 2000
    assert d[0].manifest.merkle_root is not None
    assert k[1].manifest.prev_root == d[0].manifest.merkle_root
    want, got = _committed(direct), _committed(on_dask)
    assert {kind: len(v) for kind, v in got.items()} == {kind: len(v) for kind, v in want.items()}
    assert len(want["accepted"]) > 1000 and want["rejected"] and want["deadletter"]
    assert got == want
    # a re-run on Dask is a no-op, as on the DirectRunner
    assert not again.committed and again.batch_id == k[1].batch_id
    assert len(on_dask.manifests()) == 2


def test_cli_runner_dask_starts_and_stops_its_own_cluster(tmp_path):
    from typer.testing import CliRunner

    from datanet.cli import app

    store = init_datanet(tmp_path / "dn", TINY_SPEC)
    path = write_jsonl(tmp_path / "in.jsonl", [record(i) for i in range(8)] + [b"{bad"])
    before = {t.name for t in threading.enumerate()}
    r = CliRunner().invoke(app, ["run", str(store.root), str(path), "--runner", "dask",
                                 "--workers", "2", "--no-anchor"])
    assert r.exit_code == 0, r.output
    assert "9 records → 8 accepted, 0 rejected, 0 needs review, 1 dead-letter" in r.output
    (manifest,) = store.manifests()
    reference = init_datanet(tmp_path / "ref", TINY_SPEC)
    assert run_datanet(reference, [str(path)], runner="DirectRunner").manifest.merkle_root == \
        manifest.merkle_root
    assert _committed(store) == _committed(reference)
    # the cluster is gone: no worker process, no client / scheduler thread (distributed's
    # process-wide offload pool is not part of a cluster)
    time.sleep(0.5)
    assert multiprocessing.active_children() == []
    left = {t.name for t in threading.enumerate()} - before
    assert not [n for n in left if ("Dask" in n or "distributed" in n.lower())
                and not n.startswith("Dask-Offload")], left


def test_dask_address_errors_are_explained():
    unreachable = r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9 "
    with pytest.raises(DatanetError, match=unreachable):
        check_cluster("tcp://127.0.0.1:9", timeout=2)
    with pytest.raises(DatanetError, match="conflicts with --runner dask"):
        dask_beam_args("tcp://127.0.0.1:8786", ["--runner=DirectRunner"])
    assert dask_beam_args("tcp://h:1", ["--dask_npartitions=4"]) == [
        "--dask_client_address=tcp://h:1", "--dask_npartitions=4"]


# ---------------------------------------------------------------------------------------------
# a worker process dies mid-run


#: the runner, not the validators, is under test here: intake, limits and exact dedup only
BIG_SPEC = TINY_SPEC + "".join(f"\n[validators.{name}]\nenabled = false\n"
                               for name in ("signature", "pii"))


def _big_input(tmp_path: Path, n: int = 12000) -> Path:
    """One file large enough that parsing it takes a worker a visible moment."""
    filler = " and then keep stirring gently until the sauce coats the back of a spoon"
    recs = [record(i, text=record(i)["text"] + filler * (1 + i % 3)) for i in range(n)]
    recs[100] = dict(recs[3], contributor=ADDRS[0])    # exact duplicate: rejected
    recs[200] = dict(recs[5])                          # resubmission: dead-letter
    return write_jsonl(tmp_path / "big.jsonl", recs)


def _worker_pids(address: str) -> list[int]:
    from distributed import Client

    with Client(address, set_as_default=False) as client:
        return sorted(client.run(os.getpid).values())


def _kill_when_reading(pids: list[int], path: Path, killed: list[int], stop: threading.Event
                       ) -> None:
    """SIGKILL the first worker process that has ``path`` open (it is inside a task)."""
    target = os.path.realpath(path)
    while not stop.is_set():
        for pid in pids:
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except FileNotFoundError:
                continue
            for fd in fds:
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                        return
                except OSError:
                    continue
        time.sleep(0.002)


def _run_with_kill(store, path: Path, address: str) -> tuple[object, list[int]]:
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_when_reading,
                              args=(_worker_pids(address), path, killed, stop))
    killer.start()
    try:
        try:
            outcome: object = run_on_dask(store, [str(path)], address=address)
        except DatanetError as exc:
            outcome = exc
    finally:
        stop.set()
        killer.join()
    return outcome, killed


@pytest.fixture(scope="module")
def big_reference(tmp_path_factory):
    """The big input and its DirectRunner result (committed rows and root)."""
    tmp = tmp_path_factory.mktemp("big")
    path = _big_input(tmp)
    store = init_datanet(tmp / "direct", BIG_SPEC)
    result = run_datanet(store, [str(path)], runner="DirectRunner")
    assert result.counts == {"accepted": 11998, "rejected": 1, "quarantine": 0,
                             "deadletter": 1, "input": 12000}
    return path, _committed(store)


def test_killed_worker_without_retries_commits_nothing_and_rerun_commits_one_batch(
        tmp_path, big_reference):
    path, want = big_reference
    store = init_datanet(tmp_path / "dn", BIG_SPEC)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            local_cluster(2) as address:
        outcome, killed = _run_with_kill(store, path, address)
        assert len(killed) == 1
        assert isinstance(outcome, DatanetError), outcome
        assert "KilledWorker" in str(outcome) and "nothing was committed" in str(outcome)
        assert store.manifests() == []
        assert all(not rows for rows in _committed(store).values())
        # the nanny restarted the worker; the same input again commits exactly one batch
        result = run_on_dask(store, [str(path)], address=address)
    assert result.committed and result.manifest.seq == 1
    assert len(store.manifests()) == 1
    assert _committed(store) == want


def test_killed_worker_with_retries_still_commits_the_correct_batch(tmp_path, big_reference):
    path, want = big_reference
    for attempt in range(3):  # the killer polls /proc: on a busy machine it can miss the read
        store = init_datanet(tmp_path / f"dn{attempt}", BIG_SPEC)
        with local_cluster(2) as address:
            before = _worker_pids(address)
            outcome, killed = _run_with_kill(store, path, address)
            after = _worker_pids(address)
        if killed:
            break
    assert len(killed) == 1 and killed[0] in before and killed[0] not in after
    assert not isinstance(outcome, Exception), outcome
    assert outcome.committed
    assert len(store.manifests()) == 1
    assert _committed(store) == want


# ---------------------------------------------------------------------------------------------
# what the DaskRunner (Beam 2.77) cannot run correctly must not enter the graph


def test_graph_avoids_what_the_dask_runner_mishandles(tmp_path):
    """No multi-output ParDo (the DaskRunner hands every tag's elements to each consumer) and
    no datanet DoFn that emits from ``finish_bundle`` (the DaskRunner collects outputs before
    calling it): the forked-worker DoFns emit there only with a pool, which a graph for any
    runner but the in-process DirectRunner never has (``workers`` = 1)."""
    import apache_beam as beam
    from apache_beam.pipeline import PipelineVisitor

    from datanet.pipelines.dask import DASK_RUNNER
    from datanet.pipelines.pool import ForkedDoFn, local_workers
    from datanet.pipelines.run import build_pipeline
    from datanet.validators.registry import default_spec_text

    store = init_datanet(tmp_path / "dn", default_spec_text("guard"))
    p = beam.Pipeline(runner="DirectRunner")
    build_pipeline(p, store.spec, [str(tmp_path / "*.jsonl")], root=str(store.root),
                   history=store.history(), listing_path=str(tmp_path / "files.json"))
    pardos: list[str] = []
    problems: list[str] = []
    forked: list[int] = []

    class Visitor(PipelineVisitor):
        def visit_transform(self, node) -> None:
            if not isinstance(node.transform, beam.ParDo):
                return
            pardos.append(node.full_label)
            if len(node.outputs) > 1:
                problems.append(f"{node.full_label}: {len(node.outputs)} outputs")
            fn = type(node.transform.fn)
            if fn.__module__.startswith("datanet") and \
                    fn.finish_bundle is not beam.DoFn.finish_bundle:
                if isinstance(node.transform.fn, ForkedDoFn):
                    forked.append(node.transform.fn.workers)
                    if node.transform.fn.workers == 1 and not list(
                            node.transform.fn.finish_bundle() or ()):
                        return
                problems.append(f"{node.full_label}: {fn.__name__}.finish_bundle")

    p.visit(Visitor())
    assert any("DecideWrite" in label for label in pardos)
    assert any("Parse" in label for label in pardos)
    assert problems == []
    # validate, decide, write parts and one resolve per keyed validator (3 by default)
    assert forked == [1] * 6
    assert local_workers(0, DASK_RUNNER, []) == 1
