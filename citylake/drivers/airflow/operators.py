"""The Spark stages as Airflow operators.

:class:`StageSparkSubmitOperator` is the Spark provider's ``SparkSubmitOperator``
(connection ``spark_default``: ``local[*]`` in the embedded demo, ``spark://…`` in
production) running ``citylake/drivers/sparkjob.py <stage> --resource R`` once per resource and run, on
every pending batch. Around the plain submit it adds what the DAGs need:

* nothing pending → the task is skipped without starting a JVM (and, for curate,
  without emitting an asset event); ``maintain`` (the maintenance DAG) has no pending batches:
  it runs whenever the resource has a table, and is skipped before the first conform;
* a failure is re-raised with a message naming stage, resource, batch(es) and the
  job's own error line, and pushed as XCom ``citylake_failure`` for the receipt task;
* ``spark-submit`` is found even when only the pip-installed pyspark provides it;
* the job is told the connection's master (``CITYLAKE_SPARK_MASTER``), so the
  session it builds runs where the connection says;
* the jars of deploy/spark/pom.xml (:attr:`Settings.spark_jars_dir`) are passed with ``--jars``;
* OpenLineage: the datasets the step reads and writes (:mod:`citylake.drivers.airflow.lineage`).
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

FAILURE_XCOM_KEY = "citylake_failure"


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
    """spark-submit ``sparkjob.py <stage> --resource <resource>`` for every pending batch of one resource
    (for ``maintain``: on the resource's tables)."""

    def __init__(self, *, stage: str, department: str, resource: str, settings: Settings | None = None, **kwargs):
        settings = settings or Settings.from_env()
        kwargs.setdefault("application", str(settings.spark_job_script))
        kwargs.setdefault("application_args", [stage, "--resource", resource])
        kwargs.setdefault("name", f"citylake-{stage}-{resource}")
        kwargs.setdefault("conn_id", "spark_default")
        kwargs.setdefault("conf", {"spark.log.level": settings.spark_log_level})
        super().__init__(**kwargs)
        self.stage = stage
        self.department = department
        self.resource = resource

    def execute(self, context):
        settings = Settings.from_env()
        reg = load_reg(settings, self.department, self.resource)
        if self.stage == MAINTAIN:
            batches: list[str] = []
            work = maintenance_tables(settings, reg)
            if not work:
                raise AirflowSkipException(f"{self.stage}: resource {self.resource} has no table yet")
            self.log.info("%s %s: tables %s", self.stage, self.resource, ", ".join(work))
        else:
            batches = pending_for(settings, reg, self.stage)
            if not batches:
                raise AirflowSkipException(f"{self.stage}: nothing pending for resource {self.resource}")
            self.log.info("%s %s: batches %s", self.stage, self.resource, ", ".join(batches))
        self._prepare_environment()
        try:
            return super().execute(context)
        except Exception as exc:
            failure = StageFailure(self.stage, self.resource, batches, spark_failure_reason(str(exc)))
            context["ti"].xcom_push(key=FAILURE_XCOM_KEY, value=failure.as_dict())
            raise AirflowException(failure.message) from exc

    def get_openlineage_facets_on_start(self):
        """What this step reads and writes (:mod:`citylake.stages.lineage`), for the OpenLineage
        provider; used for its COMPLETE and FAIL events too."""
        from citylake.drivers.airflow.lineage import operator_lineage

        settings = Settings.from_env()
        return operator_lineage(self.stage, load_reg(settings, self.department, self.resource), settings)

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
