"""Airflow DAG: daily freshness report: each resource's last curated update against its 更新周期.

Thin: see citylake/drivers/airflow/factory.py (build_freshness_dag) and citylake/stages/freshness.py.
"""

from citylake.drivers.airflow.factory import build_freshness_dag

freshness = build_freshness_dag()
