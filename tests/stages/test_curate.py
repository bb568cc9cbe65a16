"""Curate: the winner rule, masking, incremental MERGE into the curated Iceberg table (only the
changed rows written, history readable as of an earlier snapshot), rebuild when a merged batch
leaves the promoted set, and a crash between the table commit and the pointer."""

import datetime as dt

import pytest
from pyspark.sql import functions as F

from citylake.core import tables, zones
from citylake.core.lake import Lake, now_utc
from citylake.core.ledger import QUALITY_OF, Ledger
from citylake.core.registry import load_registrations
from citylake.stages.conform import write_standardized
from citylake.stages.curate import curate_resource

SCHEMA = (
    "cn_id string, person_name string, gender string, birth_date date, division_code string, mobile string, "
    "address string, _batch_id string, _source_row bigint, _received_at timestamp"
)


def put_batch(spark, settings, reg, batch_id, received, rows, passed=True):
    """A conformed and checked batch, written as conform and check leave it: rows in the standardized
    table (conform's own writer), the commit markers, the quality marker."""
    lake = Lake.from_settings(settings)
    raw = zones.raw_batch_dir(reg.department, reg.resource, received[:10], batch_id)
    lake.write_json(zones.manifest_path(raw), {
        "batch_id": batch_id, "received_at": received, "status": "ingested", "source_name": f"{batch_id}.json",
        "raw_path": f"{raw}/{batch_id}.json", "sha256": batch_id * 4, "size": 1})
    at = dt.datetime.fromisoformat(received)
    data = [
        (r[0], r[1], "1", dt.date(1949, 12, 31), "110105", r[2], "郑州市金水区某路1号", batch_id, i + 2, at)
        for i, r in enumerate(rows)
    ]
    written = write_standardized(spark, settings, reg, batch_id, spark.createDataFrame(data, SCHEMA))
    committed = now_utc().isoformat()
    lake.write_json(zones.standardized_marker(reg.resource, batch_id), {
        "batch_id": batch_id, "rows": len(rows), "snapshot_id": written["snapshot_id"], "committed_at": committed})
    lake.write_json(zones.quarantine_marker(reg.resource, batch_id), {"batch_id": batch_id, "rows": 0})
    lake.write_json(zones.quality_marker(reg.resource, batch_id),
                    {"batch_id": batch_id, "success": passed, QUALITY_OF: committed})


@pytest.fixture
def population(settings):
    return {r.resource: r for r in load_registrations(settings.resources_dir)}["resident_population"]


def curated(spark, settings, reg, snapshot_id=None):
    name = tables.curated_table(reg).spark(settings)
    df = spark.read.option("versionAsOf", snapshot_id).table(name) if snapshot_id else spark.table(name)
    return {r["person_name"]: r.asDict() for r in df.collect()}


def test_latest_batch_wins_and_personal_fields_are_masked(spark, settings, population):
    put_batch(spark, settings, population, "b1", "2026-11-01T00:00:00+00:00",
              [("11010519491231002X", "张三", "13812345678"), ("360426199101010071", "欧阳娜娜", None)])
    put_batch(spark, settings, population, "b2", "2026-11-02T00:00:00+00:00",
              [("11010519491231002X", "张三丰", "13900001111")])
    put_batch(spark, settings, population, "b3", "2026-11-03T00:00:00+00:00",
              [("360426199101010071", "李四", None)], passed=False)
    result = curate_resource(spark, settings, population)
    assert result.status == "merged" and result.rows == 2 and result.batches == ["b1", "b2"]
    rows = curated(spark, settings, population)
    assert set(rows) == {"张**", "欧阳**"}, "b2's version of 张三 wins; b3 failed its quality gate"
    zhang = rows["张**"]
    assert zhang["cn_id"] == "110105********002X" and zhang["mobile"] == "139****1111"
    assert zhang["address"] == "郑州市金水区****"
    assert len(zhang["_record_key"]) == 64 and zhang["_batch_id"] == "b2" and zhang["_source_row"] == 2
    pointer = Lake.from_settings(settings).read_json(zones.curated_pointer(population.resource))
    assert pointer["table"] == "gaj.resident_population" and pointer["rows"] == 2
    assert {c["name"] for c in pointer["columns"]} >= {"cn_id", "_record_key", "_batch_id"}


def test_a_later_batch_is_merged_and_an_older_row_never_overwrites_a_newer_one(spark, settings, population):
    put_batch(spark, settings, population, "b2", "2026-11-02T00:00:00+00:00", [("11010519491231002X", "新名", None)])
    curate_resource(spark, settings, population)
    # b1 arrives late but was received earlier: it loses against the stored b2 row.
    put_batch(spark, settings, population, "b1", "2026-11-01T00:00:00+00:00",
              [("11010519491231002X", "旧名", None), ("360426199101010071", "李四", None)])
    result = curate_resource(spark, settings, population)
    assert result.status == "merged" and result.batches == ["b1"]
    assert set(curated(spark, settings, population)) == {"新*", "李*"}


def test_rerun_with_same_batches_changes_nothing(spark, settings, population):
    put_batch(spark, settings, population, "b1", "2026-11-01T00:00:00+00:00", [("11010519491231002X", "张三", None)])
    first = curate_resource(spark, settings, population)
    again = curate_resource(spark, settings, population)
    assert again.status == "unchanged" and again.version == first.version and again.rows == first.rows


def test_one_percent_change_writes_about_those_rows_and_time_travel_reads_the_old_values(
    spark, settings, population
):
    ids = [f"110105{1950 + i % 50}0101{i % 1000:03d}X" for i in range(2000)]
    ids = sorted(set(ids))
    put_batch(spark, settings, population, "b1", "2026-11-01T00:00:00+00:00",
              [(cid, f"甲{i}", None) for i, cid in enumerate(ids)])
    first = curate_resource(spark, settings, population)
    assert first.rows == len(ids)
    changed = ids[:: 100]  # 1 % of the keys
    put_batch(spark, settings, population, "b2", "2026-11-02T00:00:00+00:00",
              [(cid, f"乙{i}", None) for i, cid in enumerate(changed)])
    second = curate_resource(spark, settings, population)
    assert second.status == "merged" and second.rows == len(ids)

    name = tables.curated_table(population).spark(settings)
    snap = spark.sql(f"SELECT summary FROM {name}.snapshots WHERE snapshot_id = {second.version}").first()["summary"]
    assert snap["citylake.batches"] == "b2" and snap["citylake.operation"] == "merge", snap
    # Merge-on-read: the new data files hold the changed rows, a delete file marks the old ones.
    assert int(snap["added-records"]) == len(changed), snap
    assert int(snap.get("added-position-deletes", 0)) == len(changed), snap
    assert int(snap["total-records"]) == len(ids) + len(changed)

    now = spark.table(name).filter(F.col("person_name").startswith("乙")).count()
    assert now == len(changed)
    before = spark.read.option("versionAsOf", first.version).table(name)
    assert before.filter(F.col("person_name").startswith("乙")).count() == 0
    assert before.count() == len(ids)
    # pyiceberg reads the same history from the same catalog.
    py = tables.load_table(settings, tables.curated_table(population))
    assert py.scan(snapshot_id=int(first.version)).to_arrow().num_rows == len(ids)
    assert py.scan().to_arrow().num_rows == len(ids)


def test_a_merged_batch_conformed_again_rebuilds_without_its_old_rows(spark, settings, population):
    put_batch(spark, settings, population, "b1", "2026-11-01T00:00:00+00:00", [("11010519491231002X", "张三", None)])
    put_batch(spark, settings, population, "b2", "2026-11-02T00:00:00+00:00",
              [("360426199101010071", "李四", None), ("11010519491231002X", "张三丰", None)])
    curate_resource(spark, settings, population)
    assert set(curated(spark, settings, population)) == {"张**", "李*"}
    # b2 is conformed again and now lacks 张三丰: the stored b2 row must go, b1's row comes back.
    put_batch(spark, settings, population, "b2", "2026-11-02T00:00:00+00:00", [("360426199101010071", "李四", None)])
    ledger = Ledger.read(settings, population)
    assert ledger.curate_rebuild() and ledger.stale_in_curated() == ["b2"]
    result = curate_resource(spark, settings, population)
    assert result.status == "rebuilt" and set(curated(spark, settings, population)) == {"张*", "李*"}
    assert curate_resource(spark, settings, population).status == "unchanged"


def test_a_batch_blocked_after_merging_is_taken_out(spark, settings, population):
    put_batch(spark, settings, population, "b1", "2026-11-01T00:00:00+00:00", [("11010519491231002X", "张三", None)])
    curate_resource(spark, settings, population)
    put_batch(spark, settings, population, "b1", "2026-11-01T00:00:00+00:00",
              [("11010519491231002X", "张三", None)], passed=False)
    result = curate_resource(spark, settings, population)
    assert result.status == "rebuilt" and result.rows == 0
    assert curated(spark, settings, population) == {}


def test_crash_after_the_table_commit_is_recovered_by_merging_again(spark, settings, population, monkeypatch):
    put_batch(spark, settings, population, "b1", "2026-11-01T00:00:00+00:00", [("11010519491231002X", "张三", None)])
    first = curate_resource(spark, settings, population)
    put_batch(spark, settings, population, "b2", "2026-11-02T00:00:00+00:00", [("360426199101010071", "李四", None)])

    real = Lake.write_json

    def crash(self, rel, obj):
        if rel == zones.curated_pointer(population.resource):
            raise RuntimeError("simulated crash before the pointer")
        return real(self, rel, obj)

    with monkeypatch.context() as m:
        m.setattr(Lake, "write_json", crash)
        with pytest.raises(RuntimeError, match="simulated crash"):
            curate_resource(spark, settings, population)
    pointer = Lake.from_settings(settings).read_json(zones.curated_pointer(population.resource))
    assert pointer["version"] == first.version and list(pointer["batches"]) == ["b1"]
    again = curate_resource(spark, settings, population)
    assert again.status == "merged" and again.batches == ["b2"]
    rows = curated(spark, settings, population)
    assert set(rows) == {"张*", "李*"} and again.rows == 2, "the second merge of b2 changed nothing twice"
