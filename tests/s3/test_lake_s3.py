"""The same Lake behaviour on a local folder and on a real S3 server (SeaweedFS).

Every test runs three times: ``file://`` lake, ``s3://lake`` and ``s3://lake/tenant`` (a lake
under a prefix), the S3 ones with the *pipeline* identity from citylake/access.py, so these
tests also prove the pipeline's grants are sufficient for everything the non-Spark stages do.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import replace
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from citylake.core.lake import Lake
from citylake.core.settings import Settings


@pytest.fixture(params=["file", "s3", "s3-prefix"])
def lake_settings(request, settings: Settings) -> Settings:
    if request.param == "file":
        return settings
    s3_settings = request.getfixturevalue("s3_settings")
    if request.param == "s3-prefix":
        return replace(s3_settings, lake_uri="s3://lake/tenant")
    return s3_settings


@pytest.fixture
def lake(lake_settings: Settings) -> Lake:
    return Lake.from_settings(lake_settings)


def test_scheme_and_spark_uri(lake: Lake, lake_settings: Settings):
    uri = lake.spark_uri("standardized/r/batch_id=1")
    if lake_settings.lake_uri.startswith("s3://"):
        assert lake.scheme == "s3"
        assert uri == lake_settings.lake_uri.replace("s3://", "s3a://") + "/standardized/r/batch_id=1"
    else:
        assert lake.scheme == "file"
        assert uri.startswith("file:///") and uri.endswith("/lake/standardized/r/batch_id=1")


def test_bytes_roundtrip_and_overwrite(lake: Lake):
    lake.write_bytes("landing/scjg/r/a.csv", b"a,b\n1,2\n")
    assert lake.read_bytes("landing/scjg/r/a.csv") == b"a,b\n1,2\n"
    lake.write_bytes("landing/scjg/r/a.csv", b"new")
    assert lake.read_bytes("landing/scjg/r/a.csv") == b"new"
    lake.write_bytes("landing/scjg/r/empty.csv", b"")
    assert lake.read_bytes("landing/scjg/r/empty.csv") == b""


def test_json_and_text(lake: Lake):
    doc = {"资源": "企业登记信息", "rows": 3, "when": datetime(2024, 5, 1, 8, 0)}
    lake.write_json("receipts/scjg/r/b1.json", doc)
    assert lake.read_json("receipts/scjg/r/b1.json") == {
        "资源": "企业登记信息",
        "rows": 3,
        "when": "2024-05-01 08:00:00",
    }
    assert "企业登记信息" in lake.read_bytes("receipts/scjg/r/b1.json").decode("utf-8")  # not \u-escaped
    assert lake.read_json_or("receipts/scjg/r/missing.json", {"d": 1}) == {"d": 1}
    assert lake.read_json_or("nowhere/at/all.json") is None
    lake.write_text("receipts/scjg/r/b1.txt", "第一行\nsecond\n")
    assert list(lake.iter_lines("receipts/scjg/r/b1.txt")) == ["第一行", "second"]


def test_exists_and_is_dir(lake: Lake):
    lake.write_bytes("raw/scjg/r/ingest_date=2024-05-01/batch_id=x/f.csv", b"1")
    assert lake.exists("raw/scjg/r/ingest_date=2024-05-01/batch_id=x/f.csv")
    assert lake.exists("raw/scjg/r")
    assert lake.is_dir("raw/scjg/r")
    assert not lake.is_dir("raw/scjg/r/ingest_date=2024-05-01/batch_id=x/f.csv")
    assert not lake.exists("raw/scjg/other")
    assert not lake.exists("raw/scjg/r/ingest_date=2024-05-01/batch_id=x/g.csv")


def test_list_files(lake: Lake):
    assert lake.list_files("landing/scjg") == []
    lake.write_bytes("landing/scjg/r2/z.csv", b"zz")
    lake.write_bytes("landing/scjg/r1/b.csv", b"bbb")
    lake.write_bytes("landing/scjg/r1/sub/a.csv", b"a")
    lake.write_bytes("landing/gaj/r/c.csv", b"c")
    files = lake.list_files("landing/scjg")
    assert [f.path for f in files] == ["landing/scjg/r1/b.csv", "landing/scjg/r1/sub/a.csv", "landing/scjg/r2/z.csv"]
    assert [f.size for f in files] == [3, 1, 2]
    assert files[0].name == "b.csv"
    assert all(f.mtime is not None and f.mtime.tzinfo is not None for f in files)
    assert [f.path for f in lake.list_files("landing/scjg/r1", recursive=False)] == ["landing/scjg/r1/b.csv"]
    assert lake.list_files("landing/nobody") == []


def test_list_files_after_delete_shows_no_marker(lake: Lake):
    """Deleting the last file of a folder (ingest empties landing) leaves no phantom file."""
    lake.write_bytes("landing/scjg/r/only.csv", b"1")
    lake.delete("landing/scjg/r/only.csv")
    assert lake.list_files("landing/scjg") == []
    assert not lake.exists("landing/scjg/r/only.csv")


def test_list_dirs(lake: Lake):
    assert lake.list_dirs("curated") == []
    lake.write_bytes("curated/r/version=1/part-0.parquet", b"1")
    lake.write_bytes("curated/r/version=2/part-0.parquet", b"2")
    lake.write_bytes("curated/r/_CURRENT.json", b"{}")
    assert lake.list_dirs("curated/r") == ["version=1", "version=2"]
    assert lake.list_dirs("curated") == ["r"]
    assert "curated" in lake.list_dirs("")


@pytest.mark.parametrize(
    "size", [0, 10, 3 * (1 << 20) + 17, 11 * (1 << 20) + 5], ids=["empty", "small", "3MiB", "11MiB"]
)
def test_copy_stream_hashes_while_streaming(lake: Lake, size: int):
    data = os.urandom(size)
    sha, n = lake.copy_stream(io.BytesIO(data), "raw/scjg/r/ingest_date=2024-05-01/batch_id=b/drop.bin")
    assert (sha, n) == (hashlib.sha256(data).hexdigest(), size)
    assert lake.sha256("raw/scjg/r/ingest_date=2024-05-01/batch_id=b/drop.bin") == (sha, size)
    assert lake.read_bytes("raw/scjg/r/ingest_date=2024-05-01/batch_id=b/drop.bin") == data
    # no temporary or partial objects are left behind
    assert [f.path for f in lake.list_files("raw")] == ["raw/scjg/r/ingest_date=2024-05-01/batch_id=b/drop.bin"]


def test_copy(lake: Lake):
    data = "统一社会信用代码,名称\n".encode("gbk") * 1000
    lake.write_bytes("landing/scjg/r/x.csv", data)
    assert lake.copy("landing/scjg/r/x.csv", "raw/scjg/r/b/x.csv") == (hashlib.sha256(data).hexdigest(), len(data))
    assert lake.read_bytes("raw/scjg/r/b/x.csv") == data
    assert lake.exists("landing/scjg/r/x.csv")


def test_move_file(lake: Lake):
    lake.write_bytes("_staging/a/f.json", b"{}")
    lake.move("_staging/a/f.json", "quality/r/batch_id=1/result.json")
    assert lake.read_bytes("quality/r/batch_id=1/result.json") == b"{}"
    assert not lake.exists("_staging/a/f.json")


def test_move_directory(lake: Lake):
    """Conform and curate commit by moving a staged folder into place (docs/zones.md)."""
    lake.write_bytes("_staging/conform/r/batch_id=1/standardized/part-0.parquet", b"p0")
    lake.write_bytes("_staging/conform/r/batch_id=1/standardized/part-1.parquet", b"p1")
    lake.write_bytes("_staging/conform/r/batch_id=1/standardized/sub/part-2.parquet", b"p2")
    lake.move("_staging/conform/r/batch_id=1/standardized", "standardized/r/batch_id=1")
    assert [f.path for f in lake.list_files("standardized")] == [
        "standardized/r/batch_id=1/part-0.parquet",
        "standardized/r/batch_id=1/part-1.parquet",
        "standardized/r/batch_id=1/sub/part-2.parquet",
    ]
    assert lake.read_bytes("standardized/r/batch_id=1/sub/part-2.parquet") == b"p2"
    assert lake.list_files("_staging/conform/r/batch_id=1/standardized") == []
    assert not lake.exists("_staging/conform/r/batch_id=1/standardized")


def test_delete_and_delete_dir(lake: Lake):
    lake.write_bytes("quarantine/r/batch_id=1/part-0.parquet", b"1")
    lake.write_bytes("quarantine/r/batch_id=1/_COMMITTED.json", b"{}")
    lake.write_bytes("quarantine/r/batch_id=2/part-0.parquet", b"2")
    lake.delete("quarantine/r/batch_id=1/_COMMITTED.json")
    lake.delete("quarantine/r/batch_id=1/_COMMITTED.json")  # missing: no error
    assert not lake.exists("quarantine/r/batch_id=1/_COMMITTED.json")
    lake.delete_dir("quarantine/r/batch_id=1")
    lake.delete_dir("quarantine/r/batch_id=9")  # missing: no error
    assert [f.path for f in lake.list_files("quarantine")] == ["quarantine/r/batch_id=2/part-0.parquet"]
    assert not lake.exists("quarantine/r/batch_id=1")


def test_parquet_through_the_lake_filesystem(lake: Lake):
    """Statistics and analysts' local queries read curated Parquet through Lake.fs / open_read."""
    table = pa.table({"uscc": ["91410100MA00000001", "91410100MA00000002"], "capital": [10.5, 20.0]})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    lake.write_bytes("curated/r/version=1/part-0.parquet", buf.getvalue())
    lake.write_bytes("curated/r/version=1/part-1.parquet", buf.getvalue())
    with lake.open_read("curated/r/version=1/part-0.parquet") as fh:
        assert pq.ParquetFile(fh).metadata.num_rows == 2
    whole = pq.read_table(lake.fs_path("curated/r/version=1"), filesystem=lake.fs)
    assert whole.num_rows == 4
    assert sorted(whole.column("uscc").to_pylist())[0] == "91410100MA00000001"


@pytest.mark.parametrize("bad", ["../escape.csv", "landing/../../x", "a/\x00b"])
def test_paths_cannot_escape_the_root(lake: Lake, bad: str):
    with pytest.raises(ValueError):
        lake.write_bytes(bad, b"x")


def test_prefixed_lake_stays_under_its_prefix(s3_settings: Settings, s3_server):
    """A lake at s3://lake/tenant only touches keys under tenant/."""
    tenant = Lake.from_settings(replace(s3_settings, lake_uri="s3://lake/tenant"))
    tenant.write_bytes("landing/scjg/r/a.csv", b"1")
    assert [f.path for f in tenant.list_files("landing")] == ["landing/scjg/r/a.csv"]
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket="lake").get("Contents", [])]
    assert "tenant/landing/scjg/r/a.csv" in keys
    assert all(k.startswith("tenant/") for k in keys)


def test_a_landing_object_is_deleted_only_if_it_is_the_one_copied(lake: Lake):
    """A liaison may write the file again while ingest copies it: that newer object must stay."""
    rel = "landing/d/r/a.csv"
    lake.write_bytes(rel, b"first export")
    [listed] = lake.list_files("landing/d/r")
    stamp = lake.stamp(listed)
    lake.write_bytes(rel, b"corrected export, sent again")
    assert not lake.delete_if_unchanged(listed, stamp, hashlib.sha256(b"first export").hexdigest())
    assert lake.read_bytes(rel) == b"corrected export, sent again"
    [listed] = lake.list_files("landing/d/r")
    stamp = lake.stamp(listed)
    assert lake.delete_if_unchanged(listed, stamp, hashlib.sha256(b"corrected export, sent again").hexdigest())
    assert lake.list_files("landing/d/r") == []
    assert not lake.delete_if_unchanged(listed, stamp, "0" * 64), "gone already: nothing to delete"
