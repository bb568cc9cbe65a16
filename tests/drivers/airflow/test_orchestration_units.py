"""The pieces behind the DAGs that need no Airflow run: failure messages, schedules, masters."""

from __future__ import annotations

import pytest

from citylake.drivers.airflow.schedules import department_schedule, most_frequent_cycle, schedule_for_cycle
from citylake.drivers.airflow.tasks import StageError, StageFailure, spark_failure_reason

SPARK_FAILURE = """Cannot execute: spark-submit --master local[*] --name citylake-conform-x citylake/drivers/sparkjob.py --resource x. \
Error code is: 1.
Last spark-submit output:
Traceback (most recent call last):
  File "/work/main/citylake/drivers/sparkjob.py", line 297, in <module>
    raise SystemExit(main())
  File "/work/main/citylake/drivers/sparkjob.py", line 253, in conform_batch
    raise ConformError(
citylake.stages.conform.ConformError: enterprise_registration batch 5ecf54b0e097db80: 200 rows decoded but 150 standardized + 40 quarantined
26/11/21 16:35:34 INFO ShutdownHookManager: Shutdown hook called"""


def test_spark_failure_reason_is_the_jobs_own_error_line():
    assert spark_failure_reason(SPARK_FAILURE) == (
        "ConformError: enterprise_registration batch 5ecf54b0e097db80: 200 rows decoded but 150 standardized "
        "+ 40 quarantined"
    )
    assert spark_failure_reason("Cannot execute: x. Error code is: 137.\nKilled") == "Killed"
    java = 'Exception in thread "main" org.apache.spark.SparkException: Master removed our application: KILLED'
    assert "SparkException: Master removed our application" in spark_failure_reason(java)


def test_stage_failure_names_stage_resource_batch_and_reason():
    f = StageFailure("conform", "enterprise_registration", ["5ecf54b0e097db80"], "ConformError: boom")
    assert (
        f.message == "conform failed for resource enterprise_registration (batch 5ecf54b0e097db80): ConformError: boom"
    )
    assert StageFailure.from_dict(f.as_dict()) == f
    assert (
        str(StageError(StageFailure("ingest", "r", [], "OSError: disk full")))
        == "ingest failed for resource r (no batch yet): OSError: disk full"
    )


def test_schedules():
    assert most_frequent_cycle(["每月", "实时", "每日"]) == "实时"
    assert most_frequent_cycle(["每年", "其他"]) == "其他", "irregular drops are looked for daily"
    assert schedule_for_cycle("每季度") == "0 3 1 1,4,7,10 *"
    with pytest.raises(ValueError, match="每两月"):
        schedule_for_cycle("每两月")

    class R:
        def __init__(self, c):
            self.update_cycle = c

    assert department_schedule([R("每周"), R("每日")]) == "0 2 * * *"


def test_spark_master_from_connection():
    from airflow.sdk import Connection

    from citylake.drivers.airflow.operators import connection_master, find_spark_submit

    prod = Connection.from_json('{"conn_type": "spark", "host": "spark://spark-master", "port": 7077}', conn_id="s")
    assert connection_master(prod) == "spark://spark-master:7077"
    assert (
        connection_master(Connection.from_json('{"conn_type": "spark", "host": "local[*]"}', conn_id="s")) == "local[*]"
    )
    assert connection_master(Connection(conn_id="s", conn_type="spark", host="yarn")) == "yarn"
    binary = find_spark_submit()
    assert binary is None or binary.endswith("pyspark/bin/spark-submit"), "PATH first, else pyspark's own"


def test_maintenance_has_work_once_a_table_exists_and_its_failure_names_no_batch(settings):
    import pyarrow as pa

    from citylake.core import tables
    from citylake.core.registry import load_registrations
    from citylake.drivers.airflow.tasks import maintenance_tables

    reg = next(r for r in load_registrations(settings.resources_dir) if r.resource == "resident_population")
    assert maintenance_tables(settings, reg) == [], "nothing conformed yet: the task is skipped"
    catalog = tables.python_catalog(settings)
    catalog.create_namespace("standardized")
    catalog.create_table(("standardized", reg.resource), pa.schema([("_batch_id", pa.string())]))
    assert maintenance_tables(settings, reg) == ["standardized.resident_population"]
    assert StageFailure("maintain", "r", [], "ValidationException: conflict").message == (
        "maintain failed for resource r: ValidationException: conflict"
    )


def test_a_busy_step_fails_its_task_saying_who_holds_it_since_when(settings):
    from citylake.core.lease import hold
    from citylake.core.registry import load_registrations
    from citylake.drivers.airflow.tasks import run_ingest, run_receipts

    reg = next(r for r in load_registrations(settings.resources_dir) if r.resource == "enterprise_registration")
    with hold(settings, reg.resource, "ingest", label="citylake run") as other:
        with pytest.raises(StageError) as err:
            run_ingest(settings, reg)
    assert str(err.value).startswith(
        f"ingest failed for resource {reg.resource} (no batch yet): ResourceBusy: resource {reg.resource} is busy: "
        f"stage ingest held by {other.holder} since "
    )
    with hold(settings, reg.resource, "receipt"), pytest.raises(StageError, match="stage receipt held by"):
        run_receipts(settings, reg, [], [])
    # A Spark step: sparkjob.py's busy line on stderr is the reason, not the JVM's shutdown lines after it.
    busy = f"ResourceBusy: resource {reg.resource} is busy: stage conform held by h:1:ab (citylake run) since …"
    text = (f"Cannot execute: spark-submit sparkjob.py conform --resource {reg.resource}. Error code is: 75.\n"
            f"Last spark-submit output:\n{busy}\n26/11/30 23:10:05 INFO ShutdownHookManager: Shutdown hook called")
    assert spark_failure_reason(text) == busy


def test_a_shared_spark_task_tells_each_resource_its_own_failure():
    from citylake.drivers.airflow.factory import _pull_all
    from citylake.drivers.airflow.operators import stage_failures
    from citylake.drivers.sparkjob import failure_line

    work = {"enterprise_registration": ["b1", "b2"], "resident_population": ["b3"]}
    output = "\n".join(["Cannot execute: spark-submit … Error code is: 1.", "Last spark-submit output:",
                        "resident_population: batch_id=b3 rows=10",
                        failure_line("enterprise_registration", "ConformError: 200 rows decoded\nbut 190 written")])
    [f] = stage_failures("conform", work, output)
    assert f == StageFailure("conform", "enterprise_registration", ["b1", "b2"],
                             "ConformError: 200 rows decoded but 190 written")
    # the job died before naming anyone (a JVM error): every resource of the submit, with the error line
    died = stage_failures("conform", work, SPARK_FAILURE)
    assert [(x.resource, x.batches) for x in died] == [("enterprise_registration", ["b1", "b2"]),
                                                       ("resident_population", ["b3"])]
    assert {x.reason for x in died} == {spark_failure_reason(SPARK_FAILURE)}

    notes = {"gaj.ingest": f.as_dict(), "conform": [x.as_dict() for x in died], "check": None}

    class TI:  # a Python task pushes one note, a shared Spark task a list
        def xcom_pull(self, task_ids, key):
            return notes.get(task_ids)

    pulled = _pull_all(TI(), ["gaj.ingest", "conform", "check"], "citylake_failure")
    assert [StageFailure.from_dict(v).resource for v in pulled] == [
        "enterprise_registration", "enterprise_registration", "resident_population"]
