"""Incremental extraction from a department database (registrations with ``source.kind: sql``).

``extract(settings, reg, conn)`` selects the rows whose watermark column is greater
than the last recorded watermark (from the registered table, or from the
registered query wrapped as a sub-select), writes them as one UTF-8 CSV landing
file ``landing/<dept>/<res>/<res>_<from>-<to>.csv`` whose header is the
registration's field titles, and only after that write succeeded records the
new watermark in the resource's watermark file in raw
(:func:`citylake.core.zones.watermark_path`). No new rows: no file.

From there the file is an ordinary landing file: ingest, conform, check, curate.
A crash between the landing write and the watermark write re-extracts the same
rows into the same file name with the same bytes (rows are ordered by
watermark and key), which ingest recognises by checksum, so nothing doubles.

Rows whose watermark is NULL are never extracted (they cannot be ordered).
Rows committed later with a watermark *equal to* the recorded one are missed —
the usual contract of watermark extraction: the source must stamp updates with
a strictly increasing value (an update time or a sequence).
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from urllib.parse import unquote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine

from citylake.core import zones
from citylake.core.lake import Lake, now_utc
from citylake.core.registry import Registration, SqlSource, normalize_header
from citylake.core.settings import Settings

HISTORY_KEEP = 50
BEIJING = ZoneInfo("Asia/Shanghai")


class ExtractError(RuntimeError):
    """Extraction failed; the message names the resource and the reason."""


@dataclass
class ExtractResult:
    resource: str
    rows: int
    landing_path: str | None  # lake-relative; None when there were no new rows
    watermark_before: object | None
    watermark_after: object | None
    columns: dict[str, str] = field(default_factory=dict)  # field name -> source column
    missing_fields: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

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
    src: SqlSource = reg.source  # type: ignore[assignment]
    prep = dialect.identifier_preparer
    wm = prep.quote(src.watermark)
    source = _quote_table(prep, src.table) if src.table else f"({src.query.strip().rstrip(';')}) citylake_src"
    where = f"{wm} > :watermark" if has_watermark else f"{wm} IS NOT NULL"
    order = ", ".join([wm, *(prep.quote(c) for c in key_columns if c != src.watermark)])
    return f"SELECT * FROM {source} WHERE {where} ORDER BY {order}"


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


def landing_name(reg: Registration, first, last) -> str:
    return f"{reg.resource}_{_slug(first)}-{_slug(last)}.csv"


def extract(settings: Settings, reg: Registration, conn) -> ExtractResult:
    """Extract rows newer than the recorded watermark into one landing CSV.

    ``conn`` is a SQLAlchemy Engine/Connection or a connection URI (SQLAlchemy form or
    Airflow's ``Connection.get_uri()`` form).
    """
    if not isinstance(reg.source, SqlSource):
        raise ExtractError(f"{reg.resource}: not a sql source (kind {reg.source.kind!r})")
    src = reg.source
    lake = Lake.from_settings(settings)
    before = read_watermark(settings, reg, lake)

    bind, owned = _engine(conn)
    try:
        with tempfile.TemporaryFile() as tmp:
            ctx = bind.connect() if isinstance(bind, Engine) else contextlib.nullcontext(bind)
            with ctx as db:
                rows, first, last, mapping, missing, ignored = _extract_rows(db, reg, before, tmp)
            if rows == 0:
                return ExtractResult(reg.resource, 0, None, before, before, mapping, missing, ignored)
            landing_rel = Lake.join(zones.landing_dir(reg.department, reg.resource), landing_name(reg, first, last))
            tmp.seek(0)
            lake.copy_stream(tmp, landing_rel)
    finally:
        if owned:
            bind.dispose()

    # The landing file is written: only now move the watermark on.
    state = lake.read_json_or(watermark_path(reg)) or {}
    history = list(state.get("history", []))[-(HISTORY_KEEP - 1):]
    entry = {"extracted_at": now_utc().isoformat(), "rows": rows, "file": landing_rel,
             "from": _jsonable(first), "to": _jsonable(last)}
    lake.write_json(watermark_path(reg), {
        "resource": reg.resource,
        "conn_id": src.conn_id,
        "source": src.table or "query",
        "column": src.watermark,
        "watermark": _encode(last),
        "updated_at": entry["extracted_at"],
        "last_file": landing_rel,
        "history": [*history, entry],
    })
    return ExtractResult(reg.resource, rows, landing_rel, before, last, mapping, missing, ignored)


def _extract_rows(db, reg: Registration, before, tmp):
    """Write the new rows as CSV into the binary file ``tmp``; return counts and the mapping."""
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
    mapping, missing, ignored = _map_columns(reg, cols)
    absent_keys = [k for k in reg.key if k not in mapping]
    if absent_keys:
        raise ExtractError(f"{reg.resource}: the source has no column for key field(s) {absent_keys}; "
                           f"its columns are {cols}")
    sql = build_select(reg, db.dialect, before is not None, [mapping[k] for k in reg.key])
    params = {"watermark": before} if before is not None else {}
    result = db.execution_options(stream_results=True).execute(text(sql), params)

    fields = [f for f in reg.fields if f.name in mapping]
    idx = [cols.index(mapping[f.name]) for f in fields]
    wm_index = cols.index(src.watermark)
    first = last = None
    rows = 0
    out = io.TextIOWrapper(tmp, encoding="utf-8", newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([f.title for f in fields])
    for partition in result.partitions(5000):
        for row in partition:
            writer.writerow([_cell(row[i]) for i in idx])
            wm = row[wm_index]
            if first is None:
                first = wm
            last = wm  # rows come ordered by the watermark
            rows += 1
    out.flush()
    out.detach()  # leave ``tmp`` open for the caller
    return rows, first, last, mapping, missing, ignored
