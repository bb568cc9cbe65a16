"""Live facts from a hand-made small lake (catalog_fixtures.build_small_lake) and from an empty one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from catalog_fixtures import NOW

from citylake.core import tables
from citylake.core.lake import Lake
from citylake.core.masking import mask_address, mask_cn_id, mask_mobile, mask_name, mask_value
from citylake.core.registry import load_registrations
from citylake.stages.publish.facts import collect_facts, freshness, sample_rows, schema_drift, type_family


@pytest.fixture
def regs(settings):
    return {r.resource: r for r in load_registrations(settings.resources_dir)}


def facts_of(settings, reg):
    """As the publication reads them: markers through the ledger, the curated table's metadata."""
    table = tables.table_facts(settings, tables.curated_table(reg))
    return collect_facts(Lake.from_settings(settings), reg, now=NOW, table=table)


def test_empty_lake_says_there_is_no_data(settings, regs):
    for reg in regs.values():
        f = facts_of(settings, reg)
        assert not f.has_data and f.row_count is None and f.last_updated_at is None
        assert f.batches_received == 0 and f.quality_latest_pass_rate is None and f.quarantine_rate is None
        assert f.freshness == "no_data" and f.freshness_label == "暂无数据"
        assert f.columns_present is None and f.drift == []
        assert any("暂无" in n for n in f.notes)
        assert sample_rows(settings, reg) == ([], [])
        assert f.to_dict()["freshness"] == "no_data"


def test_facts_from_markers_and_table_metadata(settings, small_lake, regs):
    reg = regs["enterprise_registration"]
    f = facts_of(settings, reg)
    snapshot = tables.load_table(settings, tables.curated_table(reg)).current_snapshot().snapshot_id
    assert f.has_data and f.row_count == 4 and f.curated_version == str(snapshot)
    assert f.last_updated_at == NOW - timedelta(days=2) + timedelta(minutes=10)
    assert f.batches_received == 3 and f.batches_rejected == 0
    assert f.last_received_at == NOW - timedelta(hours=20)
    # quality: ordered by checked_at; latest is the failed b003
    assert [p.batch_id for p in f.quality_trend] == ["b001", "b002", "b003"]
    assert f.quality_latest_pass_rate == 0.5 and f.quality_latest_success is False
    assert f.quality_recent_pass_rate == pytest.approx((0.95 + 0.98 + 0.5) / 3)
    # quarantine: (5 + 2 + 50) of (300)
    assert f.standardized_rows == 243 and f.quarantined_rows == 57
    assert f.quarantine_rate == pytest.approx(57 / 300)
    assert f.latest_quarantine_rate == pytest.approx(0.5)
    assert f.quarantine_reasons["division_unknown:division_code"] == 50
    assert f.quarantine_reasons["uscc_check:uscc"] == 5
    # fields as present, technical / derived columns are not drift
    assert f.columns_source == "Iceberg table scjg.enterprise_registration"
    assert [c["name"] for c in f.columns_present][:3] == ["uscc", "enterprise_name", "legal_rep"]
    assert f.drift == []
    assert f.freshness == "on_time"  # 每日: updated 2 days - 10 min ago


def test_freshness_overdue_and_drift_from_the_table_schema(settings, small_lake, regs):
    f = facts_of(settings, regs["air_quality_hourly"])
    assert f.columns_source == "Iceberg table sthj.air_quality_hourly"  # the curated pointer has no columns
    assert f.freshness == "overdue" and f.freshness_allowance_hours == 1  # 实时: 1 hour
    assert any("co" in d and "不存在" in d for d in f.drift)
    assert any("wind_speed" in d for d in f.drift)
    assert len(f.drift) == 2
    assert f.quality_latest_pass_rate == 1.0 and f.quarantine_rate == 0.0


def test_failed_gate_and_rejected_drop_without_curated(settings, small_lake, regs):
    f = facts_of(settings, regs["housing_fund_units"])
    assert not f.has_data and f.freshness == "no_data" and f.row_count is None
    assert f.batches_received == 1 and f.batches_rejected == 1
    assert f.quality_latest_success is False and f.quality_latest_pass_rate == 0.4
    assert f.quarantine_rate == pytest.approx(0.75)


def test_freshness_rule():
    t = datetime(2025, 1, 1, tzinfo=UTC)
    assert freshness("实时", t, t + timedelta(minutes=59))[0] == "on_time"
    assert freshness("实时", t, t + timedelta(minutes=61))[0] == "overdue"
    assert freshness("每日", t, t + timedelta(hours=47))[0] == "on_time"
    assert freshness("每日", t, t + timedelta(hours=49))[0] == "overdue"
    assert freshness("每月", t, t + timedelta(days=34))[0] == "on_time"
    assert freshness("每年", t, t + timedelta(days=381))[0] == "overdue"
    assert freshness("其他", t, t + timedelta(days=3000))[0] == "irregular"
    assert freshness("每周", None, t)[0] == "no_data"


def test_drift_detects_type_changes(regs):
    reg = regs["air_quality_hourly"]
    cols = [{"name": f.name, "type": "string"} for f in reg.fields]
    drift = schema_drift(reg, cols)
    assert any("aqi" in d for d in drift) and any("observed_at" in d for d in drift)
    assert not any("station_code" in d for d in drift)
    # restricted fields are left out of curated on purpose; masked personal fields may become text
    person = regs["resident_population"]
    restricted = person.model_copy(update={"fields": [
        f.model_copy(update={"sensitivity": "restricted"}) if f.name == "address" else f for f in person.fields]})
    cols = [{"name": f.name, "type": "string"} for f in restricted.fields if f.name != "address"]
    cols = [dict(c, type="date") if c["name"] == "birth_date" else c for c in cols]
    assert schema_drift(restricted, cols) == []
    assert type_family("decimal(20,4)") == "decimal" and type_family("int64") == "integer"
    assert type_family("timestamp[us, tz=UTC]") == "timestamp" and type_family("large_string") == "text"


def test_samples_are_masked_again_by_registration(settings, small_lake, regs):
    reg = regs["enterprise_registration"]
    fields, rows = sample_rows(settings, reg, limit=5)
    names = [f.name for f in fields]
    assert "_batch_id" not in names and "registered_capital_currency" not in names  # registered fields only
    assert len(rows) == 4
    col = {n: [r[i] for r in rows] for i, n in enumerate(names)}
    assert col["legal_rep"] == ["张*", "欧阳**", "李*", "王**"]
    assert col["legal_rep_id"] == ["410105********002X", "410105********002X", None, "410102********1234"]
    assert col["uscc"][0] == "91110000802100433B"  # public: as is


def test_masking_is_idempotent_and_follows_the_conventions(regs):
    assert mask_cn_id("11010519491231002X") == "110105********002X"
    assert mask_mobile("13812345678") == "138****5678"
    assert mask_name("张三") == "张*" and mask_name("欧阳明华") == "欧阳**"
    assert mask_address("河南省郑州市金水区花园路1号院3号楼") == "河南省郑州市金水区****"
    assert mask_address("郑州市中原区建设路99号") == "郑州市中原区****"
    assert mask_address("花园路1号") == "****"
    for fn, v in [(mask_cn_id, "11010519491231002X"), (mask_mobile, "13812345678"), (mask_name, "欧阳明华"),
                  (mask_address, "河南省郑州市金水区花园路1号")]:
        assert fn(fn(v)) == fn(v)
    person = regs["resident_population"].field_map
    assert mask_value(person["mobile"], "13812345678") == "138****5678"  # mask from its check
    assert mask_value(person["gender"], "1") == "1"  # internal: not masked
