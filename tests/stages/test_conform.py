"""Conform on hand-made drops: reasons per row, whole-file refusals that block nothing,
and a crash after the table commit that a re-run repairs to exactly the uninterrupted result."""

import io
import zipfile

import pytest
from pyspark.sql import functions as F

from citylake.core import tables
from citylake.core.lake import Lake
from citylake.core.ledger import Ledger
from citylake.core.registry import load_registrations
from citylake.core.spark import use_catalog
from citylake.core.zones import quarantine_dir, standardized_marker
from citylake.stages import ingest
from citylake.stages.conform import ConformError, conform_batch, conform_batches
from citylake.stages.receipts import write_receipts

HEADER = "统一社会信用代码,企业名称,法定代表人,法定代表人身份证号码,注册资本,成立日期,行政区划代码,住所,登记状态"
ROWS = [
    '91110000802100433B,郑州甲公司,张三,11010519491231002X,"5,000(万元人民币)",2021/1/29,410102,郑州市中原区,存续',
    "9114010663015395x2,郑州乙公司,李四,,41.2000(万),2021年1月29日,４１０１０５,郑州市金水区,在业",
    "91110000600037341N,郑州丙公司,王五,,N/A,20210129,410105,地址,存续",  # uscc_check
    "110108000000016,郑州丁公司,赵六,,970万人民币,2021-01-29,410105,地址,存续",  # uscc_regno15
    "91410100MA9XXXXXXX,郑州戊公司,钱七,,1,2021-02-30,410105,地址,存续",  # uscc_masked
    '91110000802100433B,郑州甲公司,张三,11010519491231002X,"5,000(万元人民币)",2021/1/29,410102,郑州市中原区,存续',  # duplicate_row
    "9114010663015395X2,郑州己公司,孙八,,1,2021-01-29,410105,地址,存续",  # duplicate_key
    "91410100MA00000001,,周九,,1,2021-01-29,990000,地址,歇业",  # several reasons
    "91410100MA00000002,郑州庚公司,吴十,,1,2021-01-29,410105,地址,存续,多余,另一格",  # column_count
]


@pytest.fixture
def reg(settings):
    return {r.resource: r for r in load_registrations(settings.resources_dir)}["enterprise_registration"]


def _drop(settings, reg, name, data):
    Lake.from_settings(settings).write_bytes(f"landing/{reg.department}/{reg.resource}/{name}", data)
    [out] = ingest.ingest_resource(settings, reg)
    return out.batch_id


def _zones(spark, settings, reg, batch_id):
    lake = Lake.from_settings(settings)
    use_catalog(spark, settings)
    good = spark.table(tables.standardized_table(reg).spark(settings)).filter(F.col("_batch_id") == batch_id)
    bad = spark.read.parquet(lake.spark_uri(quarantine_dir(reg.resource, batch_id)))
    return (
        {tuple(r) for r in good.drop("_received_at").collect()},
        {(r["_source_row"], tuple(sorted(r["_reasons"]))) for r in bad.collect()},
    )


def test_rows_get_their_reasons_and_nothing_is_lost(spark, settings, reg):
    data = ("\n".join([HEADER, *ROWS]) + "\n").encode("gbk")
    batch = _drop(settings, reg, "企业登记.csv", data)
    result = conform_batch(spark, settings, reg, batch)
    assert result.received == len(ROWS) == result.standardized + result.quarantined
    good, bad = _zones(spark, settings, reg, batch)
    assert {row for row, _ in bad} == {4, 5, 6, 7, 8, 9, 10}
    reasons = dict(bad)
    assert reasons[4] == ("uscc_check:uscc",)
    assert reasons[5] == ("uscc_regno15:uscc",)
    assert reasons[6] == ("bad_date:established_on", "uscc_masked:uscc")
    assert reasons[7] == ("duplicate_row",)
    assert reasons[8] == ("duplicate_key",)
    assert reasons[9] == (
        "division_unknown:division_code",
        "not_in_codelist:status",
        "required:enterprise_name",
        "uscc_check:uscc",
    )
    assert reasons[10] == ("column_count",)
    row3 = next(r for r in good if r[0] == "9114010663015395X2")
    assert row3[7] == "410105", "full-width digits are normalized"  # after the money currency column


@pytest.mark.parametrize(
    "name, data, code",
    [
        ("binary.csv", b"\x00\x01\x02PK\x03\x04" * 50, "binary_file"),
        ("not-a-workbook.csv", b"only,unknown,columns\n1,2,3\n", "no_known_columns"),
    ],
)
def test_unreadable_file_is_rejected_with_a_receipt_and_blocks_nothing(spark, settings, reg, name, data, code):
    bad = _drop(settings, reg, name, data)
    good = _drop(settings, reg, "good.csv", ("\n".join([HEADER, ROWS[0]]) + "\n").encode("gbk"))
    results = {r.batch_id: r for r in conform_batches(spark, settings, reg)}
    assert results[bad].status == "rejected" and results[bad].error["code"] == code
    assert results[good].status == "conformed" and results[good].standardized == 1
    lake = Lake.from_settings(settings)
    assert lake.read_bytes(Ledger.read(lake, reg).batch(bad).manifest["raw_path"]) == data
    receipt = {r["batch_id"]: r for r in write_receipts(settings, reg)}[bad]
    assert receipt["status"] == "rejected" and receipt["error"]["code"] == code
    assert Ledger.read(settings, reg).pending("conform") == []


def test_xlsx_zip_bomb_is_rejected(spark, settings):
    reg = {r.resource: r for r in load_registrations(settings.resources_dir)}["housing_fund_units"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/worksheets/sheet1.xml", b"<row>" * (30 << 20))
    batch = _drop(settings, reg, "units.xlsx", buf.getvalue())
    [result] = conform_batches(spark, settings, reg)
    assert result.batch_id == batch and result.status == "rejected" and result.error["code"] == "zip_bomb"


def test_declared_gbk_but_sent_as_utf8_is_still_read(spark, settings, reg):
    assert reg.source.encoding == "gbk"
    batch = _drop(settings, reg, "utf8.csv", ("\n".join([HEADER, ROWS[0]]) + "\n").encode("utf-8"))
    result = conform_batch(spark, settings, reg, batch)
    assert result.decode["encoding"] == "utf-8" and result.standardized == 1


def test_crash_between_commits_then_rerun_equals_uninterrupted_run(spark, settings, reg, tmp_path, monkeypatch):
    data = ("\n".join([HEADER, *ROWS]) + "\n").encode("gbk")
    batch = _drop(settings, reg, "企业登记.csv", data)
    real_write = Lake.write_json

    def crash_on_the_marker(self, rel, obj):  # die after the table commit and the quarantine commit
        if rel == standardized_marker(reg.resource, batch):
            raise ConformError("simulated crash after the standardized commit")
        return real_write(self, rel, obj)

    with monkeypatch.context() as m:
        m.setattr(Lake, "write_json", crash_on_the_marker)
        with pytest.raises(ConformError, match="simulated crash"):
            conform_batch(spark, settings, reg, batch)
    # Half-committed: the rows are in the table but the batch is not "conformed" for any reader.
    assert Ledger.read(settings, reg).pending("conform") == [batch]
    assert Ledger.read(settings, reg).pending("check") == []
    [rerun] = conform_batches(spark, settings, reg)
    after_crash = _zones(spark, settings, reg, batch)
    good_rows = spark.table(tables.standardized_table(reg).spark(settings)).filter(F.col("_batch_id") == batch)
    assert good_rows.count() == rerun.standardized, "the re-run replaced the batch's rows, it did not add to them"

    clean = settings.__class__.from_env(
        home=tmp_path / "clean", lake_uri=(tmp_path / "clean" / "lake").as_uri(), resources_dir=settings.resources_dir,
        catalog_name="clean",
    )
    clean_batch = _drop(clean, reg, "企业登记.csv", data)
    uninterrupted = conform_batch(spark, clean, reg, clean_batch)
    assert (rerun.standardized, rerun.quarantined, rerun.reasons) == (
        uninterrupted.standardized,
        uninterrupted.quarantined,
        uninterrupted.reasons,
    )
    assert after_crash == _zones(spark, clean, reg, clean_batch)
    lake = Lake.from_settings(settings)
    assert not lake.exists(f"_staging/conform/{reg.resource}/batch_id={batch}"), "no staging leftovers"
