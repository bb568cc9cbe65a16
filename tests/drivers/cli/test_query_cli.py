"""`citylake query`: the curated row count of every resource with DuckDB and with Spark, a readable
table with titles and a limit, every file format, and usage errors that name what is wrong."""

from __future__ import annotations

import codecs
import io
import json

import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook

from citylake.core import tables
from citylake.core.registry import load_registrations
from tests.drivers.cli.helpers import run
from tests.stages.test_query import RESOURCES, curated_rows


@pytest.fixture(scope="module")
def regs(query_lake):
    return {r.resource: r for r in load_registrations(query_lake.resources_dir)}


@pytest.mark.spark
@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_count_is_the_curated_row_count_for_every_resource(lake_env, regs, capsys, engine):
    for resource in RESOURCES:
        reg = regs[resource]
        name = tables.curated_table(reg).ident
        code, out, err = run(capsys, "query", "--engine", engine, "--format", "json", f"SELECT count(*) AS n FROM {name}")
        assert (code, err) == (0, "") and json.loads(out) == [{"n": curated_rows(lake_env, reg)}]
        code, out, _ = run(capsys, "query", "--engine", engine, f"SELECT count(*) AS n FROM {name}")
        lines = out.splitlines()
        assert code == 0 and lines[0].strip() == "n" and lines[2].strip() == str(curated_rows(lake_env, reg))
        assert lines[-1].startswith(f"1 row · {engine} · ")
    for name in ("base.legal_entity", "base.population"):  # the base libraries the chain built from RESOURCES
        rows = tables.table_facts(lake_env, tables.TableName(*name.split("."))).rows
        code, out, err = run(capsys, "query", "--engine", engine, "--format", "json", f"SELECT count(*) AS n FROM {name}")
        assert (code, err) == (0, "") and json.loads(out) == [{"n": rows}] and rows > 0


@pytest.mark.spark
def test_the_terminal_shows_titles_and_the_first_rows(lake_env, regs, capsys):
    n = curated_rows(lake_env, regs["enterprise_registration"])
    code, out, err = run(capsys, "query", "--titles", "--limit", "5",
                         "SELECT uscc, enterprise_name, legal_rep FROM scjg.enterprise_registration ORDER BY uscc")
    lines = out.splitlines()
    assert code == 0 and err == ""
    assert lines[0].split() == ["统一社会信用代码", "企业名称", "法定代表人"]
    assert len(lines) == 2 + 5 + 2 and all(line == line.rstrip() for line in lines)
    assert lines[-2] == f"… {n - 5:,} more rows (--limit 0 shows all; --out FILE writes all)"
    assert lines[-1].startswith(f"{n:,} rows · duckdb · ")
    code, out, _ = run(capsys, "query", "--limit", "0", "SELECT uscc FROM scjg.enterprise_registration")
    assert len(out.splitlines()) == 2 + n + 1


@pytest.mark.spark
def test_files_get_every_row_in_the_format_asked(lake_env, regs, capsys, tmp_path):
    n = curated_rows(lake_env, regs["resident_population"])
    sql = "SELECT cn_id, person_name, gender, birth_date FROM gaj.resident_population"
    code, out, err = run(capsys, "query", sql, "--titles", "--out", str(tmp_path / "people.xlsx"))
    assert (code, err) == (0, "") and out.startswith(f"wrote {n} rows to {tmp_path / 'people.xlsx'} (xlsx) · duckdb")
    sheet = list(load_workbook(tmp_path / "people.xlsx", read_only=True)["结果"].iter_rows(values_only=True))
    assert sheet[0] == ("公民身份号码", "姓名", "性别", "出生日期") and len(sheet) == n + 1
    assert all("*" in row[0] for row in sheet[1:]), "curated citizen IDs are masked"

    code, out, _ = run(capsys, "query", sql, "--out", str(tmp_path / "people.csv"))
    data = (tmp_path / "people.csv").read_bytes()
    assert code == 0 and "(CSV, UTF-8 with BOM)" in out and data.startswith(codecs.BOM_UTF8)
    assert data.decode("utf-8-sig").splitlines()[0] == "cn_id,person_name,gender,birth_date"

    code, out, _ = run(capsys, "query", sql, "--format", "parquet", "--out", str(tmp_path / "people.bin"))
    assert code == 0 and pq.read_table(tmp_path / "people.bin").num_rows == n

    code, out, _ = run(capsys, "query", "--engine", "spark", sql, "--out", str(tmp_path / "people.json"))
    assert code == 0 and "· spark ·" in out
    assert len(json.loads((tmp_path / "people.json").read_text(encoding="utf-8"))) == n

    code, out, _ = run(capsys, "query", "--format", "csv", "SELECT 1 AS a, '郑州' AS b")
    assert code == 0 and out.splitlines() == ["a,b", "1,郑州"], "CSV to a pipe: no BOM"


@pytest.mark.spark
def test_the_sql_can_come_from_standard_input(lake_env, regs, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("SELECT count(*) AS n\nFROM lake.scjg.enterprise_registration\n"))
    code, out, _ = run(capsys, "query", "--format", "json", "-")
    assert code == 0 and json.loads(out) == [{"n": curated_rows(lake_env, regs["enterprise_registration"])}]


@pytest.mark.spark
def test_what_cannot_run_is_a_usage_error(lake_env, regs, capsys, tmp_path):
    code, out, err = run(capsys, "query", "SELECT count(*) FROM standardized.enterprise_registration")
    base = [f"base.{lib}{suffix}" for lib in ("legal_entity", "population") for suffix in ("", "_conflicts")]
    known = ", ".join(sorted([*(tables.curated_table(r).ident for r in regs.values()), *base,
                              "ref.codes", "ref.division_editions", "ref.divisions"]))
    assert code == 2 and out == ""
    assert err == (f"citylake query: error: unknown table: standardized.enterprise_registration; registered tables: "
                   f"{known} (raw, standardized and quarantine data are not queryable)\n")

    code, _, err = run(capsys, "query", "SELECT * FROM read_csv('/etc/hostname')")
    assert code == 2 and "reads only the tables it names" in err and "Permission Error" in err
    code, _, err = run(capsys, "query", "COPY (SELECT 1) TO 'x.csv'")
    assert code == 2 and "only a query can run" in err
    code, _, err = run(capsys, "query", "--engine", "spark", "SELECT * FROM read_files('/etc')")
    assert code == 2 and "table functions" in err
    code, _, err = run(capsys, "query", "SELECT nope FROM scjg.enterprise_registration")
    assert code == 2 and "SQL error" in err and "nope" in err
    code, _, err = run(capsys, "query", "SELECT count(*) FROM gjj.housing_fund_units")
    assert code == 2 and "nothing curated yet" in err

    code, _, err = run(capsys, "query", "--format", "xlsx", "SELECT 1")
    assert code == 2 and err == "citylake query: error: xlsx is written to a file: add --out FILE\n"
    code, _, err = run(capsys, "query", "SELECT 1", "--out", str(tmp_path / "x.txt"))
    assert code == 2 and "cannot tell the format" in err and not (tmp_path / "x.txt").exists()
    code, _, err = run(capsys, "query", "--engine", "hive", "SELECT 1")
    assert code == 2 and "invalid choice: 'hive'" in err


def test_query_has_help(capsys):
    code, out, _ = run(capsys, "query", "--help")
    assert code == 0 and "--engine" in out and "--titles" in out and "xlsx" in out


@pytest.mark.spark
def test_personal_fields_are_masked_unless_the_role_sees_them(lake_env, capsys):
    sql = "SELECT cn_id, mobile FROM gaj.resident_population WHERE mobile IS NOT NULL LIMIT 20"
    code, out, err = run(capsys, "query", "--format", "json", sql)
    masked = json.loads(out)
    assert (code, err) == (0, "") and masked and all("*" in r["cn_id"] and "*" in r["mobile"] for r in masked)
    code, out, err = run(capsys, "query", "--role", "steward", "--format", "json", sql)
    clear = json.loads(out)
    assert (code, err) == (0, "") and len(clear) == len(masked)
    assert all(r["cn_id"].isalnum() and len(r["cn_id"]) == 18 and r["mobile"].isdigit() for r in clear)
    code, _, err = run(capsys, "query", "--role", "admin", sql)
    assert code == 2 and "invalid choice: 'admin'" in err
