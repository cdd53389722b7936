"""Airflow in-process for tests: a throw-away AIRFLOW_HOME with a sqlite metadata DB, the
repository's ``dags/`` as the DAG folder, no webserver, no scheduler, nothing online."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "dags"
EXAMPLE = REPO / "examples" / "cooking-qa"


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory):
    """Configure and migrate an Airflow metadata DB before airflow is first imported."""
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    pytest.importorskip("airflow.sdk", reason="needs the airflow extra")
    from airflow.utils import db

    db.initdb()
    yield home
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def airflow_env(airflow_home, monkeypatch):
    """Per-test DAG settings: immediate retries, no stray deployment variables."""
    monkeypatch.setenv("DATANET_AIRFLOW_RETRY_DELAY", "0")
    monkeypatch.setenv("DATANET_AIRFLOW_RETRIES", "1")
    for var in ("DATANET_ROOT", "AIRFLOW_VAR_DATANET_ROOT", "DATANET_BEAM_ARGS"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def load_dags(root: Path, monkeypatch) -> dict[str, Any]:
    """Parse the DAG folder like the DAG processor does, with DATANET_ROOT=root."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("DATANET_ROOT", str(root))
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    return bag.dags


def run_dag(dag) -> tuple[str, dict[str, tuple[str, int]], dict[str, Any]]:
    """``dag.test()``: (run state, task -> (state, tries), task -> XCom return value)."""
    dr = dag.test()
    tis = {ti.task_id: ti for ti in dr.get_task_instances()}
    states = {t: (str(ti.state), ti.try_number) for t, ti in tis.items()}
    values = {t: _xcom(dag.dag_id, dr.run_id, t) for t in tis}
    return str(dr.state), states, values


def _xcom(dag_id: str, run_id: str, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter_by(
            dag_id=dag_id, run_id=run_id, task_id=task_id, key="return_value").one_or_none()
        return None if row is None else XComModel.deserialize_value(row)


def make_datanet(root: Path, name: str, spec_text: str) -> Path:
    """``datanet init <root>/<name>`` with ``spec_text``; returns the datanet directory."""
    from datanet.store.layout import init_datanet

    return Path(init_datanet(root / name, spec_text).root)


def drop(datanet: Path, *files: Path) -> list[Path]:
    """Copy files into the datanet's inbox (like an upstream delivery)."""
    inbox = datanet / "inbox"
    inbox.mkdir(exist_ok=True)
    out = []
    for f in files:
        shutil.copy(f, inbox / f.name)
        out.append(inbox / f.name)
    return out


def end_state(datanet: Path) -> dict[str, Any]:
    """Everything a run leaves behind, location-independent, minus wall-clock times."""
    from datanet.store.layout import DatanetStore

    store = DatanetStore(datanet)
    batches = [
        {
            "seq": m.seq, "batch_id": m.batch_id, "counts": dict(m.counts),
            "root": m.merkle_root, "prev_root": m.prev_root, "leaves": m.leaf_count,
            "sources": sorted(os.path.relpath(s, datanet) for s in m.sources),
            "files": {k: sorted((f.path, f.sha256) for f in v) for k, v in m.files.items()},
        }
        for m in store.manifests()
    ]
    anchors = {}
    for p in sorted((datanet / "anchors").glob("0x*.json")):
        a = json.loads(p.read_text())
        anchors[a["batch_id"]] = {
            "status": a["status"], "root": a["root"], "prev_root": a["prev_root"],
            "txs": len(a["attempts"]), "nonce": a["nonce"], "block": a["block_number"],
            "contract": a["contract"],
        }
    ingested = []
    for p in sorted((datanet / "ingested").glob("*.json")):
        r = json.loads(p.read_text())
        ingested.append((p.name, sorted(os.path.relpath(s, datanet) for s in r["sources"]),
                         r["reason"], r["batch_id"]))
    parquet = sorted(str(p.relative_to(datanet)) for p in datanet.rglob("*.parquet"))
    runs = sorted(os.listdir(datanet / "_runs")) if (datanet / "_runs").exists() else []
    return {"batches": batches, "anchors": anchors, "ingested": ingested,
            "parquet": parquet, "runs": runs}
