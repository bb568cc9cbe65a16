"""Incremental extraction from a department database (registrations with ``source.kind: sql``).

``extract(settings, reg, conn)`` selects the rows whose watermark column is at or after the
recorded watermark minus the registration's ``lookback`` (from the registered table, or from the
registered query wrapped as a sub-select), ordered by watermark and key, and writes the ones not
extracted before as one UTF-8 CSV whose header is the registration's field titles. No new rows:
no file, and the watermark file is left as it is.

Durability: the watermark moves only once the rows are a raw batch. The landing folder is the
liaison's (they may delete or overwrite a file there, and ingest waits out the settle time), so
extract never writes there: it writes the CSV into its own staging folder
(``_staging/extract/<dept>/<res>/<res>_<from>-<to>_<sha>.csv``), records the extraction as
``pending`` in the watermark file, hands the file to :func:`citylake.stages.ingest.ingest_file`
(raw copy, manifest, checksum index; the staging file is removed) and, once the index names an
``ingested`` batch with the same SHA-256, writes the new watermark. A run killed at any point is
finished by the next one: a pending extraction whose batch is in raw is committed, one whose
staging file is still there is ingested first, anything else in staging is dropped and its rows
are read again (the watermark did not move), so nothing is lost and no rows become two batches.

Lookback: rows committed late with a stamp older than the recorded watermark (a long transaction,
a clock behind) are missed by a plain ``> watermark``. Each run therefore reads the window
``[watermark - lookback, …)`` again and skips the rows it extracted before: the watermark file keeps
a short hash of every row read in the window (its written cells and its watermark), so a re-read
of known rows writes nothing and a late row in the window — or a row changed without a new stamp —
is extracted. A hash of each row rather than only its key is kept because an already extracted key
can come back changed. Without ``lookback`` the window is the watermark itself, which still takes
rows committed later with a stamp *equal* to the recorded one. A row stamped earlier than the
window is missed: ``lookback`` must cover the longest delay between a row's stamp and its commit.
Duplicates by key across batches (an update re-read in the window) are resolved by curate's winner
rule. Rows whose watermark is NULL are never extracted (they cannot be ordered).
"""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import hashlib
import io
import posixpath
import re
import tempfile
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from urllib.parse import unquote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine

from citylake.core import zones
from citylake.core.lake import Lake, now_utc
from citylake.core.registry import Registration, SqlSource, normalize_header
from citylake.core.settings import Settings
from citylake.stages.ingest import ingest_file

HISTORY_KEEP = 50
BEIJING = ZoneInfo("Asia/Shanghai")
# Rows between two trims of the window's row hashes while reading (bounds memory on a first run).
TRIM_EVERY = 10_000


class ExtractError(RuntimeError):
    """Extraction failed; the message names the resource and the reason."""


@dataclass
class ExtractResult:
    resource: str
    rows: int  # rows written into this run's batch
    raw_path: str | None  # lake-relative path of the batch's file in raw; None when there were no new rows
    batch_id: str | None
    watermark_before: object | None
    watermark_after: object | None
    columns: dict[str, str] = field(default_factory=dict)  # field name -> source column
    missing_fields: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    reread: int = 0  # rows of the lookback window read again and skipped: extracted before
    recovered: dict | None = None  # an interrupted earlier extraction finished first: batch_id, rows

    def as_dict(self) -> dict:
        out = asdict(self)
        out["watermark_before"] = _jsonable(self.watermark_before)
        out["watermark_after"] = _jsonable(self.watermark_after)
        return out


# ---- connection URIs ----------------------------------------------------------------------------
_SCHEME_ALIASES = {"postgres": "postgresql", "postgresql": "postgresql", "mysql": "mysql+pymysql"}


def sqlalchemy_url(uri: str) -> str:
    """Turn an Airflow connection URI (``Connection.get_uri()``) into a SQLAlchemy URL.

    Airflow writes ``postgres://`` (SQLAlchemy wants ``postgresql://``), percent-encodes
    a SQLite file path (``sqlite:///%2Fvar%2Fsrc.db``) and may append ``__extra__``.
    A URI that already is a SQLAlchemy URL passes through unchanged.
    """
    parts = urlsplit(uri)
    scheme = _SCHEME_ALIASES.get(parts.scheme, parts.scheme)
    query = "&".join(p for p in parts.query.split("&") if p and not p.startswith("__extra__="))
    if scheme == "sqlite":
        rest = uri.split("://", 1)[1].split("?", 1)[0]
        if rest.startswith("/"):
            rest = rest[1:]  # the empty-host slash; what is left is the path
        path = unquote(rest)
        return f"sqlite:///{path}" + (f"?{query}" if query else "")
    return urlunsplit((scheme, parts.netloc, parts.path, query, parts.fragment))


def _engine(conn):
    if isinstance(conn, (Engine, Connection)):
        return conn, False
    return create_engine(sqlalchemy_url(str(conn))), True


# ---- watermark state ----------------------------------------------------------------------------
def watermark_path(reg: Registration) -> str:
    return zones.watermark_path(reg.department, reg.resource)


def _jsonable(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return str(value)


def _encode(value) -> dict:
    """A watermark value with its type, so it can be bound back as the same Python type."""
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("decimal", Decimal),
                        ("datetime", datetime), ("date", date), ("time", time)):
        if isinstance(value, types):
            return {"type": kind, "value": _jsonable(value)}
    return {"type": "str", "value": str(value)}


def _decode(state: dict | None):
    if not state:
        return None
    kind, value = state["type"], state["value"]
    return {
        "bool": bool, "int": int, "float": float, "decimal": Decimal, "str": str,
        "datetime": datetime.fromisoformat, "date": date.fromisoformat, "time": time.fromisoformat,
    }[kind](value)


def read_watermark(settings: Settings, reg: Registration, lake: Lake | None = None):
    """The last recorded watermark value (typed), or None before the first extraction."""
    lake = lake or Lake.from_settings(settings)
    state = lake.read_json_or(watermark_path(reg))
    return _decode((state or {}).get("watermark"))


# ---- SQL ----------------------------------------------------------------------------------------
def _quote_table(preparer, name: str) -> str:
    return ".".join(preparer.quote(part) for part in name.split("."))


def build_select(reg: Registration, dialect, has_watermark: bool, key_columns: list[str]) -> str:
    """The rows at or after ``:watermark`` (the window's start), or every stamped row on a first run."""
    src: SqlSource = reg.source  # type: ignore[assignment]
    prep = dialect.identifier_preparer
    wm = prep.quote(src.watermark)
    source = _quote_table(prep, src.table) if src.table else f"({src.query.strip().rstrip(';')}) citylake_src"
    where = f"{wm} >= :watermark" if has_watermark else f"{wm} IS NOT NULL"
    order = ", ".join([wm, *(prep.quote(c) for c in key_columns if c != src.watermark)])
    return f"SELECT * FROM {source} WHERE {where} ORDER BY {order}"


# ---- the lookback window ------------------------------------------------------------------------
def _iso_like(stamp: datetime, like: str) -> str:
    """``stamp`` written the way the text watermark ``like`` is (separator, precision), so the
    database compares the two as it compares its own values."""
    if len(like) == 10:
        return stamp.date().isoformat()
    timespec = "minutes" if len(like) == 16 else "microseconds" if like[19:20] in (".", ",") else "seconds"
    return stamp.isoformat(sep=like[10], timespec=timespec)


def window_start(reg: Registration, value):
    """The first watermark value the window after ``value`` covers: ``value - lookback``."""
    src: SqlSource = reg.source  # type: ignore[assignment]
    back = src.lookback_window()
    if back is None or value is None:
        return value
    if isinstance(back, timedelta):
        if isinstance(value, datetime):
            return value - back
        if isinstance(value, date):
            return value - timedelta(days=-(-back // timedelta(days=1)))  # whole days, rounded up
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return _iso_like(datetime.fromisoformat(value) - back, value)
    elif isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return value - (Decimal(str(back)) if isinstance(value, Decimal) else back)
    want = "a number" if isinstance(back, timedelta) else "a duration such as '2h'"
    raise ExtractError(f"{reg.resource}: lookback {src.lookback!r} does not apply to watermark {src.watermark!r} "
                       f"value {_jsonable(value)!r} ({type(value).__name__}); give {want}")


def _row_hash(cells: list[str], stamp: str) -> str:
    return hashlib.blake2b("\x1f".join([stamp, *cells]).encode("utf-8"), digest_size=8).hexdigest()


def _map_columns(reg: Registration, columns: list[str]) -> tuple[dict[str, str], list[str], list[str]]:
    """field name -> source column (matched by title, name or alias), missing fields, ignored columns."""
    headers = reg.header_map()
    mapping: dict[str, str] = {}
    for col in columns:
        name = headers.get(normalize_header(col))
        if name and name not in mapping:
            mapping[name] = col
    missing = [f.name for f in reg.fields if f.name not in mapping]
    ignored = [c for c in columns if c not in mapping.values()]
    return mapping, missing, ignored


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.tzinfo is not None:  # conform reads local (Beijing) wall-clock time
            value = value.astimezone(BEIJING).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


def _slug(value) -> str:
    text = re.sub(r"[^0-9A-Za-z]+", "", _cell(value))
    return text[:32] or "x"


def extract_name(reg: Registration, first, last, sha256: str) -> str:
    """Unique per content: two extractions with different rows never share a name."""
    return f"{reg.resource}_{_slug(first)}-{_slug(last)}_{sha256[:12]}.csv"


def staging_dir(reg: Registration) -> str:
    return zones.staging_dir("extract", reg.department, reg.resource)


@dataclass
class _Read:
    rows: int = 0  # rows written
    reread: int = 0  # rows of the window skipped: extracted before
    first: object = None  # watermark of the first and last row written
    last: object = None
    after: object = None  # the greatest watermark read (the next recorded watermark)
    seen: list[str] = field(default_factory=list)  # hashes of the rows read in the next window
    mapping: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def extract(settings: Settings, reg: Registration, conn) -> ExtractResult:
    """Extract the rows not extracted before into one raw batch, then move the watermark on.

    ``conn`` is a SQLAlchemy Engine/Connection or a connection URI (SQLAlchemy form or
    Airflow's ``Connection.get_uri()`` form).
    """
    if not isinstance(reg.source, SqlSource):
        raise ExtractError(f"{reg.resource}: not a sql source (kind {reg.source.kind!r})")
    lake = Lake.from_settings(settings)
    state, recovered = _recover(settings, reg, lake, lake.read_json_or(watermark_path(reg)) or {})
    before = _decode(state.get("watermark"))
    # A watermark file written before row hashes were kept: every row up to its watermark was extracted.
    seen = set(state["seen"]) if "seen" in state else None

    bind, owned = _engine(conn)
    try:
        with tempfile.TemporaryFile() as tmp:
            ctx = bind.connect() if isinstance(bind, Engine) else contextlib.nullcontext(bind)
            with ctx as db:
                read = _extract_rows(db, reg, before, seen, tmp)
            if read.rows == 0:
                return ExtractResult(reg.resource, 0, None, None, before, before, read.mapping, read.missing,
                                     read.ignored, read.reread, recovered)
            tmp.seek(0)
            sha = hashlib.file_digest(tmp, "sha256").hexdigest()
            name = extract_name(reg, read.first, read.last, sha)
            if not fnmatch.fnmatch(name.lower(), reg.source.pattern.lower()):
                raise ExtractError(f"{reg.resource}: the extracted file {name} does not match the registered "
                                   f"pattern {reg.source.pattern!r}, which ingest would refuse")
            staged = Lake.join(staging_dir(reg), name)
            tmp.seek(0)
            staged_sha, _size = lake.copy_stream(tmp, staged)
    finally:
        if owned:
            bind.dispose()
    if staged_sha != sha:
        lake.delete(staged)
        raise ExtractError(f"{reg.resource}: the staged file {name} does not have the bytes extracted")

    entry = {"extracted_at": now_utc().isoformat(), "rows": read.rows, "reread": read.reread, "file": name,
             "from": _jsonable(read.first), "to": _jsonable(read.last)}
    pending = {"sha256": sha, "staging": staged, "watermark": _encode(read.after), "seen": read.seen, "entry": entry}
    # Recorded before ingest, so that a run killed after ingest is finished by the next one instead
    # of extracting the same rows again (by then perhaps with newer ones: other bytes, a second batch).
    lake.write_json(watermark_path(reg), {**state, "pending": pending})
    manifest = _ingest(settings, reg, lake, staged, sha)
    _commit(lake, reg, state, pending, manifest)
    return ExtractResult(reg.resource, read.rows, manifest["raw_path"], manifest["batch_id"], before, read.after,
                         read.mapping, read.missing, read.ignored, read.reread, recovered)


# ---- durability ---------------------------------------------------------------------------------
def _durable(lake: Lake, reg: Registration, sha256: str) -> dict | None:
    """The manifest of the raw batch holding these bytes, if there is one and it was ingested."""
    index = lake.read_json_or(zones.raw_index_path(reg.department, reg.resource, sha256))
    manifest = lake.read_json_or(index["manifest"]) if index and index.get("manifest") else None
    if manifest and manifest.get("status") == "ingested" and manifest.get("sha256") == sha256:
        return manifest
    return None


def _ingest(settings: Settings, reg: Registration, lake: Lake, staged: str, sha256: str) -> dict:
    """Ingest the staged file; its raw batch's manifest, or ExtractError (the watermark stays)."""
    outcome = ingest_file(settings, reg, staged, lake)
    manifest = _durable(lake, reg, sha256) if outcome.status in ("ingested", "duplicate") else None
    if manifest is None or outcome.sha256 != sha256:
        why = f"{outcome.status}" + (f": {outcome.reason}" if outcome.reason else "")
        if outcome.batch_id:
            why += f", batch {outcome.batch_id}"
        raise ExtractError(f"{reg.resource}: the extracted file {posixpath.basename(staged)} did not become an "
                           f"ingested raw batch ({why}); the watermark was not moved")
    return manifest


def _commit(lake: Lake, reg: Registration, state: dict, pending: dict, manifest: dict) -> dict:
    """Write the watermark of a pending extraction whose batch is in raw; the new state."""
    src: SqlSource = reg.source  # type: ignore[assignment]
    entry = {**pending["entry"], "batch_id": manifest["batch_id"], "raw_path": manifest["raw_path"]}
    history = list(state.get("history", []))[-(HISTORY_KEEP - 1):]
    new = {
        "resource": reg.resource,
        "conn_id": src.conn_id,
        "source": src.table or "query",
        "column": src.watermark,
        "lookback": src.lookback,
        "watermark": pending["watermark"],
        "seen": pending["seen"],
        "updated_at": now_utc().isoformat(),
        "last_batch": manifest["batch_id"],
        "last_raw_path": manifest["raw_path"],
        "history": [*history, entry],
    }
    lake.write_json(watermark_path(reg), new)
    return new


def _recover(settings: Settings, reg: Registration, lake: Lake, state: dict) -> tuple[dict, dict | None]:
    """Finish or drop what an interrupted run left: (the state to extract from, the batch finished)."""
    pending = state.get("pending")
    recovered = None
    if pending:
        manifest = _durable(lake, reg, pending["sha256"])
        if manifest is None and lake.exists(pending["staging"]):
            manifest = _ingest(settings, reg, lake, pending["staging"], pending["sha256"])
        if manifest is not None:
            state = _commit(lake, reg, state, pending, manifest)
            recovered = {"batch_id": manifest["batch_id"], "rows": pending["entry"]["rows"]}
        else:  # never reached raw: its rows are read again, the watermark did not move
            state = {k: v for k, v in state.items() if k != "pending"}
            lake.write_json(watermark_path(reg), state)
    # Anything left in staging was never committed: its rows are past the watermark and read again.
    for f in lake.list_files(staging_dir(reg)):
        lake.delete(f.path)
    return state, recovered


# ---- reading ------------------------------------------------------------------------------------
def _extract_rows(db, reg: Registration, before, seen: set[str] | None, tmp) -> _Read:
    """Write the rows not extracted before as CSV into the binary file ``tmp``.

    ``seen``: hashes of the rows read in the window last time; None for a watermark file that has
    none (then every row up to ``before`` counts as extracted)."""
    from sqlalchemy import text

    src: SqlSource = reg.source  # type: ignore[assignment]
    prep = db.dialect.identifier_preparer
    source = _quote_table(prep, src.table) if src.table else f"({src.query.strip().rstrip(';')}) citylake_src"
    try:  # the source's column names, from a query that returns nothing
        cols = list(db.execute(text(f"SELECT * FROM {source} WHERE 1 = 0")).keys())
    except Exception as exc:
        raise ExtractError(f"{reg.resource}: cannot read source {src.table or 'query'} via connection "
                           f"{src.conn_id!r}: {exc.__class__.__name__}: {exc}") from exc
    if src.watermark not in cols:
        raise ExtractError(f"{reg.resource}: watermark column {src.watermark!r} is not among the source "
                           f"columns {cols}")
    read = _Read(after=before)
    read.mapping, read.missing, read.ignored = _map_columns(reg, cols)
    absent_keys = [k for k in reg.key if k not in read.mapping]
    if absent_keys:
        raise ExtractError(f"{reg.resource}: the source has no column for key field(s) {absent_keys}; "
                           f"its columns are {cols}")
    start = window_start(reg, before)
    sql = build_select(reg, db.dialect, before is not None, [read.mapping[k] for k in reg.key])
    params = {"watermark": start} if before is not None else {}
    result = db.execution_options(stream_results=True).execute(text(sql), params)

    fields = [f for f in reg.fields if f.name in read.mapping]
    idx = [cols.index(read.mapping[f.name]) for f in fields]
    wm_index = cols.index(src.watermark)
    window: deque[tuple[object, str]] = deque()  # (watermark, hash) of the rows read, oldest first
    out = io.TextIOWrapper(tmp, encoding="utf-8", newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([f.title for f in fields])
    n = 0
    for partition in result.partitions(5000):
        for row in partition:
            wm = row[wm_index]
            cells = [_cell(row[i]) for i in idx]
            digest = _row_hash(cells, _cell(wm))
            window.append((wm, digest))
            read.after = wm  # rows come ordered by the watermark
            n += 1
            if n % TRIM_EVERY == 0:
                _trim(reg, window, wm)
            known = (digest in seen) if seen is not None else (before is not None and wm <= before)
            if known:
                read.reread += 1
                continue
            writer.writerow(cells)
            if read.rows == 0:
                read.first = wm
            read.last = wm
            read.rows += 1
    out.flush()
    out.detach()  # leave ``tmp`` open for the caller
    if read.after is not None and before is not None and read.after < before:
        read.after = before  # only late rows, all older than the recorded watermark
    _trim(reg, window, read.after)
    read.seen = [digest for _, digest in window]
    return read


def _trim(reg: Registration, window: deque, newest) -> None:
    """Drop the hashes of rows before the window that follows ``newest``."""
    start = window_start(reg, newest)
    while window and window[0][0] < start:
        window.popleft()
