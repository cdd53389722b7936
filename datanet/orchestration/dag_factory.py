"""Airflow 3 DAG factory: one DAG per datanet found under a root folder.

The root is named by the ``DATANET_ROOT`` environment variable or else the Airflow Variable
``datanet_root`` (which Airflow also reads from ``AIRFLOW_VAR_DATANET_ROOT``). Every
``<root>/<name>/datanet.toml`` (or ``<root>/datanet.toml`` itself) is a datanet directory as
made by ``datanet init``; its DAG ``datanet_<id>`` runs on the spec's ``schedule`` (cron or
preset; none = manual runs only) and ingests new files dropped into ``<datanet>/inbox/``:

    discover → ingest (Beam, commits the batch) → commit (check + ingested record)
             → anchor (send) → finality (sensor until every batch is FINAL)

Parsing is cheap (TOML only, no Beam, no spec validation): a spec error surfaces as a failure
of the first task, with the message naming the key, instead of a DAG that silently vanishes.
Errors a retry cannot fix (``DatanetError.retryable`` False) fail the task at once, without
retries; store and chain errors, and any non-datanet exception, keep their retries.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from datanet.errors import DatanetError, SpecError

__all__ = [
    "ROOT_ENV",
    "ROOT_VARIABLE",
    "BEAM_ARGS_ENV",
    "DEFAULT_ARGS",
    "default_args",
    "datanet_root",
    "find_datanets",
    "build_dag",
    "build_dags",
]

log = logging.getLogger(__name__)

ROOT_ENV = "DATANET_ROOT"
ROOT_VARIABLE = "datanet_root"
#: Extra Beam flags for every run of this deployment (space-separated, shell-style quoting),
#: e.g. ``--dask_client_address=tcp://scheduler:8786``; a run's ``beam_args`` param adds more.
BEAM_ARGS_ENV = "DATANET_BEAM_ARGS"
SPEC_FILE = "datanet.toml"

#: Retries for transient failures (RPC down, commit conflict with a concurrent CLI run);
#: every task is idempotent, so a retry never duplicates a batch or a transaction.
#: ``DATANET_AIRFLOW_RETRIES`` / ``DATANET_AIRFLOW_RETRY_DELAY`` (seconds) override them.
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "datanet",
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
}
RETRIES_ENV = "DATANET_AIRFLOW_RETRIES"
RETRY_DELAY_ENV = "DATANET_AIRFLOW_RETRY_DELAY"
#: Finality sensor: poke every 30 s (Ethereum's slot is 12 s; 12 confirmations ≈ 2.4 min),
#: give up after 6 h (a stuck transaction is replaced by the outbox long before that).
FINALITY_POKE_SECONDS = 30
FINALITY_TIMEOUT_SECONDS = 6 * 3600
START_DATE = datetime(2024, 1, 1)


@contextmanager
def _fail_fast() -> Iterator[None]:
    """Re-raise a terminal datanet error as Airflow's non-retryable ``AirflowFailException``
    (chained, so the original stays in the log and in ``__cause__``)."""
    try:
        yield
    except DatanetError as exc:
        if exc.retryable:
            raise
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def datanet_root() -> str | None:
    """The configured root folder (env var first: no metadata DB hit at parse time)."""
    root = os.environ.get(ROOT_ENV)
    if root:
        return root
    from airflow.sdk import Variable

    try:
        return Variable.get(ROOT_VARIABLE, default=None)
    except Exception as exc:  # no metadata DB / API server reachable while parsing
        log.warning("cannot read Airflow Variable %s: %s", ROOT_VARIABLE, exc)
        return None


def find_datanets(root: str | Path) -> list[Path]:
    """Datanet directories under ``root`` (one level deep, or root itself), sorted."""
    base = Path(root)
    if (base / SPEC_FILE).is_file():
        return [base.resolve()]
    if not base.is_dir():
        log.warning("%s=%s is not a directory: no datanet DAGs", ROOT_ENV, root)
        return []
    return sorted(p.parent.resolve() for p in base.glob(f"*/{SPEC_FILE}") if p.is_file())


def _peek(path: Path) -> tuple[str | None, Any]:
    """(id, schedule) read from the spec without validating it; Nones when unreadable."""
    try:
        data = tomllib.loads((path / SPEC_FILE).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None, None
    sid = data.get("id")
    return (sid if isinstance(sid, str) and sid else None), data.get("schedule")


def default_args() -> dict[str, Any]:
    """:data:`DEFAULT_ARGS` with the environment's overrides applied."""
    from datanet.schemas.config import check_range

    args = dict(DEFAULT_ARGS)
    if os.environ.get(RETRIES_ENV):
        args["retries"] = int(os.environ[RETRIES_ENV])
        check_range(RETRIES_ENV, args["retries"], 0, 100)
    if os.environ.get(RETRY_DELAY_ENV):
        seconds = float(os.environ[RETRY_DELAY_ENV])
        check_range(RETRY_DELAY_ENV, seconds, 0.0, 86400.0)
        args["retry_delay"] = timedelta(seconds=seconds)
    return args


def _dag_id(name: str) -> str:
    return "datanet_" + "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def build_dag(path: str | Path, *, dag_id: str | None = None, schedule: Any = None,
              schedule_error: tuple[Any, str] | None = None) -> Any:
    """The DAG of one datanet directory.

    ``schedule_error`` = (bad value, what is allowed): the DAG is built unscheduled and its
    first task fails with that message, so the operator sees it in the UI.
    """
    from airflow.sdk import DAG, Param, PokeReturnValue, task

    from datanet.orchestration import tasks as steps

    path = str(Path(path).resolve())
    dag_id = dag_id or _dag_id(Path(path).name)

    with DAG(
        dag_id=dag_id,
        schedule=schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,  # batches form a chain: one run at a time per datanet
        auto_register=False,  # only DAGs returned by build_dags (a rejected one is dropped)
        default_args=default_args(),
        tags=["datanet"],
        params={"beam_args": Param([], type="array",
                                   description="extra Beam flags for this run")},
        doc_md=f"Datanet at `{path}`: ingests new files from `{path}/inbox/`.",
    ) as dag:

        @task
        def discover() -> list[str]:
            """New inbox files (validates the spec first, so spec errors fail here)."""
            with _fail_fast():
                if schedule_error:
                    raise SpecError("schedule", schedule_error[0], schedule_error[1],
                                    source=f"{path}/{SPEC_FILE}")
                return steps.discover(path)

        @task
        def ingest(inputs: list[str], params: dict[str, Any] | None = None) -> dict[str, Any]:
            """Beam pipeline over the new files; commits one batch (none on a re-run)."""
            import shlex

            extra = shlex.split(os.environ.get(BEAM_ARGS_ENV, ""))
            extra += list((params or {}).get("beam_args") or [])
            with _fail_fast():
                return steps.ingest(path, inputs, beam_args=extra).to_json()

        @task
        def commit(outcome: dict[str, Any]) -> dict[str, Any]:
            """The batch is committed; sources no manifest names get an ingested record."""
            with _fail_fast():
                return steps.confirm_commit(path, steps.IngestOutcome.from_json(outcome))

        @task
        def anchor(_committed: dict[str, Any]) -> dict[str, Any]:
            """Send the Merkle roots of committed, unanchored batches (resumes the outbox)."""
            with _fail_fast():
                return steps.anchor(path).to_json()

        @task.sensor(poke_interval=FINALITY_POKE_SECONDS, timeout=FINALITY_TIMEOUT_SECONDS,
                     mode="reschedule")
        def finality(_anchored: dict[str, Any]) -> PokeReturnValue:
            """Every rooted batch is FINAL on chain."""
            with _fail_fast():
                report = steps.finality(path)
            return PokeReturnValue(is_done=report.final, xcom_value=report.to_json())

        finality(anchor(commit(ingest(discover()))))
    return dag


def build_dags(root: str | Path | None = None) -> dict[str, Any]:
    """``{dag_id: DAG}`` for every datanet under ``root`` (default: :func:`datanet_root`)."""
    root = root if root is not None else datanet_root()
    if not root:
        log.warning("set %s or the Airflow Variable %s to a folder of datanets",
                    ROOT_ENV, ROOT_VARIABLE)
        return {}
    dags: dict[str, Any] = {}
    paths: dict[str, Path] = {}
    for path in find_datanets(root):
        sid, schedule = _peek(path)
        dag_id = _dag_id(sid or path.name)
        if dag_id in dags:
            log.error("%s: datanet id %r is also used by %s; no DAG for this directory "
                      "(give each datanet its own id)", path, sid, paths[dag_id])
            continue
        paths[dag_id] = path
        if schedule is not None and not isinstance(schedule, str):
            dags[dag_id] = build_dag(path, dag_id=dag_id, schedule_error=(
                schedule, "must be a cron expression or an Airflow preset such as '@daily'"))
            continue
        try:
            dag = build_dag(path, dag_id=dag_id, schedule=schedule)
            dag.timetable.validate()  # what the DAG processor checks (cron syntax)
            dags[dag_id] = dag
        except Exception as exc:  # an unparseable cron string
            log.error("%s: schedule %r rejected by Airflow: %s", path, schedule, exc)
            dags[dag_id] = build_dag(path, dag_id=dag_id, schedule=None, schedule_error=(
                schedule, f"is not a valid Airflow schedule ({exc})"))
    return dags
