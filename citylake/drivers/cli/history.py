"""`citylake history`: a resource's table snapshots: when, what, which batches, how many rows.

    citylake history resident_population
    citylake history resident_population --table standardized --json

Each curate merge and each conformed batch is one Iceberg snapshot whose summary names its batches
(``citylake.batches`` / ``citylake.batch-id``): the list is the table's audit trail, and any
snapshot listed can be read as it was (the command prints how). Read from the table metadata through
pyiceberg: no Spark. Snapshots older than the retention are expired by the nightly maintenance.
Exit code: 0 (also when there is no table yet), 2 for an unknown resource.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from citylake.core import tables
from citylake.core.registry import Registration
from citylake.core.settings import ENV, Settings
from citylake.drivers.cli.common import UsageError, fail, registrations, unknown_names

KINDS = ("curated", "standardized")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("resource", metavar="RESOURCE", help="the registered resource (`citylake registrations`)")
    parser.add_argument("--table", choices=KINDS, default="curated",
                        help="curated: <department>.<resource>, one snapshot per merge (default); "
                             "standardized: standardized.<resource>, one snapshot per conformed batch")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="only the N most recent snapshots (default: all)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object: the table, its snapshots and how to read one")


def _int(summary: dict, *keys: str) -> int:
    return sum(int(summary.get(k, 0) or 0) for k in keys)


def snapshot_facts(snap, current_id: int | None, tz: ZoneInfo) -> dict:
    """One snapshot in the words of the lake: operation, batches, rows."""
    summary = dict(snap.summary.additional_properties) if snap.summary else {}
    iceberg_op = snap.summary.operation.value if snap.summary else None
    if summary.get(tables.SNAPSHOT_BATCH):
        batches = [summary[tables.SNAPSHOT_BATCH]]
    else:
        batches = [b for b in (summary.get(tables.SNAPSHOT_BATCHES) or "").split(",") if b]
    return {
        "snapshot_id": snap.snapshot_id,
        "parent_id": snap.parent_snapshot_id,
        "current": snap.snapshot_id == current_id,
        "committed_at": datetime.fromtimestamp(snap.timestamp_ms / 1000, UTC).astimezone(tz).isoformat(),
        "operation": summary.get(tables.SNAPSHOT_OPERATION) or iceberg_op,
        "iceberg_operation": iceberg_op,
        "batches": batches,
        "rows_added": _int(summary, "added-records"),
        # A merge-on-read merge deletes by position: the replaced rows are its position deletes.
        "rows_deleted": _int(summary, "deleted-records", "added-position-deletes", "added-equality-deletes"),
        "rows": tables.live_rows(summary),
        "received_through": summary.get(tables.SNAPSHOT_RECEIVED_THROUGH),
    }


def read_as_of(settings: Settings, table: tables.TableName, snapshot_id: int | str) -> dict[str, str]:
    return {
        "spark_sql": f"SELECT * FROM {table.spark(settings)} VERSION AS OF {snapshot_id}",
        "pyiceberg": f'catalog.load_table("{table.ident}").scan(snapshot_id={snapshot_id}).to_arrow()',
    }


def history(settings: Settings, reg: Registration, kind: str, limit: int | None = None) -> dict:
    table = tables.curated_table(reg) if kind == "curated" else tables.standardized_table(reg)
    tbl = tables.load_table(settings, table)
    facts: dict = {
        "resource": reg.resource, "name": reg.name, "table": table.ident, "kind": kind,
        "timezone": settings.timezone, "retention_days": settings.snapshot_retention_days,
        "exists": tbl is not None, "current_snapshot_id": None, "snapshots": [],
    }
    if tbl is None:
        return facts
    current = tbl.current_snapshot()
    current_id = current.snapshot_id if current else None
    tz = ZoneInfo(settings.timezone)
    snaps = sorted(tbl.snapshots(), key=lambda s: (s.timestamp_ms, s.sequence_number or 0))
    if limit:
        snaps = snaps[-limit:]
    facts["current_snapshot_id"] = current_id
    facts["snapshots"] = [snapshot_facts(s, current_id, tz) for s in snaps]
    if snaps:
        facts["read_as_of"] = read_as_of(settings, table, snaps[0].snapshot_id)
    return facts


def render(facts: dict, settings: Settings) -> str:
    snaps = facts["snapshots"]
    lines = [f"{facts['table']}  {facts['name']}  ({facts['kind']}, {len(snaps)} snapshot(s), "
             f"times {facts['timezone']})"]
    if not snaps:
        lines.append("  no snapshot yet")
        return "\n".join(lines)
    lines.append(f"  {'snapshot':<20} {'committed':<19}  {'operation':<9} {'added':>9} {'deleted':>9} "
                 f"{'rows':>10}  batches")
    for s in snaps:
        when = s["committed_at"][:19].replace("T", " ")
        mark = "  ← current" if s["current"] else ""
        lines.append(f"  {s['snapshot_id']:<20} {when:<19}  {s['operation'] or '':<9} {s['rows_added']:>9,} "
                     f"{s['rows_deleted']:>9,} {s['rows']:>10,}  {', '.join(s['batches']) or '—'}{mark}")
    if any(s["iceberg_operation"] == "replace" and s["operation"] == "replace" for s in snaps):
        lines.append("  replace: files compacted by the nightly maintenance; the rows did not change")
    example, how = snaps[0]["snapshot_id"], facts["read_as_of"]
    lines += [
        "",
        f"Read the table as of a snapshot (here the oldest, {example}):",
        f"  Spark SQL:  {how['spark_sql']}",
        f"  pyiceberg:  {how['pyiceberg']}",
        f"              (catalog: pyiceberg's SqlCatalog \"{settings.catalog_name}\" on {ENV['catalog_uri']})",
        f"Snapshots older than {facts['retention_days']} days are expired by the nightly maintenance "
        f"({ENV['snapshot_retention_days']}); time travel reaches back that far.",
    ]
    return "\n".join(lines)


def run(args) -> int:
    if args.limit is not None and args.limit < 1:
        return fail("history", "--limit must be at least 1")
    try:
        settings = Settings.from_env()
        regs = registrations(settings.resources_dir)
    except (ValueError, UsageError) as exc:  # ValueError: a RegistrationError or a bad CITYLAKE_* value
        return fail("history", exc)
    reg = next((r for r in regs if r.resource == args.resource), None)
    if reg is None:
        return fail("history", unknown_names("resource", [args.resource], (r.resource for r in regs)))
    facts = history(settings, reg, args.table, args.limit)
    if args.json:
        print(json.dumps(facts, ensure_ascii=False, indent=2))
        return 0
    if not facts["exists"]:
        what = "curated" if args.table == "curated" else "conformed"
        print(f"{facts['table']}: nothing {what} yet for {reg.resource} ({reg.name}); "
              f"`citylake run --resource {reg.resource}` or the department's DAG makes it")
        return 0
    print(render(facts, settings))
    return 0
