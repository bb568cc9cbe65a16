"""Freshness: last curated update against 更新周期 (citylake/freshness.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from citylake.core import zones
from citylake.core.lake import Lake
from citylake.core.registry import UPDATE_CYCLES, load_registrations
from citylake.stages.freshness import assess, max_age, write_freshness_report

NOW = datetime(2025, 3, 10, 2, 0, tzinfo=UTC)


def test_every_cycle_has_an_allowance():
    for cycle in UPDATE_CYCLES:
        limit = max_age(cycle)
        assert limit is None if cycle == "其他" else limit > timedelta(0)
    assert max_age("实时") < max_age("每日") < max_age("每周") < max_age("每月") < max_age("每季度") \
        < max_age("每半年") < max_age("每年")
    with pytest.raises(ValueError, match="每两月"):
        max_age("每两月")


def test_the_directory_and_the_report_use_the_same_rule():
    facts = pytest.importorskip("citylake.stages.publish.facts")
    for cycle in UPDATE_CYCLES:
        assert facts.FRESHNESS_ALLOWANCE[cycle] == max_age(cycle), cycle


@pytest.mark.parametrize("cycle, age, status", [
    ("每日", timedelta(hours=20), "on_time"),
    ("每日", timedelta(days=3), "overdue"),
    ("实时", timedelta(minutes=30), "on_time"),
    ("实时", timedelta(hours=5), "overdue"),
    ("每月", timedelta(days=34), "on_time"),
    ("其他", timedelta(days=900), "irregular"),
    ("每周", None, "no_data"),
])
def test_assess(cycle, age, status):
    result = assess(cycle, NOW - age if age is not None else None, NOW)
    assert result["status"] == status
    assert result["overdue"] == (status == "overdue")
    if status == "overdue":
        assert result["overdue_hours"] == pytest.approx(result["age_hours"] - result["max_age_hours"])


def test_report_in_the_lake_and_for_the_centre(settings):
    regs = load_registrations(settings.resources_dir)
    lake = Lake.from_settings(settings)
    by_name = {r.resource: r for r in regs}
    lake.write_json(zones.curated_pointer("enterprise_registration"),
                    {"rows": 3, "updated_at": (NOW - timedelta(hours=5)).isoformat()})
    lake.write_json(zones.curated_pointer("housing_fund_units"),
                    {"rows": 3, "updated_at": (NOW - timedelta(days=50)).isoformat()})

    report = write_freshness_report(settings, now=NOW)
    rows = {r["resource"]: r for r in report["resources"]}
    assert set(rows) == set(by_name)
    assert rows["enterprise_registration"]["status"] == "on_time"
    assert rows["housing_fund_units"]["status"] == "overdue"
    assert report["overdue"] == ["housing_fund_units"]
    assert rows["air_quality_hourly"]["status"] == "no_data"

    assert lake.read_json("directory/freshness.json") == json.loads(
        (settings.directory_dir / "freshness.json").read_text(encoding="utf-8"))
    text = (settings.directory_dir / "freshness.txt").read_text(encoding="utf-8")
    assert text.startswith("数据资源更新及时性报告")
    assert "【更新逾期】住房公积金缴存单位信息（housing_fund_units）— 郑州住房公积金管理中心" in text
    assert "逾期 15 天" in text
    assert text.index("更新逾期】") < text.index("【按时更新】"), "overdue first"
