"""Curate: promoted standardized batches → curated, deduplicated by key, masked.

Run by ``spark-submit citylake/drivers/sparkjob.py curate --resource R`` (the DAGs),
``citylake run`` and the tests.

Which version of a key wins (the documented rule): the row with the greatest
``version_field`` value when the registration names one (e.g. the 登簿日期 of a
real-estate record), then the row from the most recently received batch, then
the later row in that file. Only batches whose quality gate passed are used.

Curated data is for shared use: ``personal`` fields are masked (the rules of
:mod:`citylake.core.masking`),
``restricted`` fields are left out, and ``_record_key`` (a SHA-256 of the key)
lets analysts join records without seeing personal keys.

Curated is recomputed from the promoted batches and written as a new version
folder; the curated pointer is switched last, so readers never see a half-written
version. Re-running with the same batches changes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from pyspark.sql import Column, SparkSession, Window
from pyspark.sql import functions as F

from citylake.core import zones
from citylake.core.lake import Lake, now_utc
from citylake.core.ledger import Ledger
from citylake.core.masking import mask_column
from citylake.core.registry import Registration
from citylake.core.settings import Settings

KEEP_VERSIONS = 2


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
    status: str  # curated | unchanged | empty
    rows: int = 0
    version: str | None = None
    batches: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def curate_resource(spark: SparkSession, settings: Settings, reg: Registration) -> CurateResult:
    lake = Lake.from_settings(settings)
    ledger = Ledger.read(lake, reg)
    batches = ledger.promotable()
    now = ledger.curated
    if not batches:
        return CurateResult(reg.resource, "empty", 0, now and now.get("version"), [])
    if not ledger.curate_pending():
        return CurateResult(reg.resource, "unchanged", now["rows"], now["version"], batches)

    df = spark.read.parquet(*[lake.spark_uri(zones.standardized_dir(reg.resource, b)) for b in batches])
    order = []
    if reg.version_field:
        order.append(F.col(reg.version_field).desc_nulls_last())
    order += [F.col("_received_at").desc(), F.col("_batch_id").desc(), F.col("_source_row").desc()]
    latest = Window.partitionBy(*[F.col(k) for k in reg.key]).orderBy(*order)
    winners = df.withColumn("_rank", F.row_number().over(latest)).filter(F.col("_rank") == 1)
    record_key = F.sha2(F.concat_ws("\u001f", *[F.col(k).cast("string") for k in reg.key]), 256)
    out = winners.select(
        record_key.alias("_record_key"),
        *shared_columns(reg, df.columns),
        F.col("_batch_id"), F.col("_received_at"),
    )

    digest = hashlib.sha256("\n".join(sorted(batches)).encode()).hexdigest()[:10]
    version = f"{now_utc().strftime('%Y%m%dT%H%M%S')}-{digest}"
    staged = zones.staging_dir("curate", reg.resource, version)
    target = zones.curated_version_dir(reg.resource, version)
    out.coalesce(max(1, spark.sparkContext.defaultParallelism // 2)).write.mode("overwrite").parquet(
        lake.spark_uri(staged)
    )
    written = spark.read.parquet(lake.spark_uri(staged))
    rows = written.count()
    pointer = {
        "resource": reg.resource,
        "version": version,
        "path": target,
        "rows": rows,
        "columns": [{"name": f.name, "type": f.dataType.simpleString()} for f in written.schema.fields],
        "batches": sorted(batches),
        "updated_at": now_utc().isoformat(),
        "rule": "greatest version_field, then latest received batch, then last row" if reg.version_field
        else "latest received batch, then last row",
    }
    lake.commit(staged, target, zones.curated_pointer(reg.resource), pointer)
    _prune_versions(lake, reg, keep={version, now["version"] if now else version})
    return CurateResult(reg.resource, "curated", rows, version, sorted(batches))


def _prune_versions(lake: Lake, reg: Registration, keep: set[str]) -> None:
    """Remove curated versions other than the current and the previous one (in-flight readers)."""
    for d in lake.list_dirs(zones.curated_dir(reg.resource)):
        if d.startswith(zones.VERSION_DIR_PREFIX) and d.split("=", 1)[1] not in keep:
            lake.delete_dir(Lake.join(zones.curated_dir(reg.resource), d))
