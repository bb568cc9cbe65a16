"""DAG integrity: every DAG file imports, and every DAG follows the house policy."""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict

import pytest

from citylake.core.registry import load_base_libraries, registrations_by_department
from citylake.core.settings import REPO_ROOT
from citylake.drivers.airflow import (
    BASE_DAG_ID,
    FRESHNESS_DAG_ID,
    MAINTENANCE_DAG_ID,
    OWNER,
    PUBLICATION_DAG_ID,
    department_dag_id,
)
from citylake.drivers.airflow.schedules import CYCLE_SCHEDULES, department_schedule, schedule_for_cycle
from citylake.stages.chain import steps

DAGS_FOLDER = REPO_ROOT / "dags"
RESOURCES = REPO_ROOT / "registrations"

BY_DEPT = registrations_by_department(RESOURCES)
LIBRARIES = load_base_libraries(RESOURCES)
STAGES_FILE = ["detect", "ingest", "conform", "check", "curate", "receipt"]
STAGES_SQL = ["extract", "ingest", "conform", "check", "curate", "receipt"]


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    files = {p.name for p in DAGS_FOLDER.glob("*.py")}
    assert files == {"departments.py", "publication.py", "freshness.py", "maintenance.py", "base_libraries.py"}
    loaded_from = {dag.fileloc.rsplit("/", 1)[-1] for dag in dagbag.dags.values()}
    assert loaded_from == files, "every DAG file contributes DAGs (and passes the safe-mode heuristic)"


def test_expected_dags(dagbag):
    expected = {department_dag_id(d) for d in BY_DEPT} | {PUBLICATION_DAG_ID, FRESHNESS_DAG_ID, MAINTENANCE_DAG_ID,
                                                           BASE_DAG_ID}
    assert set(dagbag.dag_ids) == expected


def test_no_cycles(dagbag):
    for dag in dagbag.dags.values():
        dag.check_cycle()  # raises AirflowDagCycleException


@pytest.mark.parametrize("attr", ["tags", "doc_md", "description"])
def test_dag_metadata(dagbag, attr):
    for dag in dagbag.dags.values():
        assert getattr(dag, attr), f"{dag.dag_id} has no {attr}"
        if attr == "tags":
            assert "citylake" in dag.tags


def test_doc_md_names_the_code_it_runs(dagbag):
    for dag_id, dag in dagbag.dags.items():
        if dag_id.startswith("citylake_") and dag_id not in (PUBLICATION_DAG_ID, FRESHNESS_DAG_ID, MAINTENANCE_DAG_ID,
                                                             BASE_DAG_ID):
            for path in ("citylake/stages/conform.py", "citylake/stages/curate.py", "citylake/stages/ingest.py",
                         "citylake/drivers/sparkjob.py", "citylake/stages/chain.py"):
                assert path in dag.doc_md, f"{dag_id} doc_md does not mention {path}"
                assert (REPO_ROOT / path).exists(), path
    assert "citylake/stages/publish/publish.py" in dagbag.dags[PUBLICATION_DAG_ID].doc_md
    assert "citylake/stages/freshness.py" in dagbag.dags[FRESHNESS_DAG_ID].doc_md
    assert "citylake/stages/maintain.py" in dagbag.dags[MAINTENANCE_DAG_ID].doc_md
    assert "citylake/stages/base.py" in dagbag.dags[BASE_DAG_ID].doc_md


def test_owner_retries_backoff_and_task_docs(dagbag):
    for dag in dagbag.dags.values():
        assert dag.catchup is False and dag.max_active_runs == 1
        for t in dag.tasks:
            where = f"{dag.dag_id}.{t.task_id}"
            assert t.owner == OWNER, where
            assert t.doc_md, f"{where} has no doc_md"
            if t.task_id == "watcher":
                assert t.retries == 0, "the watcher must fail the run at once"
                continue
            assert t.retries >= 1, where
            assert t.retry_exponential_backoff and t.retry_exponential_backoff > 1, where
            assert t.max_retry_delay is not None, where


SPARK = ("conform", "check", "curate")


def test_one_task_group_per_registration(dagbag):
    for dept, regs in BY_DEPT.items():
        dag = dagbag.dags[department_dag_id(dept)]
        groups = {k for k, v in dag.task_group.children.items() if hasattr(v, "children")}
        assert groups == {r.resource for r in regs}
        for reg in regs:
            stages = STAGES_SQL if reg.source.kind == "sql" else STAGES_FILE
            assert tuple(stages) == steps(reg), "the DAG's tasks are the chain's steps"
            group = dag.task_group.children[reg.resource]
            assert set(group.children) == {f"{reg.resource}.{s}" for s in stages if s not in SPARK}
            # a straight chain: detect/extract → ingest → conform → check → curate → receipt, with the
            # department's Spark tasks in the middle
            ids = [s if s in SPARK else f"{reg.resource}.{s}" for s in stages]
            for up, down in itertools.pairwise(ids):
                assert down in dag.get_task(up).downstream_task_ids


def test_stage_wiring(dagbag):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    for dept, regs in BY_DEPT.items():
        dag = dagbag.dags[department_dag_id(dept)]
        resources = [r.resource for r in regs]
        for stage in SPARK:
            op = dag.get_task(stage)
            assert isinstance(op, SparkSubmitOperator)
            assert op._conn_id == "spark_default"
            assert op.application.endswith("citylake/drivers/sparkjob.py")
            assert op.targets == [(dept, r) for r in resources]
            assert op.application_args == [stage, *(a for r in resources for a in ("--resource", r))], \
                "one submit per stage for the department's resources"
            assert op.trigger_rule == "all_done", stage
        assert [o.uri for o in dag.get_task("curate").outlets] == [reg.asset_uri for reg in regs]
        for reg in regs:
            for stage in ("ingest", "receipt"):
                assert dag.get_task(f"{reg.resource}.{stage}").trigger_rule == "all_done", f"{reg.resource}.{stage}"
        watcher = dag.get_task("watcher")
        assert watcher.trigger_rule == "one_failed"
        assert len(watcher.upstream_task_ids) == 3 * len(regs) + len(SPARK), "the watcher sees every task"


def test_schedules_follow_update_cycles(dagbag):
    assert CYCLE_SCHEDULES["实时"] == "*/10 * * * *"
    for dept, regs in BY_DEPT.items():
        dag = dagbag.dags[department_dag_id(dept)]
        assert dag.schedule == department_schedule(regs)
        if len({r.update_cycle for r in regs}) == 1:
            assert dag.schedule == schedule_for_cycle(regs[0].update_cycle)
        assert str(dag.timezone.name) == "Asia/Shanghai"
    # the registrations in the repository, spelled out
    expected = {"sthj": "*/10 * * * *", "scjg": "0 2 * * *", "gaj": "0 2 * * *", "rsj": "0 2 * * *",
                "zrzy": "0 3 * * 1", "gjj": "0 3 1 * *"}
    for dept, cron in expected.items():
        if dept in BY_DEPT:
            assert dagbag.dags[department_dag_id(dept)].schedule == cron, dept
    assert dagbag.dags[FRESHNESS_DAG_ID].schedule == "30 6 * * *"
    assert dagbag.dags[MAINTENANCE_DAG_ID].schedule == "30 4 * * *"
    assert str(dagbag.dags[MAINTENANCE_DAG_ID].timezone.name) == "Asia/Shanghai"


def test_maintenance_runs_one_submit_for_every_resource(dagbag):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    dag = dagbag.dags[MAINTENANCE_DAG_ID]
    regs = sorted((r for rs in BY_DEPT.values() for r in rs), key=lambda r: r.resource)
    [op] = dag.tasks
    assert op.task_id == "maintain"
    assert isinstance(op, SparkSubmitOperator) and op._conn_id == "spark_default"
    assert op.application.endswith("citylake/drivers/sparkjob.py")
    assert op.application_args == ["maintain", *(a for r in regs for a in ("--resource", r.resource))]
    assert op.targets == [(r.department, r.resource) for r in regs]


def test_publication_is_scheduled_on_every_curated_asset(dagbag):
    from airflow.sdk import AssetAny

    schedule = dagbag.dags[PUBLICATION_DAG_ID].schedule
    assert isinstance(schedule, AssetAny), "any curated update republishes (not all of them)"
    uris = {a.uri for a in schedule.objects}
    assert uris == {r.asset_uri for regs in BY_DEPT.values() for r in regs} | {
        f"citylake://base/{lib.name}" for lib in LIBRARIES}


def test_base_libraries_are_scheduled_on_their_sources_assets(dagbag):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
    from airflow.sdk import AssetAny

    dag = dagbag.dags[BASE_DAG_ID]
    assert isinstance(dag.schedule, AssetAny), "any source's update rebuilds"
    assert {a.uri for a in dag.schedule.objects} == {s.reg.asset_uri for lib in LIBRARIES for s in lib.sources}
    assert {"enterprise_registration", "housing_fund_units"} <= {
        s.reg.resource for lib in LIBRARIES if lib.name == "legal_entity" for s in lib.sources}
    assert {lib.name for lib in LIBRARIES} == {"legal_entity", "population"}
    [op] = dag.tasks
    assert op.task_id == "build"
    assert isinstance(op, SparkSubmitOperator) and op._conn_id == "spark_default"
    assert op.application_args == ["base", *(a for lib in LIBRARIES for a in ("--resource", lib.name))]
    assert [o.uri for o in op.outlets] == [f"citylake://base/{lib.name}" for lib in LIBRARIES]


def test_dag_files_are_thin_and_independent():
    for path in DAGS_FOLDER.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = defaultdict(list)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                imported[node.module or ""].append(node)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    imported[a.name].append(node)
        assert not any(m == "dags" or m.startswith("dags.") or m in {"departments", "publication", "freshness", "maintenance"}
                       for m in imported), f"{path.name} imports another DAG file"
        assert set(imported) <= {"citylake.drivers.airflow.factory"}, f"{path.name} wires via the factory only"
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 15


def test_dev_env_defines_the_connections(dev_env):
    from airflow.sdk import Connection

    spark = Connection.from_json(dev_env["AIRFLOW_CONN_SPARK_DEFAULT"], conn_id="spark_default")
    from citylake.drivers.airflow.operators import connection_master

    assert connection_master(spark) == "local[*]"
    assert dev_env["AIRFLOW_CONN_RSJ_SOURCE_DB"].startswith("sqlite:///")
    assert "${" not in dev_env["AIRFLOW_CONN_RSJ_SOURCE_DB"], "placeholders are expanded"
    sql_conn_ids = {r.source.conn_id for regs in BY_DEPT.values() for r in regs if r.source.kind == "sql"}
    for conn_id in sql_conn_ids:
        assert f"AIRFLOW_CONN_{conn_id.upper()}" in dev_env, f"no development connection for {conn_id}"
