"""Ingest: original bytes kept in raw with a manifest; the same bytes are never ingested twice;
hostile or broken drops are refused with a reason and their bytes kept."""

import pytest

from citylake.core.lake import Lake
from citylake.core.ledger import Ledger
from citylake.core.registry import load_registrations
from citylake.stages import ingest
from citylake.stages.receipts import write_receipts

CSV = "统一社会信用代码,企业名称\n91110000802100433B,郑州某公司\n".encode("gbk")


@pytest.fixture
def reg(settings):
    return {r.resource: r for r in load_registrations(settings.resources_dir)}["enterprise_registration"]


def drop(settings, reg, name, data):
    lake = Lake.from_settings(settings)
    rel = f"landing/{reg.department}/{reg.resource}/{name}"
    lake.write_bytes(rel, data)
    return lake, rel


def test_ingest_keeps_bytes_and_manifest(settings, reg):
    lake, rel = drop(settings, reg, "企业登记_20261120.csv", CSV)
    [out] = ingest.ingest_resource(settings, reg)
    assert out.status == "ingested"
    [m] = Ledger.read(settings, reg).manifests()
    assert m["source_name"] == "企业登记_20261120.csv" and m["size"] == len(CSV)
    assert lake.read_bytes(m["raw_path"]) == CSV
    assert m["sha256"] == out.sha256 and m["batch_id"] == out.batch_id
    assert not lake.exists(rel), "landing file is removed once its bytes are in raw"
    assert Ledger.read(settings, reg).pending("conform") == [m["batch_id"]]


def test_same_bytes_under_another_name_are_not_ingested_twice(settings, reg):
    drop(settings, reg, "a.csv", CSV)
    ingest.ingest_resource(settings, reg)
    lake, _ = drop(settings, reg, "a (copy).csv", CSV)
    [out] = ingest.ingest_resource(settings, reg)
    assert out.status == "duplicate" and out.duplicate_of == "a.csv"
    assert len(Ledger.read(settings, reg).manifests()) == 1
    receipts = [f.path for f in lake.list_files(f"receipts/{reg.department}/{reg.resource}")]
    assert any(p.endswith(".duplicate.txt") for p in receipts)
    text = lake.read_bytes(next(p for p in receipts if p.endswith(".duplicate.txt"))).decode()
    assert "重复提交" in text and "duplicate drop" in text


def test_file_still_uploading_is_left_alone(settings, reg):
    lake, rel = drop(settings, reg, "big.csv.part", CSV)
    assert ingest.ingest_resource(settings, reg) == []
    assert lake.exists(rel)


@pytest.mark.parametrize(
    "name, data, code",
    [
        ("empty.csv", b"", "empty_file"),
        ("photo.png", CSV, "unexpected_file_type"),
        ("..evil.csv", CSV, "hostile_name"),
        ("ctrl\x07name.csv", CSV, "hostile_name"),
        ("长" * 70 + ".csv", CSV, "hostile_name"),
    ],
)
def test_refused_drops_keep_their_bytes_and_get_a_reason(settings, reg, name, data, code):
    lake, _ = drop(settings, reg, name, data)
    [out] = ingest.ingest_resource(settings, reg)
    assert out.status == "rejected" and out.reason == code
    [m] = Ledger.read(settings, reg).manifests()
    assert lake.read_bytes(m["raw_path"]) == data
    assert "/" not in m["raw_path"].rsplit("/", 1)[1] and ".." not in m["raw_path"]
    assert Ledger.read(settings, reg).pending("conform") == []
    [receipt] = write_receipts(settings, reg)
    assert receipt["status"] == "rejected" and receipt["error"]["code"] == code


def test_a_refused_drop_does_not_block_the_next_good_one(settings, reg):
    drop(settings, reg, "empty.csv", b"")
    drop(settings, reg, "good.csv", CSV)
    outs = {o.landing_path.rsplit("/", 1)[1]: o.status for o in ingest.ingest_resource(settings, reg)}
    assert outs == {"empty.csv": "rejected", "good.csv": "ingested"}
