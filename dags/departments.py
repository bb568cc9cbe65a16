"""Airflow DAGs: one per department, one task group per registered resource (registrations/<dept>/*.yaml).

Thin: the wiring lives in citylake/drivers/airflow/factory.py, the order of the steps in
citylake/stages/chain.py. Adding a registration file adds its tasks here with no code change.
"""

from citylake.drivers.airflow.factory import build_department_dags

globals().update(build_department_dags())
