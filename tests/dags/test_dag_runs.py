"""``dag.test()`` end to end on the embedded chain: first run, no-op re-run, one new file,
and a task that fails once (after its side effect) then succeeds on retry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import TINY_SPEC, record, write_jsonl
from tests.dags.conftest import EXAMPLE, drop, end_state, load_dags, make_datanet, run_dag

pytestmark = pytest.mark.airflow

DONE = {t: ("success", 1) for t in ("discover", "ingest", "commit", "anchor", "finality")}


@pytest.fixture(scope="module")
def outbox():
    return pytest.importorskip("datanet.anchoring.outbox",
                               reason="anchoring outbox not merged yet")


def test_example_datanet_end_to_end(tmp_path, airflow_env, outbox):
    from datanet.pipelines.run import run_datanet
    from datanet.store.layout import DatanetStore, init_datanet

    expected = json.loads((EXAMPLE / "expected.json").read_text())
    dn = make_datanet(tmp_path / "datanets", "cooking", (EXAMPLE / "datanet.toml").read_text())
    first = drop(dn, *sorted((EXAMPLE / "contributions").iterdir()))
    dag = load_dags(tmp_path / "datanets", airflow_env)["datanet_cooking-qa"]

    # 1. first run: one batch of the three files, anchored and final
    state, tasks, xcom = run_dag(dag)
    assert (state, tasks) == ("success", DONE)
    assert xcom["discover"] == [str(p) for p in first]
    s1 = end_state(dn)
    (b1,) = s1["batches"]
    assert b1["seq"] == 1 and b1["counts"]["input"] == expected["total_lines"] == 2000
    assert b1["sources"] == [f"inbox/{p.name}" for p in first]
    assert s1["anchors"] == {b1["batch_id"]: {
        "status": "FINAL", "root": b1["root"], "prev_root": "0x" + "00" * 32, "txs": 1,
        "nonce": s1["anchors"][b1["batch_id"]]["nonce"], "block": 2,
        "contract": s1["anchors"][b1["batch_id"]]["contract"]}}
    assert xcom["finality"] == {"available": True, "enabled": True, "rooted": 1,
                                "statuses": {b1["batch_id"]: "FINAL"}, "final": True}
    assert s1["ingested"] == [] and s1["runs"] == []
    # the DAG's batch is the batch `datanet run` makes of the same files
    ref = init_datanet(tmp_path / "ref", (EXAMPLE / "datanet.toml").read_text())
    run_datanet(ref, [str(p) for p in first])
    (m,) = DatanetStore(ref.root).manifests()
    assert (m.batch_id, dict(m.counts), m.merkle_root) == (
        b1["batch_id"], b1["counts"], b1["root"])

    # 2. nothing new: nothing committed, nothing sent
    state, tasks, xcom = run_dag(dag)
    assert (state, tasks) == ("success", DONE)
    assert xcom["discover"] == []
    assert xcom["ingest"]["committed"] is False and xcom["ingest"]["batch_id"] is None
    assert end_state(dn) == s1

    # 3. one new file: exactly one new batch, chained to the first and anchored
    (new,) = drop(dn, EXAMPLE / "more" / "part-4.jsonl")
    state, tasks, xcom = run_dag(dag)
    assert (state, tasks) == ("success", DONE)
    assert xcom["discover"] == [str(new)]
    s3 = end_state(dn)
    assert s3["batches"][0] == b1
    b2 = s3["batches"][1]
    assert len(s3["batches"]) == 2
    assert (b2["seq"], b2["sources"], b2["prev_root"]) == (2, ["inbox/part-4.jsonl"], b1["root"])
    assert b2["counts"]["input"] == sum(1 for _ in new.open()) > 0
    assert s3["anchors"][b2["batch_id"]]["status"] == "FINAL"
    assert s3["anchors"][b2["batch_id"]]["prev_root"] == b1["root"]
    assert s3["anchors"][b1["batch_id"]] == s1["anchors"][b1["batch_id"]]


# --- retries -----------------------------------------------------------------------------


def _tiny_datanet(parent: Path) -> Path:
    dn = make_datanet(parent, "tiny", TINY_SPEC)
    (dn / "inbox").mkdir()
    write_jsonl(dn / "inbox" / "a.jsonl", [record(i) for i in range(4)])
    write_jsonl(dn / "inbox" / "b.jsonl", [record(i) for i in range(4, 7)] + ["{not json"])
    return dn


def _crash_once_after(monkeypatch, module, attr: str, call: int) -> list[int]:
    """Make ``module.attr`` run for real, then raise once, on its ``call``-th call: a worker
    dying after the side effect but before Airflow records the task's success."""
    real = getattr(module, attr)
    calls = [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        out = real(*args, **kwargs)
        if calls[0] == call:
            raise RuntimeError(f"injected crash after {attr} call {call}")
        return out

    monkeypatch.setattr(module, attr, wrapper)
    return calls


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """One fixed parent folder: dead-letter ids (hence batch ids) depend on input paths, so
    the clean run and the retried runs must see the same paths."""
    return tmp_path_factory.mktemp("tiny-root")


@pytest.fixture(scope="module")
def clean_tiny_state(outbox, tiny_root, airflow_home):
    """End state of one clean run of the tiny datanet (then the datanet is removed)."""
    mp = pytest.MonkeyPatch()
    try:
        for var in ("DATANET_AIRFLOW_RETRY_DELAY", "DATANET_AIRFLOW_RETRIES"):
            mp.setenv(var, "0")
        dn = _tiny_datanet(tiny_root)
        state, tasks, _ = run_dag(load_dags(tiny_root, mp)["datanet_tiny"])
        assert (state, tasks) == ("success", DONE)
        return end_state(dn)
    finally:
        mp.undo()
        shutil.rmtree(tiny_root / "tiny", ignore_errors=True)


@pytest.fixture
def fresh_tiny(tiny_root, clean_tiny_state):
    """The tiny datanet recreated at the clean run's path."""
    yield _tiny_datanet(tiny_root)
    shutil.rmtree(tiny_root / "tiny", ignore_errors=True)


@pytest.mark.parametrize(("task", "target", "attr", "call"), [
    ("ingest", "datanet.pipelines.run", "run_datanet", 1),
    ("anchor", "datanet.anchoring.outbox", "anchor_pending", 1),
    ("finality", "datanet.anchoring.outbox", "anchor_pending", 2),
])
def test_task_failing_once_then_retried_ends_like_a_clean_run(
        outbox, fresh_tiny, tiny_root, airflow_env, clean_tiny_state, task, target, attr,
        call):
    import importlib

    dn = fresh_tiny
    calls = _crash_once_after(airflow_env, importlib.import_module(target), attr, call)
    state, tasks, _ = run_dag(load_dags(tiny_root, airflow_env)["datanet_tiny"])
    assert state == "success"
    assert tasks == {**DONE, task: ("success", 2)}
    assert calls[0] >= call
    got = end_state(dn)
    assert got == clean_tiny_state
    (batch,) = got["batches"]
    assert (batch["counts"]["input"], batch["counts"]["deadletter"]) == (8, 1)
    assert got["anchors"][batch["batch_id"]]["txs"] == 1  # the retry sent nothing new


def test_commit_failing_once_records_empty_input_once(tmp_path, airflow_env):
    from datanet.orchestration import tasks as steps

    dn = make_datanet(tmp_path, "tiny", TINY_SPEC)
    (dn / "inbox").mkdir()
    (dn / "inbox" / "empty.jsonl").write_bytes(b"")
    _crash_once_after(airflow_env, steps, "write_atomic", 1)
    dag = load_dags(tmp_path, airflow_env)["datanet_tiny"]
    state, tasks, xcom = run_dag(dag)
    assert (state, tasks) == ("success", {**DONE, "commit": ("success", 2)})
    assert xcom["commit"]["recorded"] == [str(dn / "inbox" / "empty.jsonl")]
    got = end_state(dn)
    assert got["batches"] == [] and got["anchors"] == {}
    assert [(srcs, reason) for _, srcs, reason, _ in got["ingested"]] == [
        (["inbox/empty.jsonl"], "no_records")]
    # recorded: the next run does not pick it up again
    state, tasks, xcom = run_dag(dag)
    assert (state, xcom["discover"], end_state(dn)) == ("success", [], got)
