"""Airflow DAG: daily freshness report: each resource's last curated update against its 更新周期.

Thin: see citylake/orchestration/factory.py (build_freshness_dag) and citylake/freshness.py.
"""

from citylake.orchestration.factory import build_freshness_dag

freshness = build_freshness_dag()
