"""Scheduling datanet runs: scheduler-neutral steps (:mod:`.tasks`) and the Airflow DAG
factory (:mod:`.dag_factory`, needs the ``airflow`` extra)."""
