"""Ingest: a liaison's drop becomes a raw batch — original bytes, a manifest, a checksum index.

Each function is a plain function of (settings, registration), idempotent, and callable from
the CLI, the demo and the Airflow DAGs alike. A file whose bytes were ingested before is
recognised by checksum, receipted as a duplicate and not ingested again — unless that batch was
refused, failed or blocked: then the re-send reopens it (:func:`reopen`, also behind
``citylake reprocess``). A drop that cannot be a
batch (hostile name, empty, wrong type) is still kept in raw, with the reason in its manifest.
"""

from __future__ import annotations

import fnmatch
import hashlib
import posixpath
import re
import unicodedata
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from citylake.core import zones
from citylake.core.lake import Lake, LakeFile, now_utc
from citylake.core.lease import default_label
from citylake.core.ledger import REOPENABLE, BatchState, Ledger, batch_state
from citylake.core.registry import Registration
from citylake.core.settings import Settings
from citylake.stages.receipts import write_drop_receipt

# Names that uploaders use while a transfer is still running.
IN_PROGRESS_SUFFIXES = (".part", ".partial", ".tmp", ".uploading", ".crdownload", ".filepart", ".!sync")
MAX_NAME_BYTES = 200
CLAIMED = "claimed"  # an index entry whose batch is being copied (completed when the manifest is written)


@dataclass
class IngestOutcome:
    landing_path: str
    status: str  # ingested | duplicate | reprocessed (a re-send reopened its batch) | rejected | skipped
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


def refusal(reg: Registration, source_name: str, size: int) -> tuple[str, str, str] | None:
    """Why a drop named ``source_name`` of ``size`` bytes cannot be a batch of ``reg``, or None.
    (code, 中文, English). Judged at ingest, and again when a refused batch is reprocessed (the
    registration may have been corrected since) or its bytes are sent again under another name."""
    problem = name_problem(source_name)
    if problem:
        return problem
    if size == 0:
        return "empty_file", "文件为空（0 字节）", "the file is empty (0 bytes)"
    if not fnmatch.fnmatch(source_name.lower(), reg.source.pattern.lower()):
        return ("unexpected_file_type", f"文件类型与登记不符（应为 {reg.source.pattern}）",
                f"file name does not match the registered pattern {reg.source.pattern}")
    return None


def ingest_file(
    settings: Settings, reg: Registration, landing: LakeFile | str, lake: Lake | None = None
) -> IngestOutcome:
    """Copy one landing file into raw with its manifest; recognise bytes already ingested.

    The landing file is read through the path it was listed under: on S3 a liaison can create a
    key such as ``a/../../raw/x.csv``; it is refused by name, but its bytes are still kept.

    Bytes ingested before are a duplicate, unless their batch was refused, failed decoding or was
    blocked: a re-send then means the cause was fixed, and the batch is reopened (:func:`reopen`)
    instead. The batch folder is claimed in the checksum index before the copy, so a run
    interrupted and resumed (even across midnight, when the date folder would differ) finishes the
    same batch in the same folder: one batch id, one manifest. The landing file is deleted only if
    it is still the object that was copied (:meth:`Lake.delete_if_unchanged`)."""
    lake = lake or Lake.from_settings(settings)
    if isinstance(landing, str):
        landing = LakeFile(landing, 0, None, lake.fs_path(landing))
    landing_rel = landing.path
    prefix = zones.landing_dir(reg.department, reg.resource) + "/"
    source_name = landing_rel[len(prefix) :] if landing_rel.startswith(prefix) else posixpath.basename(landing_rel)
    stamp = lake.stamp(landing)  # before reading: a later change shows in it, and the file stays
    sha, size = _sha256_stream(lake, landing.full)
    index_rel = zones.raw_index_path(reg.department, reg.resource, sha)
    previous = lake.read_json_or(index_rel)
    if previous and previous.get("state") != CLAIMED:
        state = batch_state(lake, reg, lake.read_json(previous["manifest"]))
        if state.status in REOPENABLE:
            done = reopen(lake, reg, state, trigger="resent", source_name=source_name, landing_path=landing_rel,
                          size=size)
            lake.delete_if_unchanged(landing, stamp, sha)
            return IngestOutcome(landing_rel, "reprocessed" if done.now != "rejected" else "rejected",
                                 state.batch_id, sha, size, reason=done.reason, reason_zh=done.reason_zh)
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
        lake.delete_if_unchanged(landing, stamp, sha)
        write_drop_receipt(lake, reg, outcome.as_dict(), previous, tz=settings.timezone)
        return outcome

    batch_id = _batch_id(sha)
    if previous:  # a run interrupted after claiming this batch: finish it where it started
        received = datetime.fromisoformat(previous["received_at"])
        batch_rel = posixpath.dirname(previous["manifest"])
    else:
        received = now_utc()
        batch_rel = zones.raw_batch_dir(reg.department, reg.resource, received.astimezone(UTC).date().isoformat(),
                                        batch_id)
        lake.write_json(index_rel, {"batch_id": batch_id, "source_name": source_name, "state": CLAIMED,
                                    "received_at": received.isoformat(), "manifest": zones.manifest_path(batch_rel)})
    ingest_date = batch_rel.rsplit("ingest_date=", 1)[-1].split("/", 1)[0]
    stored_name = safe_name(source_name.replace("/", "_"))
    problem = refusal(reg, source_name, size)
    status, (reason_code, reason_zh, reason_en) = ("rejected", problem) if problem else ("ingested", (None,) * 3)
    raw_rel = f"{batch_rel}/{stored_name}"
    with lake.fs.open_input_stream(landing.full) as src:
        copied_sha, _copied_size = lake.copy_stream(src, raw_rel)
    if copied_sha != sha:  # the file changed while we read it: still being written
        lake.delete(raw_rel)
        if not previous:
            lake.delete(index_rel)
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
    # The index entry is completed last: until then a re-run resumes this batch (above).
    lake.write_json(
        index_rel, {"batch_id": batch_id, "source_name": source_name, "manifest": zones.manifest_path(batch_rel)}
    )
    lake.delete_if_unchanged(landing, stamp, sha)
    return IngestOutcome(landing_rel, status, batch_id, sha, size, reason=reason_code, reason_zh=reason_zh)


# ---- reopening a batch ----------------------------------------------------------------------------
@dataclass
class Reopened:
    batch_id: str
    was: str  # rejected | failed | blocked
    now: str  # where it stands after: ingested (conform next) | conformed (check next) | rejected (still)
    trigger: str  # reprocess | resent
    reason: str | None = None  # when still rejected: why
    reason_zh: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def reopen(lake: Lake, reg: Registration, state: BatchState, *, trigger: str, by: str | None = None,
           source_name: str | None = None, landing_path: str | None = None, size: int | None = None) -> Reopened:
    """Send a refused, failed or blocked batch back to the step that stopped it, from its raw bytes.

    rejected → judged again by :func:`refusal` under the current registration (and the new name of
    a re-send); if it passes now it is ``ingested`` and conform takes it. failed → its failure
    marker goes and conform decodes it again. blocked → its quality marker goes and check judges it
    again (under the gate as it is now). The manifest keeps the batch's history (each event: when,
    what, by whom, what it was and why), the receipt written before moves to ``receipts/earlier/``
    and the next receipt step writes one that says the batch was reprocessed. The manifest is
    written first: a crash after it leaves the batch as it was, with one more event, and a second
    reprocess finishes the work."""
    was = state.status
    if was not in REOPENABLE:
        raise ValueError(f"{reg.resource}: batch {state.batch_id} is {was}; only a rejected, failed or blocked "
                         "batch is reprocessed")
    m = dict(state.manifest)
    at = now_utc().isoformat()
    event = {"at": at, "event": trigger, "was": was, "why": _why_stopped(state), "by": by or default_label()}
    now = {"rejected": "ingested", "failed": "ingested", "blocked": "conformed"}[was]
    problem = None
    if was == "rejected":
        name = source_name or m["source_name"]
        problem = refusal(reg, name, m["size"] if size is None else size)
        if source_name and source_name != m["source_name"]:
            event["file"] = source_name
            m["source_name"] = source_name
            m["landing_path"] = landing_path or m.get("landing_path")
        if problem:
            now = "rejected"
            m["reason"], m["reason_zh"], m["reason_en"] = problem
        else:
            m.update(status="ingested", reason=None, reason_zh=None, reason_en=None)
    elif source_name:
        event["file"] = source_name
    event["now"] = now
    m["history"] = [*m.get("history", []), event]
    lake.write_json(zones.manifest_path(posixpath.dirname(m["raw_path"])), m)
    if was == "failed":
        lake.delete(zones.failure_marker(reg.resource, state.batch_id))
    elif was == "blocked":
        lake.delete(zones.quality_marker(reg.resource, state.batch_id))
    base = zones.receipt_base(reg.department, reg.resource, state.batch_id)
    earlier = zones.earlier_receipt_base(reg.department, reg.resource, state.batch_id, at)
    for ext in (".json", ".txt"):
        if lake.exists(base + ext):
            lake.move(base + ext, earlier + ext)
    return Reopened(state.batch_id, was, now, trigger, *(problem[:2] if problem else (None, None)))


def _why_stopped(state: BatchState) -> str | None:
    if state.status == "rejected":
        return state.manifest.get("reason")
    if state.status == "failed":
        return state.failure.get("code")
    failures = (state.quality or {}).get("blocking_failures") or []
    return "; ".join(str(f.get("expectation") or f.get("description_en") or f) if isinstance(f, dict) else str(f)
                     for f in failures) or "quality gate"


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


def reprocess_batches(settings: Settings, reg: Registration, *, batch_ids: list[str] | None = None,
                      states: tuple[str, ...] = (), by: str | None = None) -> list[Reopened]:
    """Reopen the named batches, or every batch in one of ``states`` (rejected, failed, blocked).
    A named batch that is not reopenable, or unknown, is a :class:`ValueError` before anything
    changes."""
    lake = Lake.from_settings(settings)
    ledger = Ledger.read(lake, reg)
    if batch_ids:
        chosen = [ledger.batch(b) for b in batch_ids]  # LookupError names an unknown one
        stuck = [f"{b.batch_id} is {b.status}" for b in chosen if b.status not in REOPENABLE]
        if stuck:
            raise ValueError(f"{reg.resource}: only a rejected, failed or blocked batch is reprocessed; "
                             + ", ".join(stuck))
    else:
        chosen = [b for b in ledger.batches if b.status in states]
    return [reopen(lake, reg, b, trigger="reprocess", by=by) for b in chosen]
