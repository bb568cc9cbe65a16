"""Resource codes (信息资源代码, 政务信息资源目录编制指南).

A code is 前段码 ``/`` 后段码:
* 前段码 — the classification prefix 类 (1) + 项 (2) + 目 (3) + 细目 (variable, possibly empty);
* 后段码 — a 6-digit sequence number within that prefix, starting at 000001.

Example: the first resource classified 1/02/001 gets ``102001/000001``.

Codes are stored in the ``resource_codes`` table and are stable forever:
* a resource keeps its code on every republication, even if it is later retired and comes back;
* a new resource gets the next number in its prefix (one more than the highest ever assigned there,
  so a retired resource's number is never reused);
* if a registration's classification changes, the resource keeps its code (the code identifies the
  resource, not its current class) and the publication reports a warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from citylake.core.registry import Registration
from citylake.stages.publish.models import ResourceCode

SEQ_DIGITS = 6
CODE_RE = re.compile(r"^(?P<prefix>[1-3]\d{2}\d{3}\d{0,6})/(?P<seq>\d{6})$")


def format_code(prefix: str, seq: int) -> str:
    if not 1 <= seq < 10**SEQ_DIGITS:
        raise ValueError(f"sequence {seq} does not fit in {SEQ_DIGITS} digits")
    return f"{prefix}/{seq:0{SEQ_DIGITS}d}"


def parse_code(code: str) -> tuple[str, int]:
    m = CODE_RE.match(code)
    if not m:
        raise ValueError(f"not a resource code: {code!r} (expected e.g. 102001/000001)")
    return m.group("prefix"), int(m.group("seq"))


@dataclass(frozen=True)
class CodeAssignment:
    resource: str
    code: str
    new: bool
    warning: str | None = None


def assign_codes(session: Session, registrations: list[Registration], now: datetime) -> dict[str, CodeAssignment]:
    """Return resource -> code, assigning the next number in its prefix to resources seen for the
    first time (new resources sorted by prefix, department and resource name, so a batch of new
    resources is numbered the same way every time)."""
    existing = {rc.resource: rc for rc in session.scalars(select(ResourceCode))}
    out: dict[str, CodeAssignment] = {}
    next_seq: dict[str, int] = {}
    for reg in sorted(registrations, key=lambda r: (r.classification.prefix, r.department, r.resource)):
        prefix = reg.classification.prefix
        rc = existing.get(reg.resource)
        if rc is not None:
            warning = None
            if rc.prefix != prefix:
                warning = (
                    f"{reg.resource}: classification changed to {prefix}, the resource keeps its code {rc.code}"
                )
            out[reg.resource] = CodeAssignment(reg.resource, rc.code, False, warning)
            continue
        if prefix not in next_seq:
            top = session.scalar(select(func.max(ResourceCode.seq)).where(ResourceCode.prefix == prefix))
            next_seq[prefix] = (top or 0) + 1
        seq = next_seq[prefix]
        next_seq[prefix] = seq + 1
        code = format_code(prefix, seq)
        session.add(ResourceCode(resource=reg.resource, prefix=prefix, seq=seq, code=code, assigned_at=now))
        out[reg.resource] = CodeAssignment(reg.resource, code, True)
    session.flush()
    return out
