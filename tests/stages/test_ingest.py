"""Ingest: original bytes kept in raw with a manifest; the same bytes are never ingested twice;
hostile or broken drops are refused with a reason and their bytes kept."""

import hashlib

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


# ---- safe ingest: an overwrite during ingest, a run interrupted across midnight -------------------
def test_a_file_overwritten_while_it_is_ingested_is_kept_and_ingested_next(settings, reg, monkeypatch):
    lake, rel = drop(settings, reg, "a.csv", CSV)
    newer = CSV + "91110000802100434C,开封某公司\n".encode("gbk")
    real_copy = Lake.copy_stream

    def copy_then_overwritten(self, src, target):
        out = real_copy(self, src, target)
        if target.endswith("/a.csv"):
            lake.write_bytes(rel, newer)  # the liaison sends a corrected file while we copy
        return out

    monkeypatch.setattr(Lake, "copy_stream", copy_then_overwritten)
    [first] = ingest.ingest_resource(settings, reg)
    assert first.status == "ingested" and lake.read_bytes(rel) == newer, "the new file stays in landing"
    monkeypatch.setattr(Lake, "copy_stream", real_copy)
    [second] = ingest.ingest_resource(settings, reg)
    assert second.status == "ingested" and second.batch_id != first.batch_id
    assert not lake.exists(rel)
    assert sorted(lake.read_bytes(m["raw_path"]) for m in Ledger.read(settings, reg).manifests()) == sorted(
        [CSV, newer])


def test_a_changed_landing_file_goes_back_where_it_was(settings):
    lake = Lake.from_settings(settings)
    lake.write_bytes("landing/d/r/a.csv", b"one")
    [listed] = lake.list_files("landing/d/r")
    stamp = lake.stamp(listed)
    assert lake.delete_if_unchanged(listed, stamp, hashlib.sha256(b"one").hexdigest())
    assert lake.list_files("landing/d/r") == []
    lake.write_bytes("landing/d/r/a.csv", b"two")
    [listed] = lake.list_files("landing/d/r")
    # same size and time, other bytes (a copy tool keeping the time): the hash tells
    assert not lake.delete_if_unchanged(listed, lake.stamp(listed), hashlib.sha256(b"one").hexdigest())
    assert [f.name for f in lake.list_files("landing/d/r")] == ["a.csv"]
    assert lake.read_bytes("landing/d/r/a.csv") == b"two"


def test_an_ingest_interrupted_across_midnight_finishes_one_batch(settings, reg, monkeypatch):
    from datetime import UTC, datetime

    lake, rel = drop(settings, reg, "a.csv", CSV)
    clock = [datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)]
    monkeypatch.setattr(ingest, "now_utc", lambda: clock[0])
    real_write = Lake.write_json

    def power_cut_after_the_manifest(self, path, obj):
        real_write(self, path, obj)
        if path.endswith("/manifest.json"):
            raise SystemExit("power cut")  # the process dies: nothing after this line runs

    monkeypatch.setattr(Lake, "write_json", power_cut_after_the_manifest)
    with pytest.raises(SystemExit, match="power cut"):
        ingest.ingest_resource(settings, reg)
    monkeypatch.setattr(Lake, "write_json", real_write)
    clock[0] = datetime(2026, 12, 1, 0, 0, 5, tzinfo=UTC)
    [out] = ingest.ingest_resource(settings, reg)  # after midnight
    assert out.status == "ingested" and not lake.exists(rel)
    manifests = [f.path for f in lake.list_files(f"raw/{reg.department}/{reg.resource}") if f.name == "manifest.json"]
    assert len(manifests) == 1 and "ingest_date=2026-11-30" in manifests[0]
    ledger = Ledger.read(settings, reg)
    assert [b.batch_id for b in ledger.batches] == [out.batch_id]
    assert ledger.batches[0].received_at.startswith("2026-11-30T23:59:59")


def test_the_ledger_counts_a_batch_once_even_with_two_manifests(settings, reg):
    """Lakes written before batch folders were claimed may hold two manifests of one batch."""
    drop(settings, reg, "a.csv", CSV)
    [out] = ingest.ingest_resource(settings, reg)
    lake = Lake.from_settings(settings)
    [m] = Ledger.read(settings, reg).manifests()
    lake.write_json(m["raw_path"].replace(f"ingest_date={m['ingest_date']}", "ingest_date=2099-01-01")
                    .rsplit("/", 1)[0] + "/manifest.json", {**m, "received_at": "2099-01-01T00:00:00+00:00"})
    ledger = Ledger.read(settings, reg)
    assert [b.batch_id for b in ledger.batches] == [out.batch_id] and ledger.batches[0].manifest == m


def test_local_writes_are_fsynced(settings, monkeypatch):
    import os

    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real(fd))
    lake = Lake.from_settings(settings)
    lake.write_json("raw/d/r/_watermark.json", {"a": 1})
    assert len(synced) == 2, "the file, then its folder"
    lake.copy("raw/d/r/_watermark.json", "raw/d/r/copy.json")
    assert len(synced) == 4


# ---- re-sending after a refusal, reprocessing ----------------------------------------------------
def test_a_resend_after_a_refusal_reopens_the_batch(settings, reg):
    lake, _ = drop(settings, reg, "企业登记.txt", CSV)
    [refused] = ingest.ingest_resource(settings, reg)
    assert refused.status == "rejected" and refused.reason == "unexpected_file_type"
    write_receipts(settings, reg)
    drop(settings, reg, "企业登记.csv", CSV)  # renamed, same bytes
    [again] = ingest.ingest_resource(settings, reg)
    assert again.status == "reprocessed" and again.batch_id == refused.batch_id
    ledger = Ledger.read(settings, reg)
    [b] = ledger.batches
    assert b.status == "ingested" and b.manifest["source_name"] == "企业登记.csv"
    assert ledger.pending("conform") == [b.batch_id] and ledger.pending("receipt") == [b.batch_id]
    events = [(e["event"], e.get("was"), e.get("why"), e.get("file")) for e in b.history]
    assert events == [("received", None, None, "企业登记.csv"),
                      ("resent", "rejected", "unexpected_file_type", "企业登记.csv")]
    earlier = lake.list_files(f"receipts/{reg.department}/{reg.resource}/earlier")
    assert sorted(f.name.rsplit(".", 1)[1] for f in earlier) == ["json", "txt"], "the first receipt is kept"
    [receipt] = write_receipts(settings, reg)
    assert receipt["status"] == "processing"
    assert [(e["trigger"], e["was"]) for e in receipt["reprocessed"]] == [("resent", "rejected")]
    text = lake.read_bytes(f"receipts/{reg.department}/{reg.resource}/{b.batch_id}.txt").decode()
    assert "重新处理：" in text and "重新报送相同文件" in text and "Reprocessed: " in text


def test_a_resend_still_refused_says_why_again(settings, reg):
    drop(settings, reg, "photo.png", CSV)
    [first] = ingest.ingest_resource(settings, reg)
    drop(settings, reg, "photo again.png", CSV)
    [again] = ingest.ingest_resource(settings, reg)
    assert (again.status, again.reason, again.batch_id) == ("rejected", "unexpected_file_type", first.batch_id)
    [b] = Ledger.read(settings, reg).batches
    assert b.status == "rejected" and b.history[-1]["now"] == "rejected"


def test_reprocess_judges_a_refused_batch_under_the_corrected_registration(settings, reg):
    drop(settings, reg, "企业登记.txt", CSV)
    ingest.ingest_resource(settings, reg)
    fixed = reg.model_copy(update={"source": reg.source.model_copy(update={"pattern": "*.txt"})})
    [r] = ingest.reprocess_batches(settings, fixed, states=("rejected",), by="test")
    assert (r.was, r.now, r.trigger) == ("rejected", "ingested", "reprocess")
    [b] = Ledger.read(settings, reg).batches
    assert b.status == "ingested" and b.history[-1]["by"] == "test"
    assert ingest.reprocess_batches(settings, fixed, states=("rejected", "failed", "blocked")) == []
    with pytest.raises(ValueError, match=f"{b.batch_id} is ingested"):
        ingest.reprocess_batches(settings, fixed, batch_ids=[b.batch_id])
    with pytest.raises(LookupError, match="no raw batch nope"):
        ingest.reprocess_batches(settings, fixed, batch_ids=["nope"])


def test_reprocess_sends_a_failed_batch_back_to_conform(settings, reg):
    from citylake.core import zones

    drop(settings, reg, "a.csv", CSV)
    [out] = ingest.ingest_resource(settings, reg)
    lake = Lake.from_settings(settings)
    lake.write_json(zones.failure_marker(reg.resource, out.batch_id),
                    {"code": "unreadable_sheet", "message_zh": "找不到工作表", "message_en": "no such sheet",
                     "failed_at": "2026-11-30T01:00:00+00:00"})
    assert Ledger.read(settings, reg).batches[0].status == "failed"
    [r] = ingest.reprocess_batches(settings, reg, states=("failed",))
    assert (r.was, r.now) == ("failed", "ingested")
    ledger = Ledger.read(settings, reg)
    assert ledger.pending("conform") == [out.batch_id]
    assert ledger.batches[0].history[-1]["why"] == "unreadable_sheet"
