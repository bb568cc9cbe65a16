"""The Spark stages as Airflow operators.

:class:`StageSparkSubmitOperator` is the Spark provider's ``SparkSubmitOperator``
(connection ``spark_default``: ``local[*]`` in the embedded demo, ``spark://…`` in
production) running ``citylake/drivers/sparkjob.py <stage> --resource R [--resource S …]``: one
application per stage of a DAG run, over every resource of the task with work waiting, on every
pending batch. Around the plain submit it adds what the DAGs need:

* the resources are chosen when the task runs: those with pending batches (``maintain``: those with a
  table); none → the task is skipped without starting a JVM (and, for curate, without emitting an
  asset event);
* a failure is re-raised with a message naming stage, resource(s), batch(es) and each resource's own
  error line (the job's ``citylake-failed`` lines, :func:`citylake.drivers.sparkjob.parse_failures`),
  and pushed as XCom ``citylake_failure`` (a list, one per failed resource) for the receipt tasks;
* ``spark-submit`` is found even when only the pip-installed pyspark provides it;
* the job is told the connection's master (``CITYLAKE_SPARK_MASTER``), so the
  session it builds runs where the connection says;
* the jars of deploy/spark/pom.xml (:attr:`Settings.spark_jars_dir`) are passed with ``--jars``;
* OpenLineage: the datasets the step reads and writes for each of its resources
  (:mod:`citylake.drivers.airflow.lineage`).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from citylake.core.settings import ENV, Settings
from citylake.core.spark import spark_jars
from citylake.drivers.airflow.tasks import (
    MAINTAIN,
    StageFailure,
    load_reg,
    maintenance_tables,
    pending_for,
    spark_failure_reason,
)
from citylake.drivers.sparkjob import parse_failures

FAILURE_XCOM_KEY = "citylake_failure"


def job_args(stage: str, resources: list[str]) -> list[str]:
    """``sparkjob.py``'s arguments for ``stage`` over ``resources``."""
    return [stage, *(a for r in resources for a in ("--resource", r))]


def stage_failures(stage: str, work: dict[str, list[str]], output: str) -> list[StageFailure]:
    """One failure per resource the job names in its ``citylake-failed`` lines; when it named none
    (it died before: a JVM or submit error), every resource of the submit, with the output's error line."""
    named = parse_failures(output)
    if named:
        return [StageFailure(stage, r, work.get(r, []), reason) for r, reason in named.items()]
    reason = spark_failure_reason(output)
    return [StageFailure(stage, r, batches, reason) for r, batches in work.items()]


def find_spark_submit() -> str | None:
    """``spark-submit`` on PATH, else the one shipped inside the pyspark package."""
    found = shutil.which("spark-submit")
    if found:
        return None  # let the hook use the plain name from PATH
    try:
        import pyspark
    except ImportError:  # pragma: no cover - pyspark is a dependency
        return None
    candidate = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    return str(candidate) if candidate.exists() else None


def connection_master(conn) -> str:
    """The master URL the Spark provider derives from a connection (same rules as SparkSubmitHook)."""
    if conn.conn_type == "spark" and conn.host and ("://" in conn.host or not conn.port):
        master = conn.host
    else:
        master = f"{conn.conn_type}://{conn.host or ''}"
    return f"{master}:{conn.port}" if conn.port else master


class StageSparkSubmitOperator(SparkSubmitOperator):
    """spark-submit ``sparkjob.py <stage> --resource …`` once for the resources of ``targets``
    ((department, resource) pairs) that have work, every pending batch of each (for ``maintain``: the
    resources' tables)."""

    def __init__(self, *, stage: str, targets: list[tuple[str, str]], settings: Settings | None = None, **kwargs):
        settings = settings or Settings.from_env()
        resources = [r for _, r in targets]
        kwargs.setdefault("application", str(settings.spark_job_script))
        kwargs.setdefault("application_args", job_args(stage, resources))
        kwargs.setdefault("name", f"citylake-{stage}-{resources[0] if len(resources) == 1 else kwargs['task_id']}")
        kwargs.setdefault("conn_id", "spark_default")
        kwargs.setdefault("conf", {"spark.log.level": settings.spark_log_level})
        super().__init__(**kwargs)
        self.stage = stage
        self.targets = list(targets)

    def work(self, settings: Settings) -> dict[str, list[str]]:
        """resource → its pending batches (``maintain``: no batches), for the resources with work now."""
        out = {}
        for department, resource in self.targets:
            reg = load_reg(settings, department, resource)
            if self.stage == MAINTAIN:
                tables = maintenance_tables(settings, reg)
                if tables:
                    self.log.info("%s %s: tables %s", self.stage, resource, ", ".join(tables))
                    out[resource] = []
            else:
                batches = pending_for(settings, reg, self.stage)
                if batches:
                    self.log.info("%s %s: batches %s", self.stage, resource, ", ".join(batches))
                    out[resource] = batches
        return out

    def execute(self, context):
        work = self.work(Settings.from_env())
        if not work:
            what = "has no table yet" if self.stage == MAINTAIN else "has nothing pending"
            raise AirflowSkipException(f"{self.stage}: no resource of this task {what} "
                                       f"({', '.join(r for _, r in self.targets)})")
        self.application_args = job_args(self.stage, list(work))
        self._prepare_environment()
        try:
            return super().execute(context)
        except Exception as exc:
            failures = stage_failures(self.stage, work, str(exc))
            context["ti"].xcom_push(key=FAILURE_XCOM_KEY, value=[f.as_dict() for f in failures])
            raise AirflowException("; ".join(f.message for f in failures)) from exc

    def get_openlineage_facets_on_start(self):
        """What this step reads and writes for each of its resources (:mod:`citylake.stages.lineage`),
        for the OpenLineage provider; used for its COMPLETE and FAIL events too."""
        from citylake.drivers.airflow.lineage import operator_lineage

        settings = Settings.from_env()
        return operator_lineage(self.stage, [load_reg(settings, d, r) for d, r in self.targets], settings)

    def _prepare_environment(self) -> None:
        if self._spark_binary is None:
            self._spark_binary = find_spark_submit()
        if not self.jars:
            # Iceberg, S3 and JDBC jars on the driver's class path from the start: the catalog
            # classes are loaded when the session starts, before any jar added later would be seen.
            self.jars = ",".join(spark_jars(Settings.from_env()))
        env = {"PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable)}
        conn = BaseHook.get_connection(self._conn_id)
        if (self._deploy_mode or conn.extra_dejson.get("deploy-mode")) != "cluster":
            # In cluster deploy mode the driver does not run here and env vars cannot be passed.
            env[ENV["spark_master"]] = connection_master(conn)
            self.env_vars = {**env, **(self.env_vars or {})}
