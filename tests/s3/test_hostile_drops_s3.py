"""Hostile drops through a liaison's own S3 credentials: each is refused with a receipt and a
reason, its bytes are kept in raw, and the good drop next to it is ingested as usual."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from citylake.core.lake import Lake
from citylake.core.ledger import Ledger
from citylake.core.registry import load_registrations
from citylake.stages import ingest
from citylake.stages.receipts import write_receipts

BUCKET = "lake"
LANDING = "landing/scjg/enterprise_registration/"
GOOD = "统一社会信用代码,企业名称\n91110000802100433B,郑州某公司\n".encode("gbk")


@pytest.fixture
def reg(s3_settings):
    return next(r for r in load_registrations(s3_settings.resources_dir) if r.resource == "enterprise_registration")


@pytest.mark.parametrize(
    "suffix, body, reason",
    [
        ("sub/../../escape.csv", b"x,y\n1,2\n", "hostile_name"),
        ("..%2e.csv".replace("%2e", "."), b"x,y\n1,2\n", "hostile_name"),
        ("名" * 100 + ".csv", b"x,y\n1,2\n", "hostile_name"),
        ("zero.csv", b"", "empty_file"),
        ("script.exe", b"MZ\x90\x00", "unexpected_file_type"),
    ],
)
def test_hostile_drop_is_refused_kept_and_does_not_block(s3_server, s3_settings, reg, suffix, body, reason):
    liaison = s3_server.client("liaison-scjg")
    try:
        liaison.put_object(Bucket=BUCKET, Key=LANDING + suffix, Body=body)
    except ClientError as exc:
        # The server itself refuses some names (SeaweedFS and MinIO refuse ".." segments):
        # then nothing entered the lake, which is just as safe.
        assert reason == "hostile_name", exc
        assert not liaison.list_objects_v2(Bucket=BUCKET, Prefix=LANDING).get("Contents")
        return
    liaison.put_object(Bucket=BUCKET, Key=LANDING + "good.csv", Body=GOOD)
    listed = [o["Key"] for o in liaison.list_objects_v2(Bucket=BUCKET, Prefix=LANDING).get("Contents", [])]
    hostile_key = next(k for k in listed if not k.endswith("good.csv"))

    outcomes = ingest.ingest_resource(s3_settings, reg)
    by_status = {o.status: o for o in outcomes}
    assert set(by_status) == {"rejected", "ingested"}, outcomes
    assert by_status["rejected"].reason == reason
    lake = Lake.from_settings(s3_settings)
    bad_manifest = Ledger.read(lake, reg).batch(by_status["rejected"].batch_id).manifest
    assert lake.read_bytes(bad_manifest["raw_path"]) == body, "the refused bytes are kept in raw"
    assert bad_manifest["raw_path"].startswith("raw/scjg/enterprise_registration/")
    assert Ledger.read(s3_settings, reg).pending("conform") == [by_status["ingested"].batch_id]
    receipts = {r["batch_id"]: r for r in write_receipts(s3_settings, reg)}
    assert receipts[by_status["rejected"].batch_id]["error"]["code"] == reason
    remaining = [o["Key"] for o in liaison.list_objects_v2(Bucket=BUCKET, Prefix=LANDING).get("Contents", [])]
    assert hostile_key not in remaining and not [k for k in remaining if not k.endswith("/")]
