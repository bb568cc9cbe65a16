"""Airflow orchestration: DAGs built from the registrations.

The DAG files under ``dags/`` only call the factories in :mod:`.factory`, which build one
task per step of the chain (:mod:`citylake.stages.chain`). The work each task does lives in
plain functions (:mod:`.tasks` over the stages) that are tested without Airflow;
:mod:`.schedules` maps 更新周期 to schedules. Importing this package does not import Airflow.

DAG ids
    ``citylake_<dept>``       one per department; one task group per resource
    ``citylake_publication``  republishes the directory on any curated-asset update
    ``citylake_freshness``    daily freshness report
    ``citylake_maintenance``  nightly table maintenance: compaction, snapshot expiry
    ``citylake_base_libraries``  the base libraries, on any update of a curated asset they are built from
"""

from __future__ import annotations

DAG_PREFIX = "citylake_"
PUBLICATION_DAG_ID = "citylake_publication"
FRESHNESS_DAG_ID = "citylake_freshness"
MAINTENANCE_DAG_ID = "citylake_maintenance"
BASE_DAG_ID = "citylake_base_libraries"
OWNER = "citylake-data-engineering"


def department_dag_id(department: str) -> str:
    return f"{DAG_PREFIX}{department}"
