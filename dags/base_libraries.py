"""Airflow DAG: the base libraries (基础库), scheduled on the curated assets of the resources feeding them.

Thin: see citylake/drivers/airflow/factory.py (build_base_dag) and citylake/stages/base.py.
"""

from citylake.drivers.airflow.factory import build_base_dag

base_libraries = build_base_dag()
