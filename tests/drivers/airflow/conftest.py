"""DAG tests load the DAG files the way Airflow does, with connections and variables from the
committed development file (config/airflow-dev.env) and a throw-away Airflow home: no secrets,
no live services."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from citylake.core.settings import REPO_ROOT, Settings

# Before anything imports Airflow: a private Airflow home, so tests never touch ~/airflow.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="citylake-airflow-test-"))
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)
os.environ.setdefault("AIRFLOW_HOME", str(_AIRFLOW_HOME))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}")

DAGS_FOLDER = REPO_ROOT / "dags"
RESOURCES = REPO_ROOT / "registrations"


@pytest.fixture(scope="module")
def dev_env():
    """Export config/airflow-dev.env (AIRFLOW_CONN_*, CITYLAKE_*) while a module's DAGs are loaded."""
    from citylake_dev.airflow_embedded import load_dev_env

    home = _AIRFLOW_HOME / "citylake-home"
    before = dict(os.environ)
    values = load_dev_env(Settings.from_env(home=home))
    yield values
    os.environ.clear()
    os.environ.update(before)


def load_dagbag(dag_folder: Path = DAGS_FOLDER):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(dag_folder), safe_mode=True)


@pytest.fixture(scope="module")
def dagbag(dev_env):
    return load_dagbag()


@pytest.fixture
def fresh_dagbag():
    """Loads the DAG files again each time it is called (after a test changed the registrations).
    A fixture, not an import: several conftest.py files share the module name ``conftest``."""
    return load_dagbag
