"""Department isolation, proved with real requests against the S3 test server.

The server's identities are rendered from citylake/access.py, the same rules that become the
MinIO policies in production. Each forbidden request is its own test case and asserts a refusal
(403 AccessDenied) *and* that nothing changed, so widening any rule fails a named case.
"""

from __future__ import annotations

import io

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from citylake.core import access

BUCKET = "lake"
ME = "scjg"
LIAISON = access.liaison_user(ME)
OWN_LANDING = "landing/scjg/enterprise_registration/"
OWN_RECEIPT = "receipts/scjg/enterprise_registration/b-scjg-1.json"

# Objects that exist in the lake and that liaison-scjg must not touch, by what they are.
FOREIGN = {
    "landing-other-dept": "landing/gaj/resident_population/户籍人口_20240501.csv",
    "landing-other-dept-2": "landing/zrzy/real_estate_registration/export.xlsx",
    "raw-own-dept": "raw/scjg/enterprise_registration/ingest_date=2024-05-01/batch_id=b-scjg-1/企业登记.csv",
    "raw-own-manifest": "raw/scjg/enterprise_registration/ingest_date=2024-05-01/batch_id=b-scjg-1/manifest.json",
    "raw-own-index": "raw/scjg/enterprise_registration/_index/" + "ab" * 32 + ".json",
    "raw-other-dept": "raw/gaj/resident_population/ingest_date=2024-05-01/batch_id=b-gaj-1/people.csv",
    "standardized-own-resource": "standardized/enterprise_registration/batch_id=b-scjg-1/part-0.parquet",
    "standardized-marker": "standardized/enterprise_registration/batch_id=b-scjg-1/_COMMITTED.json",
    "quarantine-own-resource": "quarantine/enterprise_registration/batch_id=b-scjg-1/part-0.parquet",
    "quality-own-resource": "quality/enterprise_registration/batch_id=b-scjg-1/result.json",
    "curated-own-resource": "curated/enterprise_registration/version=v1/part-0.parquet",
    "curated-pointer": "curated/enterprise_registration/_CURRENT.json",
    "curated-other-resource": "curated/resident_population/version=v1/part-0.parquet",
    "receipts-other-dept": "receipts/gaj/resident_population/b-gaj-1.json",
    "staging": "_staging/conform/enterprise_registration/batch_id=b-scjg-1/decoded/part-0.parquet",
    "bucket-root": "README.txt",
}

FORBIDDEN_LIST_PREFIXES = [
    "",
    "landing/",
    "landing/gaj/",
    "landing/gaj/resident_population/",
    "landing/zrzy/",
    "landing/scj",  # a prefix of the own folder is a prefix of other folders too
    "landing/scjg",  # without the slash it would also match landing/scjgx/
    "raw/",
    "raw/scjg/",
    "raw/gaj/",
    "standardized/",
    "standardized/enterprise_registration/",
    "quarantine/",
    "quality/",
    "curated/",
    "curated/enterprise_registration/",
    "receipts/",
    "receipts/gaj/",
    "_staging/",
]


def content(key: str) -> bytes:
    return f"original bytes of {key}".encode()


def denied(call, *args, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    err = info.value.response
    status = err["ResponseMetadata"]["HTTPStatusCode"]
    assert status == 403, f"expected 403, got {status} {err.get('Error')}"
    assert err["Error"]["Code"] in ("AccessDenied", "403"), err["Error"]
    return info.value


@pytest.fixture(scope="module")
def lake_objects(s3_server):
    """Seed the lake (as the pipeline) with an object in every zone; module-scoped."""
    s3_server.empty_bucket()
    pipeline = s3_server.client(access.PIPELINE)
    for key in [*FOREIGN.values(), OWN_RECEIPT]:
        pipeline.put_object(Bucket=BUCKET, Key=key, Body=content(key))
    yield pipeline
    s3_server.empty_bucket()


@pytest.fixture(scope="module")
def liaison(s3_server, lake_objects):
    return s3_server.client(LIAISON)


@pytest.fixture(scope="module")
def pipeline(lake_objects):
    return lake_objects


def assert_unchanged(pipeline, key: str) -> None:
    assert pipeline.get_object(Bucket=BUCKET, Key=key)["Body"].read() == content(key)


def assert_absent(pipeline, key: str) -> None:
    with pytest.raises(ClientError) as info:
        pipeline.head_object(Bucket=BUCKET, Key=key)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


# ---- what the liaison may do -----------------------------------------------------------------
def test_put_get_list_overwrite_delete_own_landing(liaison):
    key = OWN_LANDING + "企业登记_20240501.csv"
    liaison.put_object(Bucket=BUCKET, Key=key, Body="统一社会信用代码\n".encode("gbk"))
    assert liaison.get_object(Bucket=BUCKET, Key=key)["Body"].read() == "统一社会信用代码\n".encode("gbk")
    assert liaison.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == len("统一社会信用代码\n".encode("gbk"))
    for prefix in ("landing/scjg/", OWN_LANDING):
        keys = [o["Key"] for o in liaison.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
        assert key in keys
    folders = liaison.list_objects_v2(Bucket=BUCKET, Prefix="landing/scjg/", Delimiter="/")
    assert [p["Prefix"] for p in folders.get("CommonPrefixes", [])] == [OWN_LANDING]
    liaison.put_object(Bucket=BUCKET, Key=key, Body=b"corrected export")  # re-drop before ingest
    assert liaison.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"corrected export"
    liaison.delete_object(Bucket=BUCKET, Key=key)  # withdraw a wrong drop
    assert key not in [o["Key"] for o in liaison.list_objects_v2(Bucket=BUCKET, Prefix=OWN_LANDING).get("Contents", [])]


def test_multipart_upload_of_a_large_drop(liaison):
    data = bytes(range(256)) * (12 * 4096)  # 12 MiB -> 3 parts
    key = OWN_LANDING + "big_export.csv"
    cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    liaison.upload_fileobj(io.BytesIO(data), BUCKET, key, Config=cfg)
    assert liaison.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data
    liaison.delete_object(Bucket=BUCKET, Key=key)


def test_read_and_list_own_receipts(liaison):
    assert liaison.get_object(Bucket=BUCKET, Key=OWN_RECEIPT)["Body"].read() == content(OWN_RECEIPT)
    keys = [o["Key"] for o in liaison.list_objects_v2(Bucket=BUCKET, Prefix="receipts/scjg/").get("Contents", [])]
    assert keys == [OWN_RECEIPT]


@pytest.mark.parametrize("dept", access.departments())
def test_every_department_liaison_can_drop_into_its_own_landing(s3_server, lake_objects, dept):
    client = s3_server.client(access.liaison_user(dept))
    key = f"landing/{dept}/some_resource/drop.csv"
    client.put_object(Bucket=BUCKET, Key=key, Body=b"a,b\n")
    listed = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=f"landing/{dept}/").get("Contents", [])]
    assert key in listed and all(k.startswith(f"landing/{dept}/") for k in listed)
    assert client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"a,b\n"
    lake_objects.delete_object(Bucket=BUCKET, Key=key)


@pytest.mark.parametrize("dept", access.departments())
def test_every_department_liaison_is_kept_out_of_the_others(s3_server, lake_objects, dept):
    """Ring check over all registered departments: each liaison is refused the next one's landing."""
    depts = access.departments()
    other = depts[(depts.index(dept) + 1) % len(depts)]
    key = f"landing/{other}/r/secret.csv"
    lake_objects.put_object(Bucket=BUCKET, Key=key, Body=content(key))
    client = s3_server.client(access.liaison_user(dept))
    denied(client.get_object, Bucket=BUCKET, Key=key)
    denied(client.put_object, Bucket=BUCKET, Key=key, Body=b"overwritten")
    denied(client.list_objects_v2, Bucket=BUCKET, Prefix=f"landing/{other}/")
    denied(client.delete_object, Bucket=BUCKET, Key=key)
    assert_unchanged(lake_objects, key)
    lake_objects.delete_object(Bucket=BUCKET, Key=key)


# ---- what the liaison may not do: one case per (request, object) -------------------------------
@pytest.mark.parametrize("what", FOREIGN)
def test_cannot_read(liaison, pipeline, what):
    denied(liaison.get_object, Bucket=BUCKET, Key=FOREIGN[what])


@pytest.mark.parametrize("what", FOREIGN)
def test_cannot_read_a_byte_range(liaison, pipeline, what):
    denied(liaison.get_object, Bucket=BUCKET, Key=FOREIGN[what], Range="bytes=0-3")


@pytest.mark.parametrize("what", FOREIGN)
def test_cannot_even_learn_that_it_exists(liaison, pipeline, what):
    denied(liaison.head_object, Bucket=BUCKET, Key=FOREIGN[what])


@pytest.mark.parametrize("what", FOREIGN)
def test_cannot_overwrite(liaison, pipeline, what):
    denied(liaison.put_object, Bucket=BUCKET, Key=FOREIGN[what], Body=b"tampered")
    assert_unchanged(pipeline, FOREIGN[what])


@pytest.mark.parametrize("what", FOREIGN)
def test_cannot_write_a_new_object_beside(liaison, pipeline, what):
    key = FOREIGN[what] + ".planted.csv"
    denied(liaison.put_object, Bucket=BUCKET, Key=key, Body=b"planted")
    assert_absent(pipeline, key)


@pytest.mark.parametrize("what", FOREIGN)
def test_cannot_start_a_multipart_upload(liaison, pipeline, what):
    denied(liaison.create_multipart_upload, Bucket=BUCKET, Key=FOREIGN[what])


@pytest.mark.parametrize("what", FOREIGN)
def test_cannot_delete(liaison, pipeline, what):
    denied(liaison.delete_object, Bucket=BUCKET, Key=FOREIGN[what])
    assert_unchanged(pipeline, FOREIGN[what])


@pytest.mark.parametrize("what", FOREIGN)
def test_cannot_batch_delete(liaison, pipeline, what):
    result = liaison.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": FOREIGN[what]}]})
    assert [e["Code"] for e in result.get("Errors", [])] == ["AccessDenied"]
    assert not result.get("Deleted")
    assert_unchanged(pipeline, FOREIGN[what])


@pytest.mark.parametrize("what", FOREIGN)
def test_cannot_copy_it_into_own_landing(liaison, pipeline, what):
    target = OWN_LANDING + "copied_" + what
    denied(liaison.copy_object, Bucket=BUCKET, Key=target, CopySource={"Bucket": BUCKET, "Key": FOREIGN[what]})
    assert_absent(pipeline, target)


@pytest.mark.parametrize("what", FOREIGN)
def test_cannot_copy_own_drop_over_it(liaison, pipeline, what):
    own = OWN_LANDING + "source.csv"
    liaison.put_object(Bucket=BUCKET, Key=own, Body=b"mine")
    try:
        denied(liaison.copy_object, Bucket=BUCKET, Key=FOREIGN[what], CopySource={"Bucket": BUCKET, "Key": own})
        assert_unchanged(pipeline, FOREIGN[what])
    finally:
        liaison.delete_object(Bucket=BUCKET, Key=own)


@pytest.mark.parametrize("what", FOREIGN)
def test_cannot_tag(liaison, pipeline, what):
    denied(liaison.put_object_tagging, Bucket=BUCKET, Key=FOREIGN[what], Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})


@pytest.mark.parametrize("prefix", FORBIDDEN_LIST_PREFIXES)
def test_cannot_list(liaison, pipeline, prefix):
    denied(liaison.list_objects_v2, Bucket=BUCKET, Prefix=prefix)


@pytest.mark.parametrize("prefix", FORBIDDEN_LIST_PREFIXES)
def test_cannot_list_with_the_v1_api(liaison, pipeline, prefix):
    denied(liaison.list_objects, Bucket=BUCKET, Prefix=prefix)


@pytest.mark.parametrize("prefix", FORBIDDEN_LIST_PREFIXES)
def test_cannot_list_folders(liaison, pipeline, prefix):
    denied(liaison.list_objects_v2, Bucket=BUCKET, Prefix=prefix, Delimiter="/")


def test_cannot_write_or_delete_own_receipts(liaison, pipeline):
    denied(liaison.put_object, Bucket=BUCKET, Key=OWN_RECEIPT, Body=b'{"status": "accepted"}')
    denied(liaison.put_object, Bucket=BUCKET, Key="receipts/scjg/enterprise_registration/forged.json", Body=b"{}")
    denied(liaison.delete_object, Bucket=BUCKET, Key=OWN_RECEIPT)
    assert_unchanged(pipeline, OWN_RECEIPT)
    assert_absent(pipeline, "receipts/scjg/enterprise_registration/forged.json")


@pytest.mark.parametrize(
    "key",
    [
        "landing/scjg/../gaj/resident_population/x.csv",
        "landing/scjg/r/../../gaj/x.csv",
        "landing/scjg//../../raw/x.csv",
    ],
)
def test_path_traversal_in_keys_does_not_escape(liaison, pipeline, key):
    with pytest.raises(ClientError) as info:
        liaison.put_object(Bucket=BUCKET, Key=key, Body=b"escape")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403)
    for prefix in ("landing/gaj/", "raw/"):
        keys = [o["Key"] for o in pipeline.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
        assert not [k for k in keys if k.endswith("/x.csv")]


def test_cannot_administer_the_bucket(liaison, pipeline):
    denied(liaison.delete_bucket, Bucket=BUCKET)
    denied(liaison.create_bucket, Bucket="liaison-own-bucket")
    denied(liaison.put_bucket_acl, Bucket=BUCKET, ACL="public-read-write")
    denied(liaison.put_object_acl, Bucket=BUCKET, Key=FOREIGN["landing-other-dept"], ACL="public-read")
    denied(
        liaison.put_bucket_policy,
        Bucket=BUCKET,
        Policy='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*",'
        '"Resource":"arn:aws:s3:::lake/*"}]}',
    )
    denied(liaison.list_multipart_uploads, Bucket=BUCKET)


def test_wrong_secret_and_anonymous_requests_are_refused(s3_server, pipeline):
    ak, _ = s3_server.keys(LIAISON)
    path = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    wrong = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=ak,
        aws_secret_access_key="not-the-secret",
        config=path,
    )
    anonymous = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint,
        region_name="us-east-1",
        config=path.merge(Config(signature_version=UNSIGNED)),
    )
    for client in (wrong, anonymous):
        for call, kwargs in [
            (client.get_object, {"Key": OWN_RECEIPT}),
            (client.put_object, {"Key": OWN_LANDING + "anon.csv", "Body": b"x"}),
            (client.list_objects_v2, {"Prefix": "landing/scjg/"}),
        ]:
            with pytest.raises(ClientError) as info:
                call(Bucket=BUCKET, **kwargs)
            assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert_absent(pipeline, OWN_LANDING + "anon.csv")


# ---- the pipeline: everything in the lake bucket, nothing beyond ------------------------------
def test_pipeline_is_confined_to_the_lake_bucket(s3_server, pipeline):
    admin = s3_server.client("admin")
    if "not-the-lake" not in [b["Name"] for b in admin.list_buckets()["Buckets"]]:
        admin.create_bucket(Bucket="not-the-lake")
    admin.put_object(Bucket="not-the-lake", Key="x", Body=b"x")
    denied(pipeline.get_object, Bucket="not-the-lake", Key="x")
    denied(pipeline.put_object, Bucket="not-the-lake", Key="y", Body=b"y")
    denied(pipeline.list_objects_v2, Bucket="not-the-lake")
    denied(pipeline.create_bucket, Bucket="pipeline-made")
    denied(pipeline.delete_bucket, Bucket="not-the-lake")
