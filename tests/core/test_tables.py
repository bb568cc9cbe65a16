"""The lake's Iceberg tables: one catalog shared by Spark and pyiceberg (SQLite and PostgreSQL),
and schema evolution driven by the registration (docs/zones.md, "Schema evolution")."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from pyspark.sql import functions as F

from citylake.core import tables
from citylake.core.registry import FieldSpec, load_registrations
from citylake.core.spark import use_catalog
from citylake.stages.conform import write_standardized

SCHEMA = "uscc string, enterprise_name string, _batch_id string, _source_row bigint, _received_at timestamp"


@pytest.fixture
def reg(settings):
    full = {r.resource: r for r in load_registrations(settings.resources_dir)}["enterprise_registration"]
    # Two fields are enough to follow the columns.
    return full.model_copy(update={"fields": [f for f in full.fields if f.name in ("uscc", "enterprise_name")]})


def _frame(spark, batch, rows, extra_schema="", extra=()):
    at = dt.datetime(2026, 11, 1, 8)
    data = [(u, n, batch, i + 2, at, *extra) for i, (u, n) in enumerate(rows)]
    return spark.createDataFrame(data, SCHEMA + extra_schema)


def _data_files(spark, settings, table):
    return {r["file_path"] for r in spark.sql(f"SELECT file_path FROM {table.spark(settings)}.files").collect()}


def test_postgres_url_becomes_jdbc_with_credentials(settings):
    s = replace(settings, catalog_uri="postgresql+psycopg2://citylake:p%40ss@db.internal:5433/citylake_catalog")
    db = tables.catalog_database(s)
    assert db.jdbc_url == "jdbc:postgresql://db.internal:5433/citylake_catalog"
    assert (db.user, db.password) == ("citylake", "p@ss")
    conf = tables.spark_catalog_conf(s)
    assert conf["spark.sql.catalog.lake.jdbc.user"] == "citylake"
    assert conf["spark.sql.catalog.lake.jdbc.schema-version"] == "V1"
    with pytest.raises(ValueError, match="use sqlite"):
        tables.catalog_database(replace(settings, catalog_uri="mysql://x/y"))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_spark_and_pyiceberg_share_one_catalog(spark, settings, reg, backend, request):
    if backend == "postgresql":
        settings = replace(settings, catalog_uri=request.getfixturevalue("pg_url"), catalog_name="pgshared")
    write_standardized(spark, settings, reg, "b1", _frame(spark, "b1", [("U1", "甲"), ("U2", "乙")]))
    catalog = tables.python_catalog(settings)
    assert ("standardized", reg.resource) in catalog.list_tables("standardized")
    assert catalog.load_table(("standardized", reg.resource)).scan().to_arrow().num_rows == 2
    # …and a table pyiceberg creates is one Spark sees.
    catalog.create_namespace_if_not_exists("ref")
    made = catalog.create_table(("ref", f"from_python_{backend}"), schema=_frame(spark, "x", []).toArrow().schema)
    assert made.scan().to_arrow().num_rows == 0
    use_catalog(spark, settings)
    names = {r["tableName"] for r in spark.sql(f"SHOW TABLES IN {settings.catalog_name}.ref").collect()}
    assert f"from_python_{backend}" in names
    facts = tables.table_facts(settings, tables.standardized_table(reg))
    assert facts.rows == 2 and facts.snapshot_id is not None


def test_properties_and_column_comments_carry_the_registration(spark, settings, reg):
    write_standardized(spark, settings, reg, "b1", _frame(spark, "b1", [("U1", "甲")]))
    tbl = tables.load_table(settings, tables.standardized_table(reg))
    assert tbl.properties["comment"] == reg.name and tbl.properties["citylake.department"] == "scjg"
    assert tbl.properties["citylake.field.uscc.sensitivity"] == "public"
    docs = {f.name: f.doc for f in tbl.schema().fields}
    assert docs["uscc"] == "统一社会信用代码" and docs["_batch_id"].startswith("批次号")
    assert [f.name for f in tbl.spec().fields] == ["_batch_id"]


def test_a_field_added_to_the_registration_adds_a_column_without_rewriting_data(spark, settings, reg):
    table = tables.standardized_table(reg)
    write_standardized(spark, settings, reg, "b1", _frame(spark, "b1", [("U1", "甲"), ("U2", "乙")]))
    before = _data_files(spark, settings, table)

    added = FieldSpec(name="phone", title="联系电话", type="string")
    grown = reg.model_copy(update={"fields": [*reg.fields, added]})
    write_standardized(spark, settings, grown, "b2",
                       _frame(spark, "b2", [("U3", "丙")], ", phone string", ("13800000000",)))
    tbl = tables.load_table(settings, table)
    assert {f.name: f.doc for f in tbl.schema().fields}["phone"] == "联系电话"
    assert before <= _data_files(spark, settings, table), "b1's files are still the table's files"
    b2 = spark.sql(f"SELECT summary FROM {table.spark(settings)}.snapshots ORDER BY committed_at DESC").first()
    assert "deleted-data-files" not in b2["summary"], "adding b2 rewrote nothing"
    rows = {r["uscc"]: r["phone"] for r in spark.table(table.spark(settings)).collect()}
    assert rows == {"U1": None, "U2": None, "U3": "13800000000"}


def test_a_renamed_field_renames_its_column_and_old_rows_follow(spark, settings, reg):
    table = tables.standardized_table(reg)
    write_standardized(spark, settings, reg, "b1", _frame(spark, "b1", [("U1", "甲")]))
    fields = [f.model_copy(update={"name": "ent_name", "formerly": ["enterprise_name"]})
              if f.name == "enterprise_name" else f for f in reg.fields]
    renamed = reg.model_copy(update={"fields": fields})
    frame = _frame(spark, "b2", [("U2", "乙")]).withColumnRenamed("enterprise_name", "ent_name")
    write_standardized(spark, settings, renamed, "b2", frame)
    cols = [f.name for f in tables.load_table(settings, table).schema().fields]
    assert "ent_name" in cols and "enterprise_name" not in cols
    rows = {r["uscc"]: r["ent_name"] for r in spark.table(table.spark(settings)).collect()}
    assert rows == {"U1": "甲", "U2": "乙"}


def test_a_removed_field_keeps_its_column_and_new_rows_leave_it_empty(spark, settings, reg):
    table = tables.standardized_table(reg)
    write_standardized(spark, settings, reg, "b1", _frame(spark, "b1", [("U1", "甲")]))
    shrunk = reg.model_copy(update={"fields": [f for f in reg.fields if f.name != "enterprise_name"]})
    write_standardized(spark, settings, shrunk, "b2", _frame(spark, "b2", [("U2", "乙")]).drop("enterprise_name"))
    rows = {r["uscc"]: r["enterprise_name"] for r in spark.table(table.spark(settings)).collect()}
    assert rows == {"U1": "甲", "U2": None}


def test_a_type_change_iceberg_cannot_make_stops_with_the_field_named(spark, settings, reg):
    write_standardized(spark, settings, reg, "b1", _frame(spark, "b1", [("U1", "甲")]))
    changed = _frame(spark, "b2", [("U2", "乙")]).withColumn("uscc", F.lit(7))
    with pytest.raises(tables.TableSchemaError, match="column uscc is string in the table"):
        write_standardized(spark, settings, reg, "b2", changed)


def test_widening_is_allowed():
    assert tables._widens("int", "bigint") and tables._widens("decimal(20,4)", "decimal(28,4)")
    assert not tables._widens("decimal(20,4)", "decimal(20,2)") and not tables._widens("string", "date")


def test_live_rows_subtract_deletes():
    assert tables.live_rows({"total-records": "105", "total-position-deletes": "5"}) == 100
    assert tables.live_rows({}) == 0
