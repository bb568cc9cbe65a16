"""Curate: the winner rule, masking, incremental MERGE into the curated Iceberg table (only the
changed rows written, history readable as of an earlier snapshot), rebuild when a merged batch
leaves the promoted set, a crash between the table commit and the pointer, and the export's own
time and full snapshots (keys a newer snapshot lacks are ended; an old one sent late changes
nothing it should not)."""

import datetime as dt
import hashlib
from dataclasses import replace

import pytest
from pyspark.sql import functions as F

from citylake.core import tables, zones
from citylake.core.identifiers import cn_id_check_char, uscc_check_char
from citylake.core.lake import Lake, now_utc
from citylake.core.ledger import QUALITY_OF, Ledger
from citylake.core.masking import keyed_hash
from citylake.core.registry import Registration, load_registrations
from citylake.stages import ingest
from citylake.stages.conform import conform_batches, exported_at, quarantined_key, write_standardized
from citylake.stages.curate import SNAPSHOT_CURRENT, SNAPSHOT_ENDED, curate_resource

SCHEMA = (
    "cn_id string, person_name string, gender string, birth_date date, division_code string, mobile string, "
    "address string, _batch_id string, _source_row bigint, _received_at timestamp"
)


def put_batch(spark, settings, reg, batch_id, received, rows, passed=True, name=None, quarantined=(), births=None):
    """A conformed and checked batch, written as conform and check leave it: rows in the standardized
    table (conform's own writer, with conform's ``_exported_at`` from ``name``, the file's name), the
    commit markers, the quality marker; ``quarantined``: the keys of its quarantined rows."""
    lake = Lake.from_settings(settings)
    raw = zones.raw_batch_dir(reg.department, reg.resource, received[:10], batch_id)
    manifest = {
        "batch_id": batch_id, "received_at": received, "status": "ingested", "source_name": name or f"{batch_id}.json",
        "raw_path": f"{raw}/{batch_id}.json", "sha256": batch_id * 4, "size": 1}
    lake.write_json(zones.manifest_path(raw), manifest)
    at = dt.datetime.fromisoformat(received)
    data = [
        (r[0], r[1], "1", births[i] if births else dt.date(1949, 12, 31), "110105", r[2], "郑州市金水区某路1号",
         batch_id, i + 2, at)
        for i, r in enumerate(rows)
    ]
    good = spark.createDataFrame(data, SCHEMA).select("*", *exported_at(reg, settings, manifest))
    written = write_standardized(spark, settings, reg, batch_id, good)
    committed = now_utc().isoformat()
    lake.write_json(zones.standardized_marker(reg.resource, batch_id), {
        "batch_id": batch_id, "rows": len(rows), "snapshot_id": written["snapshot_id"], "committed_at": committed})
    if quarantined:
        bad = spark.createDataFrame([(k, ["bad_date:birth_date"]) for k in quarantined],
                                    f"{quarantined_key('cn_id')} string, _reasons array<string>")
        bad.write.mode("overwrite").parquet(lake.spark_uri(zones.quarantine_dir(reg.resource, batch_id)))
    lake.write_json(zones.quarantine_marker(reg.resource, batch_id),
                    {"batch_id": batch_id, "rows": len(quarantined)})
    lake.write_json(zones.quality_marker(reg.resource, batch_id),
                    {"batch_id": batch_id, "success": passed, QUALITY_OF: committed})


@pytest.fixture
def population(settings):
    return {r.resource: r for r in load_registrations(settings.resources_dir)}["resident_population"]


def curated(spark, settings, reg, snapshot_id=None):
    name = tables.curated_table(reg).spark(settings)
    df = spark.read.option("versionAsOf", snapshot_id).table(name) if snapshot_id else spark.table(name)
    return {r["person_name"]: r.asDict() for r in df.collect()}


def test_latest_batch_wins_and_personal_fields_are_masked(spark, settings, population):
    put_batch(spark, settings, population, "b1", "2026-11-01T00:00:00+00:00",
              [("11010519491231002X", "张三", "13812345678"), ("360426199101010071", "欧阳娜娜", None)])
    put_batch(spark, settings, population, "b2", "2026-11-02T00:00:00+00:00",
              [("11010519491231002X", "张三丰", "13900001111")])
    put_batch(spark, settings, population, "b3", "2026-11-03T00:00:00+00:00",
              [("360426199101010071", "李四", None)], passed=False)
    result = curate_resource(spark, settings, population)
    assert result.status == "merged" and result.rows == 2 and result.batches == ["b1", "b2"]
    rows = curated(spark, settings, population)
    assert set(rows) == {"张**", "欧阳**"}, "b2's version of 张三 wins; b3 failed its quality gate"
    zhang = rows["张**"]
    assert zhang["cn_id"] == "110105********002X" and zhang["mobile"] == "139****1111"
    assert zhang["address"] == "郑州市金水区****"
    assert len(zhang["_record_key"]) == 64 and zhang["_batch_id"] == "b2" and zhang["_source_row"] == 2
    assert zhang["birth_date"] == "1949", "beside a masked ID the birth date shows its year only"
    assert zhang["_record_key"] == keyed_hash(["11010519491231002X"], settings.record_secret())
    assert zhang["_record_key"] != hashlib.sha256(b"11010519491231002X").hexdigest(), "not a plain digest"
    pointer = Lake.from_settings(settings).read_json(zones.curated_pointer(population.resource))
    assert pointer["table"] == "gaj.resident_population" and pointer["rows"] == 2
    assert {c["name"] for c in pointer["columns"]} >= {"cn_id", "_record_key", "_batch_id"}


def test_a_later_batch_is_merged_and_an_older_row_never_overwrites_a_newer_one(spark, settings, population):
    put_batch(spark, settings, population, "b2", "2026-11-02T00:00:00+00:00", [("11010519491231002X", "新名", None)])
    curate_resource(spark, settings, population)
    # b1 arrives late but was received earlier: it loses against the stored b2 row.
    put_batch(spark, settings, population, "b1", "2026-11-01T00:00:00+00:00",
              [("11010519491231002X", "旧名", None), ("360426199101010071", "李四", None)])
    result = curate_resource(spark, settings, population)
    assert result.status == "merged" and result.batches == ["b1"]
    assert set(curated(spark, settings, population)) == {"新*", "李*"}


def test_rerun_with_same_batches_changes_nothing(spark, settings, population):
    put_batch(spark, settings, population, "b1", "2026-11-01T00:00:00+00:00", [("11010519491231002X", "张三", None)])
    first = curate_resource(spark, settings, population)
    again = curate_resource(spark, settings, population)
    assert again.status == "unchanged" and again.version == first.version and again.rows == first.rows


def test_one_percent_change_writes_about_those_rows_and_time_travel_reads_the_old_values(
    spark, settings, population
):
    ids = [f"110105{1950 + i % 50}0101{i % 1000:03d}X" for i in range(2000)]
    ids = sorted(set(ids))
    put_batch(spark, settings, population, "b1", "2026-11-01T00:00:00+00:00",
              [(cid, f"甲{i}", None) for i, cid in enumerate(ids)])
    first = curate_resource(spark, settings, population)
    assert first.rows == len(ids)
    changed = ids[:: 100]  # 1 % of the keys
    put_batch(spark, settings, population, "b2", "2026-11-02T00:00:00+00:00",
              [(cid, f"乙{i}", None) for i, cid in enumerate(changed)])
    second = curate_resource(spark, settings, population)
    assert second.status == "merged" and second.rows == len(ids)

    name = tables.curated_table(population).spark(settings)
    snap = spark.sql(f"SELECT summary FROM {name}.snapshots WHERE snapshot_id = {second.version}").first()["summary"]
    assert snap["citylake.batches"] == "b2" and snap["citylake.operation"] == "merge", snap
    # Merge-on-read: the new data files hold the changed rows, a delete file marks the old ones.
    assert int(snap["added-records"]) == len(changed), snap
    assert int(snap.get("added-position-deletes", 0)) == len(changed), snap
    assert int(snap["total-records"]) == len(ids) + len(changed)

    now = spark.table(name).filter(F.col("person_name").startswith("乙")).count()
    assert now == len(changed)
    before = spark.read.option("versionAsOf", first.version).table(name)
    assert before.filter(F.col("person_name").startswith("乙")).count() == 0
    assert before.count() == len(ids)
    # pyiceberg reads the same history from the same catalog.
    py = tables.load_table(settings, tables.curated_table(population))
    assert py.scan(snapshot_id=int(first.version)).to_arrow().num_rows == len(ids)
    assert py.scan().to_arrow().num_rows == len(ids)


def test_a_merged_batch_conformed_again_rebuilds_without_its_old_rows(spark, settings, population):
    put_batch(spark, settings, population, "b1", "2026-11-01T00:00:00+00:00", [("11010519491231002X", "张三", None)])
    put_batch(spark, settings, population, "b2", "2026-11-02T00:00:00+00:00",
              [("360426199101010071", "李四", None), ("11010519491231002X", "张三丰", None)])
    curate_resource(spark, settings, population)
    assert set(curated(spark, settings, population)) == {"张**", "李*"}
    # b2 is conformed again and now lacks 张三丰: the stored b2 row must go, b1's row comes back.
    put_batch(spark, settings, population, "b2", "2026-11-02T00:00:00+00:00", [("360426199101010071", "李四", None)])
    ledger = Ledger.read(settings, population)
    assert ledger.curate_rebuild() and ledger.stale_in_curated() == ["b2"]
    result = curate_resource(spark, settings, population)
    assert result.status == "rebuilt" and set(curated(spark, settings, population)) == {"张*", "李*"}
    assert curate_resource(spark, settings, population).status == "unchanged"


def test_a_batch_blocked_after_merging_is_taken_out(spark, settings, population):
    put_batch(spark, settings, population, "b1", "2026-11-01T00:00:00+00:00", [("11010519491231002X", "张三", None)])
    curate_resource(spark, settings, population)
    put_batch(spark, settings, population, "b1", "2026-11-01T00:00:00+00:00",
              [("11010519491231002X", "张三", None)], passed=False)
    result = curate_resource(spark, settings, population)
    assert result.status == "rebuilt" and result.rows == 0
    assert curated(spark, settings, population) == {}


def test_crash_after_the_table_commit_is_recovered_by_merging_again(spark, settings, population, monkeypatch):
    put_batch(spark, settings, population, "b1", "2026-11-01T00:00:00+00:00", [("11010519491231002X", "张三", None)])
    first = curate_resource(spark, settings, population)
    put_batch(spark, settings, population, "b2", "2026-11-02T00:00:00+00:00", [("360426199101010071", "李四", None)])

    real = Lake.write_json

    def crash(self, rel, obj):
        if rel == zones.curated_pointer(population.resource):
            raise RuntimeError("simulated crash before the pointer")
        return real(self, rel, obj)

    with monkeypatch.context() as m:
        m.setattr(Lake, "write_json", crash)
        with pytest.raises(RuntimeError, match="simulated crash"):
            curate_resource(spark, settings, population)
    pointer = Lake.from_settings(settings).read_json(zones.curated_pointer(population.resource))
    assert pointer["version"] == first.version and list(pointer["batches"]) == ["b1"]
    again = curate_resource(spark, settings, population)
    assert again.status == "merged" and again.batches == ["b2"]
    rows = curated(spark, settings, population)
    assert set(rows) == {"张*", "李*"} and again.rows == 2, "the second merge of b2 changed nothing twice"


# ---- the export's own time and full snapshots ------------------------------------------------
A, B, C = "11010519491231002X", "360426199101010071", "440524188001010014"
STAMPED = {"from_name": r"_(?P<date>\d{8})\.json$"}


def variant(reg, **changes):
    """``reg`` with some keys changed, validated as a registration file would be."""
    return Registration.model_validate({**reg.model_dump(), **changes})


@pytest.fixture
def snapshots(population):
    """resident_population sent as full snapshots whose file names state the export date."""
    return variant(population, snapshot="full", export_time=STAMPED)


def table_rows(spark, settings, reg):
    """Every curated row, all columns, by _record_key."""
    return {r["_record_key"]: r.asDict() for r in spark.table(tables.curated_table(reg).spark(settings)).collect()}


def summary_of(spark, settings, reg, version):
    name = tables.curated_table(reg).spark(settings)
    return spark.sql(f"SELECT summary FROM {name}.snapshots WHERE snapshot_id = {version}").first()["summary"]


def test_a_full_snapshot_ends_the_keys_it_no_longer_holds_and_a_later_one_brings_them_back(
    spark, settings, snapshots
):
    reg = snapshots
    put_batch(spark, settings, reg, "s1", "2026-11-01T01:00:00+00:00",
              [(A, "张三", None), (B, "李四", None), (C, "王五", None)], name="s1_20261101.json")
    first = curate_resource(spark, settings, reg)
    assert first.rows == 3 and first.ended == 0

    put_batch(spark, settings, reg, "s2", "2026-11-02T01:00:00+00:00",
              [(A, "张三", None), (B, "李四四", None)], name="s2_20261102.json")
    second = curate_resource(spark, settings, reg)
    assert second.status == "merged" and second.rows == 2 and second.ended == 1
    assert set(curated(spark, settings, reg)) == {"张*", "李**"}, "王五 is not in the newer snapshot"
    summary = summary_of(spark, settings, reg, second.version)
    assert summary[SNAPSHOT_ENDED] == "1" and summary[SNAPSHOT_CURRENT] == "s2", summary
    pointer = Lake.from_settings(settings).read_json(zones.curated_pointer(reg.resource))
    assert pointer["last_run"]["ended"] == 1
    # the export date is Beijing time: midnight of 2 November is 16:00 UTC the day before
    assert pointer["snapshot"]["batch_id"] == "s2"
    assert pointer["snapshot"]["exported_at"] == "2026-11-01T16:00:00+00:00"
    assert "王*" in curated(spark, settings, reg, first.version), "the table as it was still has the key"

    put_batch(spark, settings, reg, "s3", "2026-11-03T01:00:00+00:00",
              [(A, "张三", None), (C, "王五", None)], name="s3_20261103.json")
    third = curate_resource(spark, settings, reg)
    assert third.ended == 1 and set(curated(spark, settings, reg)) == {"张*", "王*"}
    again = curate_resource(spark, settings, reg)
    assert again.status == "unchanged" and again.ended == 0


def test_an_old_snapshot_sent_late_neither_overrides_nor_ends_and_a_rebuild_gives_the_same_table(
    spark, settings, snapshots
):
    reg = snapshots
    put_batch(spark, settings, reg, "s2", "2026-11-02T01:00:00+00:00",
              [(A, "新名", None), (B, "李四", None)], name="s2_20261102.json")
    curate_resource(spark, settings, reg)
    # exported before s2 but received after it, holding an old name for A, no B, and C
    put_batch(spark, settings, reg, "s1", "2026-11-03T01:00:00+00:00",
              [(A, "旧名", None), (C, "王五", None)], name="s1_20261101.json")
    late = curate_resource(spark, settings, reg)
    assert late.status == "merged" and late.batches == ["s1"] and late.ended == 0
    assert set(curated(spark, settings, reg)) == {"新*", "李*"}, "B stays, C does not come in, A keeps s2's name"
    pointer = Lake.from_settings(settings).read_json(zones.curated_pointer(reg.resource))
    assert pointer["snapshot"]["batch_id"] == "s2"
    incremental = table_rows(spark, settings, reg)

    # s1 conformed again (the same rows): the table is rebuilt from s2 and s1 by the same rules
    put_batch(spark, settings, reg, "s1", "2026-11-03T01:00:00+00:00",
              [(A, "旧名", None), (C, "王五", None)], name="s1_20261101.json")
    rebuilt = curate_resource(spark, settings, reg)
    assert rebuilt.status == "rebuilt"
    assert rebuilt.ended == 1, "C: held by a promoted batch, not by the newest snapshot"
    assert table_rows(spark, settings, reg) == incremental
    assert summary_of(spark, settings, reg, rebuilt.version)[SNAPSHOT_CURRENT] == "s2"


def test_a_key_whose_row_the_newest_snapshot_quarantined_is_not_ended(spark, settings, snapshots):
    reg = snapshots
    put_batch(spark, settings, reg, "s1", "2026-11-01T01:00:00+00:00",
              [(A, "张三", None), (B, "李四", None)], name="s1_20261101.json")
    curate_resource(spark, settings, reg)
    put_batch(spark, settings, reg, "s2", "2026-11-02T01:00:00+00:00",
              [(A, "张三丰", None)], name="s2_20261102.json", quarantined=[B])
    result = curate_resource(spark, settings, reg)
    assert result.ended == 0 and set(curated(spark, settings, reg)) == {"张**", "李*"}, "B keeps s1's row"


def test_increments_never_end_a_key_and_the_export_time_decides_before_the_received_time(
    spark, settings, population
):
    reg = variant(population, export_time=STAMPED)
    assert reg.snapshot == "increment"
    put_batch(spark, settings, reg, "b2", "2026-11-02T00:00:00+00:00", [(A, "新名", None)], name="b2_20261102.json")
    curate_resource(spark, settings, reg)
    put_batch(spark, settings, reg, "b1", "2026-11-03T00:00:00+00:00",
              [(A, "旧名", None), (B, "李四", None)], name="b1_20261101.json")
    put_batch(spark, settings, reg, "b3", "2026-11-04T00:00:00+00:00", [(C, "王五", None)], name="b3_20261103.json")
    result = curate_resource(spark, settings, reg)
    assert result.ended == 0 and set(curated(spark, settings, reg)) == {"新*", "李*", "王*"}
    # a file whose name states no export date loses to every row that has one, received later or not
    put_batch(spark, settings, reg, "b4", "2026-11-05T00:00:00+00:00", [(A, "无名", None)], name="b4.json")
    curate_resource(spark, settings, reg)
    rows = curated(spark, settings, reg)
    assert set(rows) == {"新*", "李*", "王*"}
    at = spark.table(tables.curated_table(reg).spark(settings)).filter(F.col("person_name") == "新*")
    assert at.select(F.date_format("_exported_at", "yyyy-MM-dd HH:mm")).first()[0] == "2026-11-02 00:00"
    incremental = table_rows(spark, settings, reg)
    put_batch(spark, settings, reg, "b4", "2026-11-05T00:00:00+00:00", [(A, "无名", None)], name="b4.json")
    assert curate_resource(spark, settings, reg).status == "rebuilt"
    assert table_rows(spark, settings, reg) == incremental


# ---- through ingest and conform -----------------------------------------------------------------
HEADER = "统一社会信用代码,企业名称,法定代表人,法定代表人身份证号码,注册资本,成立日期,行政区划代码,住所,登记状态"
X = "91110000802100433B"
Y = "91410100MA00000003"[:17] + uscc_check_char("91410100MA00000003"[:17])
Z = "91410100MA00000005"[:17] + uscc_check_char("91410100MA00000005"[:17])


def _row(uscc, name, established="2021-01-29"):
    return f"{uscc},{name},张三,,100,{established},410105,郑州市金水区,存续"


def drop(spark, settings, reg, name, lines):
    """A file dropped, ingested, conformed and passed (check's marker, as test_curate writes it)."""
    lake = Lake.from_settings(settings)
    lake.write_bytes(f"landing/{reg.department}/{reg.resource}/{name}", ("\n".join(lines) + "\n").encode("gbk"))
    [out] = [o for o in ingest.ingest_resource(settings, reg) if o.status == "ingested"]
    [result] = conform_batches(spark, settings, reg, [out.batch_id])
    assert result.status == "conformed", result
    marker = lake.read_json(zones.standardized_marker(reg.resource, out.batch_id))
    lake.write_json(zones.quality_marker(reg.resource, out.batch_id),
                    {"batch_id": out.batch_id, "success": True, QUALITY_OF: marker["committed_at"]})
    return result


def by_uscc(spark, settings, reg):
    df = spark.table(tables.curated_table(reg).spark(settings))
    return {r["uscc"]: r.asDict() for r in df.withColumn("at", F.date_format("_exported_at", "yyyy-MM-dd HH:mm")).collect()}


def test_export_time_from_the_file_name_through_conform_and_a_quarantined_key_stays(spark, settings):
    ent = {r.resource: r for r in load_registrations(settings.resources_dir)}["enterprise_registration"]
    reg = variant(ent, snapshot="full", export_time={"from_name": r"_(?P<date>\d{8})\.csv$"})
    drop(spark, settings, reg, "企业登记_20261103.csv", [HEADER, _row(X, "郑州甲公司"), _row(Y, "郑州乙公司")])
    # received later, exported earlier: neither its names nor its extra key Z count
    drop(spark, settings, reg, "企业登记_20261101.csv",
         [HEADER, _row(X, "郑州旧甲公司"), _row(Y, "郑州旧乙公司"), _row(Z, "郑州丙公司")])
    first = curate_resource(spark, settings, reg)
    rows = by_uscc(spark, settings, reg)
    assert {u: r["enterprise_name"] for u, r in rows.items()} == {X: "郑州甲公司", Y: "郑州乙公司"}
    assert rows[X]["at"] == "2026-11-03 00:00" and first.ended == 0
    # the newest snapshot sends X with a bad date: quarantined, X is still in the department's table
    result = drop(spark, settings, reg, "企业登记_20261104.csv",
                  [HEADER, _row(X, "郑州新甲公司", "2021-02-30"), _row(Y, "郑州新乙公司")])
    assert result.quarantined == 1
    second = curate_resource(spark, settings, reg)
    rows = by_uscc(spark, settings, reg)
    assert {u: r["enterprise_name"] for u, r in rows.items()} == {X: "郑州甲公司", Y: "郑州新乙公司"}
    assert second.ended == 0


def test_export_time_from_a_field_through_conform(spark, settings):
    ent = {r.resource: r for r in load_registrations(settings.resources_dir)}["enterprise_registration"]
    raw = ent.model_dump()
    raw["fields"].append({"name": "exported_on", "title": "导出日期", "type": "date", "sensitivity": "public"})
    reg = Registration.model_validate({**raw, "export_time": {"field": "exported_on"}})
    drop(spark, settings, reg, "企业登记_a.csv", [HEADER + ",导出日期", _row(X, "郑州甲公司") + ",2026-11-02"])
    drop(spark, settings, reg, "企业登记_b.csv",
         [HEADER + ",导出日期", _row(X, "郑州旧甲公司") + ",2026-11-01", _row(Y, "郑州乙公司") + ","])
    curate_resource(spark, settings, reg)
    rows = by_uscc(spark, settings, reg)
    assert rows[X]["enterprise_name"] == "郑州甲公司" and rows[X]["at"] == "2026-11-02 00:00"
    assert rows[Y]["_exported_at"] is None, "a row without the field has no export time"


# ---- privacy: what a reader holding the whole curated row can work out ---------------------------
def _completions(masked_id: str, row: dict) -> list[str]:
    """Every citizen ID the masked one could be, given what the other columns of its row show: the
    kept head and tail, any birth date or year the row gives, and the check character."""
    head, tail = masked_id[:6], masked_id[-4:]
    shown = str(row.get("birth_date") or "")
    years = [int(shown[:4])] if shown[:4].isdigit() else range(1900, 2027)
    out = []
    for year in years:
        day = dt.date(year, 1, 1)
        while day.year == year:
            digits = day.strftime("%Y%m%d")
            if len(shown) < 10 or shown == day.isoformat():  # a full date shown pins the day
                first17 = head + digits + tail[:3]
                if cn_id_check_char(first17) == tail[3]:
                    out.append(first17 + tail[3])
            day += dt.timedelta(days=1)
    return out


def test_no_curated_row_gives_its_masked_id_back(spark, settings, population):
    first17 = ["11010519491231002", "36042619910101007", "41010219800307001", "44030420000229001"]
    ids = [f + cn_id_check_char(f) for f in first17]
    put_batch(spark, settings, population, "b1", "2026-11-01T00:00:00+00:00", [(i, "张三", None) for i in ids],
              births=[dt.date(int(i[6:10]), int(i[10:12]), int(i[12:14])) for i in ids])
    curate_resource(spark, settings, population)
    rows = [r.asDict() for r in spark.table(tables.curated_table(population).spark(settings)).collect()]
    assert sorted(r["birth_date"] for r in rows) == ["1949", "1980", "1991", "2000"]
    for row in rows:
        candidates = _completions(row["cn_id"], row)
        assert len(candidates) >= 10, (row["cn_id"], row["birth_date"], len(candidates))
        text = " ".join(str(v) for k, v in row.items() if k != "cn_id")
        assert not any(c in text for c in candidates), "no column shows a whole ID"
    # the check itself: had the full date stayed, the ID would come back whole
    full = {**rows[0], "birth_date": "1949-12-31"}
    assert _completions("110105********002X", full) == ["11010519491231002X"]


def test_a_new_secret_rekeys_the_table(spark, settings, population):
    put_batch(spark, settings, population, "b1", "2026-11-01T00:00:00+00:00",
              [("11010519491231002X", "张三", None), ("360426199101010071", "李四", None)])
    first = curate_resource(spark, settings, population)
    keys = {r["_record_key"] for r in spark.table(tables.curated_table(population).spark(settings)).collect()}
    assert curate_resource(spark, settings, population).status == "unchanged"
    rotated = replace(settings, record_key_secret="a rotated secret")
    again = curate_resource(spark, rotated, population)
    assert (first.status, again.status, again.rows) == ("merged", "rebuilt", 2), "rebuilt, not stored twice"
    rekeyed = {r["_record_key"] for r in spark.table(tables.curated_table(population).spark(settings)).collect()}
    assert rekeyed == {keyed_hash([i], b"a rotated secret") for i in ("11010519491231002X", "360426199101010071")}
    assert not rekeyed & keys
    assert curate_resource(spark, rotated, population).status == "unchanged"
