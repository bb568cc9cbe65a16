"""Helpers for the directory tests: a small hand-made lake (marker JSONs + curated Iceberg tables
written with pyiceberg, as docs/zones.md describes them), so the tests do not depend on Spark or the
pipeline, and directory database URLs for SQLite and, when reachable, PostgreSQL."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from citylake.core import tables, zones
from citylake.core.lake import Lake
from citylake.core.settings import REPO_ROOT, Settings

NOW = datetime(2025, 6, 30, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


def _ts(dt: datetime) -> str:
    return dt.isoformat()


def curated_table(settings: Settings, dept: str, res: str, table: pa.Table, received_through: datetime) -> int:
    """The resource's curated table holding ``table``, committed as curate stamps its snapshots."""
    catalog = tables.python_catalog(settings)
    catalog.create_namespace_if_not_exists(dept)
    tbl = catalog.create_table((dept, res), schema=table.schema)
    tbl.append(table, snapshot_properties={
        tables.SNAPSHOT_OPERATION: "merge", tables.SNAPSHOT_RECEIVED_THROUGH: _ts(received_through)})
    return tbl.current_snapshot().snapshot_id


def _batch(lake: Lake, dept: str, res: str, batch: str, received: datetime, *, std: int, quar: int,
           reasons: dict, pass_rate: float | None, success: bool = True, status: str = "ingested") -> None:
    day = received.date().isoformat()
    manifest = {
        "batch_id": batch, "department": dept, "resource": res, "source_name": f"{batch}.csv",
        "landing_path": f"landing/{dept}/{res}/{batch}.csv",
        "raw_path": f"raw/{dept}/{res}/ingest_date={day}/batch_id={batch}/{batch}.csv",
        "sha256": batch * 4, "size": 1000, "received_at": _ts(received), "ingest_date": day,
        "format": "csv", "status": status,
    }
    lake.write_json(zones.manifest_path(zones.raw_batch_dir(dept, res, day, batch)), manifest)
    lake.write_bytes(f"raw/{dept}/{res}/ingest_date={day}/batch_id={batch}/{batch}.csv", b"x")
    if status != "ingested":
        return
    lake.write_json(zones.raw_index_path(dept, res, batch * 4), {"batch_id": batch, "manifest": manifest})
    committed = _ts(received + timedelta(minutes=5))
    lake.write_json(zones.standardized_marker(res, batch),
                    {"batch_id": batch, "rows": std, "columns": [], "committed_at": committed})
    lake.write_json(zones.quarantine_marker(res, batch),
                    {"batch_id": batch, "rows": quar, "reasons": reasons, "committed_at": committed})
    if pass_rate is not None:
        rate = round(quar / (std + quar), 6) if std + quar else 0.0
        gate = {"expectation_type": "citylake_quarantine_rate_at_most", "column": None,
                "kwargs": {"max_quarantine_rate": 0.5}, "blocking": True, "source": "registration",
                "description_zh": "隔离率不超过 50%", "description_en": "quarantine rate at most 50%",
                "success": success, "unexpected_count": quar, "unexpected_percent": rate * 100}
        if not success:
            gate["observed"] = {"observed_value": rate, "quarantined": quar, "received": std + quar}
        failures = [] if success else [{"expectation": gate["expectation_type"], "column": None,
                                        "description_zh": gate["description_zh"],
                                        "description_en": gate["description_en"], "observed": gate["observed"]}]
        result = {
            "batch_id": batch, "success": success, "blocking_failures": failures,
            "pass_rate": pass_rate, "evaluated": 20, "successful": round(20 * pass_rate),
            "checked_at": _ts(received + timedelta(minutes=8)), "rows": std, "quarantined": quar,
            "quarantine_rate": rate, "max_quarantine_rate": 0.5,
            "summary_zh": "质量校验未通过" if not success else "质量校验通过",
            "standardized_committed_at": committed, "results": [gate],
        }
        lake.write_json(zones.quality_result_path(res, batch), result)
        lake.write_json(zones.quality_marker(res, batch), {k: v for k, v in result.items() if k != "results"})


def build_small_lake(settings: Settings) -> Lake:
    """
    * enterprise_registration: 3 batches, curated v2 (4 rows) whose legal_rep/legal_rep_id values
      are partly NOT masked (the directory must mask them itself); on time (每日).
    * air_quality_hourly: 1 batch received 3 hours before NOW (实时 → overdue), curated without
      ``co`` and with an unregistered ``wind_speed`` column (drift), columns from the Parquet schema.
    * housing_fund_units: one batch that failed its quality gate, nothing curated; one rejected drop.
    * resident_population, real_estate_registration: nothing at all.
    """
    lake = Lake.from_settings(settings)
    res, dept = "enterprise_registration", "scjg"
    t0 = NOW - timedelta(days=3)
    _batch(
        lake,
        dept,
        res,
        "b001",
        t0,
        std=95,
        quar=5,
        reasons={"uscc_check:uscc": 3, "cn_id_check:legal_rep_id": 2},
        pass_rate=0.95,
    )
    _batch(
        lake, dept, res, "b002", t0 + timedelta(days=1), std=98, quar=2, reasons={"uscc_check:uscc": 2}, pass_rate=0.98
    )
    _batch(
        lake,
        dept,
        res,
        "b003",
        NOW - timedelta(hours=20),
        std=50,
        quar=50,
        reasons={"division_unknown:division_code": 50, "duplicate_row": 1},
        pass_rate=0.5,
        success=False,
    )
    table = pa.table(
        {
            "uscc": ["91110000802100433B", "9114010663015395X2", "91410100MA44XXXX1A", "91410100MA45YYYY2B"],
            "enterprise_name": [
                "郑州宏达商贸有限公司",
                "河南中原科技股份有限公司",
                "郑州市金水区小李餐饮店",
                "郑州绿城物流有限公司",
            ],
            "legal_rep": ["张*", "欧阳明华", "李四", "王**"],
            "legal_rep_id": ["410105********002X", "41010519491231002X", None, "410102198001011234"],
            "registered_capital": pa.array([500.0, 12000.5, 10.0, None], pa.float64()),
            "established_on": pa.array(
                [
                    datetime(2010, 5, 1).date(),
                    datetime(2001, 3, 15).date(),
                    datetime(2019, 7, 9).date(),
                    datetime(2015, 1, 20).date(),
                ],
                pa.date32(),
            ),
            "division_code": ["410105", "410105", "410105", "410102"],
            "address": [
                "郑州市金水区花园路1号",
                "郑州市金水区农业路18号",
                "郑州市金水区文化路7号",
                "郑州市中原区建设路99号",
            ],
            "status": ["存续", "存续", "注销", "在业"],
            "registered_capital_currency": ["人民币", "人民币", "人民币", None],
            "_batch_id": ["b001", "b002", "b002", "b002"],
        }
    )
    updated = t0 + timedelta(days=1, minutes=10)
    snapshot = curated_table(settings, dept, res, table, updated)
    lake.write_json(
        zones.curated_pointer(res),
        {
            "version": str(snapshot),
            "rows": 4,
            "columns": [{"name": n, "type": str(t)} for n, t in zip(table.schema.names, table.schema.types)],
            "batches": {"b001": _ts(t0 + timedelta(minutes=5)), "b002": _ts(t0 + timedelta(days=1, minutes=5))},
            "updated_at": _ts(updated),
            "received_through": _ts(updated),
        },
    )

    res, dept = "air_quality_hourly", "sthj"
    _batch(lake, dept, res, "a001", NOW - timedelta(hours=3), std=24, quar=0, reasons={}, pass_rate=1.0)
    air = pa.table(
        {
            "station_code": ["1001A", "1002A"],
            "station_name": ["市监测站", "郑纺机"],
            "division_code": ["410102", "410102"],
            "observed_at": pa.array([datetime(2025, 6, 30, 0), datetime(2025, 6, 30, 1)], pa.timestamp("us")),
            "aqi": pa.array([56, 61], pa.int32()),
            "pm25": [21.0, 25.5],
            "pm10": [48.0, 55.0],
            "so2": [6.0, 7.0],
            "no2": [22.0, 25.0],
            "o3": [80.0, 92.0],
            "primary_pollutant": ["颗粒物(PM10)", None],
            "wind_speed": [1.2, 2.3],
        }
    )
    updated = NOW - timedelta(hours=3) + timedelta(minutes=10)
    snapshot = curated_table(settings, dept, res, air, updated)
    lake.write_json(
        zones.curated_pointer(res),
        {
            "version": str(snapshot),
            "rows": 2,
            "batches": {"a001": _ts(NOW - timedelta(hours=3) + timedelta(minutes=5))},
            "updated_at": _ts(updated),
            "received_through": _ts(updated),
        },
    )

    res, dept = "housing_fund_units", "gjj"
    _batch(
        lake,
        dept,
        res,
        "h001",
        NOW - timedelta(days=10),
        std=10,
        quar=30,
        reasons={"uscc_check": 30},
        pass_rate=0.4,
        success=False,
    )
    _batch(
        lake, dept, res, "h002", NOW - timedelta(days=9), std=0, quar=0, reasons={}, pass_rate=None, status="rejected"
    )
    return lake


def copy_resources(tmp_path: Path) -> Path:
    dst = tmp_path / "resources"
    shutil.copytree(REPO_ROOT / "registrations", dst)
    return dst
