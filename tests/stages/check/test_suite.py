"""The baseline suite is derived from the registration; extras merge without overriding it."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from citylake.core import identifiers as ids
from citylake.core.settings import REPO_ROOT
from citylake.stages.check.suite import (
    ExtrasError,
    build_suite,
    expected_columns,
    load_extras,
    suite_for,
)

CJK = re.compile(r"[\u4e00-\u9fff]")


def by_kind(suite) -> dict[tuple[str, str | None], list]:
    """(expectation type, column) -> expectations."""
    out: dict = {}
    for e in suite.expectations:
        kw = e.configuration.kwargs
        col = kw.get("column") or ("+".join(kw["column_list"]) if "column_list" in kw else None)
        out.setdefault((e.expectation_type, col), []).append(e)
    return out


def kw(kinds, etype: str, column: str | None) -> dict:
    """kwargs of the one expectation of this type on this column."""
    return kinds[(etype, column)][0].configuration.kwargs


def test_importing_the_modules_does_not_import_great_expectations():
    code = (
        "import sys, citylake.stages.check.suite, citylake.stages.check.runner; "
        "print('great_expectations' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_enterprise_registration_suite(regs):
    reg = regs["enterprise_registration"]
    suite = build_suite(reg)
    k = by_kind(suite)
    assert suite.name == "citylake.enterprise_registration"

    cols = k[("expect_table_columns_to_match_set", None)][0].configuration.kwargs
    assert set(cols["column_set"]) == set(expected_columns(reg))
    assert "registered_capital_currency" in cols["column_set"]
    assert {"_batch_id", "_source_row", "_received_at"} <= set(cols["column_set"])
    assert cols.get("exact_match", True) is True  # GE leaves the default (True) out
    assert k[("expect_table_row_count_to_be_between", None)][0].configuration.kwargs["min_value"] == 1

    # required → not null; optional fields get none
    for f in reg.fields:
        assert (("expect_column_values_to_not_be_null", f.name) in k) == f.required, f.name
    # single key → unique, once (the key field is also unique: true)
    assert len(k[("expect_column_values_to_be_unique", "uscc")]) == 1
    # checks → regex from citylake.core.identifiers, division also in set
    assert kw(k, "expect_column_values_to_match_regex", "uscc")["regex"] == ids.USCC_PATTERN
    assert kw(k, "expect_column_values_to_match_regex", "legal_rep_id")["regex"] == ids.CN_ID_PATTERN
    assert (
        kw(k, "expect_column_values_to_match_regex", "division_code")["regex"]
        == ids.DIVISION_PATTERN
    )
    division_set = kw(k, "expect_column_values_to_be_in_set", "division_code")["value_set"]
    assert set(division_set) == ids.accepted_division_codes(5) and "410102" in division_set
    # codelist → in set of the codes
    status = kw(k, "expect_column_values_to_be_in_set", "status")["value_set"]
    assert set(status) == set(reg.field_map["status"].codes)
    # money → range, type, currency
    between = kw(k, "expect_column_values_to_be_between", "registered_capital")
    assert between["min_value"] == 0 and between.get("max_value") is None
    assert kw(k, "expect_column_values_to_be_of_type", "registered_capital")["type_"] == "FractionalType"
    assert ("expect_column_values_to_be_in_set", "registered_capital_currency") in k
    # date → type and (non-blocking) not in the future
    assert kw(k, "expect_column_values_to_be_of_type", "established_on")["type_"] == "DatetimeType"
    future = k[("expect_column_values_to_be_between", "established_on")][0]
    assert future.meta["blocking"] is False
    # plain strings have no type/regex expectation
    assert ("expect_column_values_to_match_regex", "enterprise_name") not in k
    assert ("expect_column_values_to_be_of_type", "enterprise_name") not in k


def test_compound_key_codelist_mobile_and_integer(regs):
    air = by_kind(build_suite(regs["air_quality_hourly"]))
    compound = air[("expect_compound_columns_to_be_unique", "station_code+observed_at")][0]
    assert compound.meta["blocking"] is True
    aqi = kw(air, "expect_column_values_to_be_between", "aqi")
    assert (aqi["min_value"], aqi["max_value"]) == (0, 500)
    assert kw(air, "expect_column_values_to_be_of_type", "aqi")["type_"] == "IntegralType"
    assert kw(air, "expect_column_values_to_be_of_type", "observed_at")["type_"] == "DatetimeType"

    people = by_kind(build_suite(regs["resident_population"]))
    assert kw(people, "expect_column_values_to_match_regex", "mobile")["regex"] == ids.MOBILE_PATTERN
    assert set(kw(people, "expect_column_values_to_be_in_set", "gender")["value_set"]) == {
        "1", "2", "9"
    }
    assert ("expect_column_values_to_not_be_null", "mobile") not in people  # optional


def test_every_expectation_says_if_it_blocks_and_why(regs):
    for reg in regs.values():
        suite = build_suite(reg)
        assert len(suite.expectations) >= 10
        for e in suite.expectations:
            meta = e.meta
            assert isinstance(meta["blocking"], bool)
            assert meta["source"] == "registration"
            assert CJK.search(meta["description_zh"]), meta
            assert meta["description_en"]
            assert (e.severity.value == "critical") == meta["blocking"]
            # identity / presence / key / checks block; only plausibility does not
            assert meta["blocking"] == (meta["kind"] != "not_future"), meta
        kinds = {e.meta["kind"]: e.meta["description_zh"] for e in suite.expectations}
        assert kinds["key_unique"].startswith("主键唯一")
        assert kinds["required"].startswith("必填项非空")


def test_descriptions_name_the_check(regs):
    descriptions = [e.meta["description_zh"] for e in build_suite(regs["housing_fund_units"]).expectations]
    assert "统一社会信用代码格式校验：单位统一社会信用代码（uscc）" in descriptions
    assert "主键唯一：单位统一社会信用代码（uscc）" in descriptions
    assert any(d.startswith("数值在允许范围内：缴存人数（depositor_count） [0, ]") for d in descriptions)


def test_min_rows_comes_from_the_registration(regs):
    reg = regs["housing_fund_units"].model_copy(
        update={"quality": regs["housing_fund_units"].quality.model_copy(update={"min_rows": 7})}
    )
    k = by_kind(build_suite(reg))
    assert k[("expect_table_row_count_to_be_between", None)][0].configuration.kwargs["min_value"] == 7


# ---- extras ---------------------------------------------------------------------------------
def test_shipped_extras_merge_non_blocking(regs):
    reg = regs["air_quality_hourly"]
    extras = load_extras(reg)
    assert len(extras) >= 2
    assert all(e.meta["source"] == "extras" and e.meta["blocking"] is False for e in extras)
    pair = next(e for e in extras if e.expectation_type == "expect_column_pair_values_a_to_be_greater_than_b")
    assert pair.configuration.kwargs["column_A"] == "pm10" and pair.configuration.kwargs["mostly"] == 0.95

    base = build_suite(reg)
    full = suite_for(reg)
    assert len(full.expectations) == len(base.expectations) + len(extras)
    assert load_extras(regs["enterprise_registration"]) == []  # no file, no extras


def test_every_shipped_extras_file_is_valid(regs):
    for path in (REPO_ROOT / "expectations" / "extras").glob("*.json"):
        reg = regs[path.stem]
        assert load_extras(reg, build_suite(reg)), path


def _write_extras(tmp_path, name: str, expectations, **top) -> str:
    doc = {"resource": name, "expectations": expectations, **top}
    (tmp_path / f"{name}.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return str(tmp_path)


def test_extras_may_block_when_they_say_so(regs, tmp_path):
    reg = regs["enterprise_registration"]
    d = _write_extras(tmp_path, reg.resource, [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "address", "mostly": 0.9},
         "blocking": True, "description_zh": "住所填写率不低于90%"},
        {"type": "expect_column_value_lengths_to_be_between",
         "kwargs": {"column": "enterprise_name", "min_value": 2}},
    ])
    suite = build_suite(reg)
    added = load_extras(reg, suite, extras_dir=d)
    assert [e.meta["blocking"] for e in added] == [True, False]
    assert added[0].meta["description_zh"] == "住所填写率不低于90%"
    assert CJK.search(added[1].meta["description_zh"])
    assert all(e in suite.expectations for e in added)


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "uscc", "mostly": 0.5}},
         "cannot override"),
        ({"type": "expect_column_values_to_be_unique", "kwargs": {"column": "uscc"}, "blocking": False},
         "cannot override"),
        ({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "no_such_field"}},
         "no_such_field"),
        ({"type": "expect_the_moon", "kwargs": {"column": "uscc"}}, "unknown expectation type"),
        ({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "address", "mostly": 2}},
         "invalid kwargs"),
        ({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "address"}, "blocking": "no"},
         "'blocking'"),
        ({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "address"},
          "source": "registration"},
         "unknown key"),
    ],
)
def test_broken_extras_fail_naming_file_and_entry(regs, tmp_path, entry, message):
    reg = regs["enterprise_registration"]
    d = _write_extras(tmp_path, reg.resource, [entry])
    with pytest.raises(ExtrasError) as err:
        load_extras(reg, build_suite(reg), extras_dir=d)
    text = str(err.value)
    assert "enterprise_registration.json" in text and "expectations[0]" in text and message in text


def test_extras_for_another_resource_or_not_json_fail(regs, tmp_path):
    reg = regs["enterprise_registration"]
    d = _write_extras(tmp_path, reg.resource, [], resource="air_quality_hourly")
    with pytest.raises(ExtrasError, match="does not match"):
        load_extras(reg, extras_dir=d)
    (tmp_path / f"{reg.resource}.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ExtrasError, match="not valid JSON"):
        load_extras(reg, extras_dir=d)


def test_two_extras_on_the_same_domain_are_refused(regs, tmp_path):
    reg = regs["enterprise_registration"]
    same = {"type": "expect_column_value_lengths_to_be_between",
            "kwargs": {"column": "address", "min_value": 2}}
    other = dict(same, kwargs={"column": "address", "min_value": 5})
    d = _write_extras(tmp_path, reg.resource, [same, other])
    with pytest.raises(ExtrasError, match=r"expectations\[1\]"):
        load_extras(reg, build_suite(reg), extras_dir=d)
