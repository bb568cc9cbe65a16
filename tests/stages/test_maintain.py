"""Maintain: after several merges, compaction leaves fewer files and no deletes, old snapshots are
expired (but not the last curate merge, nor a snapshot a pending check reads), orphan files older
than the safety window are removed, and the rows are exactly what they were."""

import os
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest

from citylake.core import tables, zones
from citylake.core.lake import Lake
from citylake.core.registry import load_registrations
from citylake.stages.curate import curate_resource
from citylake.stages.maintain import ORPHAN_MIN_DAYS, maintain_resource
from tests.stages.test_curate import put_batch

ZHANG, LI, WANG = "11010519491231002X", "360426199101010071", "110105195001010011"


@pytest.fixture
def population(settings):
    return {r.resource: r for r in load_registrations(settings.resources_dir)}["resident_population"]


def rows(spark, settings, table):
    return sorted(tuple(r) for r in spark.table(table.spark(settings)).collect())


def snapshot_ids(settings, table):
    return {s.snapshot_id for s in tables.load_table(settings, table).snapshots()}


def test_compaction_expiry_and_orphans_keep_the_rows(spark, settings, population):
    curated, std = tables.curated_table(population), tables.standardized_table(population)
    merges = []
    lake = Lake.from_settings(settings)
    for i, (batch, people) in enumerate([
        ("b1", [(ZHANG, "张三", None), (LI, "李四", None), (WANG, "王五", None)]),
        ("b2", [(ZHANG, "张三丰", "13900001111")]),
        ("b5", [(LI, "李五", None)]),
        ("b3", [(LI, "李四光", None)]),
        ("b4", [(WANG, "王五六", None), (ZHANG, "张三", None)]),
    ]):
        put_batch(spark, settings, population, batch, f"2026-11-0{i + 1}T00:00:00+00:00", people)
        if batch == "b5":
            # Conformed, not checked yet: the check will read it as of its conform snapshot.
            lake.delete(zones.quality_marker(population.resource, batch))
        else:
            merges.append(curate_resource(spark, settings, population))
    assert [m.status for m in merges] == ["merged"] * 4
    b5_snapshot = lake.read_json(zones.standardized_marker(population.resource, "b5"))["snapshot_id"]

    curated_rows, std_rows = rows(spark, settings, curated), rows(spark, settings, std)
    facts = tables.table_facts(settings, curated)
    assert facts.data_files > 1
    curated_snapshots = snapshot_ids(settings, curated)
    assert len(curated_snapshots) == 4

    # Orphans: one old enough to remove, one that could belong to a write still running.
    data_dir = Path(urlparse(tables.load_table(settings, curated).location()).path) / "data"
    old, recent = data_dir / "orphan-old.parquet", data_dir / "orphan-recent.parquet"
    for f in (old, recent):
        f.write_bytes(b"not referenced by any snapshot")
    aged = time.time() - (ORPHAN_MIN_DAYS + 1) * 86400
    os.utime(old, (aged, aged))

    result = maintain_resource(spark, replace(settings, snapshot_retention_days=0), population)

    cur = result["curated"]
    assert cur["status"] == "maintained" and cur["table"] == curated.ident
    assert cur["data_files_after"] < cur["data_files_before"] == facts.data_files, cur
    assert cur["data_files_after"] == 1, "a small table packs into one file"
    assert cur["delete_files_before"] > 0 and cur["delete_files_after"] == 0, "deletes applied to the data"
    assert cur["rows"] == facts.rows == len(curated_rows)
    assert rows(spark, settings, curated) == curated_rows, "compaction changes no row"
    # Expired: the first three merges. Kept: the compaction's commits and the last merge before
    # them, whose summary is the table's "last changed" (received-through) for the directory.
    assert cur["snapshots_expired"] == 3, cur
    kept = snapshot_ids(settings, curated)
    assert kept & curated_snapshots == {int(merges[-1].version)}
    after = tables.table_facts(settings, curated)
    assert after.changed_snapshot_id == int(merges[-1].version)
    assert after.received_through == facts.received_through and after.rows == facts.rows
    with pytest.raises(Exception, match="snapshot"):
        spark.read.option("versionAsOf", merges[0].version).table(curated.spark(settings)).collect()
    assert cur["orphan_files_removed"] == 1
    assert not old.exists() and recent.exists()

    st = result["standardized"]
    assert st["status"] == "maintained" and st["rows"] == len(std_rows)
    assert rows(spark, settings, std) == std_rows
    assert st["data_files_after"] <= st["data_files_before"]
    assert st["kept_for_check"] == ["b5"]
    assert st["snapshots_expired"] == 2, "b1 and b2 were conformed before b5"
    assert b5_snapshot in snapshot_ids(settings, std), "the pending check can still read its snapshot"

    again = maintain_resource(spark, replace(settings, snapshot_retention_days=0), population)
    assert again["curated"]["rewritten_data_files"] == 0 and again["curated"]["rows"] == cur["rows"]


def test_default_retention_expires_nothing_recent(spark, settings, population):
    put_batch(spark, settings, population, "b1", "2026-11-01T00:00:00+00:00", [(ZHANG, "张三", None)])
    curate_resource(spark, settings, population)
    put_batch(spark, settings, population, "b2", "2026-11-02T00:00:00+00:00", [(ZHANG, "张三丰", None)])
    curate_resource(spark, settings, population)
    assert settings.snapshot_retention_days == 30
    result = maintain_resource(spark, settings, population)
    assert result["curated"]["snapshots_expired"] == 0 and result["standardized"]["snapshots_expired"] == 0


def test_a_resource_without_tables_is_skipped(spark, settings, population):
    result = maintain_resource(spark, settings, population)
    assert result == {
        "resource": "resident_population",
        "curated": {"table": "gaj.resident_population", "status": "missing"},
        "standardized": {"table": "standardized.resident_population", "status": "missing"},
    }


def test_maintenance_on_the_s3_lake(spark, s3_server, s3_settings, population):
    """On S3 the orphan listing goes through s3a while the metadata names s3:// paths: the two are
    taken for the same files (no live file is an orphan), and a fresh stray file is left alone."""
    for i, name in enumerate(("张三", "张三丰")):
        put_batch(spark, s3_settings, population, f"b{i + 1}", f"2026-11-0{i + 1}T00:00:00+00:00",
                  [(ZHANG, name, None), (LI, "李四", None)][: 2 - i])
        curate_resource(spark, s3_settings, population)
    curated = tables.curated_table(population)
    location = tables.load_table(s3_settings, curated).location()
    assert location.startswith("s3://lake/warehouse/")
    stray = location[len("s3://lake/"):] + "/data/stray.parquet"
    s3_server.client().put_object(Bucket="lake", Key=stray, Body=b"not referenced")
    before = rows(spark, s3_settings, curated)

    result = maintain_resource(spark, replace(s3_settings, snapshot_retention_days=0), population)

    cur = result["curated"]
    assert cur["data_files_after"] == 1 and cur["delete_files_after"] == 0, cur
    assert cur["snapshots_expired"] == 1 and cur["orphan_files_removed"] == 0, cur
    assert rows(spark, s3_settings, curated) == before
    assert tables.load_table(s3_settings, curated).scan().to_arrow().num_rows == len(before)
    assert s3_server.client().head_object(Bucket="lake", Key=stray)
    assert result["standardized"]["status"] == "maintained"

    # Were every file old enough, only the stray one would go: the table's s3a:// listing matches
    # the s3:// paths its metadata names (a dry run over the same listing, dated back).
    listed = s3_server.client().list_objects_v2(Bucket="lake", Prefix=location[len("s3://lake/"):] + "/")
    aged = datetime.now(UTC) - timedelta(days=ORPHAN_MIN_DAYS + 1)
    spark.createDataFrame([(f"s3a://lake/{o['Key']}", aged) for o in listed["Contents"]],
                          "file_path string, last_modified timestamp").createOrReplaceTempView("maintain_listing")
    cutoff = (datetime.now(UTC) - timedelta(days=ORPHAN_MIN_DAYS)).strftime("%Y-%m-%dT%H:%M:%SZ")
    orphans = spark.sql(
        f"CALL {s3_settings.catalog_name}.system.remove_orphan_files(table => '{curated.ident}', "
        f"older_than => TIMESTAMP '{cutoff}', location => 's3a{location[2:]}', file_list_view => 'maintain_listing', "
        f"dry_run => true)"
    ).collect()
    assert [r["orphan_file_location"] for r in orphans] == [f"s3a://lake/{stray}"]
