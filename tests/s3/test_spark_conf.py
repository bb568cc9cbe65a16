"""spark_conf(): path-style s3a with endpoint and credentials for an S3 lake, nothing s3a for a local one.

These check the configuration only; tests/s3/test_spark_s3.py runs Spark against the S3 test server
with it (s3a and Iceberg's S3 file I/O).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from citylake.core.lake import Lake
from citylake.core.settings import S3Options, Settings
from citylake.core.spark import spark_conf

S3A = "spark.hadoop.fs.s3a."


@pytest.fixture
def s3_lake_settings(settings: Settings) -> Settings:
    return replace(
        settings,
        lake_uri="s3://lake",
        s3=S3Options(endpoint="http://minio:9000", access_key="PIPELINEKEY", secret_key="pipeline-secret"),
    )


def test_s3_lake_gets_path_style_s3a(s3_lake_settings: Settings):
    conf = spark_conf(s3_lake_settings)
    assert conf[S3A + "impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert conf[S3A + "path.style.access"] == "true"
    assert conf[S3A + "endpoint"] == "http://minio:9000"
    assert conf[S3A + "connection.ssl.enabled"] == "false"
    assert conf[S3A + "access.key"] == "PIPELINEKEY"
    assert conf[S3A + "secret.key"] == "pipeline-secret"
    assert conf[S3A + "aws.credentials.provider"] == "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
    assert conf[S3A + "endpoint.region"] == "us-east-1"


def test_https_endpoint_enables_tls(s3_lake_settings: Settings):
    s = replace(
        s3_lake_settings, s3=replace(s3_lake_settings.s3, endpoint="https://oss.example.gov.cn", region="cn-zz")
    )
    conf = spark_conf(s)
    assert conf[S3A + "connection.ssl.enabled"] == "true"
    assert conf[S3A + "endpoint"] == "https://oss.example.gov.cn"
    assert conf[S3A + "endpoint.region"] == "cn-zz"


def test_s3a_uri_is_an_s3_lake_too(s3_lake_settings: Settings):
    conf = spark_conf(replace(s3_lake_settings, lake_uri="s3a://lake/prefix"))
    assert conf[S3A + "path.style.access"] == "true"


def test_without_keys_no_credentials_are_set(s3_lake_settings: Settings):
    conf = spark_conf(replace(s3_lake_settings, s3=S3Options(endpoint="http://minio:9000")))
    assert S3A + "access.key" not in conf and S3A + "secret.key" not in conf
    assert conf[S3A + "path.style.access"] == "true"


def test_local_lake_has_nothing_s3a(settings: Settings):
    # even with S3 options lying around in the environment, a file:// lake gets no s3a settings
    s = replace(settings, s3=S3Options(endpoint="http://minio:9000", access_key="K", secret_key="S"))
    conf = spark_conf(s)
    assert not [k for k in conf if "s3a" in k or "s3" in k.split(".")]
    assert "S" not in conf.values() and "K" not in conf.values()


def test_common_settings_are_the_same_for_both(settings: Settings, s3_lake_settings: Settings):
    """Only the s3a settings and the catalog's file I/O differ between a local and an S3 lake."""
    local, s3 = spark_conf(settings), spark_conf(s3_lake_settings)
    catalog = f"spark.sql.catalog.{settings.catalog_name}."
    io = ("io-impl", "s3.", "client.region", "warehouse")

    def common(conf):
        return {k: v for k, v in conf.items() if not k.startswith(S3A) and not k.startswith(tuple(catalog + p for p in io))}

    assert common(s3) == common(local)
    assert s3[catalog + "warehouse"] == "s3://lake/warehouse"
    assert s3[catalog + "io-impl"] == "org.apache.iceberg.aws.s3.S3FileIO"
    assert local[catalog + "warehouse"].startswith("file:///") and catalog + "io-impl" not in local


def test_production_environment(monkeypatch, tmp_path):
    """The variables docker-compose.yml gives the Airflow containers produce the s3a config."""
    for name, value in {
        "CITYLAKE_HOME": str(tmp_path),
        "CITYLAKE_LAKE_URI": "s3://lake",
        "CITYLAKE_S3_ENDPOINT": "http://minio:9000",
        "CITYLAKE_S3_ACCESS_KEY": "citylake-pipeline",
        "CITYLAKE_S3_SECRET_KEY": "from-dotenv",
        "CITYLAKE_SPARK_MASTER": "spark://spark-master:7077",
    }.items():
        monkeypatch.setenv(name, value)
    s = Settings.from_env()
    conf = spark_conf(s)
    assert s.spark_master == "spark://spark-master:7077"
    assert conf[S3A + "endpoint"] == "http://minio:9000"
    assert conf[S3A + "access.key"] == "citylake-pipeline"
    assert conf[S3A + "secret.key"] == "from-dotenv"
    # Spark and the non-Spark stages address the same objects
    assert Lake.from_settings(s).spark_uri("curated/r/version=1") == "s3a://lake/curated/r/version=1"
