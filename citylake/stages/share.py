"""Share: who may have which rows of which resource, under the directory's share attributes.

一次汇集、多次共享 — the rules the data service (``citylake serve``, :mod:`citylake.drivers.service`)
answers by, kept here so the service only wires them to HTTP:

* **the public** sees open resources only (开放属性 向社会开放, and not 不予共享), and of them the
  ``public`` fields only (:func:`open_fields`): never a personal, restricted or internal one;
* **a department** (an API key held by it) reads a resource under one *basis*:

  - ``own`` — its own resources: every shared field, personal fields in the clear (the data is its own);
  - ``无条件共享`` — every shared field, personal fields masked as curated masks them;
  - ``grant`` — a 有条件共享 resource: only the fields an approved request names, personal fields
    masked unless the request asked for them in the clear and the provider approved it;
  - 不予共享 resources are refused with the legal basis from the registration;
* **an administrator** of the centre decides requests and reads the audit log; data comes to
  administrators only as to any department without a grant.

Restricted fields are never shared. Every answer to a data request is written to the audit log
(:func:`audit`): who, which resource, which fields, how many rows, when, under which grant.

Rows are read with :func:`citylake.stages.query.query` (DuckDB over the curated tables): the masked
columns as the default role sees them, and the columns a basis shows in the clear as the ``steward``
role does (from the standardized rows they were curated from), matched on ``_record_key``.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from citylake.core import tables
from citylake.core.access import STEWARD
from citylake.core.registry import Registration
from citylake.core.settings import Settings
from citylake.stages import query as q
from citylake.stages.publish.models import ApiKey, AuditEntry, ShareRequest

UNCONDITIONAL, CONDITIONAL, NOT_SHARED = "无条件共享", "有条件共享", "不予共享"
ADMIN = "admin"
PUBLIC = "public"
KEY_PREFIX = "clk_"  # lets secret scanners recognise a leaked key
HOLDER_RE = re.compile(r"^[a-z][a-z0-9_]{1,30}$")
MAX_PAGE = 1000  # rows per page, at most


class ShareError(Exception):
    """A request the rules refuse or cannot answer; ``status`` is the HTTP status it maps to."""

    status = 400

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class NotFound(ShareError):
    status = 404


class Forbidden(ShareError):
    status = 403


# ---- keys -------------------------------------------------------------------------------------------
def key_digest(key: str) -> str:
    """SHA-256 of a key: keys are 32 random bytes, so no salt or stretching is needed to keep the
    digest from giving the key back."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def issue_key(session: Session, holder: str, *, admin: bool = False, label: str | None = None) -> str:
    """A new key for ``holder`` (a department code; ``admin`` for an administrator): returned once,
    only its digest kept."""
    holder = ADMIN if admin else holder
    if not admin and (not HOLDER_RE.match(holder or "") or holder in (ADMIN, PUBLIC)):
        raise ShareError(f"department code {holder!r} is not a safe identifier (expected {HOLDER_RE.pattern})")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(holder=holder, is_admin=admin, key_hash=key_digest(key), key_prefix=key[:10], label=label,
                       created_at=datetime.now(UTC)))
    session.flush()
    return key


def find_key(session: Session, key: str) -> ApiKey | None:
    """The live key ``key`` is, or None (unknown or revoked); looked up by its digest."""
    digest = key_digest(key)
    return session.scalars(select(ApiKey).where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))).first()


def revoke_key(session: Session, prefix: str) -> int:
    """Revoke the live keys whose first characters are ``prefix`` (as ``keys list`` shows them)."""
    rows = session.scalars(select(ApiKey).where(ApiKey.key_prefix == prefix, ApiKey.revoked_at.is_(None))).all()
    for row in rows:
        row.revoked_at = datetime.now(UTC)
    return len(rows)


@dataclass(frozen=True)
class Caller:
    """Who is calling: a department, an administrator, or the public (no key)."""

    holder: str  # department code, "admin" or "public"
    is_admin: bool = False

    @property
    def is_public(self) -> bool:
        return self.holder == PUBLIC


PUBLIC_CALLER = Caller(PUBLIC)


# ---- what may be seen ----------------------------------------------------------------------------------
def shared_fields(reg: Registration) -> list[str]:
    """The fields curated holds: every field but the restricted ones."""
    return [f.name for f in reg.fields if f.sensitivity != "restricted"]


def personal_fields(reg: Registration) -> list[str]:
    return [f.name for f in reg.fields if f.sensitivity == "personal"]


def is_open(reg: Registration) -> bool:
    return bool(reg.open.is_open) and reg.share.type != NOT_SHARED and not reg.is_base


def open_fields(reg: Registration) -> list[str]:
    """What the public may see of an open resource: its public fields only."""
    return [f.name for f in reg.fields if f.sensitivity == "public"]


@dataclass
class Access:
    """What a caller may read of a resource, and on what basis."""

    basis: str  # own / 无条件共享 / grant / open
    fields: list[str]
    unmasked: list[str] = field(default_factory=list)
    grant_id: int | None = None


def latest_request(session: Session, consumer: str, resource: str) -> ShareRequest | None:
    return session.scalars(select(ShareRequest).where(ShareRequest.consumer == consumer,
                                                      ShareRequest.resource == resource)
                           .order_by(ShareRequest.id.desc())).first()


def access(session: Session, caller: Caller, reg: Registration) -> Access:
    """What ``caller`` may read of ``reg``; :class:`Forbidden` (or :class:`NotFound` for the public)
    with the reason otherwise."""
    if caller.is_public:
        if not is_open(reg):
            raise NotFound(f"no open resource {reg.resource!r}")
        return Access("open", open_fields(reg))
    if reg.is_base:
        raise Forbidden(f"{reg.resource} is a base library: it is shared through its sources' grants, not by itself")
    if caller.holder == reg.department and not caller.is_admin:
        return Access("own", shared_fields(reg), personal_fields(reg))
    if reg.share.type == NOT_SHARED:
        raise Forbidden(f"{reg.resource} is 不予共享: {reg.share.condition}")
    if reg.share.type == UNCONDITIONAL:
        return Access(UNCONDITIONAL, shared_fields(reg))
    # The grant is the newest approved request; a later request still pending or rejected (asking for
    # more, say) leaves it as it is.
    approved = session.scalars(select(ShareRequest).where(
        ShareRequest.consumer == caller.holder, ShareRequest.resource == reg.resource,
        ShareRequest.status == "approved").order_by(ShareRequest.id.desc())).first()
    if approved is None:
        last = latest_request(session, caller.holder, reg.resource)
        state = ("no request" if last is None else f"request {last.id} is pending" if last.status == "pending"
                 else f"request {last.id} was rejected: {last.reason}")
        raise Forbidden(f"{reg.resource} is 有条件共享 ({reg.share.condition}): {state}; "
                        f"ask with POST /api/v1/requests")
    present = set(shared_fields(reg))
    return Access("grant", [f for f in approved.fields if f in present],
                  [f for f in approved.unmasked if f in present], approved.id)


# ---- requests ---------------------------------------------------------------------------------------
def create_request(session: Session, caller: Caller, reg: Registration, fields: list[str] | None,
                   purpose: str, unmasked: list[str] | None = None) -> ShareRequest:
    if caller.is_public or caller.is_admin:
        raise Forbidden("requests are made by departments (a department key)")
    if reg.is_base:
        raise ShareError(f"{reg.resource} is a base library: request its sources")
    if caller.holder == reg.department:
        raise ShareError(f"{reg.resource} is your own department's resource: no request is needed")
    if reg.share.type == NOT_SHARED:
        raise Forbidden(f"{reg.resource} is 不予共享 and cannot be requested: {reg.share.condition}")
    if reg.share.type == UNCONDITIONAL:
        raise ShareError(f"{reg.resource} is 无条件共享: no request is needed, read it with "
                         f"GET /api/v1/resources/{reg.resource}/rows")
    if not purpose or not purpose.strip():
        raise ShareError("a request states its purpose (用途)")
    available = shared_fields(reg)
    fields = list(dict.fromkeys(fields or available))
    unknown = [f for f in fields if f not in available]
    if unknown:
        raise ShareError(f"{reg.resource} shares no field {', '.join(unknown)}; its fields: {', '.join(available)}")
    unmasked = list(dict.fromkeys(unmasked or []))
    wrong = [f for f in unmasked if f not in fields or f not in personal_fields(reg)]
    if wrong:
        raise ShareError(f"only requested personal fields can be asked for in the clear, not {', '.join(wrong)}")
    req = ShareRequest(resource=reg.resource, consumer=caller.holder, provider=reg.department, fields=fields,
                       unmasked=unmasked, purpose=purpose.strip(), status="pending", created_at=datetime.now(UTC))
    session.add(req)
    session.flush()
    return req


def decide(session: Session, caller: Caller, request_id: int, approve: bool, reason: str | None) -> ShareRequest:
    """The provider (or an administrator) approves or rejects a pending request."""
    req = session.get(ShareRequest, request_id)
    if req is None:
        raise NotFound(f"no request {request_id}")
    if not (caller.is_admin or caller.holder == req.provider):
        raise Forbidden(f"request {request_id} is decided by its provider ({req.provider}) or an administrator")
    if req.status != "pending":
        raise ShareError(f"request {request_id} was already {req.status}", status=409)
    if not approve and not (reason or "").strip():
        raise ShareError("a rejection gives its reason")
    req.status = "approved" if approve else "rejected"
    req.reason = (reason or "").strip() or None
    req.decided_at = datetime.now(UTC)
    req.decided_by = caller.holder
    session.flush()
    return req


def request_dict(req: ShareRequest) -> dict:
    return {"id": req.id, "resource": req.resource, "consumer": req.consumer, "provider": req.provider,
            "fields": req.fields, "unmasked": req.unmasked, "purpose": req.purpose, "status": req.status,
            "reason": req.reason, "created_at": req.created_at.isoformat() if req.created_at else None,
            "decided_at": req.decided_at.isoformat() if req.decided_at else None, "decided_by": req.decided_by}


# ---- rows ----------------------------------------------------------------------------------------------
def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class Rows:
    columns: list[str]
    records: list[dict]
    total: int
    titles: dict[str, str]


def _where(reg: Registration, acc: Access, filters: dict[str, str]) -> str:
    masked_personal = set(personal_fields(reg))
    bad = [k for k in filters if k not in acc.fields]
    if bad:
        raise ShareError(f"cannot filter on {', '.join(bad)}: filters name fields you may read ({', '.join(acc.fields)})")
    personal = [k for k in filters if k in masked_personal]
    if personal:
        raise ShareError(f"cannot filter on personal field {', '.join(personal)}")
    return " AND ".join(f"CAST({_quote(k)} AS VARCHAR) = {_literal(v)}" for k, v in filters.items()) or "TRUE"


def read(settings: Settings, regs: list[Registration], reg: Registration, acc: Access, *,
         limit: int | None = 100, offset: int = 0, filters: dict[str, str] | None = None) -> q.QueryResult:
    """The rows ``acc`` allows, ordered by ``_record_key`` (stable pages); ``limit`` None: all."""
    name = tables.curated_table(reg).ident
    where = _where(reg, acc, filters or {})
    page = f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else (f" OFFSET {int(offset)}" if offset else "")
    clear = [f for f in acc.fields if f in acc.unmasked]
    cols = ", ".join(["_record_key", *(_quote(f) for f in acc.fields)])
    sql = f"SELECT {cols} FROM {name} WHERE {where} ORDER BY _record_key{page}"
    result = q.query(settings, sql, regs)
    if clear:
        clear_sql = (f"SELECT _record_key, {', '.join(_quote(f) for f in clear)} FROM {name} WHERE {where} "
                     f"ORDER BY _record_key{page}")
        unmasked = q.query(settings, clear_sql, regs, role=STEWARD).table
        if unmasked.column("_record_key").to_pylist() != result.table.column("_record_key").to_pylist():
            raise ShareError("the table changed while it was read: ask again", status=503)
        table = result.table
        for f in clear:
            table = table.set_column(table.schema.get_field_index(f), f, unmasked.column(f))
        result.table = table
    result.table = result.table.drop_columns(["_record_key"])
    return result


def count(settings: Settings, regs: list[Registration], reg: Registration, acc: Access,
          filters: dict[str, str] | None = None) -> int:
    where = _where(reg, acc, filters or {})
    result = q.query(settings, f"SELECT count(*) AS n FROM {tables.curated_table(reg).ident} WHERE {where}", regs)
    return int(result.table.column("n")[0].as_py())


def records(result: q.QueryResult, timezone: str) -> list[dict]:
    """The rows as JSON objects, values as ``citylake query --format json`` writes them."""
    out = io.StringIO()
    q.write_json(result, out, timezone=timezone)
    return json.loads(out.getvalue())


def download(result: q.QueryResult, fmt: str, timezone: str) -> bytes:
    """The whole result as csv (UTF-8 with BOM), xlsx or json."""
    if fmt not in ("csv", "xlsx", "json"):
        raise ShareError(f"format {fmt!r}: one of csv, xlsx, json")
    with tempfile.TemporaryDirectory(prefix="citylake-download-") as tmp:
        path = q.write_result(result, Path(tmp) / f"rows.{fmt}", fmt, timezone=timezone)
        return path.read_bytes()


# ---- audit ---------------------------------------------------------------------------------------------
def audit(session: Session, caller: Caller, action: str, reg: Registration, acc: Access, rows: int) -> AuditEntry:
    entry = AuditEntry(at=datetime.now(UTC), caller=caller.holder, action=action, resource=reg.resource,
                       provider=reg.department, fields=list(acc.fields), rows=rows, grant_id=acc.grant_id,
                       basis=acc.basis)
    session.add(entry)
    session.flush()
    return entry


def audit_dict(e: AuditEntry) -> dict:
    return {"id": e.id, "at": e.at.isoformat(), "caller": e.caller, "action": e.action, "resource": e.resource,
            "provider": e.provider, "fields": e.fields, "rows": e.rows, "grant_id": e.grant_id, "basis": e.basis}


def audit_log(session: Session, caller: Caller, *, limit: int = 100, offset: int = 0) -> list[dict]:
    """Administrators: every entry; a department: the entries of its own resources (as provider)."""
    if caller.is_public:
        raise NotFound("no such endpoint for the public")
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
    if not caller.is_admin:
        stmt = stmt.where(AuditEntry.provider == caller.holder)
    return [audit_dict(e) for e in session.scalars(stmt)]
