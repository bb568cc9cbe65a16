"""Airflow DAG: directory publication, scheduled on every curated resource asset (any update republishes).

Thin: see citylake/drivers/airflow/factory.py (build_publication_dag) and citylake/stages/publish/publish.py.
"""

from citylake.drivers.airflow.factory import build_publication_dag

publication = build_publication_dag()
