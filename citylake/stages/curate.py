"""Curate: promoted standardized batches → the curated table, merged by key, masked.

Run by ``spark-submit citylake/drivers/sparkjob.py curate --resource R`` (the DAGs),
``citylake run`` and the tests.

Which version of a key wins (the documented rule): the row with the greatest
``version_field`` value when the registration names one (e.g. the 登簿日期 of a
real-estate record), then the row from the most recently received batch, then
the later row in that file. Only batches whose quality gate passed are used.

Curated data is for shared use: ``personal`` fields are masked (the rules of
:mod:`citylake.core.masking`), ``restricted`` fields are left out, and ``_record_key`` (a SHA-256
of the key) lets analysts join records without seeing personal keys. ``_batch_id``,
``_source_row`` and ``_received_at`` say where each row came from.

Incremental: curate reads only the promoted batches not yet merged, picks each key's winner among
them, and ``MERGE INTO`` the curated Iceberg table (:mod:`citylake.core.tables`): a key is updated
only when the incoming row wins by the rule above, inserted when new. The table is merge-on-read,
so a merge writes the changed rows and a small delete file, not the table. Each merge is one
snapshot whose summary names its batches (``citylake.batches``): the snapshot history is the audit
trail (``citylake history``). When a batch already merged has left the promoted set (conformed
again, or blocked on a new check), the table is rebuilt from the promoted batches in one snapshot.
Running again with nothing new changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from citylake.core import tables, zones
from citylake.core.lake import Lake, now_utc
from citylake.core.ledger import Ledger
from citylake.core.masking import mask_column
from citylake.core.registry import Registration
from citylake.core.settings import Settings
from citylake.core.spark import use_catalog


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

    def as_dict(self) -> dict:
        return self.__dict__.copy()


# After version_field, ties go to the later batch, then the later row in it (the winner rule).
TIE_BREAK = ("_received_at", "_batch_id", "_source_row")


def winner_order(reg: Registration) -> list[Column]:
    """The winner rule as a sort order, best first."""
    order = [F.col(reg.version_field).desc_nulls_last()] if reg.version_field else []
    return order + [F.col(c).desc() for c in TIE_BREAK]


def wins_sql(reg: Registration, new: str = "s", old: str = "t") -> str:
    """SQL: the row ``new`` beats the stored row ``old`` by the winner rule (ties keep ``old``)."""
    tie = "FALSE"
    for c in reversed(TIE_BREAK):
        tie = f"({new}.{c} > {old}.{c} OR ({new}.{c} = {old}.{c} AND {tie}))"
    if not reg.version_field:
        return tie
    v = f"`{reg.version_field}`"
    return (
        f"({new}.{v} > {old}.{v} OR ({new}.{v} IS NOT NULL AND {old}.{v} IS NULL)"
        f" OR ({new}.{v} <=> {old}.{v} AND {tie}))"
    )


def curated_rows(spark: SparkSession, settings: Settings, reg: Registration, batches: list[str]) -> DataFrame:
    """Each key's winning row among ``batches``, as curated shares it."""
    std = spark.table(tables.standardized_table(reg).spark(settings)).filter(F.col("_batch_id").isin(batches))
    latest = Window.partitionBy(*[F.col(k) for k in reg.key]).orderBy(*winner_order(reg))
    winners = std.withColumn("_rank", F.row_number().over(latest)).filter(F.col("_rank") == 1)
    record_key = F.sha2(F.concat_ws("\u001f", *[F.col(k).cast("string") for k in reg.key]), 256)
    return winners.select(
        record_key.alias("_record_key"),
        *shared_columns(reg, std.columns),
        F.col("_batch_id"), F.col("_source_row"), F.col("_received_at"),
    )


def curate_resource(spark: SparkSession, settings: Settings, reg: Registration) -> CurateResult:
    lake = Lake.from_settings(settings)
    use_catalog(spark, settings)
    ledger = Ledger.read(lake, reg)
    now = ledger.curated or {}
    promotable = ledger.promotable()
    rebuild = ledger.curate_rebuild()
    pending = ledger.curate_pending()
    if not promotable and not now.get("batches"):
        return CurateResult(reg.resource, "empty", 0, now.get("version"), [])
    if not pending and not rebuild:
        return CurateResult(reg.resource, "unchanged", int(now.get("rows", 0)), now.get("version"), [])

    table = tables.curated_table(reg)
    name = table.spark(settings)
    batches = promotable if rebuild else pending
    rows = curated_rows(spark, settings, reg, batches)
    tables.ensure_table(spark, settings, reg, table, rows.schema, properties=tables.CURATED_PROPERTIES)
    rows = tables.aligned(spark, settings, table, rows)
    write_id = uuid.uuid4().hex
    operation = "rebuild" if rebuild else "merge"
    by_batch = {b.batch_id: b for b in ledger.batches}
    merged = {} if rebuild else {
        b: c for b, c in (now.get("batches") or {}).items() if b in by_batch and by_batch[b].curated
    }
    merged.update({b: by_batch[b].standardized["committed_at"] for b in batches})
    received_through = max((by_batch[b].received_at for b in merged), default="")
    props = {
        tables.SNAPSHOT_RECEIVED_THROUGH: received_through,
        tables.SNAPSHOT_BATCHES: ",".join(sorted(batches)),
        tables.SNAPSHOT_WRITE_ID: write_id,
        tables.SNAPSHOT_OPERATION: operation,
    }
    with tables.snapshot_properties(spark, props):
        if rebuild:
            rows.writeTo(name).overwrite(F.lit(True))
        else:
            view = f"citylake_curate_{reg.resource}_{write_id[:8]}"
            rows.createOrReplaceTempView(view)
            try:
                spark.sql(
                    f"MERGE INTO {name} t USING {view} s ON t._record_key = s._record_key "
                    f"WHEN MATCHED AND {wins_sql(reg)} THEN UPDATE SET * "
                    f"WHEN NOT MATCHED THEN INSERT *"
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
        "last_run": {
            "operation": operation,
            "batches": sorted(batches),
            "snapshot_id": (written or {}).get("snapshot_id"),
            "added_records": int(summary.get("added-records", 0) or 0),
            "deleted_records": int(summary.get("deleted-records", 0) or 0)
            + int(summary.get("added-position-deletes", 0) or 0),
        },
        "rule": "greatest version_field, then latest received batch, then last row" if reg.version_field
        else "latest received batch, then last row",
    }
    # Written after the table commit. A run stopped in between merges the same batches again
    # next time, which changes nothing: a row never beats itself.
    lake.write_json(zones.curated_pointer(reg.resource), pointer)
    last = pointer["last_run"]
    return CurateResult(
        reg.resource, "rebuilt" if rebuild else "merged", facts.rows, pointer["version"], sorted(batches),
        last["added_records"], last["deleted_records"],
    )
