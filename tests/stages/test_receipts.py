"""The liaison's receipt: example rows per reason (masked), allowed codes, duplicates as
information, header columns, times in the centre's zone and the next pick-up.

Batches are laid out by hand as conform and check leave them: raw manifest, standardized and
quarantine markers (docs/zones.md) and the quarantine Parquet (the original text of every field,
``_raw_line``, ``_reasons`` and lineage), so no Spark is needed."""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from citylake.core import cycles, zones
from citylake.core.lake import Lake
from citylake.core.ledger import QUALITY_OF, Ledger
from citylake.core.registry import load_registrations
from citylake.core.settings import Settings
from citylake.drivers.airflow import schedules
from citylake.stages import receipts
from citylake.stages.receipts import build_receipt, render_text, write_drop_receipt, write_receipts

RECEIVED = "2026-11-30T03:48:56+00:00"  # 11:48:56 in Beijing
NOW = datetime(2026, 11, 30, 3, 50, tzinfo=UTC)  # receipt written at 11:50 Beijing time
COMMITTED = "2026-11-30T03:49:30+00:00"
CORRECT = "请按隔离原因修正后重新报送相应记录。"
CORRECT_EN = "Please correct the quarantined rows"
BAD_ID = "110101199003071235"  # a citizen ID with a wrong check character: personal
BAD_ID_MASKED = "110101********1235"


@pytest.fixture(scope="module")
def regs():
    return {r.resource: r for r in load_registrations(Settings.from_env().resources_dir)}


@pytest.fixture
def ent(regs):
    """企业登记信息: public USCC and status code list, personal legal representative and ID."""
    return regs["enterprise_registration"]


@pytest.fixture
def lake(settings):
    return Lake.from_settings(settings)


def _qrow(reg, source_row: int, reasons: list[str], raw_line: str | None = None, **values) -> dict:
    row = {f.name: None for f in reg.fields}
    row.update(values)
    row.update({"_raw_line": raw_line, "_reasons": reasons, "_source_row": source_row, "_batch_id": "b1",
                "_received_at": datetime.fromisoformat(RECEIVED)})
    return row


def _quarantine_schema(reg) -> pa.Schema:
    # As conform writes it: every field as the text sent, then the row's reasons and lineage.
    return pa.schema([pa.field(f.name, pa.string()) for f in reg.fields] + [
        pa.field("_raw_line", pa.string()),
        pa.field("_reasons", pa.list_(pa.string())),
        pa.field("_batch_id", pa.string()),
        pa.field("_source_row", pa.int64()),
        pa.field("_received_at", pa.timestamp("us", tz="UTC")),
    ])


def conformed_batch(lake, reg, quarantine: list[dict], batch="b1", good=90, decode=None, received=RECEIVED,
                    row_group_size=None):
    """A conformed batch: manifest, standardized marker (with decode facts), quarantine rows."""
    batch_dir = zones.raw_batch_dir(reg.department, reg.resource, received[:10], batch)
    lake.write_bytes(f"{batch_dir}/{batch}.csv", b"x")
    lake.write_json(zones.manifest_path(batch_dir), {
        "batch_id": batch, "received_at": received, "status": "ingested", "source_name": "企业登记_202611.csv",
        "raw_path": f"{batch_dir}/{batch}.csv", "sha256": "ab" * 32, "size": 1234})
    decode = {"encoding": "utf-8", "rows": good + len(quarantine), "header": [], "mapped": {}, "unmapped": [],
              "missing_fields": [], "missing_required": [], **(decode or {})}
    lake.write_json(zones.standardized_marker(reg.resource, batch),
                    {"batch_id": batch, "rows": good, "columns": [], "committed_at": COMMITTED, "decode": decode})
    qdir = zones.quarantine_dir(reg.resource, batch)
    buf = io.BytesIO()
    table = pa.Table.from_pylist(quarantine, schema=_quarantine_schema(reg))
    pq.write_table(table, buf, row_group_size=row_group_size)
    lake.write_bytes(f"{qdir}/part-00000-1f2e.c000.snappy.parquet", buf.getvalue())
    lake.write_bytes(f"{qdir}/_SUCCESS", b"")  # what Spark leaves beside the data
    lake.write_bytes(f"{qdir}/.part-00000-1f2e.c000.snappy.parquet.crc", b"not parquet")
    reasons = Counter(r for row in quarantine for r in row["_reasons"])
    lake.write_json(zones.quarantine_marker(reg.resource, batch),
                    {"batch_id": batch, "rows": len(quarantine), "reasons": dict(reasons), "committed_at": COMMITTED})
    return batch


def receipt_of(settings, reg, batch="b1", now=NOW):
    [receipt] = write_receipts(settings, reg, [batch], now=now)
    lake = Lake.from_settings(settings)
    base = zones.receipt_base(reg.department, reg.resource, batch)
    assert lake.read_json(base + ".json") == json.loads(json.dumps(receipt, ensure_ascii=False, default=str))
    text = lake.read_bytes(base + ".txt").decode("utf-8")
    assert text == render_text(receipt)
    return receipt, text


def by_reason(receipt) -> dict:
    return {item["reason"]: item for item in receipt["quarantined_by_reason"]}


# ---- examples per reason ------------------------------------------------------------------------
def test_examples_per_reason_are_the_quarantined_rows_with_their_row_numbers_and_values(settings, lake, ent):
    bad_uscc = [f"9141010000000{n:04d}X" for n in range(8)]
    rows = [_qrow(ent, 10 + n, ["uscc_check:uscc"], uscc=bad_uscc[n], enterprise_name=f"企业{n}")
            for n in range(8)]  # 8 rows: 5 examples
    rows.append(_qrow(ent, 40, ["uscc_format:uscc", "not_in_codelist:status"], uscc="12AB", status="营业"))
    rows.append(_qrow(ent, 41, ["column_count"], raw_line="a,b,c"))
    conformed_batch(lake, ent, rows)
    receipt, text = receipt_of(settings, ent)

    items = by_reason(receipt)
    assert receipt["status"] == "partially_accepted" and receipt["rows"]["quarantined"] == 10
    assert items["uscc_check:uscc"]["count"] == 8
    assert items["uscc_check:uscc"]["examples"] == [
        {"source_row": 10 + n, "field": "uscc", "title": "统一社会信用代码", "value": bad_uscc[n]} for n in range(5)
    ]
    # A row with two reasons is an example of both.
    assert items["uscc_format:uscc"]["examples"] == [
        {"source_row": 40, "field": "uscc", "title": "统一社会信用代码", "value": "12AB"}]
    assert items["not_in_codelist:status"]["examples"] == [
        {"source_row": 40, "field": "status", "title": "登记状态", "value": "营业"}]
    # enterprise_registration has personal fields: a line that could not be split is not shown.
    [line] = items["column_count"]["examples"]
    assert line["source_row"] == 41 and line["value"] is None and line["withheld"] is True

    assert "第 10 行，统一社会信用代码：「91410100000000000X」" in text
    assert "第 14 行" in text and "第 15 行" not in text, "five examples per reason"
    assert "第 41 行：该行无法拆分为字段" in text and "a,b,c" not in text
    assert f"{CORRECT}" in text and CORRECT_EN in text
    assert receipt["action_required"] is True


def test_a_raw_line_is_shown_clipped_for_a_resource_without_personal_fields(settings, lake, regs):
    reg = regs["housing_fund_units"]
    assert not any(f.sensitivity in ("personal", "restricted") for f in reg.fields)
    long_line = "91410100MA44ABCD1X,某某单位," + "很长的备注" * 40
    conformed_batch(lake, reg, [_qrow(reg, 7, ["malformed_line"], raw_line=long_line),
                                _qrow(reg, 8, ["column_count"], raw_line="x\ty\r\nz")])
    receipt, text = receipt_of(settings, reg)
    [ex] = by_reason(receipt)["malformed_line"]["examples"]
    assert ex["source_row"] == 7 and ex["withheld"] is False
    assert ex["value"] == long_line[:receipts.CLIP_CHARS] + "…"
    [ex] = by_reason(receipt)["column_count"]["examples"]
    assert ex["value"] == "x y  z", "control characters would break the text's lines"
    assert f"第 7 行：「{long_line[:receipts.CLIP_CHARS]}…」" in text


def test_reading_stops_once_every_reason_has_its_examples_and_reads_only_needed_columns(
        settings, lake, ent, monkeypatch):
    rows = [_qrow(ent, n + 2, ["uscc_check:uscc"], uscc=f"X{n}", enterprise_name="不需要读") for n in range(2000)]
    conformed_batch(lake, ent, rows, row_group_size=100)
    seen = {"batches": 0, "columns": None}
    real = pq.ParquetFile

    class Counting(real):
        def iter_batches(self, *args, columns=None, **kwargs):
            seen["columns"] = columns
            for rb in super().iter_batches(*args, columns=columns, **kwargs):
                seen["batches"] += 1
                yield rb

    monkeypatch.setattr(receipts.pq, "ParquetFile", Counting)
    monkeypatch.setattr(receipts, "READ_ROWS", 10)
    examples = receipts.quarantine_examples(lake, ent, "b1", {"uscc_check:uscc": 2000})
    assert [e["source_row"] for e in examples["uscc_check:uscc"]] == [2, 3, 4, 5, 6]
    assert seen["batches"] == 1, "the first record batch held enough examples"
    assert set(seen["columns"]) == {"uscc", "_reasons", "_source_row", "_raw_line"}


def test_key_and_damaged_rows_show_the_key_or_the_damaged_field(settings, lake, regs):
    reg = regs["social_insurance_enrollment"]  # key: cn_id (personal) + insurance_type
    conformed_batch(lake, reg, [
        _qrow(reg, 5, ["duplicate_key"], cn_id=BAD_ID, insurance_type="110", person_name="张三"),
        _qrow(reg, 6, ["encoding_damage"], cn_id="110101199003071234", person_name="张锟斤拷", insurance_type="110"),
    ])
    receipt, text = receipt_of(settings, reg)
    [dup] = by_reason(receipt)["duplicate_key"]["examples"]
    assert dup == {"source_row": 5, "field": "cn_id,insurance_type", "title": "公民身份号码、险种类型",
                   "value": f"{BAD_ID_MASKED} / 110"}
    [damaged] = by_reason(receipt)["encoding_damage"]["examples"]
    assert damaged["field"] == "person_name" and damaged["value"] == "张***"
    assert by_reason(receipt)["duplicate_key"]["needs_action"] is True, "same key, other content: to settle"
    assert CORRECT in text


# ---- masking ----------------------------------------------------------------------------------
def test_personal_values_never_appear_unmasked(settings, lake, ent):
    raw = f"91410100MA44ABCD1X,某公司,张三丰,{BAD_ID},100"
    conformed_batch(lake, ent, [
        _qrow(ent, 3, ["cn_id_check:legal_rep_id"], legal_rep_id=BAD_ID, legal_rep="张三丰"),
        _qrow(ent, 4, ["required:legal_rep"], legal_rep="无", legal_rep_id=BAD_ID),
        _qrow(ent, 5, ["malformed_line"], raw_line=raw),
        _qrow(ent, 6, ["encoding_damage"], legal_rep="欧阳锟斤拷", legal_rep_id=BAD_ID),
    ])
    # The quality gate's samples are standardized values: they too must be masked.
    lake.write_json(zones.quality_marker(ent.resource, "b1"), {
        "batch_id": "b1", "success": False, "pass_rate": 0.9, QUALITY_OF: COMMITTED, "blocking_failures": [
            {"expectation": "expect_column_values_to_be_unique", "column": "legal_rep_id",
             "description_zh": "取值唯一", "description_en": "unique",
             "observed": {"unexpected_count": 2, "unexpected_sample": [BAD_ID, BAD_ID], "source_rows": [3, 9]}},
            {"expectation": "expect_compound_columns_to_be_unique", "column": "legal_rep,legal_rep_id",
             "description_zh": "组合唯一", "description_en": "unique together",
             "observed": {"unexpected_count": 1, "unexpected_sample": [{"legal_rep": "张三丰", "legal_rep_id": BAD_ID}]}},
        ]})
    receipt, text = receipt_of(settings, ent)
    as_json = json.dumps(receipt, ensure_ascii=False)
    for secret in (BAD_ID, "张三丰", "欧阳锟斤拷"):
        assert secret not in as_json and secret not in text, secret
    assert by_reason(receipt)["cn_id_check:legal_rep_id"]["examples"] == [
        {"source_row": 3, "field": "legal_rep_id", "title": "法定代表人身份证号码", "value": BAD_ID_MASKED}]
    assert by_reason(receipt)["encoding_damage"]["examples"][0]["value"] == "欧阳***"
    assert [e["value"] for e in by_reason(receipt)["required:legal_rep"]["examples"]] == ["无"], "a null token as sent"
    assert f"「{BAD_ID_MASKED}」" in text
    [unique, compound] = receipt["quality"]["blocking_failures"]
    assert unique["observed"]["unexpected_sample"] == [BAD_ID_MASKED, BAD_ID_MASKED]
    assert unique["observed"]["source_rows"] == [3, 9] and unique["column_title"] == "法定代表人身份证号码"
    assert "unexpected_sample" not in compound["observed"] and compound["observed"]["values_withheld"] is True
    assert receipt["status"] == "blocked"


# ---- code lists -------------------------------------------------------------------------------
def test_codelist_reasons_list_the_allowed_codes(settings, lake, ent):
    conformed_batch(lake, ent, [_qrow(ent, 12, ["not_in_codelist:status"], status="营业")])
    receipt, text = receipt_of(settings, ent)
    item = by_reason(receipt)["not_in_codelist:status"]
    assert item["allowed_values"] == [{"code": c, "meaning": m} for c, m in ent.field_map["status"].codes.items()]
    assert "代码不在代码表中（登记状态）：1 行" in text
    assert "允许的值：存续＝存续（在营、开业、在册）；在业；吊销；注销" in text
    assert "allowed_values" not in by_reason(receipt).get("uscc_check:uscc", {})


# ---- duplicates ---------------------------------------------------------------------------------
def test_exact_duplicates_only_are_information_not_work(settings, lake, ent):
    conformed_batch(lake, ent, [_qrow(ent, 20, ["duplicate_row"], uscc="91410100MA44ABCD1X"),
                                _qrow(ent, 31, ["duplicate_row"], uscc="91410100MA44ABCD2X")])
    receipt, text = receipt_of(settings, ent)
    assert receipt["status"] == "partially_accepted" and receipt["rows"]["quarantined"] == 2
    assert receipt["action_required"] is False
    assert by_reason(receipt)["duplicate_row"]["needs_action"] is False
    [info] = receipt["information"]
    assert info["reason"] == "duplicate_row" and info["count"] == 2
    assert info["zh"] == "重复行已忽略，无需重报" and info["en"] == "exact duplicates were ignored, nothing to resend"
    assert [e["source_row"] for e in info["examples"]] == [20, 31]
    assert CORRECT not in text and CORRECT_EN not in text and "需要修正" not in text
    assert "无需处理：" in text and "重复行已忽略，无需重报" in text and "第 20、31 行" in text


def test_duplicates_beside_rows_to_correct_still_ask_for_the_correction(settings, lake, ent):
    conformed_batch(lake, ent, [_qrow(ent, 20, ["duplicate_row"]), _qrow(ent, 21, ["required:uscc"])])
    receipt, text = receipt_of(settings, ent)
    assert receipt["action_required"] is True and CORRECT in text
    assert [i["reason"] for i in receipt["information"]] == ["duplicate_row"]
    work = text.split("无需处理：")[0]
    assert "必填项为空（统一社会信用代码）" in work and "完全重复" not in work


# ---- header columns -----------------------------------------------------------------------------
def test_unrecognised_header_columns_and_missing_fields_are_listed(settings, lake, ent):
    conformed_batch(lake, ent, [], decode={"unmapped": ["备注", "经办人"],
                                           "missing_fields": ["registered_capital", "legal_rep_id"]})
    receipt, text = receipt_of(settings, ent)
    assert receipt["status"] == "accepted"
    assert receipt["unrecognised_columns"] == ["备注", "经办人"]
    assert receipt["missing_fields"] == [
        {"field": "registered_capital", "title": "注册资本", "required": False},
        {"field": "legal_rep_id", "title": "法定代表人身份证号码", "required": False},
    ]
    assert "表头中未识别的列（内容未接收）：备注、经办人" in text
    assert "文件中没有以下登记字段的列：注册资本、法定代表人身份证号码" in text
    assert CORRECT not in text


def test_what_decoding_noticed_about_the_file_is_told(settings, lake, ent):
    conformed_batch(lake, ent, [], decode={
        "encoding": "utf-8", "header_row": 3, "skipped_rows": [{"row": 1, "text": "导出说明甲"}, {"row": 2, "text": "x"}],
        "duplicate_columns": [{"column": 9, "header": "企业名称", "field": "enterprise_name", "kept_column": 2}],
        "padded_rows": 12, "padded_examples": [4, 9], "multiline_records": 2,
        "encoding_ranges": [{"encoding": "gb18030", "first": 40, "last": 42}, {"encoding": "gb18030", "first": 77,
                                                                              "last": 77}]})
    receipt, text = receipt_of(settings, ent)
    assert [n["kind"] for n in receipt["file_notes"]] == [
        "skipped_rows", "duplicate_column", "padded_rows", "multiline_records", "mixed_encoding"]
    assert "表头在第 3 行，其上的标题行已跳过（第 1、2 行）" in text
    assert "第 9 列“企业名称”与第 2 列重复，未接收其内容" in text
    assert "12 rows had fewer cells than the header" in text and "e.g. rows 4, 9" in text
    assert "2 records hold line breaks inside quoted cells" in text
    assert "these lines are in gb18030 and were read as such: 40-42, 77" in text
    assert "导出说明甲" not in text  # a skipped row's text is not repeated
    # A plain file has no notes.
    conformed_batch(lake, ent, [], batch="b2")
    plain, _ = receipt_of(settings, ent, batch="b2")
    assert plain["file_notes"] == []


# ---- times and the next pick-up -------------------------------------------------------------------
def test_times_are_in_beijing_time_with_offset(settings, lake, ent):
    conformed_batch(lake, ent, [])
    receipt, text = receipt_of(settings, ent)
    assert receipt["timezone"] == "Asia/Shanghai"
    assert receipt["received_at"] == "2026-11-30T11:48:56+08:00"
    assert receipt["written_at"] == "2026-11-30T11:50:00+08:00"
    assert "接收时间：2026-11-30 11:48:56（北京时间）" in text
    assert "Received: 2026-11-30 11:48:56 (Beijing time)" in text


def test_next_pickup_of_a_daily_resource_is_the_next_days_run(settings, lake, ent):
    assert ent.update_cycle == "每日"
    conformed_batch(lake, ent, [])
    receipt, text = receipt_of(settings, ent)
    assert receipt["update_cycle"] == "每日"
    assert receipt["next_pickup"] == "2026-12-01T02:00:00+08:00"
    assert "下次接收：2026-12-01 02:00（北京时间）" in text
    assert "Next pick-up: 2026-12-01 02:00 (Beijing time)" in text


def test_another_centre_zone_shows_the_same_instants(settings, lake, ent):
    conformed_batch(lake, ent, [])
    utc_settings = replace(settings, timezone="UTC")
    receipt, text = receipt_of(utc_settings, ent)
    # The DAGs still read their cron in Beijing time: 02:00 there is 18:00 UTC the day before.
    assert receipt["next_pickup"] == "2026-11-30T18:00:00+00:00"
    assert receipt["received_at"] == "2026-11-30T03:48:56+00:00"
    assert "接收时间：2026-11-30 03:48:56（UTC）" in text and "下次接收：2026-11-30 18:00（UTC）" in text


def test_timezone_setting_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("CITYLAKE_TIMEZONE", "Europe/Berlin")
    assert Settings.from_env().timezone == "Europe/Berlin"
    assert Settings.from_env().as_env()["CITYLAKE_TIMEZONE"] == "Europe/Berlin"
    monkeypatch.delenv("CITYLAKE_TIMEZONE")
    assert Settings.from_env().timezone == "Asia/Shanghai"


def test_the_duplicate_drop_receipt_is_in_the_centre_zone(settings, lake, ent, monkeypatch):
    monkeypatch.setattr(receipts, "now_utc", lambda: NOW)
    outcome = {"landing_path": "landing/scjg/enterprise_registration/x.csv", "sha256": "cd" * 32, "size": 3}
    write_drop_receipt(lake, ent, outcome, {"batch_id": "b0", "source_name": "x.csv"})
    [f] = [f for f in lake.list_files(zones.receipts_dir(ent.department, ent.resource)) if f.name.endswith(".json")]
    assert lake.read_json(f.path)["received_at"] == "2026-11-30T11:50:00+08:00"
    assert f.name.startswith("20261130T035000Z_")


def test_build_receipt_without_a_lake_has_no_examples(settings, lake, ent):
    conformed_batch(lake, ent, [_qrow(ent, 3, ["required:uscc"])])
    receipt = build_receipt(ent, Ledger.read(lake, ent).batch("b1"))
    assert receipt["status"] == "partially_accepted" and by_reason(receipt)["required:uscc"]["examples"] == []
    assert receipt["received_at"].endswith("+08:00") and receipt["next_pickup"].endswith("+08:00")
    assert CORRECT in render_text(receipt)


# ---- the cycle table ------------------------------------------------------------------------------
BEIJING = ZoneInfo("Asia/Shanghai")


def _bj(*args) -> datetime:
    return datetime(*args, tzinfo=BEIJING)


@pytest.mark.parametrize(("cycle", "after", "expected"), [
    ("实时", _bj(2026, 11, 30, 11, 48, 56), _bj(2026, 11, 30, 11, 50)),
    ("实时", _bj(2026, 11, 30, 23, 55), _bj(2026, 12, 1, 0, 0)),
    ("每日", _bj(2026, 11, 30, 11, 48), _bj(2026, 12, 1, 2, 0)),
    ("每日", _bj(2026, 11, 30, 1, 59, 59), _bj(2026, 11, 30, 2, 0)),
    ("每日", _bj(2026, 11, 30, 2, 0), _bj(2026, 12, 1, 2, 0)),  # strictly after
    ("其他", _bj(2026, 12, 31, 3, 0), _bj(2027, 1, 1, 2, 0)),
    ("每周", _bj(2026, 11, 30, 11, 48), _bj(2026, 12, 7, 3, 0)),  # 2026-11-30 is a Monday
    ("每周", _bj(2026, 11, 29, 23, 0), _bj(2026, 11, 30, 3, 0)),
    ("每月", _bj(2026, 11, 30, 11, 48), _bj(2026, 12, 1, 3, 0)),
    ("每季度", _bj(2026, 11, 30, 11, 48), _bj(2027, 1, 1, 3, 0)),
    ("每季度", _bj(2027, 1, 1, 3, 0), _bj(2027, 4, 1, 3, 0)),
    ("每半年", _bj(2027, 1, 2, 0, 0), _bj(2027, 7, 1, 3, 0)),
    ("每年", _bj(2027, 1, 1, 2, 59), _bj(2027, 1, 1, 3, 0)),
    ("每日", datetime(2026, 11, 30, 17, 59, tzinfo=UTC), _bj(2026, 12, 1, 2, 0)),  # 01:59 in Beijing
])
def test_next_pickup(cycle, after, expected):
    got = cycles.next_pickup(cycle, after)
    assert got == expected and got.utcoffset() == timedelta(hours=8)


def test_next_pickup_unknown_cycle_and_naive_time():
    assert cycles.next_pickup("每两月", _bj(2026, 1, 1)) is None
    with pytest.raises(ValueError, match="time zone"):
        cycles.next_pickup("每日", datetime(2026, 1, 1))


def test_cron_forms():
    minute, hour, dom, month, dow = cycles.parse_cron("5-20/5 0,12 1-3 */6 7")
    assert minute == {5, 10, 15, 20} and hour == {0, 12} and dom == {1, 2, 3} and month == {1, 7} and dow == {0}
    for bad in ("0 2 * *", "60 * * * *", "0 2 * JAN *", "*/0 * * * *"):
        with pytest.raises(ValueError):
            cycles.parse_cron(bad)
    # Both day fields restricted: a day matching either fires (cron).
    assert cycles.next_cron_time("0 0 15 * 1", _bj(2026, 11, 30, 1)) == _bj(2026, 12, 7)
    assert cycles.next_cron_time("0 0 15 * 1", _bj(2026, 12, 8)) == _bj(2026, 12, 14)


def test_next_pickup_agrees_with_croniter():
    croniter = pytest.importorskip("croniter").croniter
    rng = random.Random(7)
    for cycle, expr in cycles.CYCLE_SCHEDULES.items():
        for _ in range(40):
            after = _bj(2026, 1, 1) + timedelta(minutes=rng.randrange(3 * 366 * 24 * 60), seconds=rng.randrange(60))
            assert cycles.next_pickup(cycle, after) == croniter(expr, after).get_next(datetime), (cycle, after)


def test_airflow_schedules_use_the_core_table():
    assert schedules.CYCLE_SCHEDULES is cycles.CYCLE_SCHEDULES
    default_zone = next(f.default for f in fields(Settings) if f.name == "timezone")
    assert schedules.TIMEZONE == cycles.TIMEZONE == default_zone
