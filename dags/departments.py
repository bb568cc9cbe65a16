"""Airflow DAGs: one per department, one task group per registered resource (catalog/resources/<dept>/*.yaml).

Thin: the wiring lives in citylake/orchestration/factory.py, the work in citylake/pipeline.py,
citylake/extract.py and jobs/. Adding a registration file adds its tasks here with no code change.
"""

from citylake.orchestration.factory import build_department_dags

globals().update(build_department_dags())
