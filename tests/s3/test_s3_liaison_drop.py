"""Smoke test of the non-Spark stages on the S3 test server, with the identities production uses:
a liaison drops through boto3 with their own keys, the pipeline ingests and writes receipts, the
liaison reads the receipts back. (The full chain incl. conform/curate/publish is the pipeline's
end-to-end test; Spark runs on the local lake in tests.)
"""

from __future__ import annotations

import hashlib

import pytest

from citylake.core.lake import Lake
from citylake.core.ledger import Ledger
from citylake.core.registry import load_registrations
from citylake.stages import ingest
from citylake.stages.receipts import write_receipts

BUCKET = "lake"
LANDING = "landing/scjg/enterprise_registration/"
RECEIPTS = "receipts/scjg/enterprise_registration/"
EXPORT = "统一社会信用代码,企业名称,法定代表人\n91410100MA00000001,郑州测试有限公司,张三\n".encode("gbk")


@pytest.fixture
def reg(s3_settings):
    return next(r for r in load_registrations(s3_settings.resources_dir) if r.resource == "enterprise_registration")


def keys(client, prefix):
    return [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def test_liaison_drop_is_ingested_and_receipted(s3_server, s3_settings, reg):
    liaison = s3_server.client("liaison-scjg")
    liaison.put_object(Bucket=BUCKET, Key=LANDING + "企业登记_20240501.csv", Body=EXPORT)
    liaison.put_object(Bucket=BUCKET, Key=LANDING + "empty.csv", Body=b"")

    outcomes = {o.landing_path.rsplit("/", 1)[1]: o for o in ingest.ingest_resource(s3_settings, reg)}
    good, empty = outcomes["企业登记_20240501.csv"], outcomes["empty.csv"]
    assert good.status == "ingested" and good.sha256 == hashlib.sha256(EXPORT).hexdigest() and good.size == len(EXPORT)
    assert empty.status == "rejected" and empty.reason == "empty_file"

    lake = Lake.from_settings(s3_settings)
    manifest = Ledger.read(lake, reg).batch(good.batch_id).manifest
    assert manifest["sha256"] == good.sha256 and manifest["status"] == "ingested"
    assert lake.read_bytes(manifest["raw_path"]) == EXPORT  # original bytes in raw
    assert lake.read_bytes(Ledger.read(lake, reg).batch(empty.batch_id).manifest["raw_path"]) == b""
    # landing is emptied (only a folder marker may remain), as the liaison sees it
    assert [k for k in keys(liaison, "landing/scjg/") if not k.endswith("/")] == []

    receipts = write_receipts(s3_settings, reg)
    assert {r["status"] for r in receipts} == {"rejected", "processing"}
    mine = keys(liaison, RECEIPTS)
    assert f"{RECEIPTS}{good.batch_id}.json" in mine and f"{RECEIPTS}{empty.batch_id}.txt" in mine
    text = liaison.get_object(Bucket=BUCKET, Key=f"{RECEIPTS}{empty.batch_id}.txt")["Body"].read().decode("utf-8")
    assert "0 字节" in text or "empty" in text


def test_same_bytes_dropped_again_are_not_ingested_twice(s3_server, s3_settings, reg):
    liaison = s3_server.client("liaison-scjg")
    liaison.put_object(Bucket=BUCKET, Key=LANDING + "first.csv", Body=EXPORT)
    [first] = ingest.ingest_resource(s3_settings, reg)
    liaison.put_object(Bucket=BUCKET, Key=LANDING + "again.csv", Body=EXPORT)
    [again] = ingest.ingest_resource(s3_settings, reg)
    assert (first.status, again.status) == ("ingested", "duplicate")
    assert again.batch_id == first.batch_id
    assert len(Ledger.read(s3_settings, reg).manifests()) == 1
    duplicate_receipts = [k for k in keys(liaison, RECEIPTS) if ".duplicate." in k]
    assert len(duplicate_receipts) == 2  # .json and .txt, readable by the liaison
    assert liaison.get_object(Bucket=BUCKET, Key=duplicate_receipts[0])["Body"].read()


def test_liaison_drop_reaches_the_published_directory(s3_server, s3_settings, reg):
    """Drop (liaison keys) → ingest → receipt the liaison can read → directory published from the S3 lake."""
    from citylake.stages.publish.publish import publish

    liaison = s3_server.client("liaison-scjg")
    liaison.put_object(Bucket=BUCKET, Key=LANDING + "企业登记_20240502.csv", Body=EXPORT)
    [outcome] = ingest.ingest_resource(s3_settings, reg)
    assert outcome.status == "ingested"
    write_receipts(s3_settings, reg)
    receipt = liaison.get_object(Bucket=BUCKET, Key=f"{RECEIPTS}{outcome.batch_id}.json")["Body"].read()
    assert outcome.sha256 in receipt.decode("utf-8")

    result = publish(s3_settings)
    facts = result.facts[reg.resource]
    assert facts.batches_received == 1 and facts.last_received_at is not None
    lake = Lake.from_settings(s3_settings)
    import json

    published = json.loads(lake.read_bytes("directory/directory.json"))
    assert reg.name in json.dumps(published, ensure_ascii=False)
