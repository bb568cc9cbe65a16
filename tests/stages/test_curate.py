"""Curate: latest version of each key wins, personal fields masked, re-runs change nothing,
and a crash before the version switch leaves readers on the previous version."""

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from citylake.core import zones
from citylake.core.lake import Lake
from citylake.core.registry import load_registrations
from citylake.stages.curate import curate_resource


def _batch(settings, reg, batch_id, received, rows, passed=True):
    """Write a committed, checked standardized batch by hand (what conform + check leave)."""
    lake = Lake.from_settings(settings)
    raw = zones.raw_batch_dir(reg.department, reg.resource, received[:10], batch_id)
    lake.write_json(zones.manifest_path(raw), {
        "batch_id": batch_id, "received_at": received, "status": "ingested", "source_name": f"{batch_id}.json",
        "raw_path": f"{raw}/{batch_id}.json", "sha256": batch_id * 4, "size": 1})
    table = pa.table({
        "cn_id": [r[0] for r in rows], "person_name": [r[1] for r in rows], "gender": ["1"] * len(rows),
        "birth_date": [dt.date(1949, 12, 31)] * len(rows), "division_code": ["110105"] * len(rows),
        "mobile": [r[2] for r in rows], "address": ["郑州市金水区某路1号"] * len(rows),
        "_batch_id": [batch_id] * len(rows), "_source_row": list(range(2, 2 + len(rows))),
        "_received_at": [dt.datetime.fromisoformat(received)] * len(rows),
    })
    std = zones.standardized_dir(reg.resource, batch_id)
    lake._ensure_parent(lake.fs_path(f"{std}/part-0.parquet"))
    pq.write_table(table, lake.fs_path(f"{std}/part-0.parquet"))
    lake.write_json(zones.standardized_marker(reg.resource, batch_id), {"batch_id": batch_id, "rows": len(rows)})
    lake.write_json(zones.quarantine_marker(reg.resource, batch_id), {"batch_id": batch_id, "rows": 0})
    lake.write_json(zones.quality_marker(reg.resource, batch_id), {"batch_id": batch_id, "success": passed})


@pytest.fixture
def population(settings):
    return {r.resource: r for r in load_registrations(settings.resources_dir)}["resident_population"]


def _curated(spark, settings, reg):
    lake = Lake.from_settings(settings)
    pointer = lake.read_json(zones.curated_pointer(reg.resource))
    return pointer, {
        r["person_name"]: r.asDict() for r in spark.read.parquet(lake.spark_uri(pointer["path"])).collect()
    }


def test_latest_batch_wins_and_personal_fields_are_masked(spark, settings, population):
    _batch(
        settings,
        population,
        "b1",
        "2026-11-01T00:00:00+00:00",
        [("11010519491231002X", "张三", "13812345678"), ("360426199101010071", "欧阳娜娜", None)],
    )
    _batch(settings, population, "b2", "2026-11-02T00:00:00+00:00", [("11010519491231002X", "张三丰", "13900001111")])
    _batch(
        settings, population, "b3", "2026-11-03T00:00:00+00:00", [("360426199101010071", "李四", None)], passed=False
    )
    result = curate_resource(spark, settings, population)
    assert result.status == "curated" and result.rows == 2 and result.batches == ["b1", "b2"]
    pointer, rows = _curated(spark, settings, population)
    assert set(rows) == {"张**", "欧阳**"}, "b2's version of 张三 wins; b3 failed its quality gate"
    zhang = rows["张**"]
    assert zhang["cn_id"] == "110105********002X" and zhang["mobile"] == "139****1111"
    assert zhang["address"] == "郑州市金水区****"
    assert len(zhang["_record_key"]) == 64
    assert {c["name"] for c in pointer["columns"]} >= {"cn_id", "_record_key", "_batch_id"}


def test_rerun_with_same_batches_changes_nothing(spark, settings, population):
    _batch(settings, population, "b1", "2026-11-01T00:00:00+00:00", [("11010519491231002X", "张三", None)])
    first = curate_resource(spark, settings, population)
    again = curate_resource(spark, settings, population)
    assert again.status == "unchanged" and again.version == first.version and again.rows == first.rows


def test_crash_before_switch_keeps_previous_version_and_rerun_recovers(spark, settings, population, monkeypatch):
    _batch(settings, population, "b1", "2026-11-01T00:00:00+00:00", [("11010519491231002X", "张三", None)])
    first = curate_resource(spark, settings, population)
    _batch(settings, population, "b2", "2026-11-02T00:00:00+00:00", [("360426199101010071", "李四", None)])

    def crash(self, *args, **kwargs):
        raise RuntimeError("simulated crash before the version switch")

    with monkeypatch.context() as m:
        m.setattr(Lake, "commit", crash)
        with pytest.raises(RuntimeError, match="simulated crash"):
            curate_resource(spark, settings, population)
    pointer, rows = _curated(spark, settings, population)
    assert pointer["version"] == first.version and set(rows) == {"张*"}
    done = curate_resource(spark, settings, population)
    pointer, rows = _curated(spark, settings, population)
    assert done.status == "curated" and set(rows) == {"张*", "李*"} and pointer["rows"] == 2
