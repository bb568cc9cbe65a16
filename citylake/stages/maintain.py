"""Maintain: compact a resource's Iceberg tables and expire their old snapshots.

Run nightly by the ``citylake_maintenance`` DAG (``spark-submit citylake/drivers/sparkjob.py
maintain --resource R``) and by the tests. For each of the resource's two tables
(:mod:`citylake.core.tables`; a table not created yet is skipped):

1. **Compact.** Every curate run is a small MERGE: merge-on-read writes a few new data files and a
   position-delete file, and every conformed batch adds its own files to the standardized table.
   After weeks of that a reader opens hundreds of small files and applies every delete file on
   each scan. ``rewrite_data_files`` bin-packs the small files (any group of two or more) and, on
   the curated table, rewrites every data file that has deletes (``delete-file-threshold`` 1), so
   the deleted rows are dropped from the data itself; ``rewrite_position_delete_files`` then drops
   the delete files left pointing at files no longer live. Rows are unchanged: the commits are
   Iceberg ``replace`` snapshots, which carry no ``citylake.*`` summary keys.
2. **Expire snapshots** older than :attr:`Settings.snapshot_retention_days`
   (``CITYLAKE_SNAPSHOT_RETENTION_DAYS``), with the files only they use. Every snapshot pins its
   files, so without this the lake only grows; the price is that time travel (``VERSION AS OF``,
   ``citylake history``) reaches back only as far as the retention. Kept whatever their age:

   * the current snapshot and its ancestors back to the last snapshot citylake committed (the last
     curate merge or conform, ``citylake.operation``): :func:`citylake.core.tables.table_facts`
     walks back to it for the table's "last changed" time and ``received-through``, which the
     directory's freshness is judged by; a compaction must not make old data look new;
   * on the standardized table, the snapshots named by the commit markers of batches still waiting
     for the quality gate: the check reads a batch as of the snapshot its conform committed.
3. **Remove orphan files**: files under the table's folder that no snapshot or metadata file names
   (left by writes that failed before committing). Listing and deleting by age is only safe for
   files older than any write still running, so only files older than the retention *and* at
   least :data:`ORPHAN_MIN_DAYS` days are removed (Iceberg itself refuses less than a day).

A compaction that races a curate merge on the same table fails Iceberg's commit validation (the
table is unchanged) and the task's retry runs it again; the DAG runs at night to make that rare.
Running again right after changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from citylake.core import tables
from citylake.core.ledger import Ledger
from citylake.core.registry import Registration
from citylake.core.settings import Settings
from citylake.core.spark import use_catalog

# Orphan files younger than this are left alone whatever the retention: a write that is still
# running (another DAG's curate, a long conform) has files no metadata names yet.
ORPHAN_MIN_DAYS = 3
# Bin-pack any group of two or more small files (Iceberg's default waits for five).
COMPACT_OPTIONS = {"min-input-files": "2"}
# Merge-on-read: rewrite every data file that has a delete, so deletes are applied, and drop the
# delete files that then apply to nothing.
CURATED_COMPACT_OPTIONS = {**COMPACT_OPTIONS, "delete-file-threshold": "1", "remove-dangling-deletes": "true"}


def _sql_map(options: dict[str, str]) -> str:
    return "map(" + ", ".join(f"'{k}', '{v}'" for k, v in options.items()) + ")"


def _timestamp(at: datetime) -> str:
    """A Spark SQL timestamp literal for an instant (UTC, whatever the session time zone)."""
    return f"TIMESTAMP '{at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z'"


def _call(spark, settings: Settings, procedure: str, **args: str) -> list[dict]:
    """``CALL <catalog>.system.<procedure>(name => value, …)`` (values as SQL); its output rows."""
    named = ", ".join(f"{k} => {v}" for k, v in args.items())
    return [r.asDict() for r in spark.sql(f"CALL {settings.catalog_name}.system.{procedure}({named})").collect()]


def _count(rows: list[dict], *columns: str) -> int:
    return sum(int(r.get(c) or 0) for r in rows for c in columns)


def _state(settings: Settings, table: tables.TableName) -> dict | None:
    """File counts, live rows and snapshots of a table, from its metadata (pyiceberg)."""
    tbl = tables.load_table(settings, table)
    if tbl is None:
        return None
    snap = tbl.current_snapshot()
    summary = dict(snap.summary.additional_properties) if snap and snap.summary else {}
    return {
        "tbl": tbl,
        "data_files": int(summary.get("total-data-files", 0) or 0),
        "delete_files": int(summary.get("total-delete-files", 0) or 0),
        "rows": tables.live_rows(summary) if snap else 0,
        "snapshots": {s.snapshot_id for s in tbl.snapshots()},
    }


def _retain_last(tbl) -> int:
    """How many snapshots, from the current one back, reach the last one citylake committed."""
    snap, depth = tbl.current_snapshot(), 1
    while snap is not None:
        if tables.SNAPSHOT_OPERATION in (snap.summary.additional_properties if snap.summary else {}):
            return depth
        snap = tbl.snapshot_by_id(snap.parent_snapshot_id) if snap.parent_snapshot_id else None
        depth += 1
    return 1


def _awaiting_check(settings: Settings, reg: Registration, tbl) -> dict[str, int]:
    """batch → commit time (ms) of the standardized snapshot a batch still waiting for check names."""
    ledger = Ledger.read(settings, reg)
    out = {}
    for batch_id in ledger.pending("check"):
        snapshot_id = (ledger.batch(batch_id).standardized or {}).get("snapshot_id")
        snap = tbl.snapshot_by_id(int(snapshot_id)) if snapshot_id is not None else None
        if snap is not None:
            out[batch_id] = snap.timestamp_ms
    return out


def maintain_table(spark, settings: Settings, reg: Registration, table: tables.TableName, *, curated: bool,
                   now: datetime) -> dict:
    """Compact, expire and clean one table; what was done, in figures."""
    before = _state(settings, table)
    if before is None:
        return {"table": table.ident, "status": "missing"}
    ident = f"'{table.ident}'"
    compact = _call(spark, settings, "rewrite_data_files", table=ident,
                    options=_sql_map(CURATED_COMPACT_OPTIONS if curated else COMPACT_OPTIONS))
    # Deletes the data rewrite left behind (pointing at files no longer live) are dropped here.
    deletes = _call(spark, settings, "rewrite_position_delete_files", table=ident,
                    options=_sql_map({"rewrite-all": "true"})) if curated else []

    compacted = _state(settings, table)
    older_than = now - timedelta(days=settings.snapshot_retention_days)
    kept_for_check = {} if curated else _awaiting_check(settings, reg, compacted["tbl"])
    if kept_for_check:
        # Expire only what is older than the oldest of them: it and everything newer stay.
        older_than = min(older_than, datetime.fromtimestamp(min(kept_for_check.values()) / 1000, UTC))
    expired = _call(spark, settings, "expire_snapshots", table=ident, older_than=_timestamp(older_than),
                    retain_last=str(_retain_last(compacted["tbl"])))

    orphan_args = {"table": ident, "older_than": _timestamp(
        now - timedelta(days=max(settings.snapshot_retention_days, ORPHAN_MIN_DAYS)))}
    if tables.is_s3(settings):
        # Listed through Hadoop's s3a (what the Spark session configures); Iceberg's default
        # equal_schemes takes s3a:// and s3:// (the metadata's paths) for the same files.
        orphan_args["location"] = "'" + compacted["tbl"].location().replace("s3://", "s3a://", 1) + "'"
    orphans = _call(spark, settings, "remove_orphan_files", **orphan_args)

    after = _state(settings, table)
    return {
        "table": table.ident,
        "status": "maintained",
        "rows": after["rows"],
        "data_files_before": before["data_files"],
        "data_files_after": after["data_files"],
        "delete_files_before": before["delete_files"],
        "delete_files_after": after["delete_files"],
        "rewritten_data_files": _count(compact, "rewritten_data_files_count"),
        "added_data_files": _count(compact, "added_data_files_count"),
        "removed_delete_files": _count(compact, "removed_delete_files_count"),
        "rewritten_delete_files": _count(deletes, "rewritten_delete_files_count"),
        "expired_before": older_than.astimezone(UTC).isoformat(),
        "snapshots_expired": len(compacted["snapshots"] - after["snapshots"]),
        "snapshots_kept": len(after["snapshots"]),
        "kept_for_check": sorted(kept_for_check),
        "deleted_data_files": _count(expired, "deleted_data_files_count", "deleted_position_delete_files_count",
                                     "deleted_equality_delete_files_count"),
        "orphan_files_removed": len(orphans),
    }


def maintain_resource(spark, settings: Settings, reg: Registration, now: datetime | None = None) -> dict:
    """Maintain both tables of a resource (curated first: it is the one analysts read)."""
    use_catalog(spark, settings)
    now = now or datetime.now(UTC)
    return {
        "resource": reg.resource,
        "curated": maintain_table(spark, settings, reg, tables.curated_table(reg), curated=True, now=now),
        "standardized": maintain_table(spark, settings, reg, tables.standardized_table(reg), curated=False, now=now),
    }
