"""Curate: promoted standardized batches → the curated table, merged by key, masked.

Run by ``spark-submit citylake/drivers/sparkjob.py curate --resource R`` (the DAGs),
``citylake run`` and the tests.

Which version of a key wins (the documented rule), each criterion compared greatest first:

1. the ``version_field`` value, when the registration names one (the record's own version, e.g.
   the 登簿日期 of a real-estate record; a row without one loses to a row with one);
2. the export's own time (``_exported_at``), when the registration says where a drop states it
   (``export_time``: a field, or the date in the file's name); a row without one loses;
3. the time the batch was received (``_received_at``), then its batch id;
4. the later row in that file (``_source_row``).

So a late re-send of an old export (older export time, received later) does not override newer
values. Only batches whose quality gate passed are used.

What a drop holds (``snapshot``): ``increment`` (the default) brings new and changed records and
never removes a key. ``full`` is the whole table each time: the newest snapshot (greatest export
time, then received time, then batch id) decides which keys curated holds, and a key it no longer
holds is ended (deleted from the current table; earlier snapshots of the table still have it). A
key whose row that snapshot sent but conform quarantined is not ended: it keeps its last accepted
version. An older snapshot arriving late ends nothing and brings back no ended key. How many keys a
run ended is in the snapshot summary (``citylake.ended``), the pointer's ``last_run`` and
:class:`CurateResult`; the snapshot the table reflects is in the summary (``citylake.snapshot``)
and the pointer (``snapshot``).

Curated data is for shared use: ``personal`` fields are masked (the rules of
:mod:`citylake.core.masking`), ``restricted`` fields are left out, and ``_record_key`` (a keyed
hash of the key, HMAC-SHA256 with a secret) lets analysts join records without seeing personal keys
or being able to recompute them. ``_batch_id``, ``_source_row`` and ``_received_at`` say where each
row came from, and ``_exported_at`` (when the registration names an export time) when its
department exported it.

Incremental: curate reads only the promoted batches not yet merged, picks each key's winner among
them, and ``MERGE INTO`` the curated Iceberg table (:mod:`citylake.core.tables`): a key is updated
only when the incoming row wins by the rule above, inserted when new. The table is merge-on-read,
so a merge writes the changed rows and a small delete file, not the table. Each merge is one
snapshot whose summary names its batches (``citylake.batches``): the snapshot history is the audit
trail (``citylake history``). For a full snapshot newer than the one the table reflects, the same
``MERGE`` deletes the keys it lacks (``WHEN NOT MATCHED BY SOURCE``). When a batch already merged
has left the promoted set (conformed again, or blocked on a new check), the table is rebuilt from
the promoted batches in one snapshot, by the same rules. Running again with nothing new changes
nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from citylake.core import tables, zones
from citylake.core.lake import Lake, now_utc
from citylake.core.ledger import BatchState, Ledger
from citylake.core.masking import key_id, keyed_hash_column, mask_column
from citylake.core.registry import Registration
from citylake.core.settings import Settings
from citylake.core.spark import use_catalog
from citylake.stages.conform import EXPORTED_AT, quarantined_key

# Snapshot summary keys of curated commits: how many keys a full snapshot ended, and which
# snapshot batch the table's keys are.
SNAPSHOT_ENDED = "citylake.ended"
SNAPSHOT_CURRENT = "citylake.snapshot"


def shared_columns(reg: Registration, available: list[str]) -> list[Column]:
    """The columns curated shares: personal fields masked, restricted fields left out."""
    cols: list[Column] = []
    for f in reg.fields:
        if f.sensitivity == "restricted":
            continue
        if f.sensitivity == "personal":
            cols.append(mask_column(f.effective_mask, F.col(f.name)).alias(f.name))
        else:
            cols.append(F.col(f.name))
        if f.type == "money" and f"{f.name}_currency" in available:
            cols.append(F.col(f"{f.name}_currency"))
    return cols


# ---- the job --------------------------------------------------------------------------------
@dataclass
class CurateResult:
    resource: str
    status: str  # merged | rebuilt | unchanged | empty
    rows: int = 0
    version: str | None = None  # the curated table's snapshot id
    batches: list[str] = field(default_factory=list)  # the batches this run merged
    added_records: int = 0
    deleted_records: int = 0
    ended: int = 0  # keys a full snapshot no longer holds, taken out by this run

    def as_dict(self) -> dict:
        return self.__dict__.copy()


# After version_field and the export time, ties go to the later batch, then the later row in it.
TIE_BREAK = ("_received_at", "_batch_id", "_source_row")


def criteria(reg: Registration) -> list[str]:
    """The winner rule's columns, most significant first; each is compared greatest first, and a
    row without a value loses to one with a value."""
    first = [reg.version_field] if reg.version_field else []
    return first + ([EXPORTED_AT] if reg.export_time else []) + list(TIE_BREAK)


def winner_order(reg: Registration) -> list[Column]:
    """The winner rule as a sort order, best first."""
    return [F.col(c).desc_nulls_last() for c in criteria(reg)]


def wins_sql(reg: Registration, new: str = "s", old: str = "t") -> str:
    """SQL: the row ``new`` beats the stored row ``old`` by the winner rule (ties keep ``old``), with
    nulls as in :func:`winner_order` (a value beats none; where it is NULL the condition is false)."""
    tie = "FALSE"
    for c in reversed(criteria(reg)):
        n, o = f"{new}.`{c}`", f"{old}.`{c}`"
        tie = f"({n} > {o} OR ({n} IS NOT NULL AND {o} IS NULL) OR ({n} <=> {o} AND {tie}))"
    return tie


def record_key(columns: list[Column], settings: Settings) -> Column:
    """``_record_key``: a keyed hash (HMAC-SHA256 with :meth:`Settings.record_secret`) of the key's
    values. Analysts join on it; without the secret it cannot be recomputed from a guessed key."""
    return keyed_hash_column(columns, settings.record_secret())


def base_keys(reg: Registration, settings: Settings) -> list[Column]:
    """``_<library>_key`` per field marked ``base: <library>``: the keyed hash the base libraries
    join their sources on (citylake.stages.base). Computed here, where the unmasked key is at hand,
    as curated keeps a citizen ID only masked."""
    return [record_key([F.col(marks[""])], settings).alias(tables.base_key_column(lib))
            for lib, marks in sorted(reg.base_marks.items())]


def standardized_rows(spark: SparkSession, settings: Settings, reg: Registration) -> DataFrame:
    """The standardized table, with ``_exported_at`` (empty) when the registration names an export
    time that its batches were conformed without."""
    std = spark.table(tables.standardized_table(reg).spark(settings))
    if reg.export_time and EXPORTED_AT not in std.columns:
        std = std.withColumn(EXPORTED_AT, F.lit(None).cast("timestamp"))
    return std


def curated_rows(spark: SparkSession, settings: Settings, reg: Registration, batches: list[str]) -> DataFrame:
    """Each key's winning row among ``batches``, as curated shares it."""
    std = standardized_rows(spark, settings, reg).filter(F.col("_batch_id").isin(batches))
    latest = Window.partitionBy(*[F.col(k) for k in reg.key]).orderBy(*winner_order(reg))
    winners = std.withColumn("_rank", F.row_number().over(latest)).filter(F.col("_rank") == 1)
    return winners.select(
        record_key([F.col(k) for k in reg.key], settings).alias("_record_key"),
        *base_keys(reg, settings),
        *shared_columns(reg, std.columns),
        F.col("_batch_id"), F.col("_source_row"), F.col("_received_at"),
        *([F.col(EXPORTED_AT)] if reg.export_time else []),
    )


# ---- full snapshots -------------------------------------------------------------------------
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Snapshot:
    """A full snapshot batch: the newest one decides which keys curated holds."""

    batch_id: str
    exported_us: int | None  # its export time, microseconds since the epoch; None when unknown
    received_at: str  # ISO, UTC

    def rank(self) -> tuple:
        """Newer sorts greater: export time (unknown is oldest), then received time, then batch id."""
        return (self.exported_us is not None, self.exported_us or 0, self.received_at, self.batch_id)

    def as_dict(self) -> dict:
        exported = None if self.exported_us is None else (_EPOCH + timedelta(microseconds=self.exported_us)).isoformat()
        return {"batch_id": self.batch_id, "exported_us": self.exported_us, "exported_at": exported,
                "received_at": self.received_at}

    @classmethod
    def from_dict(cls, d: dict | None) -> Snapshot | None:
        return cls(d["batch_id"], d.get("exported_us"), d["received_at"]) if d else None


def newest_snapshot(spark: SparkSession, settings: Settings, reg: Registration, std: DataFrame,
                    batches: list[BatchState]) -> Snapshot | None:
    """The newest of ``batches`` by :meth:`Snapshot.rank`. A batch's export time is the date its
    file name states, or the greatest value of the export-time field among its rows."""
    if not batches:
        return None
    exported: dict[str, int | None] = {}
    stated = reg.export_time
    if stated and stated.from_name:
        zone = ZoneInfo(settings.timezone)
        for b in batches:
            at = stated.stated_in(b.manifest.get("source_name") or "")
            exported[b.batch_id] = None if at is None else (at.replace(tzinfo=zone) - _EPOCH) // timedelta(microseconds=1)
    elif stated:
        rows = (std.filter(F.col("_batch_id").isin([b.batch_id for b in batches])).groupBy("_batch_id")
                .agg(F.max(F.unix_micros(F.col(EXPORTED_AT))).alias("us")).collect())
        exported = {r["_batch_id"]: r["us"] for r in rows}
    return max((Snapshot(b.batch_id, exported.get(b.batch_id), b.received_at) for b in batches), key=Snapshot.rank)


def snapshot_keys(spark: SparkSession, settings: Settings, reg: Registration, std: DataFrame,
                  batch: BatchState) -> DataFrame:
    """``_record_key`` of every key ``batch`` holds: its accepted rows, and its quarantined rows
    whose key conform read (the department still has that record; only a value of it was bad)."""
    keys = std.filter(F.col("_batch_id") == batch.batch_id).select(
        record_key([F.col(k) for k in reg.key], settings).alias("_record_key"))
    if batch.rows_quarantined:
        lake = Lake.from_settings(settings)
        bad = spark.read.parquet(lake.spark_uri(zones.quarantine_dir(reg.resource, batch.batch_id)))
        cols = [quarantined_key(k) for k in reg.key]
        if all(c in bad.columns for c in cols):  # conformed before its registration was full: none
            known = F.lit(False)
            for c in cols:
                known = known | F.col(c).isNotNull()
            keys = keys.unionByName(
                bad.filter(known).select(record_key([F.col(c) for c in cols], settings).alias("_record_key")))
    return keys.distinct()


def _rule(reg: Registration) -> str:
    words = {reg.version_field: "greatest version_field", EXPORTED_AT: "latest export time",
             "_received_at": "latest received batch", "_batch_id": "greatest batch id", "_source_row": "last row"}
    rule = ", then ".join(words[c] for c in criteria(reg))
    return rule + ("; keys the newest full snapshot lacks are ended" if reg.snapshot == "full" else "")


def curate_resource(spark: SparkSession, settings: Settings, reg: Registration) -> CurateResult:
    lake = Lake.from_settings(settings)
    use_catalog(spark, settings)
    ledger = Ledger.read(lake, reg)
    now = ledger.curated or {}
    promotable = ledger.promotable()
    # A table keyed under another secret (or by the unkeyed digest of earlier versions) is rebuilt:
    # its _record_keys would never match the new ones, and every key would be stored twice.
    kid = key_id(settings.record_secret())
    rekey = bool(now.get("batches")) and now.get("record_key_id") != kid
    # A base-library marker added (or removed) since: every row needs its _<library>_key.
    rekey = rekey or (bool(now.get("batches")) and now.get("base_keys", []) != sorted(reg.base_marks))
    rebuild = ledger.curate_rebuild() or rekey
    pending = ledger.curate_pending() or (promotable if rekey else [])
    if not promotable and not now.get("batches"):
        return CurateResult(reg.resource, "empty", 0, now.get("version"), [])
    if not pending and not rebuild:
        return CurateResult(reg.resource, "unchanged", int(now.get("rows", 0)), now.get("version"), [])

    table = tables.curated_table(reg)
    name = table.spark(settings)
    batches = promotable if rebuild else pending
    rows = curated_rows(spark, settings, reg, batches)
    tables.ensure_table(spark, settings, reg, table, rows.schema, properties=tables.CURATED_PROPERTIES)
    write_id = uuid.uuid4().hex
    operation = "rebuild" if rebuild else "merge"
    by_batch = {b.batch_id: b for b in ledger.batches}
    merged = {} if rebuild else {
        b: c for b, c in (now.get("batches") or {}).items() if b in by_batch and by_batch[b].curated
    }
    merged.update({b: by_batch[b].standardized["committed_at"] for b in batches})
    received_through = max((by_batch[b].received_at for b in merged), default="")

    # Full snapshots: which batch's keys the table holds after this run, and whether it is new.
    current = arriving = members = None
    ended = 0
    if reg.snapshot == "full":
        std = standardized_rows(spark, settings, reg)
        newest = newest_snapshot(spark, settings, reg, std, [by_batch[b] for b in batches])
        current = None if rebuild else Snapshot.from_dict(now.get("snapshot"))
        if current is not None and current.batch_id not in merged:  # pragma: no cover - a pointer from elsewhere
            current = None
        if newest is not None and (current is None or newest.rank() > current.rank()):
            current = arriving = newest
        if current is not None:
            members = snapshot_keys(spark, settings, reg, std, by_batch[current.batch_id])
    if members is not None and rebuild:
        ended = rows.join(members, "_record_key", "left_anti").count()
        rows = rows.join(members, "_record_key", "left_semi")
    elif members is not None and arriving:
        ended = spark.table(name).select("_record_key").join(members, "_record_key", "left_anti").count()
        rows = members.join(rows, "_record_key", "left")  # every key the snapshot holds: the rest go
    elif members is not None:
        rows = rows.join(members, "_record_key", "left_semi")  # an older snapshot brings back no key
    rows = tables.aligned(spark, settings, table, rows)

    props = {
        tables.SNAPSHOT_RECEIVED_THROUGH: received_through,
        tables.SNAPSHOT_BATCHES: ",".join(sorted(batches)),
        tables.SNAPSHOT_WRITE_ID: write_id,
        tables.SNAPSHOT_OPERATION: operation,
    }
    if reg.snapshot == "full":
        props[SNAPSHOT_ENDED] = str(ended)
        if current is not None:
            props[SNAPSHOT_CURRENT] = current.batch_id
    with tables.snapshot_properties(spark, props):
        if rebuild:
            rows.writeTo(name).overwrite(F.lit(True))
        else:
            view = f"citylake_curate_{reg.resource}_{write_id[:8]}"
            rows.createOrReplaceTempView(view)
            # A snapshot key with no incoming row (s._batch_id null) is kept as it is.
            incoming = "s._batch_id IS NOT NULL AND " if arriving else ""
            try:
                spark.sql(
                    f"MERGE INTO {name} t USING {view} s ON t._record_key = s._record_key "
                    f"WHEN MATCHED AND {incoming}{wins_sql(reg)} THEN UPDATE SET * "
                    f"WHEN NOT MATCHED {'AND s._batch_id IS NOT NULL ' if arriving else ''}THEN INSERT *"
                    + (" WHEN NOT MATCHED BY SOURCE THEN DELETE" if arriving else "")
                )
            finally:
                spark.catalog.dropTempView(view)
    written = tables.snapshot_by_write(spark, settings, table, write_id)
    summary = (written or {}).get("summary", {})
    facts = tables.table_facts(settings, table)
    pointer = {
        "resource": reg.resource,
        "table": table.ident,
        "version": str(facts.snapshot_id) if facts.snapshot_id is not None else None,
        "snapshot_id": facts.snapshot_id,
        "rows": facts.rows,
        "columns": [{"name": c["name"], "type": c["type"]} for c in facts.columns],
        # batch → the standardized commit merged: a batch conformed again is merged again
        "batches": dict(sorted(merged.items())),
        "updated_at": now_utc().isoformat(),
        "received_through": received_through or None,
        # full snapshots: the batch whose keys the table holds
        "snapshot": current.as_dict() if current is not None else None,
        "last_run": {
            "operation": operation,
            "batches": sorted(batches),
            "snapshot_id": (written or {}).get("snapshot_id"),
            "added_records": int(summary.get("added-records", 0) or 0),
            "deleted_records": int(summary.get("deleted-records", 0) or 0)
            + int(summary.get("added-position-deletes", 0) or 0),
            "ended": ended,
        },
        "rule": _rule(reg),
        "record_key_id": kid,  # the fingerprint of the secret _record_key is keyed with
        "base_keys": sorted(reg.base_marks),  # the libraries whose _<library>_key the rows carry
    }
    # Written after the table commit. A run stopped in between merges the same batches again
    # next time, which changes nothing: a row never beats itself, and the snapshot then arriving
    # again ends nothing more.
    lake.write_json(zones.curated_pointer(reg.resource), pointer)
    last = pointer["last_run"]
    return CurateResult(
        reg.resource, "rebuilt" if rebuild else "merged", facts.rows, pointer["version"], sorted(batches),
        last["added_records"], last["deleted_records"], ended,
    )
