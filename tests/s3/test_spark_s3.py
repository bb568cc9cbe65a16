"""Spark against a real S3 lake (SeaweedFS): the pipeline's Spark steps on ``s3://lake``.

The shared Spark session was started for a local lake; ``use_catalog`` points it at the S3 lake at
run time (the catalog's S3FileIO for the Iceberg tables, Hadoop's s3a for Spark's own Parquet:
decoded batches, quarantine). One resource goes through ingest → conform → check → curate with
the *pipeline* identity, then the curated table is read back with pyiceberg and the bucket is
listed with boto3: the tables' files are under ``warehouse/``, the quarantine Parquet was written
through s3a, nothing is left in ``_staging``.
"""

from __future__ import annotations

from dataclasses import replace

import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from citylake.core import access, tables, zones
from citylake.core.lake import Lake
from citylake.core.ledger import Ledger
from citylake.core.registry import load_registrations
from citylake.core.settings import Settings
from citylake.core.spark import use_catalog
from citylake.stages import query
from citylake.stages.check import check_batches
from citylake.stages.conform import conform_batches
from citylake.stages.curate import curate_resource
from citylake.stages.ingest import ingest_resource
from citylake_dev.generate import generate

BUCKET = "lake"
ROWS = 120
SEED = 20261201


@pytest.fixture
def reg(s3_settings: Settings):
    return next(r for r in load_registrations(s3_settings.resources_dir) if r.resource == "enterprise_registration")


def _keys(s3_server, prefix: str = "") -> list[str]:
    client = s3_server.client()
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", []) if not o["Key"].endswith("/")]
    return keys


def test_pipeline_spark_steps_on_the_s3_lake(spark, s3_server, s3_settings: Settings, reg):
    assert s3_settings.lake_uri == f"s3://{BUCKET}"
    truth = generate(s3_settings, [reg], rows=ROWS, seed=SEED)
    [(path, expected)] = truth["files"].items()
    assert path.startswith(f"landing/{reg.department}/{reg.resource}/")

    [ingested] = ingest_resource(s3_settings, reg)
    assert ingested.status == "ingested", ingested

    [conformed] = conform_batches(spark, s3_settings, reg)
    assert conformed.status == "conformed", conformed
    assert conformed.received == expected["rows"] == conformed.standardized + conformed.quarantined
    assert conformed.quarantined > 0, "the generated drop has defects: quarantine is written through s3a"
    assert conformed.reasons == expected["bad"]

    [checked] = check_batches(s3_settings, reg)
    assert checked["rows"] == conformed.standardized and checked["success"], checked["summary_en"]

    curated = curate_resource(spark, s3_settings, reg)
    assert curated.status == "merged" and curated.batches == [ingested.batch_id]
    assert 0 < curated.rows <= conformed.standardized

    # pyiceberg reads what Spark committed, from the S3 lake
    table = tables.load_table(s3_settings, tables.curated_table(reg))
    assert table is not None
    assert table.metadata_location.startswith(f"s3://{BUCKET}/warehouse/")
    assert table.location().startswith(f"s3://{BUCKET}/warehouse/")
    arrow = table.scan().to_arrow()
    ledger = Ledger.read(s3_settings, reg)
    assert arrow.num_rows == curated.rows == ledger.summary()["curated"]
    assert ledger.summary()["standardized"] == conformed.standardized
    assert ledger.summary()["quarantined"] == conformed.quarantined
    assert ledger.pending("conform") == ledger.pending("check") == ledger.pending("curate") == []
    assert set(arrow.column("_batch_id").to_pylist()) == {ingested.batch_id}
    std = tables.load_table(s3_settings, tables.standardized_table(reg))
    assert std.scan().to_arrow().num_rows == conformed.standardized

    # the bucket as S3 lists it
    keys = _keys(s3_server)
    warehouse = [k for k in keys if k.startswith("warehouse/")]
    for ns_table in (tables.curated_table(reg), tables.standardized_table(reg)):
        prefix = f"warehouse/{ns_table.namespace}/{ns_table.name}/"
        mine = [k for k in warehouse if k.startswith(prefix)]
        assert any(k.startswith(prefix + "metadata/") and k.endswith(".metadata.json") for k in mine), prefix
        assert any(k.startswith(prefix + "data/") and k.endswith(".parquet") for k in mine), prefix
    data_files = {f.file.file_path for f in table.scan().plan_files()}
    assert data_files and all(p.startswith(f"s3://{BUCKET}/warehouse/") for p in data_files)
    assert {p[len(f"s3://{BUCKET}/"):] for p in data_files} <= set(warehouse)

    quarantine = zones.quarantine_dir(reg.resource, ingested.batch_id)
    parquet = [k for k in keys if k.startswith(quarantine + "/") and k.endswith(".parquet")]
    assert parquet, f"no quarantine Parquet under {quarantine}: {sorted(keys)}"
    lake = Lake.from_settings(s3_settings)
    rows = 0
    for key in parquet:
        with lake.open_read(key) as fh:
            rows += pq.ParquetFile(fh).metadata.num_rows
    assert rows == conformed.quarantined
    assert lake.read_json(zones.quarantine_marker(reg.resource, ingested.batch_id))["rows"] == conformed.quarantined
    # Spark reads it back through s3a as well
    use_catalog(spark, s3_settings)
    assert spark.read.parquet(lake.spark_uri(quarantine)).count() == conformed.quarantined
    assert not [k for k in keys if k.startswith("_staging/")], "staged work is cleaned up"
    assert not [k for k in keys if not k.startswith(("landing/", "raw/", "standardized/", "quarantine/",
                                                      "quality/", "curated/", "receipts/", "warehouse/"))]

    # The analyst identity (the SQL endpoint's in production) reads the curated table, and neither
    # the standardized table (personal fields unmasked) nor raw; it writes nothing.
    analyst = replace(s3_settings, s3=s3_server.s3_options(access.ANALYST))
    assert tables.load_table(analyst, tables.curated_table(reg)).scan().to_arrow().num_rows == curated.rows
    with pytest.raises(OSError) as info:
        tables.load_table(analyst, tables.standardized_table(reg)).scan().to_arrow()
    assert any(word in str(info.value).upper() for word in ("ACCESS_DENIED", "ACCESSDENIED", "403")), info.value
    client = s3_server.client(access.ANALYST)
    raw_key = next(k for k in keys if k.startswith("raw/"))
    std_file = next(k for k in warehouse if k.startswith(f"warehouse/{tables.STANDARDIZED_NAMESPACE}/"))
    for key in (raw_key, std_file):
        with pytest.raises(ClientError) as denied:
            client.get_object(Bucket=BUCKET, Key=key)
        assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, key
    with pytest.raises(ClientError) as denied:
        client.put_object(Bucket=BUCKET, Key=f"warehouse/{reg.department}/x.parquet", Body=b"")
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    # The steward identity (`citylake query --role steward`) reads the standardized table too, so its
    # queries show personal fields in the clear; still neither raw nor quarantine, and it writes nothing.
    # With the analyst's keys the same role is refused.
    steward = replace(s3_settings, s3=s3_server.s3_options(access.STEWARD))
    personal = [f.name for f in reg.fields if f.sensitivity == "personal"]
    assert personal, reg.resource
    sql = f"SELECT {', '.join(personal)} FROM {tables.curated_table(reg).ident}"
    masked = query.query(steward, sql, [reg]).table
    clear = query.query(steward, sql, [reg], role="steward").table
    assert masked.num_rows == clear.num_rows == curated.rows
    assert masked.to_pylist() != clear.to_pylist()
    with pytest.raises(query.QueryRefused, match="steward identity's keys"):
        query.query(analyst, sql, [reg], role="steward")
    client = s3_server.client(access.STEWARD)
    assert client.get_object(Bucket=BUCKET, Key=std_file)["Body"].read()
    quarantine_key = next(k for k in keys if k.startswith("quarantine/"))
    for key in (raw_key, quarantine_key):
        with pytest.raises(ClientError) as denied:
            client.get_object(Bucket=BUCKET, Key=key)
        assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, key
    with pytest.raises(ClientError) as denied:
        client.put_object(Bucket=BUCKET, Key=std_file + ".x", Body=b"")
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_s3a_follows_the_settings_of_each_run(spark, s3_server, s3_settings: Settings, tmp_path):
    """One JVM, changing S3 credentials: Hadoop caches a FileSystem per bucket, so ``use_catalog``
    must not leave Spark on the credentials of an earlier run."""
    from py4j.protocol import Py4JJavaError

    lake = Lake.from_settings(s3_settings)
    use_catalog(spark, s3_settings)
    spark.createDataFrame([(1, "a"), (2, "b")], "n int, s string").write.mode("overwrite").parquet(
        lake.spark_uri("quarantine/_probe/batch_id=1")
    )
    wrong = replace(s3_settings, s3=replace(s3_settings.s3, secret_key="not-the-secret"))
    use_catalog(spark, wrong)
    with pytest.raises(Py4JJavaError):
        spark.read.parquet(lake.spark_uri("quarantine/_probe/batch_id=1")).count()
    use_catalog(spark, s3_settings)
    assert spark.read.parquet(lake.spark_uri("quarantine/_probe/batch_id=1")).count() == 2


def test_a_local_lake_after_the_s3_lake(spark, s3_settings: Settings, settings: Settings, tmp_path):
    """The S3 lake's catalog settings (S3FileIO, keys) do not stay behind for the next, local lake."""
    # (both fixtures live under tmp_path/home: give the local lake a catalog of its own)
    settings = replace(settings, catalog_uri=f"sqlite:///{tmp_path / 'local-catalog' / 'iceberg.db'}")
    use_catalog(spark, s3_settings)
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {s3_settings.catalog_name}.probe")
    spark.sql(f"CREATE TABLE IF NOT EXISTS {s3_settings.catalog_name}.probe.t (n int) USING iceberg")
    spark.sql(f"INSERT INTO {s3_settings.catalog_name}.probe.t VALUES (1)")
    name = use_catalog(spark, settings)
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {name}.probe")
    spark.sql(f"CREATE TABLE {name}.probe.t (n int) USING iceberg")
    spark.sql(f"INSERT INTO {name}.probe.t VALUES (1), (2)")
    assert spark.table(f"{name}.probe.t").count() == 2
    assert not [k for k in spark.conf.getAll if k.startswith(f"spark.sql.catalog.{name}.s3.")]
    location = tables.load_table(settings, tables.TableName("probe", "t")).location()
    assert location.startswith("file:") and location.startswith(tables.warehouse_uri(settings))
