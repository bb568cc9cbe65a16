"""Ingest: a liaison's drop becomes a raw batch — original bytes, a manifest, a checksum index.

Each function is a plain function of (settings, registration), idempotent, and callable from
the CLI, the demo and the Airflow DAGs alike. A file whose bytes were ingested before is
recognised by checksum, receipted as a duplicate and not ingested again. A drop that cannot be a
batch (hostile name, empty, wrong type) is still kept in raw, with the reason in its manifest.
"""

from __future__ import annotations

import fnmatch
import hashlib
import posixpath
import re
import unicodedata
from dataclasses import asdict, dataclass
from datetime import UTC

from citylake.core import zones
from citylake.core.lake import Lake, LakeFile, now_utc
from citylake.core.registry import Registration
from citylake.core.settings import Settings
from citylake.stages.receipts import write_drop_receipt

# Names that uploaders use while a transfer is still running.
IN_PROGRESS_SUFFIXES = (".part", ".partial", ".tmp", ".uploading", ".crdownload", ".filepart", ".!sync")
MAX_NAME_BYTES = 200


@dataclass
class IngestOutcome:
    landing_path: str
    status: str  # ingested | duplicate | rejected | skipped
    batch_id: str | None = None
    sha256: str | None = None
    size: int | None = None
    reason: str | None = None
    reason_zh: str | None = None
    duplicate_of: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


# ---- names ------------------------------------------------------------------------------------
def safe_name(name: str) -> str:
    """A storage-safe version of a dropped file's name (the original is kept in the manifest)."""
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch if ch.isprintable() and ch not in '/\\:*?"<>|' else "_" for ch in name)
    name = re.sub(r"\.{2,}", ".", name).strip(" .") or "file"
    encoded = name.encode("utf-8")
    if len(encoded) > 120:
        _stem, dot, ext = name.rpartition(".")
        ext = ext if dot and len(ext) <= 8 else ""
        name = encoded[: 120 - len(ext) - 1].decode("utf-8", "ignore") + ("." + ext if ext else "")
    return name


def name_problem(name: str) -> tuple[str, str, str] | None:
    """Why a dropped file's name is refused, or None. (code, 中文, English)."""
    if any(not ch.isprintable() for ch in name):
        return "hostile_name", "文件名含控制字符", "file name contains control characters"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return "hostile_name", "文件名过长", f"file name longer than {MAX_NAME_BYTES} bytes"
    parts = name.replace("\\", "/").split("/")
    if name.startswith("/") or any(p in (".", "..") or p.startswith("..") for p in parts):
        return "hostile_name", "文件名含路径跳转", "file name contains a path traversal"
    return None


def is_in_progress(name: str) -> bool:
    lower = name.lower()
    # Office lock files and our own temporary names, besides the uploaders' suffixes.
    return lower.endswith(IN_PROGRESS_SUFFIXES) or name.startswith(("~$", ".~lock.", ".tmp-"))


# ---- ingest -----------------------------------------------------------------------------------
def _batch_id(sha256: str) -> str:
    return sha256[:16]


def landing_files(settings: Settings, reg: Registration):
    lake = Lake.from_settings(settings)
    return lake.list_files(zones.landing_dir(reg.department, reg.resource))


def _ready_files(settings: Settings, reg: Registration) -> list[LakeFile]:
    now = now_utc()
    ready = []
    for f in landing_files(settings, reg):
        if is_in_progress(f.name):
            continue
        if (
            settings.landing_settle_seconds
            and f.mtime
            and (now - f.mtime).total_seconds() < settings.landing_settle_seconds
        ):
            continue
        ready.append(f)
    return ready


def detect_new_files(settings: Settings, reg: Registration) -> list[str]:
    """Landing files ready to ingest (not still uploading)."""
    return [f.path for f in _ready_files(settings, reg)]


def _sha256_stream(lake: Lake, full: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with lake.fs.open_input_stream(full) as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def ingest_file(
    settings: Settings, reg: Registration, landing: LakeFile | str, lake: Lake | None = None
) -> IngestOutcome:
    """Copy one landing file into raw with its manifest; recognise bytes already ingested.

    The landing file is read through the path it was listed under: on S3 a liaison can create a
    key such as ``a/../../raw/x.csv``; it is refused by name, but its bytes are still kept."""
    lake = lake or Lake.from_settings(settings)
    if isinstance(landing, str):
        landing = LakeFile(landing, 0, None, lake.fs_path(landing))
    landing_rel = landing.path
    prefix = zones.landing_dir(reg.department, reg.resource) + "/"
    source_name = landing_rel[len(prefix) :] if landing_rel.startswith(prefix) else posixpath.basename(landing_rel)
    sha, size = _sha256_stream(lake, landing.full)
    index_rel = zones.raw_index_path(reg.department, reg.resource, sha)
    previous = lake.read_json_or(index_rel)
    if previous:
        outcome = IngestOutcome(
            landing_rel,
            "duplicate",
            previous["batch_id"],
            sha,
            size,
            reason="already_ingested",
            reason_zh="相同内容的文件已于此前接收，本次不重复入湖",
            duplicate_of=previous.get("source_name"),
        )
        _delete_listed(lake, landing)
        write_drop_receipt(lake, reg, outcome.as_dict(), previous, tz=settings.timezone)
        return outcome

    batch_id = _batch_id(sha)
    received = now_utc()
    ingest_date = received.astimezone(UTC).date().isoformat()
    batch_rel = zones.raw_batch_dir(reg.department, reg.resource, ingest_date, batch_id)
    problem = name_problem(source_name)
    stored_name = safe_name(source_name.replace("/", "_"))
    status, reason_code, reason_zh, reason_en = "ingested", None, None, None
    if problem:
        status, (reason_code, reason_zh, reason_en) = "rejected", problem
    elif size == 0:
        status, reason_code, reason_zh, reason_en = (
            "rejected",
            "empty_file",
            "文件为空（0 字节）",
            "the file is empty (0 bytes)",
        )
    elif not fnmatch.fnmatch(source_name.lower(), reg.source.pattern.lower()):
        status, reason_code = "rejected", "unexpected_file_type"
        reason_zh = f"文件类型与登记不符（应为 {reg.source.pattern}）"
        reason_en = f"file name does not match the registered pattern {reg.source.pattern}"
    raw_rel = f"{batch_rel}/{stored_name}"
    with lake.fs.open_input_stream(landing.full) as src:
        copied_sha, _copied_size = lake.copy_stream(src, raw_rel)
    if copied_sha != sha:  # the file changed while we read it: still being written
        lake.delete(raw_rel)
        return IngestOutcome(
            landing_rel, "skipped", None, sha, size, reason="changing", reason_zh="文件仍在写入，稍后重试"
        )
    manifest = {
        "batch_id": batch_id,
        "department": reg.department,
        "resource": reg.resource,
        "source_name": source_name,
        "landing_path": landing_rel,
        "raw_path": raw_rel,
        "sha256": sha,
        "size": size,
        "received_at": received.isoformat(),
        "ingest_date": ingest_date,
        "format": reg.source.format,
        "status": status,
        "reason": reason_code,
        "reason_zh": reason_zh,
        "reason_en": reason_en,
    }
    lake.write_json(zones.manifest_path(batch_rel), manifest)
    # The index is written last: a crash before this point re-ingests into the same batch folder.
    lake.write_json(
        index_rel, {"batch_id": batch_id, "source_name": source_name, "manifest": zones.manifest_path(batch_rel)}
    )
    _delete_listed(lake, landing)
    return IngestOutcome(landing_rel, status, batch_id, sha, size, reason=reason_code, reason_zh=reason_zh)


def _delete_listed(lake: Lake, landing: LakeFile) -> None:
    try:
        lake.fs.delete_file(landing.full)
    except FileNotFoundError:
        pass


def ingest_resource(settings: Settings, reg: Registration) -> list[IngestOutcome]:
    """Ingest every ready landing file. One file's failure is reported and never blocks the others."""
    lake = Lake.from_settings(settings)
    outcomes = []
    for f in _ready_files(settings, reg):
        try:
            outcomes.append(ingest_file(settings, reg, f, lake))
        except OSError as exc:  # unreadable right now (e.g. vanished mid-upload): try again next run
            outcomes.append(IngestOutcome(f.path, "skipped", reason="unreadable", reason_zh=f"文件暂时无法读取：{exc}"))
    return outcomes
