"""Airflow DAG: directory publication, scheduled on every curated resource asset (any update republishes).

Thin: see citylake/orchestration/factory.py (build_publication_dag) and catalog/publish.py.
"""

from citylake.orchestration.factory import build_publication_dag

publication = build_publication_dag()
