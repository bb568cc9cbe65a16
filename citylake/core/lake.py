"""The lake: zone paths and storage I/O behind one interface.

A lake root is a URI: ``file:///…`` for the embedded default, ``s3://bucket/prefix``
for MinIO. All non-Spark reads and writes go through :class:`Lake`, which uses
pyarrow's filesystem layer, so the local folder and S3 differ only in
:func:`_make_filesystem`. Spark gets URIs from :meth:`Lake.spark_uri` (``s3a://``
for an S3 lake).

Paths passed to the methods are *relative* to the lake root and always use ``/``.

Durability: on a local lake every object write is a temp file, fsynced, renamed into place, and
the folder fsynced, so after a power loss a file is either whole or absent, and a later step's
marker (a manifest, a watermark) never survives the bytes it names. On S3 a completed PUT is
durable. A landing file is deleted only if it is still the object that was copied
(:meth:`Lake.delete_if_unchanged`).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO
from urllib.parse import urlparse

import pyarrow.fs as pafs

from citylake.core.settings import S3Options, Settings

CHUNK = 1 << 20


@dataclass(frozen=True)
class LakeFile:
    path: str  # relative to the lake root, exactly as stored (may be hostile on S3)
    size: int
    mtime: datetime | None
    full: str = ""  # the filesystem path as listed, for reading keys that fs_path() would refuse

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)


def _make_filesystem(uri: str, s3: S3Options) -> tuple[pafs.FileSystem, str, str]:
    """Return (filesystem, root path inside it, scheme)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        root = parsed.path if parsed.scheme else uri
        return pafs.LocalFileSystem(), root.rstrip("/"), "file"
    if parsed.scheme in ("s3", "s3a"):
        kwargs: dict = {"region": s3.region}
        if s3.endpoint:
            endpoint = urlparse(s3.endpoint if "://" in s3.endpoint else f"http://{s3.endpoint}")
            kwargs["endpoint_override"] = endpoint.netloc
            kwargs["scheme"] = endpoint.scheme or "http"
        if s3.access_key:
            kwargs["access_key"] = s3.access_key
            kwargs["secret_key"] = s3.secret_key
        # MinIO and SeaweedFS want path-style addressing; pyarrow uses it when an endpoint is set.
        fs = pafs.S3FileSystem(**kwargs, allow_bucket_creation=False, allow_bucket_deletion=False)
        return fs, f"{parsed.netloc}{parsed.path}".rstrip("/"), "s3"
    raise ValueError(f"unsupported lake URI scheme {parsed.scheme!r} in {uri!r} (use file:// or s3://)")


def clean_relpath(path: str) -> str:
    """Normalise a lake-relative path and refuse anything that would escape the root."""
    if "\x00" in path:
        raise ValueError(f"path contains a NUL byte: {path!r}")
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ValueError(f"path escapes the lake root: {path!r}")
    return "/".join(parts)


class Lake:
    def __init__(self, uri: str, s3: S3Options | None = None):
        self.uri = uri.rstrip("/")
        self.s3 = s3 or S3Options()
        self.fs, self.root, self.scheme = _make_filesystem(self.uri, self.s3)

    @classmethod
    def from_settings(cls, settings: Settings) -> Lake:
        return cls(settings.lake_uri, settings.s3)

    # ---- paths -------------------------------------------------------------------------
    def fs_path(self, rel: str) -> str:
        rel = clean_relpath(rel)
        return f"{self.root}/{rel}" if rel else self.root

    def spark_uri(self, rel: str) -> str:
        """URI Spark can read/write: file:///abs/path or s3a://bucket/prefix/rel."""
        full = self.fs_path(rel)
        if self.scheme == "s3":
            return f"s3a://{full}"
        return f"file://{full}"

    @staticmethod
    def join(*parts: str) -> str:
        return clean_relpath("/".join(p.strip("/") for p in parts if p))

    # ---- queries -----------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        return self.fs.get_file_info(self.fs_path(rel)).type != pafs.FileType.NotFound

    def is_dir(self, rel: str) -> bool:
        return self.fs.get_file_info(self.fs_path(rel)).type == pafs.FileType.Directory

    def list_files(self, rel: str, recursive: bool = True) -> list[LakeFile]:
        base = self.fs_path(rel)
        info = self.fs.get_file_info(base)
        if info.type == pafs.FileType.NotFound:
            return []
        selector = pafs.FileSelector(base, recursive=recursive, allow_not_found=True)
        out = []
        for fi in self.fs.get_file_info(selector):
            if fi.type != pafs.FileType.File:
                continue
            relpath = fi.path[len(self.root) + 1 :] if self.root else fi.path
            mtime = fi.mtime.replace(tzinfo=UTC) if fi.mtime and fi.mtime.tzinfo is None else fi.mtime
            out.append(LakeFile(relpath, fi.size or 0, mtime, fi.path))
        return sorted(out, key=lambda f: f.path)

    def list_dirs(self, rel: str) -> list[str]:
        """Immediate child directory names under ``rel``."""
        base = self.fs_path(rel)
        selector = pafs.FileSelector(base, recursive=False, allow_not_found=True)
        names = set()
        for fi in self.fs.get_file_info(selector):
            if fi.type == pafs.FileType.Directory:
                names.add(posixpath.basename(fi.path.rstrip("/")))
        return sorted(names)

    # ---- reads -------------------------------------------------------------------------
    def read_bytes(self, rel: str) -> bytes:
        with self.fs.open_input_stream(self.fs_path(rel)) as f:
            return f.read()

    def open_read(self, rel: str):
        return self.fs.open_input_file(self.fs_path(rel))

    def read_json(self, rel: str):
        return json.loads(self.read_bytes(rel).decode("utf-8"))

    def read_json_or(self, rel: str, default=None):
        try:
            return self.read_json(rel)
        except FileNotFoundError:
            return default
        except OSError as exc:  # pyarrow S3 raises OSError for missing keys
            if "does not exist" in str(exc) or "NoSuchKey" in str(exc) or "Path does not exist" in str(exc):
                return default
            raise

    def sha256(self, rel: str) -> tuple[str, int]:
        digest = hashlib.sha256()
        size = 0
        with self.fs.open_input_stream(self.fs_path(rel)) as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size

    # ---- writes ------------------------------------------------------------------------
    def _ensure_parent(self, path: str) -> None:
        if self.scheme == "file":
            self.fs.create_dir(posixpath.dirname(path), recursive=True)

    @staticmethod
    def _tmp_beside(target: str) -> str:
        # A short name in the same folder: rename stays atomic and long target names still fit.
        return f"{posixpath.dirname(target)}/.tmp-{uuid.uuid4().hex[:12]}"

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write a whole object. On a local lake the write is atomic and durable (temp file,
        fsync, rename, fsync of the folder); on S3 a single PUT is atomic already."""
        target = self.fs_path(rel)
        self._ensure_parent(target)
        if self.scheme == "file":
            tmp = self._tmp_beside(target)
            with open(tmp, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            _replace_durably(tmp, target)
        else:
            with self.fs.open_output_stream(target) as out:
                out.write(data)

    def write_text(self, rel: str, text: str) -> None:
        self.write_bytes(rel, text.encode("utf-8"))

    def write_json(self, rel: str, obj) -> None:
        self.write_bytes(rel, json.dumps(obj, ensure_ascii=False, indent=2, default=str).encode("utf-8"))

    def copy_stream(self, src: IO[bytes], rel: str) -> tuple[str, int]:
        """Stream ``src`` into ``rel`` while hashing it; returns (sha256, size). Durable on a
        local lake, as :meth:`write_bytes`."""
        target = self.fs_path(rel)
        self._ensure_parent(target)
        digest = hashlib.sha256()
        size = 0
        if self.scheme == "file":
            tmp = self._tmp_beside(target)
            with open(tmp, "wb") as out:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            _replace_durably(tmp, target)
            return digest.hexdigest(), size
        with self.fs.open_output_stream(target) as out:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        return digest.hexdigest(), size

    def copy(self, src_rel: str, dst_rel: str) -> tuple[str, int]:
        with self.fs.open_input_stream(self.fs_path(src_rel)) as src:
            return self.copy_stream(src, dst_rel)

    def stamp(self, listed: LakeFile) -> dict:
        """What identifies the object behind ``listed`` now: its size and modification time, and
        on S3 its ETag (a changed object has another; an identical re-upload has the same)."""
        if self.scheme == "file":
            st = os.stat(listed.full)
            return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
        head = self._s3_client().head_object(**self._s3_key(listed.full))
        return {"size": head["ContentLength"], "etag": head["ETag"]}

    def delete_if_unchanged(self, listed: LakeFile, stamp: dict, sha256: str) -> bool:
        """Delete the object behind ``listed`` only if it is still the one that was copied: the
        same :meth:`stamp` as before the copy and, locally, the same bytes (``sha256``). Returns
        False, and leaves it for the next run, when it changed (a liaison wrote it again meanwhile).

        Locally the file is first renamed to a hidden name in its folder (atomic), so a writer that
        re-creates the name in the meantime makes a new file that is left alone; if the renamed file
        is not the copied one it goes back (or, when the name was taken again, stays beside it
        under a name of its own, to be ingested too). On S3 the delete carries ``If-Match`` with the
        ETag, so a server that supports conditional deletes refuses a changed object outright; the
        head request before it covers servers that do not."""
        if self.scheme != "file":
            key = self._s3_key(listed.full)
            client = self._s3_client()
            try:
                head = client.head_object(**key)
            except client.exceptions.ClientError:
                return False  # gone already
            if head["ContentLength"] != stamp["size"] or head["ETag"] != stamp["etag"]:
                return False
            try:
                client.delete_object(**key, IfMatch=stamp["etag"])
            except client.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                    return False
                raise
            return True
        path = listed.full
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return False
        if st.st_size != stamp["size"] or st.st_mtime_ns != stamp["mtime_ns"]:
            return False
        claimed = f"{posixpath.dirname(path)}/.tmp-claim-{uuid.uuid4().hex[:12]}"
        os.rename(path, claimed)
        with open(claimed, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        if digest == sha256:
            os.remove(claimed)
            return True
        stem, dot, ext = posixpath.basename(path).rpartition(".")
        back = path if not os.path.exists(path) else (
            f"{posixpath.dirname(path)}/{stem or ext}.{uuid.uuid4().hex[:8]}{dot + ext if stem else ''}")
        os.rename(claimed, back)
        return False

    def _s3_key(self, full: str) -> dict:
        bucket, _, key = full.partition("/")
        return {"Bucket": bucket, "Key": key}

    def _s3_client(self):
        import boto3

        s3 = self.s3
        endpoint = None
        if s3.endpoint:
            endpoint = s3.endpoint if "://" in s3.endpoint else f"http://{s3.endpoint}"
        return boto3.client("s3", endpoint_url=endpoint, region_name=s3.region,
                            aws_access_key_id=s3.access_key or None, aws_secret_access_key=s3.secret_key or None)

    def delete(self, rel: str) -> None:
        try:
            self.fs.delete_file(self.fs_path(rel))
        except FileNotFoundError:
            pass

    def delete_dir(self, rel: str) -> None:
        path = self.fs_path(rel)
        if self.fs.get_file_info(path).type != pafs.FileType.NotFound:
            self.fs.delete_dir(path)

    def move(self, src_rel: str, dst_rel: str) -> None:
        """Rename a file or directory. Atomic on a local lake (same filesystem).

        S3 has no rename and pyarrow refuses to move a directory there, so on S3 a directory is
        moved object by object (server-side copy, then the source prefix is deleted). That is not
        atomic: callers commit by writing a marker *after* the move (docs/zones.md)."""
        src = self.fs_path(src_rel)
        dst = self.fs_path(dst_rel)
        self._ensure_parent(dst)
        if self.scheme != "file" and self.fs.get_file_info(src).type == pafs.FileType.Directory:
            for f in self.fs.get_file_info(pafs.FileSelector(src, recursive=True)):
                if f.type == pafs.FileType.File:
                    self.fs.copy_file(f.path, dst + f.path[len(src) :])
            self.fs.delete_dir(src)
            return
        self.fs.move(src, dst)

    def commit(self, staged_rel: str, target_rel: str, marker_rel: str, marker: dict) -> None:
        """Publish a staged folder: replace ``target`` with it, then write ``marker`` last.

        Every zone write that readers rely on goes through here, so a crash at any point leaves
        either the old state or a folder without its marker, which readers ignore and a re-run
        rewrites. (Tests inject crashes by patching this method.)"""
        self.delete_dir(target_rel)
        self.move(staged_rel, target_rel)
        self.write_json(marker_rel, marker)

    def iter_lines(self, rel: str) -> Iterator[str]:
        yield from self.read_bytes(rel).decode("utf-8").splitlines()


def _replace_durably(tmp: str, target: str) -> None:
    """Rename ``tmp`` (already fsynced) over ``target`` and fsync the folder, so the new name
    survives a power loss."""
    os.replace(tmp, target)
    fd = os.open(posixpath.dirname(target) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def now_utc() -> datetime:
    return datetime.now(UTC)
