"""Live facts of a directory entry, read from the lake (docs/zones.md), never typed by hand.

What is read, per resource, all through the batch ledger (:mod:`citylake.core.ledger`):

* the curated Iceberg table's metadata (:func:`citylake.core.tables.table_facts`), no data file
  read — row count (records less deleted rows, from the current snapshot's summary), the columns
  as the table has them, the snapshot of the last change curate made and its last update: the
  newest receipt time of the batches the table holds (``citylake.received-through`` in that
  snapshot's summary; its commit time when absent). Without a table (nothing curated yet), the
  curated pointer's figures.
* each raw batch manifest — batches received (status
  ``ingested``), rejected drops (status ``rejected``) and the time each was received
  (``received_at``). Without manifests, the checksum index counts the batches.
* each batch's quality marker — pass rate (``pass_rate``, 0–1) and ``success`` of each
  checked batch, ordered by ``checked_at``: the latest, the mean of the last ``RECENT`` and a trend
  of the last ``TREND`` for the chart.
* the standardized and quarantine commit markers of each conformed batch — ``rows``; quarantine
  rate = quarantined / (standardized + quarantined), over all batches and for
  the latest batch; quarantine reasons are summed from ``reasons``.

Freshness rule (one rule for the whole project: :mod:`citylake.stages.freshness`, which the daily freshness
report uses too): the reference time is the curated ``updated_at`` (the last successful update);
the data is **on time** while ``now − updated_at`` is within the allowance of its 更新周期,
**overdue** after it, **no data** when nothing is curated yet. Allowances (``max_age``): 实时 1 hour;
每日 2 days; 每周 8 days; 每月 35 days; 每季度 100 days; 每半年 190 days; 每年 380 days (the longest
period of the cycle plus a grace for a late delivery); 其他 (不定期) is never overdue: **irregular**.

Schema drift: a registered field missing from curated (except ``restricted`` fields, which curate
leaves out); a curated column that is not registered (columns starting with ``_`` and columns derived
from a registered field, named ``<field>_…`` such as ``registered_capital_currency``, are technical,
not drift); a column whose type family differs from the registered type (a masked personal field
may be text).

An empty lake is fine: every fact says there is no data yet.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from citylake.core import tables
from citylake.core.lake import Lake
from citylake.core.ledger import Ledger
from citylake.core.masking import mask_kind, mask_value
from citylake.core.registry import UPDATE_CYCLES, FieldSpec, Registration
from citylake.stages.freshness import STATUS_ZH, assess, max_age

RECENT = 5
TREND = 20

FRESHNESS_ALLOWANCE = {cycle: max_age(cycle) for cycle in UPDATE_CYCLES}
FRESHNESS_LABELS = dict(STATUS_ZH)

# Registered type -> the type families a curated column may have.
TYPE_FAMILIES = {
    "string": {"text"},
    "text": {"text"},
    "integer": {"integer"},
    "decimal": {"integer", "float", "decimal"},
    "double": {"integer", "float", "decimal"},
    "money": {"integer", "float", "decimal"},
    "date": {"date"},
    "timestamp": {"timestamp"},
    "boolean": {"boolean"},
}


def type_family(type_name: str) -> str:
    """Family of a Spark or Arrow type name: 'string', 'large_string', 'bigint', 'int64',
    'decimal(20,4)', 'decimal128(20, 4)', 'double', 'date32[day]', 'timestamp[us, tz=UTC]', 'bool'…"""
    t = type_name.strip().lower()
    if t.startswith(("decimal",)):
        return "decimal"
    if t.startswith(("timestamp",)):
        return "timestamp"
    if t.startswith("date"):
        return "date"
    if t in ("string", "large_string", "utf8", "large_utf8", "varchar", "char") or t.startswith(("varchar", "char(")):
        return "text"
    if t in ("bool", "boolean"):
        return "boolean"
    if t in ("double", "float", "float32", "float64", "halffloat", "float16", "real"):
        return "float"
    if t in ("int", "integer", "bigint", "smallint", "tinyint", "long", "short", "byte") or t.startswith(
        ("int", "uint")
    ):
        return "integer"
    return t


def _parse_time(value) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _iso(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat() if dt else None


@dataclass
class QualityPoint:
    batch_id: str
    checked_at: str | None
    pass_rate: float | None
    success: bool | None


@dataclass
class ResourceFacts:
    resource: str
    has_data: bool = False
    row_count: int | None = None
    curated_version: str | None = None
    last_updated_at: datetime | None = None  # curated updated_at
    last_received_at: datetime | None = None  # newest raw manifest received_at
    batches_received: int = 0
    batches_rejected: int = 0
    batches_checked: int = 0
    quality_latest_pass_rate: float | None = None
    quality_latest_success: bool | None = None
    quality_latest_batch: str | None = None
    quality_recent_pass_rate: float | None = None
    quality_trend: list[QualityPoint] = field(default_factory=list)
    standardized_rows: int = 0
    quarantined_rows: int = 0
    quarantine_rate: float | None = None
    latest_quarantine_rate: float | None = None
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    freshness: str = "no_data"
    freshness_reference: datetime | None = None
    freshness_allowance_hours: float | None = None
    columns_present: list[dict] | None = None
    columns_source: str | None = None
    drift: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def freshness_label(self) -> str:
        return FRESHNESS_LABELS[self.freshness]

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("last_updated_at", "last_received_at", "freshness_reference"):
            d[k] = _iso(getattr(self, k))
        d["freshness_label"] = self.freshness_label
        return d


def _rows(marker) -> int:
    try:
        return int((marker or {}).get("rows") or 0)
    except (TypeError, ValueError):
        return 0


def freshness(update_cycle: str, reference: datetime | None, now: datetime) -> tuple[str, timedelta | None]:
    """(status, allowance) by :func:`citylake.stages.freshness.assess`."""
    return assess(update_cycle, reference, now)["status"], max_age(update_cycle)


def _pointer_columns(current: dict) -> list[dict] | None:
    cols = current.get("columns")
    if not isinstance(cols, list) or not cols:
        return None
    return [{"name": str(c["name"]), "type": str(c.get("type") or "")} for c in cols if isinstance(c, dict)]


def schema_drift(reg: Registration, columns: list[dict]) -> list[str]:
    registered = reg.field_map
    present = {c["name"]: c.get("type", "") for c in columns}
    out = []
    for name, spec in registered.items():
        if name not in present:
            if spec.sensitivity != "restricted":  # curate leaves restricted fields out on purpose
                out.append(f"登记的信息项 {spec.title}（{name}）在数据中不存在")
        elif present[name]:
            fam = type_family(present[name])
            allowed = TYPE_FAMILIES[spec.type] | ({"text"} if mask_kind(spec) else set())  # masked → text
            if fam not in allowed:
                out.append(f"信息项 {spec.title}（{name}）登记为 {spec.type}，数据中为 {present[name]}")
    for name in present:
        if name in registered or name.startswith("_"):
            continue
        if any(name.startswith(f"{r}_") for r in registered):
            continue
        out.append(f"数据中的列 {name} 未登记")
    return out


def collect_facts(lake: Lake, reg: Registration, now: datetime | None = None,
                  table: tables.TableFacts | None = None) -> ResourceFacts:
    """The entry's facts; ``table`` is the curated table's metadata when the catalog is at hand."""
    now = now or datetime.now(UTC)
    res = reg.resource
    facts = ResourceFacts(resource=res)

    ledger = Ledger.read(lake, reg)

    # raw: batches received, rejected drops, received times
    ingested = [b for b in ledger.batches if b.ingested]
    facts.batches_received = len(ingested) if ledger.batches else ledger.index_entries
    facts.batches_rejected = len(ledger.batches) - len(ingested)
    received = [t for t in (_parse_time(b.received_at) for b in ingested) if t]
    facts.last_received_at = max(received) if received else None

    # standardized / quarantine
    conformed = [b for b in ledger.batches if b.conformed]
    facts.standardized_rows = sum(b.rows_accepted for b in conformed)
    facts.quarantined_rows = sum(b.rows_quarantined for b in conformed)
    total = facts.standardized_rows + facts.quarantined_rows
    facts.quarantine_rate = facts.quarantined_rows / total if total else None
    reasons: dict[str, int] = {}
    for b in conformed:
        for reason, n in b.quarantine_reasons.items():
            reasons[reason] = reasons.get(reason, 0) + int(n)
    facts.quarantine_reasons = dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
    if conformed:

        def committed(b):
            t = _parse_time(b.standardized.get("committed_at"))
            return t or datetime.min.replace(tzinfo=UTC)

        latest = max(conformed, key=lambda b: (committed(b), b.batch_id))
        s, q = latest.rows_accepted, latest.rows_quarantined
        facts.latest_quarantine_rate = q / (s + q) if s + q else None

    # quality results
    results = []
    for b in ledger.batches:
        r = b.quality
        if not r:
            continue
        rate = r.get("pass_rate")
        if rate is None and r.get("evaluated"):
            rate = (r.get("successful") or 0) / r["evaluated"]
        rate = float(rate) if rate is not None else None
        checked = _parse_time(r.get("checked_at"))
        results.append((checked or datetime.min.replace(tzinfo=UTC), b.batch_id, rate, r.get("success")))
    results.sort(key=lambda x: (x[0], x[1]))
    facts.batches_checked = len(results)
    if results:
        checked, batch, rate, success = results[-1]
        facts.quality_latest_pass_rate = rate
        facts.quality_latest_success = None if success is None else bool(success)
        facts.quality_latest_batch = batch
        recent = [r[2] for r in results[-RECENT:] if r[2] is not None]
        facts.quality_recent_pass_rate = sum(recent) / len(recent) if recent else None
        facts.quality_trend = [
            QualityPoint(b, _iso(c) if c.year > 1 else None, rt, None if ok is None else bool(ok))
            for c, b, rt, ok in results[-TREND:]
        ]

    # curated
    current = ledger.curated
    if table is not None and table.snapshot_id is not None:
        facts.has_data = True
        facts.curated_version = str(table.changed_snapshot_id or table.snapshot_id)
        facts.row_count = table.rows
        changed_ms = table.changed_at_ms or table.updated_at_ms
        facts.last_updated_at = _parse_time(table.received_through) or datetime.fromtimestamp(changed_ms / 1000, UTC)
        facts.freshness_reference = facts.last_updated_at
        facts.columns_present = [{"name": c["name"], "type": c["type"]} for c in table.columns]
        facts.columns_source = f"Iceberg table {table.table}"
    elif isinstance(current, dict):
        facts.has_data = True
        facts.curated_version = None if current.get("version") is None else str(current.get("version"))
        facts.row_count = _rows(current)
        facts.last_updated_at = _parse_time(current.get("received_through") or current.get("updated_at"))
        facts.freshness_reference = facts.last_updated_at
        facts.columns_present = _pointer_columns(current)
        facts.columns_source = "curated pointer" if facts.columns_present else None
    if facts.has_data:
        if facts.columns_present is not None:
            facts.drift = schema_drift(reg, facts.columns_present)
    else:
        facts.notes.append("暂无汇聚数据（curated 区尚无该资源）")
    if not facts.batches_received:
        facts.notes.append("尚未收到数据批次")
    if not results:
        facts.notes.append("暂无质量检查结果")

    state, allowance = freshness(reg.update_cycle, facts.freshness_reference if facts.has_data else None, now)
    facts.freshness = state
    facts.freshness_allowance_hours = allowance.total_seconds() / 3600 if allowance else None
    return facts


def sample_rows(settings, reg: Registration, limit: int = 5) -> tuple[list[FieldSpec], list[list]]:
    """A few rows of the curated table, registered fields only, every personal or restricted value
    masked again by the registration's mask kind. Returns (fields shown, rows)."""
    table = tables.load_table(settings, tables.curated_table(reg))
    if table is None or table.current_snapshot() is None:
        return [], []
    names = {f.name for f in table.schema().fields}
    shown = [f for f in reg.fields if f.name in names]
    if not shown:
        return [], []
    rows = table.scan(selected_fields=tuple(f.name for f in shown), limit=limit).to_arrow().to_pylist()
    out = []
    for r in rows[:limit]:
        out.append(
            [_display(f, mask_value(f, r.get(f.name))) if mask_kind(f) else _display(f, r.get(f.name)) for f in shown]
        )
    return shown, out


def _display(spec: FieldSpec, value):
    if value is None:
        return None
    if spec.codes and str(value) in spec.codes and spec.codes[str(value)] != str(value):
        meaning = spec.codes[str(value)]
        return meaning if meaning.startswith(str(value)) else f"{value}（{meaning}）"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value) if not isinstance(value, (int, float)) else value


__all__ = [
    "FRESHNESS_ALLOWANCE",
    "FRESHNESS_LABELS",
    "QualityPoint",
    "ResourceFacts",
    "collect_facts",
    "freshness",
    "sample_rows",
    "schema_drift",
    "type_family",
]
