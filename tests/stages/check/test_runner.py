"""check_batch: GE (Spark engine) on a standardized batch, the quarantine gate, result, validation
and marker.

Importing great_expectations without pyspark[connect] silently exits 0, so every test here
asserts on the results it gets back and on the files written."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pyarrow as pa
import pytest

from citylake.core import zones
from citylake.core.lake import Lake
from citylake.stages.check.runner import OBSERVED_SAMPLE, check_batch, read_result

pytestmark = pytest.mark.spark

RESULT_KEYS = {
    "batch_id", "resource", "success", "blocking_failures", "pass_rate", "evaluated", "successful",
    "rows", "quarantined", "quarantine_rate", "checked_at", "results",
}
RESULT_ENTRY_KEYS = {
    "expectation_type", "column", "kwargs", "blocking", "success", "unexpected_count", "unexpected_percent",
}


def failures(result, blocking=True):
    return {
        (f["expectation_type"], f["column"])
        for f in result["results"]
        if not f["success"] and f["blocking"] == blocking
    }


def test_good_batch_passes_and_writes_the_quality_zone(spark, settings, regs, make_batch):
    reg = regs["enterprise_registration"]
    make_batch(reg, n=25, batch_id="good", quarantined=5)
    result = check_batch(settings, reg, "good", spark=spark)

    assert RESULT_KEYS <= set(result)
    assert result["success"] is True, result["blocking_failures"]
    assert result["blocking_failures"] == []
    assert result["resource"] == "enterprise_registration" and result["batch_id"] == "good"
    assert result["rows"] == 25 and result["quarantined"] == 5
    assert result["quarantine_rate"] == pytest.approx(5 / 30, abs=1e-6)
    assert result["evaluated"] == len(result["results"]) >= 20
    assert result["successful"] == result["evaluated"] and result["pass_rate"] == 1.0
    checked = datetime.fromisoformat(result["checked_at"])
    assert checked.utcoffset() == timedelta(0)
    for entry in result["results"]:
        assert RESULT_ENTRY_KEYS <= set(entry)
        assert entry["description_zh"]
    types = {e["expectation_type"] for e in result["results"]}
    assert {"expect_column_values_to_match_regex", "expect_column_values_to_be_unique",
            "expect_column_values_to_not_be_null", "citylake_quarantine_rate_at_most"} <= types

    lake = Lake.from_settings(settings)
    assert lake.read_json(zones.quality_result_path(reg.resource, "good")) == result
    marker = lake.read_json(zones.quality_marker(reg.resource, "good"))
    assert marker["success"] == result["success"] and marker["pass_rate"] == result["pass_rate"]
    judged = lake.read_json(zones.standardized_marker(reg.resource, "good"))["committed_at"]
    assert marker["standardized_committed_at"] == judged, "the result names the commit it judged"
    assert read_result(settings, reg, "good") == result
    raw = lake.read_json(zones.quality_validation_path(reg.resource, "good"))
    assert raw["success"] is True
    assert len(raw["results"]) == result["evaluated"] - 1  # all but the quarantine gate
    assert raw["statistics"]["evaluated_expectations"] == len(raw["results"])


def test_null_in_a_required_field_blocks_and_says_which(spark, settings, regs, make_batch):
    reg = regs["enterprise_registration"]

    def mutate(rows):
        rows[3]["established_on"] = None

    make_batch(reg, batch_id="nulls", mutate=mutate)
    result = check_batch(settings, reg, "nulls", spark=spark)
    assert result["success"] is False
    [failure] = result["blocking_failures"]
    assert failure["expectation"] == "expect_column_values_to_not_be_null"
    assert failure["column"] == "established_on"
    assert failure["description_zh"].startswith("必填项非空") and "成立日期" in failure["description_zh"]
    assert failure["observed"]["unexpected_count"] == 1
    assert failure["observed"]["source_rows"] == [5]  # row 3 of the batch, line 5 of the file
    assert result["pass_rate"] < 1.0 and result["successful"] == result["evaluated"] - 1
    assert "必填项非空" in result["summary_zh"]


def test_duplicate_key_blocks(spark, settings, regs, make_batch):
    reg = regs["housing_fund_units"]

    def mutate(rows):
        rows[5]["uscc"] = rows[4]["uscc"]

    make_batch(reg, batch_id="dupes", mutate=mutate)
    result = check_batch(settings, reg, "dupes", spark=spark)
    assert result["success"] is False
    got = {(f["expectation"], f["column"]) for f in result["blocking_failures"]}
    assert ("expect_column_values_to_be_unique", "uscc") in got
    [failure] = [f for f in result["blocking_failures"] if f["column"] == "uscc"]
    assert failure["description_zh"].startswith("主键唯一")
    assert failure["observed"]["unexpected_count"] == 2
    assert sorted(failure["observed"]["source_rows"]) == [6, 7]


def test_duplicate_compound_key_blocks(spark, settings, regs, make_batch):
    reg = regs["air_quality_hourly"]

    def mutate(rows):
        rows[1]["station_code"] = rows[0]["station_code"]
        rows[1]["observed_at"] = rows[0]["observed_at"]

    make_batch(reg, batch_id="dupes2", mutate=mutate)
    result = check_batch(settings, reg, "dupes2", spark=spark)
    assert result["success"] is False
    assert {(f["expectation"], f["column"]) for f in result["blocking_failures"]} == {
        ("expect_compound_columns_to_be_unique", "station_code,observed_at")
    }


def test_identifier_codelist_and_range_violations_block(spark, settings, regs, make_batch):
    reg = regs["enterprise_registration"]

    def mutate(rows):
        rows[0]["uscc"] = "91410100MA0000000O"  # O is not in the GB 32100 alphabet
        rows[1]["division_code"] = "999999"  # six digits, in no edition
        rows[2]["status"] = "歇业"
        rows[3]["legal_rep_id"] = "12345"
        rows[4]["registered_capital"] = -1
        rows[5]["registered_capital_currency"] = "RMB"

    make_batch(reg, batch_id="bad", mutate=mutate)
    result = check_batch(settings, reg, "bad", spark=spark)
    assert result["success"] is False
    got = {(f["expectation"], f["column"]) for f in result["blocking_failures"]}
    assert got == {
        ("expect_column_values_to_match_regex", "uscc"),
        ("expect_column_values_to_be_in_set", "division_code"),
        ("expect_column_values_to_be_in_set", "status"),
        ("expect_column_values_to_match_regex", "legal_rep_id"),
        ("expect_column_values_to_be_between", "registered_capital"),
        ("expect_column_values_to_be_in_set", "registered_capital_currency"),
    }
    zh = {f["column"]: f["description_zh"] for f in result["blocking_failures"]}
    assert zh["uscc"].startswith("统一社会信用代码格式校验")
    assert zh["legal_rep_id"].startswith("公民身份号码格式校验")
    samples = {f["column"]: f["observed"]["unexpected_sample"] for f in result["blocking_failures"]}
    assert samples["division_code"] == ["999999"] and samples["status"] == ["歇业"]


def test_only_non_blocking_failures_still_succeed(spark, settings, regs, make_batch):
    reg = regs["enterprise_registration"]

    def mutate(rows):
        rows[0]["established_on"] = date.today() + timedelta(days=400)  # implausible, not invalid

    make_batch(reg, batch_id="future", mutate=mutate)
    result = check_batch(settings, reg, "future", spark=spark)
    assert result["success"] is True
    assert result["blocking_failures"] == []
    assert failures(result, blocking=False) == {("expect_column_values_to_be_between", "established_on")}
    assert result["successful"] == result["evaluated"] - 1
    assert result["pass_rate"] == round(result["successful"] / result["evaluated"], 4) < 1.0


def test_extras_run_and_do_not_block(spark, settings, regs, make_batch, std):
    reg = regs["air_quality_hourly"]

    def mutate(rows):
        for r in rows:  # PM10 below PM2.5 everywhere: physically implausible
            r["pm10"], r["pm25"] = r["pm25"], r["pm10"] + 10
            r["aqi"] = 60 + r["_source_row"]  # a plausible AQI distribution

    make_batch(reg, batch_id="pm", mutate=mutate)
    result = check_batch(settings, reg, "pm", spark=spark)
    assert result["success"] is True
    failed = [r for r in result["results"] if not r["success"]]
    assert [(r["expectation_type"], r["source"], r["blocking"]) for r in failed] == [
        ("expect_column_pair_values_a_to_be_greater_than_b", "extras", False)
    ]
    assert failed[0]["unexpected_count"] == 20


def test_quarantine_rate_gate_blocks(spark, settings, regs, make_batch):
    reg = regs["housing_fund_units"]  # max_quarantine_rate 0.5 by default
    make_batch(reg, n=20, batch_id="q", quarantined=30)
    result = check_batch(settings, reg, "q", spark=spark)
    assert result["success"] is False
    assert result["quarantined"] == 30 and result["quarantine_rate"] == pytest.approx(0.6)
    [failure] = result["blocking_failures"]
    assert failure["expectation"] == "citylake_quarantine_rate_at_most"
    assert failure["description_zh"] == "隔离率不超过50%"
    assert failure["observed"]["observed_value"] == pytest.approx(0.6)

    # the count passed in wins over the marker
    ok = check_batch(settings, reg, "q", quarantined=2, spark=spark)
    assert ok["success"] is True and ok["quarantined"] == 2


def test_missing_quarantine_marker_counts_zero(spark, settings, regs, make_batch):
    reg = regs["housing_fund_units"]
    make_batch(reg, batch_id="noq", quarantined=None)
    result = check_batch(settings, reg, "noq", spark=spark)
    assert result["success"] is True and result["quarantined"] == 0 and result["quarantine_rate"] == 0.0


def test_empty_batch_is_blocked_with_a_clear_reason(spark, settings, regs, make_batch):
    reg = regs["enterprise_registration"]
    make_batch(reg, n=0, batch_id="empty", quarantined=0)
    result = check_batch(settings, reg, "empty", spark=spark)
    assert result["rows"] == 0 and result["success"] is False
    [failure] = result["blocking_failures"]
    assert failure["expectation"] == "expect_table_row_count_to_be_between"
    assert failure["observed"]["observed_value"] == 0
    assert failure["description_zh"] == "批次行数不少于1行"


def test_empty_batch_of_rejected_rows_fails_the_gate_too(spark, settings, regs, make_batch):
    reg = regs["enterprise_registration"]
    make_batch(reg, n=0, batch_id="allbad", quarantined=12)
    result = check_batch(settings, reg, "allbad", spark=spark)
    assert result["quarantine_rate"] == 1.0
    assert {f["expectation"] for f in result["blocking_failures"]} == {
        "expect_table_row_count_to_be_between", "citylake_quarantine_rate_at_most"
    }


def test_missing_column_and_wrong_type_block(spark, settings, regs, std):
    reg = regs["enterprise_registration"]
    rows = std.build_rows(reg, 10, "schema")
    for r in rows:
        del r["address"]
        r["established_on"] = r["established_on"].isoformat()  # left as text by a broken conform
    schema = std.arrow_schema(reg)
    schema = schema.remove(schema.get_field_index("address"))
    schema = schema.set(schema.get_field_index("established_on"), pa.field("established_on", pa.string()))
    std.write_batch(settings, reg, "schema", rows, quarantined=0, schema=schema)
    result = check_batch(settings, reg, "schema", spark=spark)
    assert result["success"] is False
    by = {(f["expectation"], f["column"]): f for f in result["blocking_failures"]}
    cols = by[("expect_table_columns_to_match_set", None)]
    assert cols["observed"]["details"]["mismatched"]["missing"] == ["address"]
    assert ("expect_column_values_to_be_of_type", "established_on") in by
    wrong_type = by[("expect_column_values_to_be_of_type", "established_on")]
    assert wrong_type["description_zh"].startswith("字段类型为日期")
    assert wrong_type["observed"]["observed_value"] == "StringType"  # the Spark type found


def test_a_batch_is_read_alone_from_the_shared_table(spark, settings, regs, make_batch):
    """The standardized table holds every batch; check reads only its own partition (the
    ``_batch_id`` expectation stays as a guard)."""
    reg = regs["housing_fund_units"]

    def mutate(rows):
        rows[0]["_batch_id"] = "other"

    make_batch(reg, n=20, batch_id="mine", mutate=mutate)
    make_batch(reg, n=7, batch_id="next")
    result = check_batch(settings, reg, "mine", spark=spark)
    assert result["success"] is True and result["rows"] == 19


def test_unknown_batch_raises(spark, settings, regs):
    with pytest.raises(FileNotFoundError):
        check_batch(settings, regs["housing_fund_units"], "nope", spark=spark)


def test_naive_and_aware_timestamps_both_validate(spark, settings, regs, std):
    reg = regs["air_quality_hourly"]
    rows = std.build_rows(reg, 10, "naive")
    for r in rows:
        r["observed_at"] = r["observed_at"].replace(tzinfo=None)
        r["_received_at"] = r["_received_at"].replace(tzinfo=None)
    schema = std.arrow_schema(reg)
    for name in ("observed_at", "_received_at"):
        schema = schema.set(schema.get_field_index(name), pa.field(name, pa.timestamp("ns")))
    std.write_batch(settings, reg, "naive", rows, quarantined=0, schema=schema)
    assert check_batch(settings, reg, "naive", spark=spark)["success"] is True


def test_ten_thousand_rows_of_the_widest_suite(spark, settings, regs, make_batch):
    """The widest suite (baseline + extras) over 10k rows. Its speed is reported by the benchmark
    (tests/stages/check/bench_check.py), not asserted here."""
    reg = regs["air_quality_hourly"]
    make_batch(reg, n=10_000, batch_id="big", quarantined=10)
    result = check_batch(settings, reg, "big", spark=spark)
    assert result["success"] is True and result["rows"] == 10_000


def test_batch_with_no_good_rows_is_an_empty_batch(spark, settings, regs, std, make_batch):
    reg = regs["housing_fund_units"]
    make_batch(reg, n=5, batch_id="other")
    std.write_batch(settings, reg, "nofiles", [], quarantined=0)
    result = check_batch(settings, reg, "nofiles", quarantined=0, spark=spark)
    assert result["rows"] == 0 and result["success"] is False
    assert [f["expectation"] for f in result["blocking_failures"]] == ["expect_table_row_count_to_be_between"]


def test_the_snapshot_the_marker_names_is_judged(spark, settings, regs, make_batch):
    """Rows committed to the batch's partition after its marker (a re-conform that has not written
    its marker yet) are not what this marker's check judges."""
    from pyiceberg.expressions import EqualTo

    from citylake.core import tables

    reg = regs["housing_fund_units"]
    make_batch(reg, n=20, batch_id="snap")
    rows = tables.load_table(settings, tables.standardized_table(reg))
    newer = rows.scan(row_filter=EqualTo("_batch_id", "snap")).to_arrow().slice(0, 5)
    newer = newer.set_column(newer.schema.get_field_index("uscc"), "uscc", pa.array(["bad"] * 5))
    rows.overwrite(newer, overwrite_filter=EqualTo("_batch_id", "snap"))
    result = check_batch(settings, reg, "snap", spark=spark)
    assert result["rows"] == 20 and result["success"] is True


def test_no_row_comes_into_python_and_samples_stay_bounded(spark, settings, regs, make_batch, monkeypatch):
    """What the driver collects is aggregates and at most OBSERVED_SAMPLE failing values per
    expectation, however many rows fail; a clean batch runs a handful of Spark jobs."""
    from pyspark.sql.classic.dataframe import DataFrame

    reg = regs["enterprise_registration"]
    make_batch(reg, n=300, batch_id="clean")
    make_batch(reg, n=300, batch_id="manybad", mutate=lambda rows: [r.update(uscc=f"BAD{i}") for i, r in enumerate(rows)])

    collected: list[int] = []
    collect = DataFrame.collect

    def counting_collect(self):
        rows = collect(self)
        collected.append(len(rows))
        return rows

    def refuse(self, *args, **kwargs):
        raise AssertionError("the check must not bring the batch's rows into Python")

    monkeypatch.setattr(DataFrame, "collect", counting_collect)
    monkeypatch.setattr(DataFrame, "toPandas", refuse)
    monkeypatch.setattr(DataFrame, "toLocalIterator", refuse)

    sc = spark.sparkContext
    sc.setJobGroup("check-clean", "check of a clean batch")
    try:
        assert check_batch(settings, reg, "clean", spark=spark)["success"] is True
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    # One round of GE with samples would run about 60 (two sampling jobs per expectation).
    assert len(sc.statusTracker().getJobIdsForGroup("check-clean")) <= 20

    result = check_batch(settings, reg, "manybad", spark=spark)
    [failure] = [f for f in result["blocking_failures"] if f["expectation"] == "expect_column_values_to_match_regex"]
    assert failure["observed"]["unexpected_count"] == 300
    assert len(failure["observed"]["unexpected_sample"]) == len(failure["observed"]["source_rows"]) == OBSERVED_SAMPLE
    assert collected and max(collected) <= OBSERVED_SAMPLE
