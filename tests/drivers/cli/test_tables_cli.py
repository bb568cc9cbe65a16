"""`citylake tables` and `citylake describe`: every registered resource with its directory code, rows,
freshness and quality, the reference tables; a table's columns with titles, types, sensitivity and
masks; an unknown table lists the known ones."""

from __future__ import annotations

import json

import pytest

from citylake.core import tables
from citylake.core.registry import load_base_libraries, load_registrations
from citylake.stages.publish.publish import publish
from tests.drivers.cli.helpers import run
from tests.stages.test_query import RESOURCES, curated_rows


@pytest.fixture(scope="module")
def regs(query_lake):
    regs = load_registrations(query_lake.resources_dir)
    return regs + [lib.reg for lib in load_base_libraries(query_lake.resources_dir, regs)]


def _tables(reg) -> list[str]:
    """The queryable tables of a registration: a base library has its conflicts table too."""
    if reg.is_base:
        return [tables.base_table(reg).ident, tables.base_conflicts_table(reg).ident]
    return [tables.curated_table(reg).ident]


def _line(out: str, table: str) -> list[str]:
    [line] = [line for line in out.splitlines() if f" {table} " in line]
    return line.split()


@pytest.mark.spark
def test_tables_lists_every_resource_with_its_directory_code(lake_env, regs, capsys):
    code, out, err = run(capsys, "tables", "--json")
    assert (code, err) == (0, "")
    found = {t["table"]: t for t in json.loads(out)}
    assert set(found) == {t for r in regs for t in _tables(r)} | {"ref.divisions", "ref.division_editions",
                                                                   "ref.codes"}
    for reg in regs:
        t = found[tables.curated_table(reg).ident]
        assert (t["name"], t["provider"], t["update_cycle"]) == (reg.name, reg.department_name, reg.update_cycle)
        if reg.is_base:  # built from RESOURCES by the chain's last step
            assert t["kind"] == "base" and t["exists"]
            assert t["rows"] == tables.table_facts(lake_env, tables.base_table(reg)).rows > 0
        elif reg.resource in RESOURCES:
            assert t["rows"] == curated_rows(lake_env, reg) and t["freshness_zh"] == "按时更新"
            assert 0 < t["quality_pass_rate"] <= 1
        else:
            assert (t["rows"], t["exists"], t["freshness"]) == (0, False, "no_data")

    publish(lake_env)  # assigns the directory codes (目录代码)
    code, out, _ = run(capsys, "tables", "--json")
    codes = {t["table"]: t["directory_code"] for t in json.loads(out) if t["kind"] in ("curated", "base")}
    assert len(set(codes.values())) == len(regs)
    for reg in regs:
        for table in _tables(reg):  # a library's conflicts table has the library's code
            assert codes[table].startswith(f"{reg.classification.prefix}/00000")
    assert _line(run(capsys, "tables")[1], "base.legal_entity")[:2] == [codes["base.legal_entity"], "base.legal_entity"]

    code, out, err = run(capsys, "tables")
    assert (code, err) == (0, "")
    enterprises = _line(out, "scjg.enterprise_registration")
    reg = next(r for r in regs if r.resource == "enterprise_registration")
    assert enterprises[:4] == [codes["scjg.enterprise_registration"], "scjg.enterprise_registration", reg.name,
                               reg.department_name]
    assert enterprises[4] == f"{curated_rows(lake_env, reg):,}" and "按时更新" in enterprises
    assert _line(out, "gjj.housing_fund_units")[4:9] == ["0", "(no", "table", "yet)", "—"]
    assert _line(out, "ref.divisions")[0] == "—"


@pytest.mark.spark
def test_describe_shows_titles_types_sensitivity_and_masks(lake_env, regs, capsys):
    code, out, err = run(capsys, "describe", "resident_population")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "gaj.resident_population  户籍人口基本信息  (curated)"
    rows = f"{curated_rows(lake_env, next(r for r in regs if r.resource == 'resident_population')):,} rows"
    assert "key cn_id" in lines[1] and rows in lines[1]
    cn_id = next(line.split() for line in lines if line.startswith("cn_id "))
    assert cn_id == ["cn_id", "公民身份号码", "string", "string", "personal", "cn_id", "(110105********002X)"]
    gender = next(line.split() for line in lines if line.startswith("gender "))
    assert gender[1:5] == ["性别", "string", "string", "internal"] and gender[-3:] == ["1=男,", "2=女,", "9=未说明"]
    assert next(line for line in lines if line.startswith("mobile ")).split()[4:] == ["personal", "mobile",
                                                                                       "(138****5678)"]

    code, out, _ = run(capsys, "describe", "lake.gaj.resident_population", "--json")
    facts = json.loads(out)
    assert code == 0 and facts["table"] == "gaj.resident_population"
    assert {c["name"]: c["sensitivity"] for c in facts["columns"]}["person_name"] == "personal"

    code, out, _ = run(capsys, "describe", "ref.divisions")
    assert code == 0 and out.splitlines()[0].startswith("ref.divisions  县级以上行政区划代码")


@pytest.mark.spark
def test_describe_an_unknown_table_lists_the_known_ones(lake_env, regs, capsys):
    code, out, err = run(capsys, "describe", "standardized.resident_population")
    known = ", ".join(sorted([*(t for r in regs for t in _tables(r)),
                              "ref.codes", "ref.division_editions", "ref.divisions"]))
    assert code == 2 and out == ""
    assert err == f"citylake describe: error: unknown table: standardized.resident_population; registered tables: {known}\n"


def test_tables_and_describe_have_help(capsys):
    for command in ("tables", "describe"):
        code, out, _ = run(capsys, command, "--help")
        assert code == 0 and "--json" in out
