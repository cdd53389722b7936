"""The DAG folder parses cleanly into one DAG per datanet, scheduled by its spec."""

from __future__ import annotations

import pytest

from tests.conftest import TINY_SPEC
from tests.dags.conftest import EXAMPLE, load_dags, make_datanet, run_dag

pytestmark = pytest.mark.airflow

TASKS = ["discover", "ingest", "commit", "anchor", "finality"]


def _spec(sid: str, schedule: str | None) -> str:
    text = TINY_SPEC.replace('id = "tiny"', f'id = "{sid}"')
    return (f'schedule = "{schedule}"\n' if schedule else "") + text


@pytest.fixture
def root(tmp_path):
    """Seven datanet directories (one broken, one badly scheduled, one reusing an id) and two
    non-datanets."""
    root = tmp_path / "datanets"
    make_datanet(root, "cooking", (EXAMPLE / "datanet.toml").read_text())
    make_datanet(root, "cooking2", (EXAMPLE / "datanet.toml").read_text())  # same id
    make_datanet(root, "hourly", _spec("tiny-hourly", "@hourly"))
    make_datanet(root, "manual", _spec("tiny-manual", None))
    make_datanet(root, "cron", _spec("tiny-cron", "30 2 * * 1-5"))
    bad_cron = make_datanet(root, "badcron", _spec("tiny-badcron", None))
    (bad_cron / "datanet.toml").write_text(_spec("tiny-badcron", "every day at noon"))
    broken = make_datanet(root, "broken", _spec("tiny-broken", None))
    (broken / "datanet.toml").write_text('id = "tiny-broken"\n[limits]\nmin_chars = -4\n')
    (root / "notes").mkdir()
    (root / "notes" / "README.md").write_text("not a datanet")
    (root / "stray.toml").write_text('id = "stray"\n')
    return root


def test_one_dag_per_datanet_with_its_schedule(root, airflow_env, caplog):
    dags = load_dags(root, airflow_env)
    assert f"{root / 'cooking2'}: datanet id 'cooking-qa' is also used by {root / 'cooking'}" \
        in caplog.text
    assert sorted(dags) == [
        "datanet_cooking-qa", "datanet_tiny-badcron", "datanet_tiny-broken",
        "datanet_tiny-cron", "datanet_tiny-hourly", "datanet_tiny-manual",
    ]
    expr = {d: getattr(dags[d].timetable, "expression", None) for d in dags}
    assert expr == {
        "datanet_cooking-qa": "0 0 * * *",
        "datanet_tiny-hourly": "0 * * * *",
        "datanet_tiny-cron": "30 2 * * 1-5",
        "datanet_tiny-manual": None,
        "datanet_tiny-badcron": None,
        "datanet_tiny-broken": None,
    }
    for dag in dags.values():
        assert [t.task_id for t in dag.topological_sort()] == TASKS
        assert (dag.max_active_runs, dag.catchup) == (1, False)
        assert dag.fileloc.endswith("dags/datanet_dags.py")
        assert dag.get_task("ingest").retries == 1  # DATANET_AIRFLOW_RETRIES from the fixture
    assert dags["datanet_cooking-qa"].doc_md.startswith(f"Datanet at `{root / 'cooking'}`")


def test_spec_errors_fail_the_first_task(root, airflow_env):
    from airflow.sdk.exceptions import AirflowFailException

    from datanet.errors import SpecError

    dags = load_dags(root, airflow_env)
    with pytest.raises(AirflowFailException) as bad_cron:
        dags["datanet_tiny-badcron"].get_task("discover").python_callable()
    cause = bad_cron.value.__cause__
    assert type(cause) is SpecError
    assert (cause.key, cause.value) == ("schedule", "every day at noon")
    assert "is not a valid Airflow schedule" in str(bad_cron.value)
    with pytest.raises(AirflowFailException) as broken:
        dags["datanet_tiny-broken"].get_task("discover").python_callable()
    cause = broken.value.__cause__
    assert type(cause) is SpecError
    assert (cause.key, cause.value) == ("limits.min_chars", -4)
    assert str(broken.value) == f"SpecError: {cause}"


def test_spec_error_fails_once_without_retries(root, airflow_env, caplog):
    """A terminal error is not retried, however many retries the DAG allows (issue 17: a bad
    spec retried with back-off for 10 minutes)."""
    airflow_env.setenv("DATANET_AIRFLOW_RETRIES", "3")
    dags = load_dags(root, airflow_env)
    dag = dags["datanet_tiny-broken"]
    assert dag.get_task("discover").retries == 3
    state, tasks, _ = run_dag(dag)
    assert state == "failed"
    assert tasks == {"discover": ("failed", 1), "ingest": ("upstream_failed", 0),
                     "commit": ("upstream_failed", 0), "anchor": ("upstream_failed", 0),
                     "finality": ("upstream_failed", 0)}
    assert list((root / "broken" / "batches").glob("*.json")) == []


def test_root_from_airflow_variable_and_missing_root(tmp_path, airflow_env):
    from airflow.dag_processing.dagbag import DagBag

    from tests.dags.conftest import DAGS_FOLDER

    make_datanet(tmp_path, "one", _spec("via-variable", "@weekly"))
    airflow_env.setenv("AIRFLOW_VAR_DATANET_ROOT", str(tmp_path))
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert (bag.import_errors, sorted(bag.dags)) == ({}, ["datanet_via-variable"])

    airflow_env.delenv("AIRFLOW_VAR_DATANET_ROOT")
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert (bag.import_errors, sorted(bag.dags)) == ({}, [])


def test_only_terminal_datanet_errors_skip_retries():
    from airflow.sdk.exceptions import AirflowFailException

    from datanet.errors import CommitConflict, IntakeError
    from datanet.orchestration.dag_factory import _fail_fast

    with pytest.raises(AirflowFailException) as terminal:
        with _fail_fast():
            raise IntakeError("inbox/x.jsonl: no such file")
    assert str(terminal.value) == "IntakeError: inbox/x.jsonl: no such file"
    assert type(terminal.value.__cause__) is IntakeError
    for retried in (CommitConflict("batch 0x01 committed by another run"), OSError("disk full")):
        with pytest.raises(type(retried)) as kept:
            with _fail_fast():
                raise retried
        assert kept.value is retried
