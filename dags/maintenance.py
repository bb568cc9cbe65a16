"""Airflow DAG: nightly table maintenance: compact each resource's Iceberg tables, expire old snapshots.

Thin: see citylake/drivers/airflow/factory.py (build_maintenance_dag) and citylake/stages/maintain.py.
"""

from citylake.drivers.airflow.factory import build_maintenance_dag

maintenance = build_maintenance_dag()
