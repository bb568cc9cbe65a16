"""citylake.stages.lineage: what each step reads and writes, named after the OpenLineage spec,
and the directory's "comes from, builds" drawn from the same jobs."""

from __future__ import annotations

import dataclasses

import pytest

from citylake.core import tables
from citylake.core.registry import load_registrations
from citylake.stages import lineage
from citylake.stages.chain import steps


@pytest.fixture
def regs(settings):
    return {r.resource: r for r in load_registrations(settings.resources_dir)}


def _names(refs):
    return [(d.zone, d.label) for d in refs]


def test_every_step_of_every_chain_is_described(settings, regs):
    for reg in regs.values():
        for step in (*steps(reg), "maintain"):
            ins, outs = lineage.datasets(step, reg, settings)
            assert ins or outs, (reg.resource, step)
    with pytest.raises(ValueError, match="unknown step 'publish'"):
        lineage.datasets("publish", next(iter(regs.values())), settings)


def test_a_file_resource_chain_names_its_zones_and_tables(settings, regs):
    reg = regs["enterprise_registration"]
    lake = settings.lake_uri.removeprefix("file://")
    ins, outs = lineage.datasets("ingest", reg, settings)
    assert [(d.namespace, d.name) for d in ins] == [("file", f"{lake}/landing/scjg/enterprise_registration")]
    assert [(d.namespace, d.name) for d in outs] == [("file", f"{lake}/raw/scjg/enterprise_registration")]
    ins, outs = lineage.datasets("conform", reg, settings)
    assert _names(ins) == [("raw", "raw/scjg/enterprise_registration")]
    assert _names(outs) == [("standardized", "standardized.enterprise_registration"),
                            ("quarantine", "quarantine/enterprise_registration")]
    # a table is named by its location in the warehouse, and carries its catalog name
    std = outs[0]
    assert std.name == f"{lake}/warehouse/standardized/enterprise_registration"
    assert std.table == tables.standardized_table(reg).ident
    ins, outs = lineage.datasets("check", reg, settings)
    assert _names(ins) == [("standardized", "standardized.enterprise_registration")]
    assert _names(outs) == [("quality", "quality/enterprise_registration")]
    ins, outs = lineage.datasets("curate", reg, settings)
    assert _names(outs) == [("curated", "scjg.enterprise_registration")]
    assert ("quality", "quality/enterprise_registration") in _names(ins)
    assert {d.owner for d in ins + outs} == {"enterprise_registration"}


def test_a_sql_source_is_named_by_its_database_without_credentials(settings, regs, monkeypatch):
    reg = regs["social_insurance_enrollment"]
    conn = f"AIRFLOW_CONN_{reg.source.conn_id.upper()}"
    monkeypatch.setenv(conn, "postgresql://reader:s3cret@rsj-db.internal:5433/sibiz")
    [src], [raw] = lineage.datasets("extract", reg, settings)
    assert (src.namespace, src.name) == ("postgres://rsj-db.internal:5433", f"sibiz.public.{reg.source.table}")
    assert "s3cret" not in repr(src) and "reader" not in repr(src)
    assert raw.zone == "raw"
    monkeypatch.setenv(conn, "mysql+pymysql://u:p@db:3306/si")
    assert lineage.datasets("extract", reg, settings)[0][0].namespace == "mysql://db:3306"
    monkeypatch.setenv(conn, "sqlite:////srv/rsj.db")
    assert lineage.datasets("extract", reg, settings)[0][0].key == ("sqlite:////srv/rsj.db", reg.source.table)
    monkeypatch.delenv(conn)  # a secrets backend: named by the connection id
    assert lineage.datasets("extract", reg, settings)[0][0].namespace == f"airflow-connection://{reg.source.conn_id}"
    # its ingest takes only re-sent files: no source of its own
    assert lineage.datasets("ingest", reg, settings)[0] == []


def test_an_s3_lake_names_zones_by_bucket_and_key(settings, regs):
    s3 = dataclasses.replace(settings, lake_uri="s3a://lake")
    reg = regs["enterprise_registration"]
    [raw], [std, _q] = lineage.datasets("conform", reg, s3)
    assert raw.key == ("s3://lake", "raw/scjg/enterprise_registration")
    assert std.key == ("s3://lake", "warehouse/standardized/enterprise_registration")


def test_the_page_view_follows_the_chain_from_the_source_to_the_curated_table(settings, regs):
    views = lineage.page_lineage(settings, list(regs.values()), extra=[])
    assert set(views) == set(regs)
    view = views["enterprise_registration"]
    assert [j["step"] for j in view["comes_from"]] == ["ingest", "conform", "check", "curate"]
    assert view["comes_from"][0]["inputs"][0]["label"] == "landing/scjg/enterprise_registration"
    assert view["comes_from"][-1]["outputs"][0]["label"] == "scjg.enterprise_registration"
    assert view["builds"] == []
    sql = views["social_insurance_enrollment"]
    assert [j["step"] for j in sql["comes_from"]] == ["extract", "ingest", "conform", "check", "curate"]
    assert sql["comes_from"][0]["inputs"][0]["zone"] == "source"


def test_a_build_declares_its_inputs_and_outputs_once_and_both_pages_show_it(settings, regs, declare_builds):
    # A module that builds tables lists one function in BUILD_SOURCES; here, one written for the test.
    declare_builds(
        "citylake_test_builds",
        "def lineage_builds(settings, regs):\n"
        "    srcs = sorted(f'{r.department}.{r.resource}' for r in regs\n"
        "                  if r.resource in ('enterprise_registration', 'housing_fund_units'))\n"
        "    return [Build('base_legal_entity', tuple(srcs), ('base.legal_entity', 'base.legal_entity_conflicts'),\n"
        "                  owner='legal_entity')]\n")
    all_regs = list(regs.values())
    [build] = lineage.builds(settings, all_regs)
    ins, outs = lineage.build_datasets(build, settings)
    assert _names(outs) == [("base", "base.legal_entity"), ("base", "base.legal_entity_conflicts")]
    assert {d.label for d in ins} == {"scjg.enterprise_registration", "gjj.housing_fund_units"}

    views = lineage.page_lineage(settings, all_regs)
    base = views["legal_entity"]
    assert [j["step"] for j in base["comes_from"]] == ["base_legal_entity"]
    sources = base["comes_from"][0]["inputs"]
    assert {(d["label"], d["owner"], d["other"]) for d in sources} == {
        ("scjg.enterprise_registration", "enterprise_registration", True),
        ("gjj.housing_fund_units", "housing_fund_units", True)}
    [built] = views["enterprise_registration"]["builds"]
    assert built["owner"] == "legal_entity"
    assert [d["label"] for d in built["outputs"]] == ["base.legal_entity", "base.legal_entity_conflicts"]
    assert views["resident_population"]["builds"] == []
    # the publication reads the built tables too
    pub_in, [directory] = lineage.publication_datasets(settings, all_regs)
    assert "base.legal_entity" in {d.label for d in pub_in} and directory.zone == "directory"


def test_each_base_library_is_a_build_of_the_curated_tables_marking_it(settings, regs):
    from citylake.core.registry import directory_registrations, load_base_libraries

    libs = load_base_libraries(settings.resources_dir)
    assert libs, "no base library registered"
    builds = {b.owner: b for b in lineage.builds(settings, list(regs.values()))}
    assert set(builds) == {lib.name for lib in libs}
    for lib in libs:
        assert set(builds[lib.name].inputs) == {tables.curated_table(s.reg).ident for s in lib.sources}
        assert builds[lib.name].outputs == (f"base.{lib.name}", f"base.{lib.name}_conflicts")
    # a base library's own registration (what its Airflow task loads) answers with its build
    everything = directory_registrations(settings.resources_dir)
    legal = next(r for r in everything if r.resource == "legal_entity")
    ins, outs = lineage.datasets("base", legal, settings)
    assert {d.label for d in ins} == {"scjg.enterprise_registration", "gjj.housing_fund_units"}
    assert [d.label for d in outs] == ["base.legal_entity", "base.legal_entity_conflicts"]
    # the directory: the library comes from its sources' tables, which say it is built from them
    views = lineage.page_lineage(settings, everything)
    [step] = views["legal_entity"]["comes_from"]
    assert {(d["label"], d["owner"]) for d in step["inputs"]} == {
        ("scjg.enterprise_registration", "enterprise_registration"), ("gjj.housing_fund_units", "housing_fund_units")}
    for source in ("enterprise_registration", "housing_fund_units"):
        assert [b["owner"] for b in views[source]["builds"]] == ["legal_entity"], source
    assert [b["owner"] for b in views["resident_population"]["builds"]] == ["population"]
    assert views["air_quality_hourly"]["builds"] == []
