"""Analysts' SQL over the lake: the curated tables and the reference tables, by name, and nothing else.

``citylake query "SELECT …"`` (:mod:`citylake.drivers.cli.query`) runs here. A query names tables as
analysts know them:

* ``<department>.<resource>`` — a curated table, exactly :func:`citylake.core.tables.curated_table`'s
  name (``scjg.enterprise_registration``); ``<catalog>.<department>.<resource>``
  (``lake.scjg.enterprise_registration``, the Spark SQL name) is accepted too;
* ``ref.divisions`` — every GB/T 2260 code the identifier checks know (:func:`identifiers.divisions`,
  1980–2023): code, name, level, its province and prefecture, first and last edition, whether the
  latest edition has it; ``ref.division_editions`` — those editions with their dates and sources;
* ``base.<library>`` and ``base.<library>_conflicts`` — the base libraries (基础库, the registrations
  in ``registrations/base/``, :mod:`citylake.stages.base`): one row per legal entity or person joined
  across departments, and the values the departments disagree on;
* ``ref.codes`` — every code list of every registration in one table, one row per code:
  ``table_name``, ``resource``, ``field``, ``field_title``, ``code``, ``meaning`` (join on
  ``table_name``, ``field`` and ``code``). One table rather than one per list, so a new registration
  brings its lists without a new table name.

Raw, standardized and quarantine data are never reachable: every table a query names is resolved
against that list before anything runs (:func:`resolve`), and a name outside it is an
:class:`UnknownTable` listing the known ones. Only one query statement runs (SELECT, WITH, FROM …,
VALUES, and in DuckDB DESCRIBE/SUMMARIZE); anything else is a :class:`QueryRefused`.

Two engines, the same names and the same result (a pyarrow table):

* ``duckdb`` (the default: no JVM, fast on one machine). The query runs in an in-memory DuckDB that
  holds only the tables it names, as views. On a local lake a curated view is
  ``iceberg_scan`` of the table's current metadata file, read lazily; DuckDB is then locked
  (``enable_external_access = false``, ``lock_configuration = true``) with only those tables' own
  folders allowed, so ``read_csv``/``read_parquet`` of any other file, ``iceberg_scan`` of a
  standardized table, ``ATTACH``, ``COPY … TO``, ``INSTALL``/``LOAD`` and ``SET`` all fail. (Inside a
  named table's folder a query can read that curated table's own older files — what ``VERSION AS OF``
  shows in Spark.) On an S3 lake (this DuckDB has no S3 extension) the named tables are read through
  pyiceberg into memory and no file at all is allowed.
* ``spark`` (``--engine spark``: Spark SQL, for tables too large for one machine, on the jobs' session
  and catalog). The statement is parsed by Spark's own parser; every operator in it must be a query
  operator, ``reflect``/``java_method`` are refused, and every relation must be a known name: curated
  names are rewritten to the catalog's full name (``lake``.``scjg``.``…``), ``ref.*`` to temporary
  views. Path relations (``parquet.`/…```), ``read_files(…)`` and other table functions, and
  ``IDENTIFIER(…)`` are refused before anything runs, and the analysed plan is checked again: it may
  read only those tables.

Who sees what (``role``, :data:`citylake.core.access.ROLES`): the default role sees curated tables as
curate wrote them, personal fields masked. A role that may see personal fields unmasked (``steward``)
gets each curated table with those fields taken from the standardized row the curated row came from
(``_batch_id``, ``_source_row``: a batch is one partition there, a source row one row), so nothing is
stored twice and the clear value is exactly the one curate masked. The query still names only curated
tables; on an S3 lake the standardized tables are readable only with the steward's keys, so holding
the role means holding them. Base libraries stay masked for every role (their rows join several
sources), and restricted fields are never shown.

The result keeps the columns' titles (registration field titles; :attr:`QueryResult.titles`) and is
written as CSV (UTF-8 with a BOM, so Excel shows Chinese), JSON, Parquet or XLSX by
:func:`write_result`. :func:`table_list` and :func:`describe` give the facts of ``citylake tables``
and ``citylake describe``.
"""

from __future__ import annotations

import csv
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import TextIO
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import pyarrow as pa

from citylake.core import tables
from citylake.core.access import Role
from citylake.core.access import role as find_role
from citylake.core.identifiers import division_editions, divisions, latest_division_edition
from citylake.core.lake import Lake
from citylake.core.masking import mask_text
from citylake.core.registry import Registration
from citylake.core.settings import Settings

ENGINES = ("duckdb", "spark")
FORMATS = ("csv", "json", "parquet", "xlsx")
EXCEL_MAX_ROWS = 1_048_575  # a sheet's rows less the header


class QueryError(ValueError):
    """The query cannot run as written: a syntax or name error of the engine, or one of the below."""


class QueryRefused(QueryError):
    """The query asks for something citylake query does not do: another statement than a query,
    a file, another database, an extension, a Java call."""


class UnknownTable(QueryError):
    """The query names a table that is not a curated or reference table."""

    def __init__(self, unknown: list[str], known: list[str]):
        self.unknown, self.known = unknown, known
        plural = "s" if len(unknown) > 1 else ""
        super().__init__(
            f"unknown table{plural}: {', '.join(unknown)}; known tables: {', '.join(known)} "
            f"(curated <department>.<resource>, base libraries base.* and ref.*; raw, standardized and quarantine "
            f"data are not queryable)"
        )


class NotCuratedYet(QueryError):
    """The query names a registered resource whose curated table does not exist yet."""


# ---- reference tables -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Reference:
    name: str
    title: str
    provider: str
    columns: dict[str, str]  # column -> title, in order


REFERENCES = {
    r.name: r
    for r in (
        Reference("ref.divisions", "县级以上行政区划代码（GB/T 2260，各版）", "GB/T 2260（民政部、国家统计局发布）", {
            "code": "行政区划代码", "name": "名称", "level": "级别", "province_code": "所属省级代码",
            "prefecture_code": "所属地级代码", "first_edition": "最早版本（年）", "last_edition": "最新版本（年）",
            "current": "现行有效",
        }),
        Reference("ref.division_editions", "行政区划代码版本（GB/T 2260）", "GB/T 2260（民政部、国家统计局发布）", {
            "edition": "版本（年）", "as_of": "截至日期", "codes": "代码数", "source": "来源",
        }),
        Reference("ref.codes", "登记的代码表（各资源信息项的代码及含义）", "各资源登记文件（registrations/）", {
            "table_name": "表名", "resource": "资源", "field": "信息项", "field_title": "信息项名称",
            "code": "代码", "meaning": "含义",
        }),
    )
}


def _level(code: str) -> str:
    if code.endswith("0000"):
        return "省级"
    return "地级" if code.endswith("00") else "县级"


@lru_cache(maxsize=1)
def _divisions_table() -> pa.Table:
    rows = sorted(divisions().values(), key=lambda d: d.code)
    latest = latest_division_edition()
    return pa.table({
        "code": [d.code for d in rows],
        "name": [d.name for d in rows],
        "level": [_level(d.code) for d in rows],
        "province_code": [d.code[:2] + "0000" for d in rows],
        "prefecture_code": [None if _level(d.code) == "省级" else d.code[:4] + "00" for d in rows],
        "first_edition": pa.array([d.first_year for d in rows], pa.int32()),
        "last_edition": pa.array([d.last_year for d in rows], pa.int32()),
        "current": [d.last_year == latest for d in rows],
    })


@lru_cache(maxsize=1)
def _division_editions_table() -> pa.Table:
    rows = list(division_editions().values())
    return pa.table({
        "edition": pa.array([int(e.edition) for e in rows], pa.int32()),
        "as_of": [e.as_of for e in rows],
        "codes": pa.array([e.codes for e in rows], pa.int32()),
        "source": [e.source for e in rows],
    })


def _codes_table(regs: list[Registration]) -> pa.Table:
    rows = [
        (tables.curated_table(reg).ident, reg.resource, f.name, f.title, code, meaning)
        for reg in sorted(regs, key=lambda r: (r.department, r.resource))
        for f in reg.fields if f.codes
        for code, meaning in f.codes.items()
    ]
    names = list(REFERENCES["ref.codes"].columns)
    return pa.table({name: pa.array([r[i] for r in rows], pa.string()) for i, name in enumerate(names)})


def reference_table(name: str, regs: list[Registration]) -> pa.Table:
    """The rows of a reference table (``ref.divisions``, ``ref.division_editions``, ``ref.codes``)."""
    if name == "ref.divisions":
        return _divisions_table()
    if name == "ref.division_editions":
        return _division_editions_table()
    if name == "ref.codes":
        return _codes_table(regs)
    raise KeyError(name)


# ---- the tables a query may name ----------------------------------------------------------------
def column_titles(reg: Registration) -> dict[str, str]:
    """Column -> title for the columns a curated table may have (fields, currencies, lineage)."""
    out = {name: text.split(" (", 1)[0] for name, text in tables.LINEAGE_COMMENTS.items()}
    if reg.is_base:
        out.update({name: text.split(" (", 1)[0] for name, text in tables.BASE_COMMENTS.items()})
    for f in reg.fields:
        out[f.name] = f.title
        if f.type == "money":
            out[f"{f.name}_currency"] = f"{f.title}币种"
    return out


def reg_tables(reg: Registration) -> list[tables.TableName]:
    """The queryable tables of a registration: its curated table; a base library's table and its
    conflicts table."""
    if reg.is_base:
        return [tables.base_table(reg), tables.base_conflicts_table(reg)]
    return [tables.curated_table(reg)]


def curated_names(regs: list[Registration]) -> dict[str, Registration]:
    """Analyst name (``<department>.<resource>``, ``base.<library>[_conflicts]``) -> registration."""
    return {t.ident: reg for reg in regs for t in reg_tables(reg)}


def _table_name(ident: str) -> tables.TableName:
    return tables.TableName(*ident.split(".", 1))


def known_names(regs: list[Registration]) -> list[str]:
    return sorted([*curated_names(regs), *REFERENCES])


def canonical(parts: list[str], catalog: str) -> str | None:
    """``['lake', 'scjg', 'x']`` or ``['scjg', 'x']`` -> ``'scjg.x'``; None for any other shape."""
    parts = [p.lower() for p in parts if p]
    if len(parts) == 3 and parts[0] == catalog.lower():
        parts = parts[1:]
    return ".".join(parts) if len(parts) == 2 else None


def resolve(settings: Settings, regs: list[Registration], references: list[list[str]],
            ctes: set[str] = frozenset()) -> list[str]:
    """The known names a query's relations (each a list of name parts, in query order) stand for,
    in order of first use. A one-part name must be a CTE of the query; anything else unknown
    raises :class:`UnknownTable`, naming every unknown one."""
    allowed = set(known_names(regs))
    used: list[str] = []
    unknown: list[str] = []
    for parts in references:
        if len(parts) == 1 and parts[0].lower() in ctes:
            continue
        name = canonical(parts, settings.catalog_name)
        if name in allowed:
            if name not in used:
                used.append(name)
        else:
            shown = ".".join(parts)
            if shown not in unknown:
                unknown.append(shown)
    if unknown:
        raise UnknownTable(unknown, sorted(allowed))
    return used


@dataclass
class Source:
    """A named table made ready for an engine."""

    name: str
    kind: str  # curated | reference
    titles: dict[str, str]
    iceberg: object | None = None  # the pyiceberg table (curated)
    rows: pa.Table | None = None  # the rows (reference)
    clear: list[str] = field(default_factory=list)  # personal columns the role sees unmasked
    standardized: object | None = None  # the pyiceberg standardized table they come from


def clear_columns(reg: Registration, present: list[str], role: Role) -> list[str]:
    """The personal columns of a curated table that ``role`` sees in the clear (none for a base
    library, whose rows join several sources, or for a role that masks)."""
    if not role.unmasked or reg.is_base:
        return []
    return [f.name for f in reg.fields if f.sensitivity == "personal" and f.name in present]


def sources(settings: Settings, regs: list[Registration], names: list[str],
            role: Role | None = None) -> list[Source]:
    role = role or find_role()
    by_name = curated_names(regs)
    out = []
    for name in names:
        if name in REFERENCES:
            out.append(Source(name, "reference", REFERENCES[name].columns, rows=reference_table(name, regs)))
            continue
        reg = by_name[name]
        tbl = tables.load_table(settings, _table_name(name))
        if tbl is None or tbl.current_snapshot() is None:
            raise NotCuratedYet(f"{name}: nothing curated yet for {reg.resource} (no batch of it has passed its "
                                f"quality check); `citylake status --resource {reg.resource}` says where its batches are")
        titles = column_titles(reg)
        # A column kept from a field since removed from the registration keeps its title as a comment.
        for f in tbl.schema().fields:
            if f.name not in titles and f.doc:
                titles[f.name] = f.doc
        src = Source(name, "curated", titles, iceberg=tbl)
        present = [f.name for f in tbl.schema().fields]
        clear = clear_columns(reg, present, role) if {"_batch_id", "_source_row"} <= set(present) else []
        if clear:
            std = tables.load_table(settings, tables.standardized_table(reg))
            src.clear = [c for c in clear if std is not None and c in {f.name for f in std.schema().fields}]
            src.standardized = std if src.clear else None
        out.append(src)
    return out


# ---- the result ------------------------------------------------------------------------------------
@dataclass
class QueryResult:
    sql: str
    engine: str
    table: pa.Table
    tables: list[str]  # the tables the query named, in order of first use
    titles: dict[str, str] = field(default_factory=dict)  # result column -> title, where one is known
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return self.table.num_rows

    def header(self, titles: bool = False) -> list[str]:
        """Column headings, unique (a repeated one gets ``_2``, ``_3``…): names, or titles where known."""
        out: list[str] = []
        for name in self.table.column_names:
            text = self.titles.get(name, name) if titles else name
            base, n = text, 1
            while text in out:
                n += 1
                text = f"{base}_{n}"
            out.append(text)
        return out


def _titles_for(columns: list[str], used: list[Source]) -> dict[str, str]:
    """A result column named like a column of a table the query used gets that column's title (the
    first table in the query that has it)."""
    out = {}
    for col in columns:
        for src in used:
            if col in src.titles:
                out[col] = src.titles[col]
                break
    return out


def query(settings: Settings, sql: str, regs: list[Registration], *, engine: str = "duckdb",
          spark=None, materialize: bool | None = None, role: str | None = None) -> QueryResult:
    """Run one analyst query as ``role`` (the default role, masked, when None). ``materialize``
    (DuckDB): read the tables into memory through pyiceberg instead of scanning their files (the
    default on an S3 lake)."""
    who = find_role(role)
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; one of {', '.join(ENGINES)}")
    if not sql or not sql.strip():
        raise QueryError("no SQL given")
    if engine == "spark" and spark is None:
        from citylake.core.spark import get_session

        spark = get_session(settings, "citylake-query")
    started = time.perf_counter()  # the query's own time, not the JVM's start
    try:
        if engine == "duckdb":
            table, used = run_duckdb(settings, sql, regs, materialize=materialize, role=who)
        else:
            table, used = run_spark(spark, settings, sql, regs, role=who)
    except OSError as exc:
        if who.unmasked and any(w in str(exc).upper() for w in ("ACCESS_DENIED", "ACCESSDENIED", "403")):
            raise QueryRefused(f"role {who.name} reads the standardized tables, which these storage keys may not "
                               f"read: run it with the {who.identity} identity's keys") from None
        raise
    return QueryResult(sql, engine, table, [s.name for s in used], _titles_for(table.column_names, used),
                       time.perf_counter() - started)


# ---- DuckDB -----------------------------------------------------------------------------------------
def duckdb_references(sql: str) -> tuple[list[list[str]], set[str]]:
    """The tables a DuckDB query names (name parts, in query order) and its CTE names, from DuckDB's
    own parser (``json_serialize_sql``: parsing only, nothing is bound or read)."""
    import duckdb

    con = duckdb.connect()
    try:
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    finally:
        con.close()
    if tree.get("error"):
        if tree.get("error_type") == "not implemented":  # DuckDB serializes only SELECT statements
            raise QueryRefused("only a query can run: one SELECT (or WITH …, FROM …, VALUES, DESCRIBE, SUMMARIZE); "
                               "statements such as COPY, ATTACH, INSTALL, LOAD, SET, CREATE, INSERT are not run")
        raise QueryError(f"SQL error: {tree.get('error_message')}")
    if len(tree["statements"]) != 1:
        raise QueryRefused(f"one query at a time (found {len(tree['statements'])} statements)")
    refs: list[list[str]] = []
    ctes: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            if node.get("type") == "BASE_TABLE":
                refs.append([p for p in (node.get("catalog_name"), node.get("schema_name"), node.get("table_name")) if p])
            cte_map = node.get("cte_map")
            if isinstance(cte_map, dict):
                ctes.update(entry["key"].lower() for entry in cte_map.get("map", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree["statements"])
    return refs, ctes


def _local_path(uri: str) -> str:
    return urlparse(uri).path if uri.startswith("file:") else uri


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _scan_folder(tbl) -> list[str]:
    folder = _local_path(tbl.location()).rstrip("/") + "/"
    # The manifests name files as file:/…, file:///… or plain paths: each spelling.
    return [folder, f"file:{folder}", f"file://{folder}"]


def _unmasked_select(table: str, standardized: str, clear: list[str]) -> str:
    """The curated rows with the ``clear`` columns taken from their standardized rows."""
    cols = ", ".join(_quote(c) for c in ["_batch_id", "_source_row", *clear])
    replaced = ", ".join(f"s.{_quote(c)} AS {_quote(c)}" for c in clear)
    return (f"(SELECT c.* REPLACE ({replaced}) FROM {table} c LEFT JOIN (SELECT {cols} FROM {standardized}) s "
            f"ON c._batch_id = s._batch_id AND c._source_row = s._source_row)")


def run_duckdb(settings: Settings, sql: str, regs: list[Registration], *,
               materialize: bool | None = None, role: Role | None = None) -> tuple[pa.Table, list[Source]]:
    import duckdb

    refs, ctes = duckdb_references(sql)
    used = sources(settings, regs, resolve(settings, regs, refs, ctes), role)
    if materialize is None:
        materialize = tables.is_s3(settings)
    con = tables.duckdb_connection()
    try:
        con.execute(f"ATTACH ':memory:' AS {_quote(settings.catalog_name)}")
        con.execute(f"USE {_quote(settings.catalog_name)}")
        con.execute(f"SET TimeZone = {_string(settings.timezone)}")
        con.execute("SET python_enable_replacements = false")  # no implicit scans of Python variables
        allowed: list[str] = []
        for i, src in enumerate(used):
            namespace, name = src.name.split(".")
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(namespace)}")
            if src.kind == "curated" and not materialize:
                allowed += _scan_folder(src.iceberg)
                body = f"iceberg_scan({_string(_local_path(src.iceberg.metadata_location))})"
            else:
                rows = src.rows if src.kind == "reference" else src.iceberg.scan().to_arrow()
                con.register(f"citylake_source_{i}", rows)
                body = f"citylake_source_{i}"
            if src.clear and not materialize:
                allowed += _scan_folder(src.standardized)
                body = _unmasked_select(body, f"iceberg_scan({_string(_local_path(src.standardized.metadata_location))})",
                                        src.clear)
            elif src.clear:
                std = src.standardized.scan(selected_fields=("_batch_id", "_source_row", *src.clear)).to_arrow()
                con.register(f"citylake_standardized_{i}", std)
                body = _unmasked_select(body, f"citylake_standardized_{i}", src.clear)
            con.execute(f"CREATE VIEW {_quote(namespace)}.{_quote(name)} AS SELECT * FROM {body}")
        con.execute(f"SET allowed_directories = [{', '.join(_string(a) for a in allowed)}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        try:
            return con.execute(sql).fetch_arrow_table(), used
        except duckdb.PermissionException as exc:
            raise QueryRefused(
                f"citylake query reads only the tables it names; files, databases and extensions are out of its "
                f"reach: {_first_line(exc)}") from None
        except duckdb.Error as exc:
            raise QueryError(f"SQL error: {exc}") from None
    finally:
        con.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


# ---- Spark -------------------------------------------------------------------------------------------
# The operators a parsed query may contain (Spark 4.1's parser). Anything else — a command, an
# INSERT, EXECUTE IMMEDIATE, a script, IDENTIFIER(…) — is refused before the statement is analysed.
SPARK_QUERY_OPERATORS = frozenset({
    "Aggregate", "Distinct", "Except", "Filter", "Generate", "GlobalLimit", "Intersect", "Join", "LateralJoin",
    "LocalLimit", "LocalRelation", "Offset", "OneRowRelation", "Pivot", "PipeOperator", "Project",
    "RelationTimeTravel", "Repartition", "RepartitionByExpression", "Sample", "Sort", "SubqueryAlias", "Tail",
    "Union", "UnresolvedHaving", "UnresolvedHint", "UnresolvedInlineTable", "UnresolvedRelation",
    "UnresolvedSubqueryColumnAliases", "UnresolvedWith", "Unpivot", "WithWindowDefinition",
})
# Functions that call any Java method, e.g. System.getenv: not for a query.
SPARK_REFUSED_FUNCTIONS = frozenset({"reflect", "java_method", "try_reflect"})
# What an analysed query may read: the catalog's tables (checked by name) and in-memory rows (VALUES,
# the reference views).
SPARK_LEAVES = frozenset({"CTERelationRef", "DataSourceV2Relation", "LocalRelation", "LogicalRDD", "OneRowRelation"})


def _seq(scala_seq) -> Iterator:
    it = scala_seq.iterator()
    while it.hasNext():
        yield it.next()


@dataclass
class _SparkRelation:
    parts: list[str]
    start: int
    stop: int  # inclusive, as Spark's origin says


def spark_references(spark, sql: str) -> tuple[list[_SparkRelation], set[str]]:
    """The relations a Spark SQL query names (with their place in the text) and its CTE names, from
    Spark's parser; refuses any statement that is not a query."""
    from pyspark.errors import ParseException

    try:
        plan = spark._jsparkSession.sessionState().sqlParser().parsePlan(sql)
    except ParseException as exc:
        raise QueryError(f"SQL error: {exc}") from None
    relations: dict[tuple[int, int], _SparkRelation] = {}
    ctes: set[str] = set()

    def expression(e) -> None:
        node = e.nodeName()
        if node == "ExpressionWithUnresolvedIdentifier":
            raise QueryRefused("IDENTIFIER(…) is not allowed in citylake query: write the names out")
        if node == "UnresolvedFunction":
            name = e.nameParts().last().lower()
            if name in SPARK_REFUSED_FUNCTIONS:
                raise QueryRefused(f"{name}() calls Java methods and is not allowed in citylake query")
        for child in _seq(e.children()):
            expression(child)

    def visit(p) -> None:
        node = p.nodeName()
        if node == "UnresolvedTableValuedFunction":
            raise QueryRefused("table functions (read_files, range, …) are not allowed in citylake query: "
                               "name the curated or reference tables")
        if node not in SPARK_QUERY_OPERATORS:
            raise QueryRefused(f"only a query can run (SELECT, WITH, FROM, VALUES, TABLE): Spark reads this "
                               f"statement as {node}")
        if node == "UnresolvedRelation":
            origin = p.origin()
            start, stop = origin.startIndex().get(), origin.stopIndex().get()
            parts = list(p.multipartIdentifier().mkString("\u001f").split("\u001f"))
            relations[(start, stop)] = _SparkRelation(parts, start, stop)
        elif node == "RelationTimeTravel":  # VERSION AS OF: the table is a field, not a child
            visit(p.relation())
        elif node == "UnresolvedWith":
            ctes.update(pair._1().lower() for pair in _seq(p.cteRelations()))
        for e in _seq(p.expressions()):
            expression(e)
        for child in _seq(p.children()):
            visit(child)
        for inner in _seq(p.innerChildren()):  # subqueries and CTE definitions
            visit(inner)

    visit(plan)
    return sorted(relations.values(), key=lambda r: r.start), ctes


def _spark_ident(parts: list[str]) -> str:
    return ".".join(f"`{p}`" for p in parts)


def _spark_unmasked(spark, catalog: str, src: Source):
    """The curated table with ``src.clear`` taken from the standardized rows (as :func:`_unmasked_select`)."""
    from pyspark.sql import functions as F

    cur = spark.table(_spark_ident([catalog, *src.name.split(".")])).alias("c")
    std_name = _spark_ident([catalog, tables.STANDARDIZED_NAMESPACE, src.name.split(".")[1]])
    std = spark.table(std_name).select("_batch_id", "_source_row", *src.clear).alias("s")
    on = (F.col("c._batch_id") == F.col("s._batch_id")) & (F.col("c._source_row") == F.col("s._source_row"))
    return cur.join(std, on, "left").select(
        *[(F.col(f"s.`{c}`") if c in src.clear else F.col(f"c.`{c}`")).alias(c) for c in cur.columns])


def run_spark(spark, settings: Settings, sql: str, regs: list[Registration], *,
              role: Role | None = None) -> tuple[pa.Table, list[Source]]:
    from pyspark.errors import AnalysisException, PySparkException
    from pyspark.logger import PySparkLogger

    from citylake.core.spark import use_catalog

    relations, ctes = spark_references(spark, sql)
    names = resolve(settings, regs, [r.parts for r in relations], ctes)
    used = sources(settings, regs, names, role)
    catalog = use_catalog(spark, settings)
    views: dict[str, str] = {}
    readable = {s.name for s in used if s.kind == "curated"}
    for src in used:
        if src.kind == "reference":
            views[src.name] = f"citylake_{src.name.replace('.', '_')}_{uuid.uuid4().hex[:8]}"
            spark.createDataFrame(src.rows).createOrReplaceTempView(views[src.name])
        elif src.clear:
            views[src.name] = f"citylake_{src.name.replace('.', '_')}_{uuid.uuid4().hex[:8]}"
            _spark_unmasked(spark, catalog, src).createOrReplaceTempView(views[src.name])
            readable.add(f"{tables.STANDARDIZED_NAMESPACE}.{src.name.split('.')[1]}")
    try:
        text = sql
        for rel in sorted(relations, key=lambda r: r.start, reverse=True):
            name = canonical(rel.parts, catalog)
            if len(rel.parts) == 1 or name is None:
                continue  # a CTE
            target = f"`{views[name]}`" if name in views else _spark_ident([catalog, *name.split(".")])
            text = text[: rel.start] + target + text[rel.stop + 1:]
        # PySpark logs every failed SQL statement with its JVM stack; the message is raised instead.
        context_logger = PySparkLogger.getLogger("SQLQueryContextLogger")
        context_logger.disabled = True
        try:
            df = spark.sql(text)
            _check_spark_plan(df._jdf.queryExecution().analyzed(), catalog, readable)
            return df.toArrow(), used
        except AnalysisException as exc:
            raise QueryError(f"SQL error: {_first_line(exc)}") from None
        except PySparkException as exc:
            raise QueryError(f"query failed: {_first_line(exc)}") from None
        finally:
            context_logger.disabled = False
    finally:
        for view in views.values():
            spark.catalog.dropTempView(view)


def _check_spark_plan(plan, catalog: str, curated: set[str]) -> None:
    """Every relation the analysed plan reads is one of the named curated tables or rows in memory."""
    children = list(_seq(plan.children()))
    if not children:
        node = plan.nodeName()
        if node not in SPARK_LEAVES:
            raise QueryRefused(f"the query would read {plan.simpleString(200)}; citylake query reads only the "
                               f"curated and reference tables")
        if node == "DataSourceV2Relation":
            ident = plan.identifier().get() if plan.identifier().isDefined() else None
            cat = plan.catalog().get().name() if plan.catalog().isDefined() else None
            name = ".".join([*ident.namespace(), ident.name()]) if ident is not None else None
            if cat != catalog or name not in curated:
                raise QueryRefused(f"the query would read {cat}.{name}; citylake query reads only the curated "
                                   f"and reference tables")
    for child in children:
        _check_spark_plan(child, catalog, curated)
    for inner in _seq(plan.innerChildren()):  # subqueries
        _check_spark_plan(inner, catalog, curated)


# ---- writing a result ----------------------------------------------------------------------------------
def python_rows(table: pa.Table, timezone: str) -> Iterator[list]:
    """The rows as Python values; times with a zone are given in ``timezone`` (the lake's), without
    the zone, as people there read them."""
    tz = ZoneInfo(timezone)
    for batch in table.to_batches():
        columns = [col.to_pylist() for col in batch.columns]
        for row in zip(*columns):
            yield [v.astimezone(tz).replace(tzinfo=None) if isinstance(v, datetime) and v.tzinfo else v for v in row]


def text_value(value) -> str:
    """A value as text, for the terminal and CSV."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _json_value(value, tz: ZoneInfo):
    if isinstance(value, datetime):
        return (value.replace(tzinfo=tz) if value.tzinfo is None else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        # A number when a float carries it exactly (money of ordinary size), else its exact text.
        return float(value) if Decimal(repr(float(value))) == value else str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def write_csv(result: QueryResult, stream: TextIO, *, titles: bool = False, timezone: str = "Asia/Shanghai") -> None:
    out = csv.writer(stream)
    out.writerow(result.header(titles))
    for row in python_rows(result.table, timezone):
        out.writerow([text_value(v) for v in row])


def write_json(result: QueryResult, stream: TextIO, *, titles: bool = False, timezone: str = "Asia/Shanghai") -> None:
    tz = ZoneInfo(timezone)
    header = result.header(titles)
    records = [dict(zip(header, [_json_value(v, tz) for v in row])) for row in python_rows(result.table, timezone)]
    stream.write(json.dumps(records, ensure_ascii=False, indent=1) + "\n")


def write_result(result: QueryResult, path: Path | str, fmt: str, *, titles: bool = False,
                 timezone: str = "Asia/Shanghai") -> Path:
    """Write the whole result to ``path``:

    * ``csv`` — UTF-8 with a BOM (Excel then reads Chinese right; other tools skip it), one header
      row, times in the lake's zone as ``YYYY-MM-DD HH:MM:SS``;
    * ``json`` — a list of objects, times as ISO 8601 with their offset, decimals as numbers when a
      double carries them exactly, else as strings;
    * ``parquet`` — the Arrow types; each column's title is in its field metadata (``title``);
    * ``xlsx`` — sheet 结果 (codes and IDs stay text), sheet 说明 (the SQL, engine, time, columns).

    ``titles``: headings are the column titles instead of the names."""
    path = Path(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    header = result.header(titles)
    if fmt == "csv":
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            write_csv(result, fh, titles=titles, timezone=timezone)
    elif fmt == "json":
        with path.open("w", encoding="utf-8") as fh:
            write_json(result, fh, titles=titles, timezone=timezone)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        fields = [
            f.with_name(heading).with_metadata({**(f.metadata or {}), b"title": result.titles.get(f.name, f.name).encode()})
            for f, heading in zip(result.table.schema, header)
        ]
        pq.write_table(pa.Table.from_arrays(result.table.columns, schema=pa.schema(fields)), path, compression="zstd")
    else:
        _write_xlsx(result, path, header, timezone)
    return path


def _write_xlsx(result: QueryResult, path: Path, header: list[str], timezone: str) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    if result.rows > EXCEL_MAX_ROWS:
        raise QueryError(f"{result.rows:,} rows do not fit in an Excel sheet ({EXCEL_MAX_ROWS:,} at most): "
                         f"write csv or parquet, or aggregate in the SQL")
    wb = Workbook(write_only=True)
    sheet = wb.create_sheet("结果")
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)

    def heading(text: str) -> WriteOnlyCell:
        cell = WriteOnlyCell(sheet, value=text)
        cell.font = bold
        return cell

    sheet.append([heading(h) for h in header])
    for row in python_rows(result.table, timezone):
        sheet.append([text_value(v) if isinstance(v, (list, dict, bytes)) else v for v in row])
    about = wb.create_sheet("说明")
    about.append(["SQL", result.sql])
    about.append(["引擎 (engine)", result.engine])
    about.append(["使用的表 (tables)", ", ".join(result.tables)])
    about.append(["行数 (rows)", result.rows])
    about.append(["生成时间 (written at)", datetime.now(ZoneInfo(timezone)).replace(tzinfo=None, microsecond=0)])
    about.append([])
    about.append([heading("列 (column)"), heading("名称 (title)"), heading("类型 (type)")])
    for name, f in zip(header, result.table.schema):
        about.append([name, result.titles.get(f.name, ""), str(f.type)])
    wb.save(path)


# ---- citylake tables and citylake describe --------------------------------------------------------------
def directory_codes(settings: Settings) -> tuple[dict[str, str], list[str]]:
    """Resource -> directory code (目录代码) from the directory database's code register, read
    only; ({}, [why]) when there is no directory yet or it cannot be read."""
    from sqlalchemy import create_engine, inspect, select
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import Session

    from citylake.stages.publish.models import ResourceCode

    url = make_url(settings.directory_url)
    if url.get_backend_name() == "sqlite" and (not url.database or not Path(url.database).exists()):
        return {}, []  # never published: SQLite would create an empty file
    engine = create_engine(url)
    try:
        if not inspect(engine).has_table(ResourceCode.__tablename__):
            return {}, []
        with Session(engine) as session:
            return {rc.resource: rc.code for rc in session.scalars(select(ResourceCode))}, []
    except SQLAlchemyError as exc:
        return {}, [f"directory codes not read from the directory database: {_first_line(exc)}"]
    finally:
        engine.dispose()


def _local_time(ms_or_dt, timezone: str) -> str | None:
    if ms_or_dt is None:
        return None
    value = ms_or_dt if isinstance(ms_or_dt, datetime) else datetime.fromtimestamp(ms_or_dt / 1000, UTC)
    return value.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S")


def table_list(settings: Settings, regs: list[Registration], now: datetime | None = None) -> tuple[list[dict], list[str]]:
    """One dict per queryable table: every registered resource's curated table (rows 0 and
    ``exists`` false before its first curate) and the reference tables. Rows, last update and
    freshness are the directory's facts (:func:`citylake.stages.publish.facts.collect_facts`):
    last update is how current the data is (the newest receipt time it holds), freshness is judged
    against the 更新周期, and the quality pass rate is the latest checked batch's share of rules
    passed. Returns (tables, warnings)."""
    from citylake.stages.publish.facts import collect_facts

    now = now or datetime.now(UTC)
    codes, warnings = directory_codes(settings)
    lake = Lake.from_settings(settings)
    out = []
    for reg, table in sorted(((r, t) for r in regs for t in reg_tables(r)),
                             key=lambda rt: (rt[0].department, rt[1].name)):
        tbl = tables.load_table(settings, table)
        facts = tables.table_facts(settings, table) if tbl is not None else None
        f = collect_facts(lake, reg, now, table=facts)
        code = codes.get(reg.resource) or (tbl.properties.get(tables.DIRECTORY_CODE) if tbl is not None else None)
        conflicts = reg.is_base and table != tables.base_table(reg)
        out.append({
            "table": table.ident,
            "kind": "base" if reg.is_base else "curated",
            "directory_code": code,
            "directory_prefix": reg.classification.prefix,
            "name": f"{reg.name}（冲突）" if conflicts else reg.name,
            "provider": reg.department_name,
            "department": reg.department,
            "resource": reg.resource,
            "exists": facts is not None and facts.snapshot_id is not None,
            "rows": int(f.row_count or 0),
            "last_updated": _local_time(f.last_updated_at, settings.timezone),
            "update_cycle": reg.update_cycle,
            "freshness": f.freshness,
            "freshness_zh": f.freshness_label,
            "quality_pass_rate": f.quality_latest_pass_rate,
            "quality_passed": f.quality_latest_success,
            "quality_batch": f.quality_latest_batch,
        })
    for ref in REFERENCES.values():
        out.append({
            "table": ref.name, "kind": "reference", "directory_code": None, "directory_prefix": None,
            "name": ref.title, "provider": ref.provider, "department": None, "resource": None, "exists": True,
            "rows": reference_table(ref.name, regs).num_rows, "last_updated": None, "update_cycle": None,
            "freshness": None, "freshness_zh": None, "quality_pass_rate": None, "quality_passed": None,
            "quality_batch": None,
        })
    return out, warnings


# A value of each mask kind, to show what the mask does to one.
MASK_EXAMPLES = {
    "cn_id": "11010519491231002X", "mobile": "13812345678", "name": "欧阳娜娜", "address": "河南省郑州市金水区花园路1号",
    "bank_account": "6222021234567890123", "full": "任意内容", "year": "1990-05-17",
}


def _last_update(facts: tables.TableFacts | None, timezone: str) -> str | None:
    """How current the data is: the newest receipt time the table holds, else its last change."""
    if facts is None or facts.snapshot_id is None:
        return None
    if facts.received_through:
        through = datetime.fromisoformat(facts.received_through)
        return _local_time(through if through.tzinfo else through.replace(tzinfo=UTC), timezone)
    return _local_time(facts.changed_at_ms or facts.updated_at_ms, timezone)


def find_table(settings: Settings, regs: list[Registration], name: str) -> str:
    """The known table ``name`` means: ``<department>.<resource>``, ``<catalog>.<department>.<resource>``,
    ``ref.<name>`` or a bare resource name; else :class:`UnknownTable`."""
    text = name.strip().lower()
    by_resource = {reg.resource: tables.curated_table(reg).ident for reg in regs}
    found = by_resource.get(text) or canonical(text.split("."), settings.catalog_name)
    if found in known_names(regs):
        return found
    raise UnknownTable([name], known_names(regs))


def describe(settings: Settings, regs: list[Registration], name: str) -> dict:
    """A table's facts and columns: title, registered and table type, sensitivity, mask (with an
    example), code list; for a curated table also the registered fields it does not hold
    (``restricted``: left out by curate)."""
    ident = find_table(settings, regs, name)
    if ident in REFERENCES:
        ref = REFERENCES[ident]
        rows = reference_table(ident, regs)
        return {
            "table": ident, "kind": "reference", "name": ref.title, "provider": ref.provider, "exists": True,
            "rows": rows.num_rows, "withheld": [],
            "columns": [{"name": f.name, "title": ref.columns.get(f.name, ""), "type": str(f.type),
                         "registered_type": None, "sensitivity": "public", "mask": None, "mask_example": None,
                         "codes": None} for f in rows.schema],
        }
    reg = curated_names(regs)[ident]
    table = _table_name(ident)
    facts = tables.table_facts(settings, table)
    codes, _ = directory_codes(settings)
    titles = column_titles(reg)
    fields = reg.field_map
    present = [(c["name"], c["type"], c.get("doc") or "") for c in facts.columns] if facts else [
        (f.name, None, "") for f in reg.fields if f.sensitivity != "restricted"]
    columns = []
    for col, table_type, doc in present:
        spec = fields.get(col)
        mask = spec.effective_mask if spec is not None and spec.sensitivity == "personal" else None
        columns.append({
            "name": col,
            "title": titles.get(col) or doc,
            "type": table_type,
            "registered_type": spec.type if spec else None,
            "sensitivity": spec.sensitivity if spec else None,
            "mask": mask,
            "mask_example": mask_text(mask, MASK_EXAMPLES[mask]) if mask else None,
            "codes": dict(spec.codes) if spec and spec.codes else None,
        })
    withheld = [{"name": f.name, "title": f.title, "sensitivity": f.sensitivity}
                for f in reg.fields if f.sensitivity == "restricted"]
    return {
        "table": ident, "kind": "base" if reg.is_base else "curated", "name": reg.name,
        "provider": reg.department_name,
        "department": reg.department, "resource": reg.resource,
        "directory_code": codes.get(reg.resource), "directory_prefix": reg.classification.prefix,
        "key": list(reg.key), "update_cycle": reg.update_cycle,
        "exists": facts is not None and facts.snapshot_id is not None,
        "rows": facts.rows if facts else 0,
        "last_updated": _last_update(facts, settings.timezone),
        "columns": columns, "withheld": withheld,
    }
