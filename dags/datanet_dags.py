"""Airflow DAG file: one DAG per datanet under $DATANET_ROOT (or Variable ``datanet_root``).

Point Airflow's ``dags_folder`` at this folder (or copy this file into yours); the logic lives
in :mod:`datanet.orchestration.dag_factory` so that upgrading the package upgrades the DAGs.
"""

from __future__ import annotations

from datanet.orchestration.dag_factory import build_dags

# Airflow collects module-level DAG objects.
globals().update(build_dags())
