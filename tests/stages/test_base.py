"""The base libraries (citylake.stages.base) on generated data with planted overlaps and conflicts
(devtools/citylake_dev/generate/overlaps.py): the legal-entity library has one row per distinct
USCC of its sources, and its conflicts table lists exactly the planted conflicts."""

from __future__ import annotations

import hashlib

import pytest
from pyspark.sql import functions as F

from citylake.core import tables
from citylake.core.masking import keyed_hash
from citylake.core.registry import load_base_libraries, load_registrations
from citylake.stages.base import build_library
from citylake.stages.chain import libraries_fed_by, run_base, run_resource
from citylake_dev.generate import generate
from citylake_dev.generate.overlaps import expected
from citylake_dev.testing import local_settings

SOURCES = ("enterprise_registration", "housing_fund_units", "resident_population", "real_estate_registration")


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory):
    home = tmp_path_factory.mktemp("base")
    settings = local_settings(home)
    regs = [r for r in load_registrations(settings.resources_dir) if r.resource in SOURCES]
    truth = generate(settings, regs, rows=400, seed=11)
    for reg in regs:
        run_resource(spark, settings, reg)
    libs = {lib.name: lib for lib in load_base_libraries(settings.resources_dir)}
    runs = run_base(spark, settings, libraries_fed_by(list(libs.values()), regs))
    return settings, libs, truth, runs


def _curated_usccs(spark, settings, libs) -> dict[str, set[str]]:
    out = {}
    for src in libs["legal_entity"].sources:
        df = spark.table(tables.curated_table(src.reg).spark(settings))
        out[src.reg.resource] = {r[0] for r in df.select(src.key).collect()}
    return out


def test_one_row_per_distinct_uscc_and_the_planted_overlaps(spark, built):
    settings, libs, truth, runs = built
    assert [r.result.status for r in runs] == ["built", "built"]
    base = spark.table(tables.base_table(libs["legal_entity"].reg).spark(settings))
    rows = base.select("uscc", "_source_count", "_sources").collect()
    usccs = [r["uscc"] for r in rows]
    per_source = _curated_usccs(spark, settings, libs)
    assert len(usccs) == len(set(usccs)) == len(set().union(*per_source.values()))
    overlaps, _ = expected(truth)
    assert overlaps, "the generator planted no overlap"
    found = {r["uscc"] for r in rows if r["_source_count"] > 1}
    assert found == overlaps
    assert found == per_source["enterprise_registration"] & per_source["housing_fund_units"]
    one = next(r for r in rows if r["uscc"] in overlaps)
    assert [s["resource"] for s in one["_sources"]] == ["enterprise_registration", "housing_fund_units"]
    assert all(s["updated_at"] is not None and s["records"] == 1 for s in one["_sources"])


def test_conflicts_are_exactly_the_planted_ones(spark, built):
    settings, libs, truth, _ = built
    _, planted = expected(truth)
    assert {a for _, a, _, _ in planted} == {"name", "address"}, "plant both kinds"
    table = tables.base_conflicts_table(libs["legal_entity"].reg).spark(settings)
    rows = spark.table(table).collect()
    listed = {(r["uscc"], r["attribute"], r["source_a"], r["source_b"]) for r in rows}
    assert listed == planted
    assert len(rows) == len(listed)
    assert all(r["value_a"] != r["value_b"] and r["updated_a"] and r["updated_b"] for r in rows)


def test_best_value_rule_market_registration_decides_the_name(spark, built):
    settings, libs, _, _ = built
    lib = libs["legal_entity"]
    base = spark.table(tables.base_table(lib.reg).spark(settings))
    ent = spark.table(tables.curated_table(lib.sources[0].reg).spark(settings)).select(
        "uscc", F.col("enterprise_name").alias("ent_name"), F.col("status").alias("ent_status"))
    joined = base.join(ent, "uscc")
    assert joined.count() == ent.count()
    assert joined.filter(~F.col("name").eqNullSafe(F.col("ent_name"))).count() == 0
    assert joined.filter(~F.col("status").eqNullSafe(F.col("ent_status"))).count() == 0
    # a unit only the fund centre knows takes its name from there
    gjj = spark.table(tables.curated_table(lib.sources[1].reg).spark(settings)).select(
        "uscc", F.col("unit_name").alias("gjj_name"))
    only = base.join(gjj, "uscc").filter(F.col("_source_count") == 1)
    assert only.count() > 0
    assert only.filter(F.col("name") != F.col("gjj_name")).count() == 0


def test_population_is_joined_on_a_keyed_hash_and_stays_masked(spark, built):
    settings, libs, _, _ = built
    lib = libs["population"]
    base = spark.table(tables.base_table(lib.reg).spark(settings))
    rows = base.collect()
    assert rows
    gaj = spark.table("lake.gaj.resident_population").select("_record_key", "cn_id").collect()
    # the library's key is the household register's _record_key: HMAC-SHA256 of the ID, never a digest
    assert {r["_record_key"] for r in gaj} <= {r["_record_key"] for r in rows}
    for r in rows:
        assert "*" in r["cn_id"], "a citizen ID is stored masked"
        assert r["birth_year"] is None or len(r["birth_year"]) == 4
        assert r["person_name"] is None or "*" in r["person_name"] or len(r["person_name"]) == 1
    plain = {hashlib.sha256(r["cn_id"].encode()).hexdigest() for r in gaj}
    assert not plain & {r["_record_key"] for r in rows}
    # the join key is reproducible only with the secret
    secret = settings.record_secret()
    std = spark.table("lake.standardized.resident_population").select("cn_id").limit(5).collect()
    keys = {r["_record_key"] for r in rows}
    assert all(keyed_hash([s["cn_id"]], secret) in keys for s in std) or not std
    assert "_population_key" not in base.columns


def test_nothing_changed_builds_nothing_and_a_rebuild_writes_no_row(spark, built):
    settings, libs, _, _ = built
    lib = libs["legal_entity"]
    again = build_library(spark, settings, lib)
    assert again.status == "unchanged"
    rows = again.rows
    forced = build_library(spark, settings, lib, force=True)
    assert (forced.status, forced.rows) == ("built", rows)
    # the MERGE matched every row unchanged: its snapshot, if any, added and deleted nothing
    snap = spark.sql(f"SELECT summary FROM {tables.base_table(lib.reg).spark(settings)}.snapshots "
                     f"ORDER BY committed_at DESC LIMIT 1").collect()[0]["summary"]
    assert int(snap.get("added-records", 0)) == 0 and int(snap.get("deleted-records", 0)) == 0


def test_directory_entry_query_and_tables_agree(spark, built):
    from citylake.stages.publish.publish import publish
    from citylake.stages.query import describe, query, table_list

    settings, libs, _, _ = built
    result = publish(settings)
    entries = {e["resource"]: e for e in result.entries}
    lib = libs["legal_entity"]
    entry = entries["legal_entity"]
    assert entry["classification"]["category_name"] == "基础信息资源"
    assert entry["classification"]["item_name"] == "法人单位"
    assert entry["related_codes"] == [result.codes[s.reg.resource] for s in lib.sources]
    assert entries["population"]["classification"]["item_name"] == "人口"
    rows = result.facts["legal_entity"].row_count
    assert rows and rows == spark.table(tables.base_table(lib.reg).spark(settings)).count()

    regs = load_registrations(settings.resources_dir) + [lib.reg for lib in libs.values()]
    sql = "SELECT count(*) AS n FROM base.legal_entity"
    assert query(settings, sql, regs).table.column("n")[0].as_py() == rows
    assert query(settings, sql, regs, engine="spark", spark=spark).table.column("n")[0].as_py() == rows
    n = query(settings, "SELECT count(*) AS n FROM base.legal_entity_conflicts", regs).table.column("n")[0]
    assert n.as_py() == len(expected(built[2])[1])
    listed = {t["table"]: t for t in table_list(settings, regs)[0]}
    assert listed["base.legal_entity"]["directory_code"] == result.codes["legal_entity"]
    assert listed["base.legal_entity"]["rows"] == rows and listed["base.legal_entity"]["kind"] == "base"
    assert listed["base.population_conflicts"]["directory_code"] == result.codes["population"]
    cols = {c["name"]: c for c in describe(settings, regs, "base.population")["columns"]}
    assert cols["cn_id"]["mask"] == "cn_id" and cols["birth_year"]["mask"] == "year"
    assert cols["_sources"]["title"]
