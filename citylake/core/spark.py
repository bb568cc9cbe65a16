"""Spark session configuration, built in one place.

The same builder serves `local[*]` (embedded default, tests) and a `spark://`
master with an `s3a://` lake (production): the S3A settings are derived from
:class:`~citylake.core.settings.Settings` by :func:`spark_conf`, which is unit-tested.
"""

from __future__ import annotations

import os
import sys

from citylake.core.settings import Settings
from citylake.core.tables import spark_catalog_conf

ICEBERG_EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"


class MissingJars(RuntimeError):
    """Spark's jars from deploy/spark/pom.xml are not where the settings say."""


def spark_jars(settings: Settings) -> list[str]:
    """The jar files of deploy/spark/pom.xml (Iceberg runtime, S3, JDBC drivers), fetched by ``make venv``."""
    folder = settings.spark_jars_dir
    jars = sorted(str(p) for p in folder.glob("*.jar")) if folder.is_dir() else []
    if not any("iceberg-spark-runtime" in j for j in jars):
        raise MissingJars(
            f"no Iceberg Spark runtime in {folder} (CITYLAKE_SPARK_JARS): run `make venv`, or "
            f"scripts/fetch-jars.sh {folder}"
        )
    return jars


def spark_conf(settings: Settings) -> dict[str, str]:
    conf = {
        "spark.sql.session.timeZone": "Asia/Shanghai",
        # Partitions follow the data: a shuffle starts with up to this many, adaptive execution
        # merges them to ~64 MB each, and Iceberg sizes its files the same way on write.
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.adaptive.coalescePartitions.enabled": "true",
        "spark.sql.adaptive.advisoryPartitionSizeInBytes": "64m",
        # ...also under a persisted frame (conform's), which otherwise keeps all 64 partitions
        # and writes 64 small quarantine files.
        "spark.sql.optimizer.canChangeCachedPlanOutputPartitioning": "true",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.parquet.compression.codec": "zstd",
        # Our writes commit by renaming whole batch folders; Spark's _SUCCESS file is not needed.
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
        "spark.sql.ansi.enabled": "true",
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.jars": ",".join(spark_jars(settings)),
        "spark.sql.extensions": ICEBERG_EXTENSIONS,
        **spark_catalog_conf(settings),
    }
    conf.update(_s3a_conf(settings))
    return conf


def _s3a_conf(settings: Settings) -> dict[str, str]:
    """Hadoop's s3a settings for Spark's own file reads and writes on an S3 lake."""
    conf: dict[str, str] = {}
    if settings.lake_uri.startswith(("s3://", "s3a://")):
        s3 = settings.s3
        conf.update(
            {
                "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
                "spark.hadoop.fs.s3a.path.style.access": "true",
                "spark.hadoop.fs.s3a.connection.ssl.enabled": str(
                    bool(s3.endpoint and s3.endpoint.startswith("https"))
                ).lower(),
                "spark.hadoop.fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
                "spark.hadoop.fs.s3a.endpoint.region": s3.region,
            }
        )
        if s3.endpoint:
            conf["spark.hadoop.fs.s3a.endpoint"] = s3.endpoint
        if s3.access_key:
            conf["spark.hadoop.fs.s3a.access.key"] = s3.access_key
            conf["spark.hadoop.fs.s3a.secret.key"] = s3.secret_key or ""
    return conf


def use_catalog(spark, settings: Settings) -> str:
    """Point a running session at these settings' catalog and lake; returns the catalog name.

    A job process serves one lake and its session is built with this configuration already. One
    JVM serving several lakes (the test suite, the CLI run in-process) changes the catalog's
    settings here: Spark loads a catalog once, so its catalogs are dropped and reloaded from the
    new configuration when anything changed. Catalog settings the new lake does not have (the S3
    file I/O of an earlier S3 lake, its keys) are removed, not left behind. For an S3 lake the
    s3a settings are applied too (:func:`_use_s3a`).
    """
    settings.ensure_local_dirs()  # the SQLite catalog's folder
    wanted = spark_catalog_conf(settings)
    prefix = f"spark.sql.catalog.{settings.catalog_name}"
    current = {k: v for k, v in spark.conf.getAll.items() if k == prefix or k.startswith(prefix + ".")}
    stale = [k for k in current if k not in wanted]
    changed = {k: v for k, v in wanted.items() if current.get(k) != v}
    if changed or stale:
        for key in stale:
            spark.conf.unset(key)
        for key, value in changed.items():
            spark.conf.set(key, value)
        spark._jsparkSession.sessionState().catalogManager().reset()
    _use_s3a(spark, settings)
    return settings.catalog_name


# The Hadoop configuration key listing the s3a keys use_catalog set, so that the next lake's run
# removes the ones it does not set (an access key of an earlier lake must not stay in force).
_S3A_APPLIED = "citylake.s3a.applied"


def _use_s3a(spark, settings: Settings) -> None:
    """Apply an S3 lake's s3a settings to the running session's Hadoop configuration.

    Hadoop caches one FileSystem per scheme and bucket (``FileSystem.get``) and an S3AFileSystem
    keeps the endpoint and credentials it was created with: setting new values on the configuration
    alone would leave Spark reading and writing with the settings of the lake it used first. So when
    the settings change, the bucket's cached FileSystem is closed (which removes it from the cache)
    and the next use creates one from the new settings. A local lake leaves s3a as it is.
    """
    wanted = {key[len("spark.hadoop."):]: value for key, value in _s3a_conf(settings).items()}
    if not wanted:
        return
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    before = [k for k in (hadoop.get(_S3A_APPLIED) or "").split(",") if k]
    stale = [k for k in before if k not in wanted]
    changed = {k: v for k, v in wanted.items() if hadoop.get(k) != v}
    for key in stale:
        hadoop.unset(key)
    for key, value in changed.items():
        hadoop.set(key, value)
    hadoop.set(_S3A_APPLIED, ",".join(sorted(wanted)))
    if changed or stale:
        jvm = spark.sparkContext._jvm
        uri = jvm.java.net.URI(f"s3a://{_bucket(settings.lake_uri)}/")
        jvm.org.apache.hadoop.fs.FileSystem.get(uri, hadoop).close()


def _bucket(lake_uri: str) -> str:
    return lake_uri.split("://", 1)[1].split("/", 1)[0]


def get_session(settings: Settings, app_name: str = "citylake"):
    """Start (or reuse) a Spark session for these settings."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    # Under spark-submit the master (and deploy mode) come from its arguments, i.e. from the
    # Airflow connection; setting it here would override them.
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        builder = builder.master(settings.spark_master)
    running = SparkSession.getActiveSession() is not None
    for key, value in spark_conf(settings).items():
        if running and key.startswith("spark.sql.catalog."):
            # use_catalog below compares a running session's catalog with these settings and
            # resets it; set here first, the comparison would see nothing to change.
            continue
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    use_catalog(spark, settings)
    return spark
