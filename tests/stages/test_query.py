"""Analysts' SQL (citylake.stages.query): the curated tables and the reference tables by name, with
DuckDB and with Spark, on a lake the chain built; nothing else is reachable (raw, standardized and
quarantine files, other databases, extensions, Java); results keep their titles in every format."""

from __future__ import annotations

import codecs
import csv
import json
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook

from citylake.core import tables, zones
from citylake.core.identifiers import divisions
from citylake.core.ledger import Ledger
from citylake.core.registry import FieldSpec, Registration, load_base_libraries, load_registrations
from citylake.core.settings import Settings
from citylake.stages import chain
from citylake.stages import query as q
from citylake_dev.generate import generate
from citylake_dev.testing import local_settings

RESOURCES = ("enterprise_registration", "resident_population")
ROWS, SEED = 200, 5


def query_lake(spark, tmp_path_factory) -> Settings:
    """A lake where the chain curated RESOURCES from generated drops: built once per test run, shared
    by tests/drivers/cli/test_query_cli.py and test_tables_cli.py (a run of the chain takes minutes)."""
    home = tmp_path_factory.getbasetemp() / "query-lake"
    settings = local_settings(home)
    if not (home / "built").exists():
        regs = [r for r in load_registrations(settings.resources_dir) if r.resource in RESOURCES]
        generate(settings, regs, rows=ROWS, seed=SEED)
        for reg in regs:
            chain.run_resource(spark, settings, reg)
        chain.run_base(spark, settings, chain.libraries_fed_by(load_base_libraries(settings.resources_dir), regs))
        (home / "built").write_text("")
    return settings


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory) -> Settings:
    return query_lake(spark, tmp_path_factory)


@pytest.fixture(scope="module")
def regs(lake) -> list[Registration]:
    return load_registrations(lake.resources_dir)


def _reg(regs, resource: str) -> Registration:
    return next(r for r in regs if r.resource == resource)


def curated_rows(settings: Settings, reg: Registration) -> int:
    """The curated row count as the pointer says, checked against the table's metadata."""
    pointer = Ledger.read(settings, reg).curated
    facts = tables.table_facts(settings, tables.curated_table(reg))
    assert pointer["rows"] == facts.rows > 0
    return facts.rows


def _arrow(settings: Settings, reg: Registration):
    return tables.load_table(settings, tables.curated_table(reg)).scan().to_arrow()


def _root(settings: Settings) -> Path:
    return Path(urlparse(settings.lake_uri).path)


# ---- DuckDB ------------------------------------------------------------------------------------------
@pytest.mark.spark
@pytest.mark.parametrize("materialize", [False, True], ids=["iceberg_scan", "pyiceberg"])
def test_count_is_the_curated_row_count(lake, regs, materialize):
    for resource in RESOURCES:
        reg = _reg(regs, resource)
        name = tables.curated_table(reg).ident
        assert name == f"{reg.department}.{reg.resource}"
        for written in (name, f"{lake.catalog_name}.{name}", name.upper()):
            result = q.query(lake, f"SELECT count(*) AS n FROM {written}", regs, materialize=materialize)
            assert result.table.to_pylist() == [{"n": curated_rows(lake, reg)}], written
            assert result.tables == [name] and result.engine == "duckdb"


@pytest.mark.spark
def test_enterprises_per_district_joins_the_gbt2260_divisions(lake, regs):
    reg = _reg(regs, "enterprise_registration")
    expected = Counter(divisions()[c].name for c in _arrow(lake, reg).column("division_code").to_pylist())
    result = q.query(lake, """
        SELECT d.name, d.level, count(*) AS enterprises
        FROM scjg.enterprise_registration e JOIN ref.divisions d ON d.code = e.division_code
        GROUP BY d.name, d.level ORDER BY enterprises DESC, d.name""", regs)
    rows = result.table.to_pylist()
    assert {r["name"]: r["enterprises"] for r in rows} == dict(expected)
    assert {r["level"] for r in rows} == {"县级"}, "a district is a county-level division"
    assert result.tables == ["scjg.enterprise_registration", "ref.divisions"]
    assert result.titles == {"name": "名称", "level": "级别"}
    assert result.header(titles=True) == ["名称", "级别", "enterprises"]


@pytest.mark.spark
def test_code_lists_and_editions_are_reference_tables(lake, regs):
    reg = _reg(regs, "resident_population")
    genders = Counter(_arrow(lake, reg).column("gender").to_pylist())
    result = q.query(lake, """
        WITH g AS (SELECT gender, count(*) AS n FROM gaj.resident_population GROUP BY gender)
        SELECT g.gender, c.meaning, g.n FROM g
        LEFT JOIN ref.codes c ON c.table_name = 'gaj.resident_population' AND c.field = 'gender' AND c.code = g.gender
        ORDER BY g.gender""", regs)
    codes = reg.field_map["gender"].codes
    assert result.table.to_pylist() == [{"gender": g, "meaning": codes[g], "n": n} for g, n in sorted(genders.items())]

    every = q.query(lake, "SELECT table_name, field, code, meaning FROM ref.codes", regs).table.to_pylist()
    assert len(every) == sum(len(f.codes) for r in regs for f in r.fields if f.codes)
    latest = q.query(lake, "SELECT max(edition) AS e FROM ref.division_editions", regs).table.to_pylist()
    current = q.query(lake, "SELECT count(*) AS n FROM ref.divisions WHERE current", regs).table.to_pylist()
    assert current == [{"n": sum(1 for d in divisions().values() if d.last_year == latest[0]["e"])}]


@pytest.mark.spark
def test_titles_come_from_the_registration(lake, regs):
    result = q.query(lake, "SELECT uscc, legal_rep, legal_rep_id, registered_capital, registered_capital_currency, "
                           "_batch_id, 1 AS one FROM scjg.enterprise_registration LIMIT 3", regs)
    assert result.header(titles=True) == ["统一社会信用代码", "法定代表人", "法定代表人身份证号码", "注册资本",
                                          "注册资本币种", "批次号", "one"]
    rows = result.table.to_pylist()
    assert all("*" in r["legal_rep"] for r in rows), "curated holds personal fields masked"
    assert all(r["legal_rep_id"] is None or r["legal_rep_id"][6:14] == "********" for r in rows)


@pytest.mark.spark
def test_every_format_is_written_and_reads_back(lake, regs, tmp_path):
    reg = _reg(regs, "enterprise_registration")
    result = q.query(lake, "SELECT uscc, enterprise_name, registered_capital, established_on, _received_at "
                           "FROM scjg.enterprise_registration ORDER BY uscc", regs)
    n = curated_rows(lake, reg)
    first = result.table.to_pylist()[0]

    path = q.write_result(result, tmp_path / "r.csv", "csv", titles=True, timezone=lake.timezone)
    raw = path.read_bytes()
    assert raw.startswith(codecs.BOM_UTF8), "Excel reads Chinese from UTF-8 only with a BOM"
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0] == ["统一社会信用代码", "企业名称", "注册资本", "成立日期", "接收时间"] and len(rows) == n + 1
    received = first["_received_at"].astimezone(ZoneInfo(lake.timezone))
    assert rows[1][0] == first["uscc"] and rows[1][3] == first["established_on"].isoformat()
    assert rows[1][4] == received.replace(tzinfo=None).isoformat(sep=" "), "Beijing time, as people there read it"

    path = q.write_result(result, tmp_path / "r.json", "json", timezone=lake.timezone)
    records = json.loads(path.read_text(encoding="utf-8"))
    assert len(records) == n and records[0]["uscc"] == first["uscc"]
    assert records[0]["_received_at"] == received.isoformat() and records[0]["_received_at"].endswith("+08:00")
    assert records[0]["registered_capital"] is None or Decimal(str(records[0]["registered_capital"])) == first[
        "registered_capital"]

    path = q.write_result(result, tmp_path / "r.parquet", "parquet")
    back = pq.read_table(path)
    assert back.num_rows == n and back.column_names == result.table.column_names
    assert back.schema.field("uscc").metadata[b"title"] == "统一社会信用代码".encode()
    assert back.column("uscc").to_pylist() == result.table.column("uscc").to_pylist()

    path = q.write_result(result, tmp_path / "r.xlsx", "xlsx", titles=True, timezone=lake.timezone)
    book = load_workbook(path, read_only=True)
    sheet = list(book["结果"].iter_rows(values_only=True))
    assert sheet[0] == ("统一社会信用代码", "企业名称", "注册资本", "成立日期", "接收时间") and len(sheet) == n + 1
    assert sheet[1][0] == first["uscc"]
    assert abs(sheet[1][4] - received.replace(tzinfo=None)) < timedelta(milliseconds=1), "Excel keeps milliseconds"
    about = {row[0]: row[1] for row in book["说明"].iter_rows(values_only=True) if row and row[0]}
    assert about["SQL"] == result.sql and about["行数 (rows)"] == n


@pytest.mark.spark
def test_a_registered_resource_with_nothing_curated_says_so(lake, regs):
    with pytest.raises(q.NotCuratedYet, match=r"gjj\.housing_fund_units: nothing curated yet"):
        q.query(lake, "SELECT count(*) FROM gjj.housing_fund_units", regs)


def _pipeline_files(settings: Settings) -> dict[str, str]:
    root = _root(settings)
    raw = next(p for p in (root / "raw").rglob("*.csv"))
    quarantine = next((root / "quarantine").rglob("*.parquet"))
    standardized = next((root / zones.WAREHOUSE_DIR / tables.STANDARDIZED_NAMESPACE).rglob("*.parquet"))
    reg = next(r for r in load_registrations(settings.resources_dir) if r.resource == "enterprise_registration")
    metadata = tables.load_table(settings, tables.standardized_table(reg)).metadata_location
    return {"raw": str(raw), "quarantine": str(quarantine), "standardized": str(standardized),
            "metadata": urlparse(metadata).path}


REFUSED = {
    "read_csv of a raw file": "SELECT * FROM read_csv('{raw}')",
    "read_parquet of quarantine": "SELECT * FROM read_parquet('{quarantine}')",
    "read_parquet of standardized": "SELECT count(*) FROM read_parquet('{standardized}')",
    "iceberg_scan of standardized": "SELECT count(*) FROM iceberg_scan('{metadata}')",
    "every table's files": "SELECT count(*) FROM read_parquet('{root}/warehouse/**/*.parquet')",
    "glob": "SELECT * FROM glob('{root}/**')",
    "read_text": "SELECT * FROM read_text('/etc/hostname')",
    "a file in a subquery": "SELECT count(*) FROM scjg.enterprise_registration WHERE uscc IN "
                            "(SELECT column0 FROM read_csv('{raw}'))",
}
STATEMENTS = {
    "ATTACH": "ATTACH '{root}/../catalog/iceberg.db' AS c",
    "COPY … TO": "COPY (SELECT * FROM scjg.enterprise_registration) TO '{root}/out.csv'",
    "INSTALL": "INSTALL httpfs",
    "LOAD": "LOAD iceberg",
    "SET": "SET enable_external_access = true",
    "CREATE": "CREATE TABLE t AS SELECT 1",
    "two statements": "SELECT 1; SELECT 2",
}


@pytest.mark.spark
@pytest.mark.parametrize("materialize", [False, True], ids=["iceberg_scan", "pyiceberg"])
@pytest.mark.parametrize("what", REFUSED)
def test_duckdb_reads_no_file(lake, regs, what, materialize):
    sql = REFUSED[what].format(root=_root(lake), **_pipeline_files(lake))
    with pytest.raises(q.QueryRefused, match=r"reads only the tables it names.*Permission Error"):
        q.query(lake, sql, regs, materialize=materialize)


@pytest.mark.spark
@pytest.mark.parametrize("what", STATEMENTS)
def test_duckdb_runs_only_a_query(lake, regs, what):
    with pytest.raises(q.QueryRefused, match=r"only a query can run|one query at a time"):
        q.query(lake, STATEMENTS[what].format(root=_root(lake)), regs)
    assert not (_root(lake) / "out.csv").exists()


@pytest.mark.spark
@pytest.mark.parametrize("name", ["standardized.enterprise_registration", "scjg.something_not_curated",
                                  "enterprise_registration", "quarantine.enterprise_registration", "other.scjg.x",
                                  "'{raw}'", "information_schema.tables"])
def test_other_names_are_unknown_tables(lake, regs, name):
    name = name.format(**_pipeline_files(lake))
    with pytest.raises(q.UnknownTable) as caught:
        q.query(lake, f"SELECT * FROM scjg.enterprise_registration, {name}", regs)
    assert caught.value.unknown == [name.strip("'")]
    assert caught.value.known == q.known_names(regs)
    assert "scjg.enterprise_registration" in str(caught.value) and "ref.divisions" in str(caught.value)


def test_a_syntax_error_is_a_query_error(settings):
    regs = load_registrations(settings.resources_dir)
    with pytest.raises(q.QueryError, match="SQL error"):
        q.query(settings, "SELEC 1", regs)
    assert q.query(settings, "SELECT 42 AS answer", regs).table.to_pylist() == [{"answer": 42}]


def test_the_curated_name_is_the_department_and_resource(settings):
    regs = load_registrations(settings.resources_dir)
    assert set(q.curated_names(regs)) == {f"{r.department}.{r.resource}" for r in regs}
    assert q.canonical(["LAKE", "scjg", "x"], "lake") == "scjg.x" and q.canonical(["other", "scjg", "x"], "lake") is None


# ---- Spark -------------------------------------------------------------------------------------------
@pytest.mark.spark
def test_spark_counts_and_joins_as_duckdb_does(spark, lake, regs):
    for resource in RESOURCES:
        reg = _reg(regs, resource)
        name = tables.curated_table(reg).ident
        for written in (name, f"{lake.catalog_name}.{name}", f"`{reg.department}`.`{reg.resource}`"):
            result = q.query(lake, f"SELECT count(*) AS n FROM {written}", regs, engine="spark", spark=spark)
            assert result.table.to_pylist() == [{"n": curated_rows(lake, reg)}], written
            assert result.engine == "spark" and result.tables == [name]
    sql = ("SELECT d.name, count(*) AS enterprises FROM scjg.enterprise_registration e "
           "JOIN ref.divisions d ON d.code = e.division_code GROUP BY d.name ORDER BY enterprises DESC, d.name")
    by_spark = q.query(lake, sql, regs, engine="spark", spark=spark)
    assert by_spark.table.to_pylist() == q.query(lake, sql, regs).table.to_pylist()
    assert by_spark.titles == {"name": "名称"}
    assert not [t for t in spark.catalog.listTables() if t.name.startswith("citylake_ref")], "views dropped"


@pytest.mark.spark
def test_spark_reads_a_curated_table_as_it_was(spark, lake, regs):
    reg = _reg(regs, "resident_population")
    snapshot = tables.table_facts(lake, tables.curated_table(reg)).snapshot_id
    result = q.query(lake, f"WITH p AS (SELECT * FROM gaj.resident_population VERSION AS OF {snapshot}) "
                           f"SELECT count(*) AS n FROM p", regs, engine="spark", spark=spark)
    assert result.table.to_pylist() == [{"n": curated_rows(lake, reg)}]


SPARK_REFUSED = {
    "a parquet path": ("SELECT count(*) FROM parquet.`{standardized}`", q.UnknownTable),
    "a csv path": ("SELECT * FROM csv.`{raw}`", q.UnknownTable),
    "standardized": ("SELECT count(*) FROM lake.standardized.enterprise_registration", q.UnknownTable),
    "standardized in a subquery": ("SELECT count(*) FROM scjg.enterprise_registration WHERE uscc IN "
                                   "(SELECT uscc FROM standardized.enterprise_registration)", q.UnknownTable),
    "read_files": ("SELECT * FROM read_files('{raw}')", q.QueryRefused),
    "IDENTIFIER": ("SELECT * FROM IDENTIFIER('lake.standardized.enterprise_registration')", q.QueryRefused),
    "reflect": ("SELECT reflect('java.lang.System', 'getenv', 'HOME') FROM scjg.enterprise_registration",
                q.QueryRefused),
    "java_method in a subquery": ("SELECT (SELECT java_method('java.lang.System', 'getenv', 'HOME')) AS x",
                                  q.QueryRefused),
    "INSERT": ("INSERT INTO scjg.enterprise_registration SELECT * FROM scjg.enterprise_registration",
               q.QueryRefused),
    "DROP": ("DROP TABLE scjg.enterprise_registration", q.QueryRefused),
    "SET": ("SET spark.sql.ansi.enabled = false", q.QueryRefused),
    "EXECUTE IMMEDIATE": ("EXECUTE IMMEDIATE 'DROP TABLE scjg.enterprise_registration'", q.QueryRefused),
    "a CTE hiding standardized": ("WITH s AS (SELECT * FROM standardized.enterprise_registration) SELECT * FROM s",
                                  q.UnknownTable),
}


@pytest.mark.spark
@pytest.mark.parametrize("what", SPARK_REFUSED)
def test_spark_reads_only_the_named_tables(spark, lake, regs, what):
    sql, error = SPARK_REFUSED[what]
    with pytest.raises(error):
        q.query(lake, sql.format(**_pipeline_files(lake)), regs, engine="spark", spark=spark)
    assert curated_rows(lake, _reg(regs, "enterprise_registration")) > 0, "the table is still there"


# ---- the base libraries -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def with_base(lake, regs) -> list[Registration]:
    return regs + [lib.reg for lib in load_base_libraries(lake.resources_dir, regs)]


@pytest.mark.spark
def test_base_libraries_are_queried_by_name_with_both_engines(spark, lake, with_base):
    for name in ("base.legal_entity", "base.legal_entity_conflicts", "base.population", "base.population_conflicts"):
        facts = tables.table_facts(lake, tables.TableName(*name.split(".")))
        assert facts is not None and facts.snapshot_id is not None, name
        for engine in q.ENGINES:
            result = q.query(lake, f"SELECT count(*) AS n FROM {name}", with_base, engine=engine, spark=spark)
            assert result.table.column("n")[0].as_py() == facts.rows, (name, engine)
    assert tables.table_facts(lake, tables.TableName("base", "legal_entity")).rows > 0
    result = q.query(lake, "SELECT uscc, name FROM lake.base.legal_entity LIMIT 1", with_base)
    assert result.titles == {"uscc": "统一社会信用代码", "name": "单位名称"}
    with pytest.raises(q.UnknownTable):  # the base libraries open no way to the pipeline's own tables
        q.query(lake, "SELECT * FROM standardized.enterprise_registration", with_base)


@pytest.mark.spark
def test_table_list_and_describe_know_the_base_libraries(lake, with_base):
    found, _ = q.table_list(lake, with_base)
    by_table = {t["table"]: t for t in found}
    for lib in ("legal_entity", "population"):
        main, conflicts = by_table[f"base.{lib}"], by_table[f"base.{lib}_conflicts"]
        facts = tables.table_facts(lake, tables.TableName("base", lib))
        assert main["kind"] == conflicts["kind"] == "base" and main["exists"]
        assert main["rows"] == facts.rows and main["freshness"] == "on_time"
        assert main["directory_prefix"] == conflicts["directory_prefix"] == f"10{1 if lib == 'population' else 2}000"
        assert conflicts["name"] == f"{main['name']}（冲突）"
    info = q.describe(lake, with_base, "base.population")
    cols = {c["name"]: c for c in info["columns"]}
    assert info["kind"] == "base" and cols["cn_id"]["mask"] == "cn_id" and cols["birth_year"]["mask"] == "year"
    assert cols["_source_count"]["title"] == "来源数"


# ---- citylake tables and citylake describe --------------------------------------------------------------
@pytest.mark.spark
def test_table_list_has_every_registration_and_the_reference_tables(lake, regs):
    found, warnings = q.table_list(lake, regs)
    assert warnings == []
    by_table = {t["table"]: t for t in found}
    assert list(by_table) == [*sorted(q.curated_names(regs)), *q.REFERENCES]
    codes, _ = q.directory_codes(lake)
    for reg in regs:
        t = by_table[tables.curated_table(reg).ident]
        assert (t["name"], t["provider"], t["directory_prefix"]) == (reg.name, reg.department_name,
                                                                     reg.classification.prefix)
        assert t["directory_code"] == codes.get(reg.resource)
        if reg.resource in RESOURCES:
            ledger = Ledger.read(lake, reg)
            latest = max((b for b in ledger.batches if b.checked), key=lambda b: b.quality["checked_at"])
            assert t["exists"] and t["rows"] == curated_rows(lake, reg)
            assert t["freshness"] == "on_time" and t["last_updated"]
            assert t["quality_pass_rate"] == latest.quality["pass_rate"] and t["quality_passed"] is True
        else:
            assert not t["exists"] and t["rows"] == 0 and t["freshness"] == "no_data"
    assert by_table["ref.divisions"]["rows"] == len(divisions())


@pytest.mark.spark
def test_describe_shows_titles_types_sensitivity_and_masks(lake, regs):
    facts = q.describe(lake, regs, "resident_population")
    assert facts == q.describe(lake, regs, "gaj.resident_population") == q.describe(
        lake, regs, "lake.gaj.resident_population")
    cols = {c["name"]: c for c in facts["columns"]}
    reg = _reg(regs, "resident_population")
    assert facts["exists"] and facts["rows"] == curated_rows(lake, reg) and facts["key"] == ["cn_id"]
    assert cols["cn_id"] == {
        "name": "cn_id", "title": "公民身份号码", "type": "string", "registered_type": "string",
        "sensitivity": "personal", "mask": "cn_id", "mask_example": "110105********002X", "codes": None}
    stored = {c["name"]: c for c in tables.table_facts(lake, tables.curated_table(reg)).columns}
    assert list(cols) == list(stored) and all(cols[n]["type"] == stored[n]["type"] for n in stored)
    for f in reg.fields:
        personal = f.sensitivity == "personal"
        assert (cols[f.name]["title"], cols[f.name]["sensitivity"]) == (f.title, f.sensitivity)
        assert cols[f.name]["mask"] == (f.effective_mask if personal else None), f.name
        assert (cols[f.name]["mask_example"] is not None) == personal
        assert cols[f.name]["codes"] == f.codes
    assert (cols["person_name"]["mask_example"], cols["mobile"]["mask_example"]) == ("欧阳**", "138****5678")
    assert cols["gender"]["codes"] == {"1": "男", "2": "女", "9": "未说明"}
    assert cols["_received_at"]["title"] == "接收时间" and cols["_received_at"]["sensitivity"] is None


def test_describe_before_the_first_curate_and_restricted_fields(settings):
    regs = load_registrations(settings.resources_dir)
    reg = next(r for r in regs if r.resource == "enterprise_registration")
    secret = FieldSpec(name="tax_number", title="纳税人识别号", type="string", sensitivity="restricted")
    regs = [r if r is not reg else reg.model_copy(update={"fields": [*reg.fields, secret]}) for r in regs]
    facts = q.describe(settings, regs, "scjg.enterprise_registration")
    assert not facts["exists"] and facts["rows"] == 0
    assert [c["name"] for c in facts["columns"]] == [f.name for f in reg.fields]
    assert facts["withheld"] == [{"name": "tax_number", "title": "纳税人识别号", "sensitivity": "restricted"}]
    with pytest.raises(q.UnknownTable):
        q.describe(settings, regs, "standardized.enterprise_registration")
    ref = q.describe(settings, regs, "ref.codes")
    assert [c["title"] for c in ref["columns"]] == list(q.REFERENCES["ref.codes"].columns.values())


# ---- what a default caller gets: nothing personal in full, nothing that completes a masked ID -------
def _is_citizen_id(text: str) -> bool:
    from datetime import date

    from citylake.core.identifiers import cn_id_check_char

    try:
        date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return False
    return cn_id_check_char(text[:17]) == text[17].upper()


@pytest.mark.spark
@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_a_default_caller_never_receives_a_citizen_id_or_mobile_in_full(spark, lake, regs, engine):
    import re

    whole_id, whole_mobile = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)"), re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
    birth = re.compile(r"(?:19|20)\d{2}-?[01]\d-?[0-3]\d")
    people = 0
    for reg in regs:
        if reg.resource not in RESOURCES:
            continue
        result = q.query(lake, f"SELECT * FROM {tables.curated_table(reg).ident}", regs, engine=engine)
        for row in result.table.to_pylist():
            # keyed hashes (_record_key, _<library>_key) are hex digests, not values a person reads
            text = " ".join(str(v) for k, v in row.items()
                            if not (k.startswith("_") and k.endswith("_key")) and v is not None)
            ids = [m for m in whole_id.findall(text) if _is_citizen_id(m)]  # a USCC may be 18 digits too
            assert not ids and not whole_mobile.search(text), row
            if reg.resource == "resident_population":
                people += 1
                assert row["cn_id"] is None or row["cn_id"][6:14] == "********"
                fields = " ".join(str(v) for k, v in row.items() if not k.startswith("_") and v is not None)
                assert not birth.search(fields), "a full date beside a masked ID would give it back"
                assert row["birth_date"] is None or len(row["birth_date"]) == 4
    assert people > 0


# ---- roles: masked by default, in the clear for a role that may see personal fields ----------------------
def _standardized_by_row(settings: Settings, reg: Registration, columns: list[str]) -> dict[tuple, tuple]:
    std = tables.load_table(settings, tables.standardized_table(reg)).scan(
        selected_fields=("_batch_id", "_source_row", *columns)).to_arrow().to_pylist()
    return {(r["_batch_id"], r["_source_row"]): tuple(r[c] for c in columns) for r in std}


@pytest.mark.spark
@pytest.mark.parametrize("engine,materialize", [("duckdb", False), ("duckdb", True), ("spark", None)],
                         ids=["duckdb-iceberg_scan", "duckdb-pyiceberg", "spark"])
def test_the_steward_sees_personal_fields_in_the_clear_and_the_default_role_does_not(
        spark, lake, regs, engine, materialize):
    reg = _reg(regs, "resident_population")
    personal = [f.name for f in reg.fields if f.sensitivity == "personal"]
    sql = f"SELECT _batch_id, _source_row, {', '.join(personal)} FROM gaj.resident_population"
    kw = {"engine": engine, "spark": spark} if engine == "spark" else {"materialize": materialize}
    masked = q.query(lake, sql, regs, **kw).table.to_pylist()
    clear = q.query(lake, sql, regs, role="steward", **kw).table.to_pylist()
    assert len(clear) == len(masked) == curated_rows(lake, reg)
    truth = _standardized_by_row(lake, reg, personal)
    for m, c in zip(sorted(masked, key=lambda r: r["_source_row"]), sorted(clear, key=lambda r: r["_source_row"]),
                    strict=True):
        row = (c["_batch_id"], c["_source_row"])
        assert tuple(c[f] for f in personal) == truth[row], "the clear values are the standardized row's"
        assert "*" in m["cn_id"] and "*" not in c["cn_id"] and len(c["cn_id"]) == 18
        assert isinstance(m["birth_date"], str) and len(m["birth_date"]) == 4  # the year only
        assert c["birth_date"] is not None and str(c["birth_date"]).startswith(m["birth_date"])
    # The other columns are the curated ones, unchanged.
    other = "SELECT _record_key, _source_row, gender FROM gaj.resident_population ORDER BY _record_key"
    assert (q.query(lake, other, regs, role="steward", **kw).table.to_pylist()
            == q.query(lake, other, regs, **kw).table.to_pylist())


@pytest.mark.spark
def test_base_libraries_stay_masked_for_every_role(lake, with_base):
    rows = q.query(lake, "SELECT cn_id FROM base.population", with_base, role="steward").table.column("cn_id")
    assert rows.to_pylist() and all("*" in v for v in rows.to_pylist())


def test_an_unknown_role_is_refused(settings):
    with pytest.raises(ValueError, match="unknown role 'admin'; roles: analyst, steward"):
        q.query(settings, "SELECT 1", [], role="admin")
