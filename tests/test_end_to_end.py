"""The whole chain on a small generated set: every generated defect is quarantined with the
reason the generator recorded, nothing is lost, every curated resource is an Iceberg table that
Spark, pyiceberg and DuckDB count alike and as the directory says, the demo's broken export is
blocked in status, its receipt and its quality page, and a second run changes nothing."""

import json

import pytest
from pyspark.sql import functions as F

from citylake.core import tables, zones
from citylake.core.lake import Lake
from citylake.core.ledger import Ledger
from citylake.core.registry import load_registrations
from citylake.core.spark import use_catalog
from citylake.core.zones import quarantine_dir
from citylake.drivers.cli import main
from citylake.stages.chain import run_resource
from citylake.stages.publish.publish import publish
from citylake_dev.demo import BLOCKED_DEMO_RESOURCE, blocked_drop
from citylake_dev.generate import generate
from citylake_dev.testing import local_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chain(spark, tmp_path_factory):

    home = tmp_path_factory.mktemp("e2e")
    settings = local_settings(home)
    regs = [r for r in load_registrations(settings.resources_dir) if r.source.kind == "file"]
    truth = generate(settings, regs, rows=300, seed=7)
    # the demo's broken export, dropped beside the plain file: its batch must be blocked
    truth["files"].update(blocked_drop(settings, regs, rows=300, seed=7)["files"])
    first = {r.resource: run_resource(spark, settings, r) for r in regs}
    return settings, regs, truth, first


def test_every_generated_file_is_accounted_for_row_by_row(chain):
    settings, regs, truth, _ = chain
    lake = Lake.from_settings(settings)
    by_sha = {}
    for reg in regs:
        for m in Ledger.read(lake, reg).manifests():
            by_sha[m["sha256"]] = (reg, m)
    assert len(truth["files"]) >= len(regs)
    for path, expected in truth["files"].items():
        reg, m = by_sha[expected["sha256"]]
        std = lake.read_json(zones.standardized_marker(reg.resource, m["batch_id"]))
        qua = lake.read_json(zones.quarantine_marker(reg.resource, m["batch_id"]))
        assert std["rows"] + qua["rows"] == expected["rows"], path
        assert qua["reasons"] == expected["bad"], path
        assert qua["rows"] == sum(expected["bad"].values()), f"{path}: one reason per bad row"


def test_quarantine_keeps_original_values(spark, chain):
    settings, regs, _, _ = chain
    lake = Lake.from_settings(settings)
    reg = next(r for r in regs if r.resource == "enterprise_registration")
    [m] = Ledger.read(lake, reg).manifests()
    bad = spark.read.parquet(lake.spark_uri(quarantine_dir(reg.resource, m["batch_id"])))
    assert {"uscc", "enterprise_name", "_reasons", "_raw_line", "_source_row"} <= set(bad.columns)
    sample = bad.filter("array_contains(_reasons, 'uscc_check:uscc')").first()
    assert sample is not None and sample["uscc"], "the invalid code is kept as it was sent"


def test_curated_receipts_and_standardized_types(spark, chain):
    settings, regs, _, first = chain
    lake = Lake.from_settings(settings)
    for reg in regs:
        assert first[reg.resource].result("curate").status == "merged", reg.resource
        assert lake.read_json(zones.curated_pointer(reg.resource))["rows"] > 0
        receipts = [f for f in lake.list_files(f"receipts/{reg.department}/{reg.resource}") if f.name.endswith(".txt")]
        assert receipts, reg.resource
    ent = next(r for r in regs if r.resource == "enterprise_registration")
    [m] = Ledger.read(lake, ent).manifests()
    use_catalog(spark, settings)
    std = spark.table(tables.standardized_table(ent).spark(settings)).filter(F.col("_batch_id") == m["batch_id"])
    types = dict(std.dtypes)
    assert types["established_on"] == "date" and types["registered_capital"].startswith("decimal")
    assert std.filter("uscc rlike '[a-z]'").count() == 0, "check letters are upper-cased"


def test_every_engine_counts_each_curated_table_as_the_directory_does(spark, chain):
    settings, regs, _, _ = chain
    result = publish(settings)
    use_catalog(spark, settings)
    catalog = tables.python_catalog(settings)
    duck = tables.duckdb_connection()
    for reg in regs:
        table = tables.curated_table(reg)
        assert table.tuple in catalog.list_tables(reg.department), reg.resource
        by_spark = spark.sql(f"SELECT count(*) AS n FROM {table.spark(settings)}").first()["n"]
        by_pyiceberg = catalog.load_table(table.tuple).scan().to_arrow().num_rows
        by_duckdb = duck.sql(f"SELECT count(*) FROM {tables.duckdb_source(settings, table)}").fetchone()[0]
        directory = result.facts[reg.resource].row_count
        assert by_spark == by_pyiceberg == by_duckdb == directory > 0, (reg.resource, by_spark, by_pyiceberg,
                                                                        by_duckdb, directory)
        props = catalog.load_table(table.tuple).properties
        assert props["citylake.department"] == reg.department and props["comment"] == reg.name
        assert props[tables.DIRECTORY_CODE] == result.codes[reg.resource]


def test_the_broken_export_is_blocked_in_status_receipt_and_quality_page(chain, monkeypatch, capsys):
    settings, regs, _, first = chain
    reg = next(r for r in regs if r.resource == BLOCKED_DEMO_RESOURCE)
    lake = Lake.from_settings(settings)
    ledger = Ledger.read(lake, reg)
    assert [b.status for b in ledger.batches] == ["curated", "blocked"], "the plain file passes, the broken one not"
    blocked = ledger.batches[-1]
    assert blocked.manifest["source_name"].endswith("_2.jsonl")
    assert first[reg.resource].result("curate").status == "merged"

    for var, value in settings.as_env().items():
        monkeypatch.setenv(var, value)
    assert main(["status", "--resource", reg.resource, "--json"]) == 0
    [facts] = json.loads(capsys.readouterr().out)
    [shown] = [b for b in facts["batches"] if b["batch_id"] == blocked.batch_id]
    assert shown["status"] == "blocked" and "隔离率" in shown["why"]

    receipt = lake.read_json(zones.receipt_base(reg.department, reg.resource, blocked.batch_id) + ".json")
    assert receipt["status"] == "blocked" and receipt["action_required"]
    [gate] = receipt["quality"]["blocking_failures"]
    assert gate["expectation"] == "citylake_quarantine_rate_at_most"
    page_url = receipt["quality"]["page"]
    assert page_url == settings.directory_link(f"site/q/{reg.resource}.html#b-{blocked.batch_id}")
    text = lake.read_bytes(zones.receipt_base(reg.department, reg.resource, blocked.batch_id) + ".txt").decode()
    assert "阻断项：" in text and "实际 " in text and f"质量报告：{page_url}" in text

    publish(settings)
    page = (settings.directory_dir / "site" / "q" / f"{reg.resource}.html").read_text(encoding="utf-8")
    assert f'id="b-{blocked.batch_id}"' in page and f'id="blocked-{blocked.batch_id}"' in page
    assert "公民身份号码" in page, "quarantine reasons and rules are named by the field's title"
    sent = quarantined_ids(lake, reg, blocked.batch_id)
    assert sent and not any(v in page for v in sent), "no citizen ID on the page unmasked"
    assert blocked.rows_quarantined > blocked.rows_accepted, "most rows of the broken export are quarantined"


def quarantined_ids(lake: Lake, reg, batch_id: str) -> list[str]:
    """The citizen-ID-like values (15 or 18 characters) sent in a batch's quarantined rows."""
    import io
    import re

    import pyarrow.parquet as pq

    found = []
    for f in lake.list_files(quarantine_dir(reg.resource, batch_id)):
        if f.name.endswith(".parquet"):
            table = pq.read_table(io.BytesIO(lake.read_bytes(f.path)), columns=["cn_id"])
            found += [v.strip() for v in table.column("cn_id").to_pylist()
                      if v and re.fullmatch(r"\d{15}|\d{17}[\dXx]", v.strip())]
    return found


def test_second_run_on_the_same_drops_changes_nothing(spark, chain):
    settings, regs, _, first = chain
    generate(settings, regs, rows=300, seed=7)  # the same bytes dropped again
    for reg in regs:
        again = run_resource(spark, settings, reg)
        ingested = again.result("ingest")
        assert ingested and all(o.status == "duplicate" for o in ingested), reg.resource
        assert again.result("conform") == []
        assert again.result("curate").status == "unchanged"
        assert again.result("curate").rows == first[reg.resource].result("curate").rows
