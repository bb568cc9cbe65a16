"""Curate job: promoted standardized batches → curated, deduplicated by key, masked.

    spark-submit jobs/curate.py --resource enterprise_registration

Which version of a key wins (the documented rule): the row with the greatest
``version_field`` value when the registration names one (e.g. the 登簿日期 of a
real-estate record), then the row from the most recently received batch, then
the later row in that file. Only batches whose quality gate passed are used.

Curated data is for shared use: ``personal`` fields are masked (STANDARDS.md §6),
``restricted`` fields are left out, and ``_record_key`` (a SHA-256 of the key)
lets analysts join records without seeing personal keys.

Curated is recomputed from the promoted batches and written as a new version
folder; ``_CURRENT.json`` is switched last, so readers never see a half-written
version. Re-running with the same batches changes nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyspark.sql import Column, SparkSession, Window
from pyspark.sql import functions as F

from citylake.lake import Lake, curated_dir, now_utc, staging_dir, standardized_dir
from citylake.pipeline import promotable_batches
from citylake.registry import Registration
from citylake.settings import Settings

CURRENT = "_CURRENT.json"
KEEP_VERSIONS = 2
# Two-character surnames keep both characters when a name is masked (欧阳** not 欧***).
COMPOUND_SURNAMES = (
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "夏侯",
    "令狐", "端木", "独孤", "南宫", "西门", "万俟", "闻人", "轩辕", "澹台", "公冶", "太叔", "申屠", "钟离",
)


# ---- masking (native expressions) -----------------------------------------------------------
def _stars(n: Column) -> Column:
    return F.array_join(F.array_repeat(F.lit("*"), F.greatest(n, F.lit(0)).cast("int")), "")


def mask_expr(kind: str, col: Column) -> Column:
    text = col.cast("string")
    n = F.length(text)
    if kind == "cn_id":  # keep first 6 and last 4
        masked = F.concat(F.substring(text, 1, 6), _stars(n - 10), F.substring(text, -4, 4))
    elif kind == "mobile":  # keep first 3 and last 4
        masked = F.concat(F.substring(text, 1, 3), _stars(n - 7), F.substring(text, -4, 4))
    elif kind == "name":  # keep the surname
        compound = F.substring(text, 1, 2).isin(*COMPOUND_SURNAMES) & (n > 2)
        keep = F.when(compound, F.lit(2)).otherwise(F.lit(1))
        masked = F.concat(F.when(compound, F.substring(text, 1, 2)).otherwise(F.substring(text, 1, 1)),
                          _stars(n - keep))
    elif kind == "address":  # keep up to the county / district
        head = F.regexp_extract(text, r"^(.*?(?:区|县|旗))", 1)
        masked = F.when(head != "", F.concat(head, F.lit("****"))).otherwise(F.lit("****"))
    elif kind == "bank_account":  # keep the last 4
        masked = F.concat(_stars(n - 4), F.substring(text, -4, 4))
    else:  # full
        masked = F.lit("****")
    return F.when(text.isNull(), F.lit(None).cast("string")).otherwise(masked)


def shared_columns(reg: Registration, available: list[str]) -> list[Column]:
    cols: list[Column] = []
    for f in reg.fields:
        if f.sensitivity == "restricted":
            continue
        if f.sensitivity == "personal":
            cols.append(mask_expr(f.effective_mask, F.col(f.name)).alias(f.name))
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


def current(lake: Lake, reg: Registration) -> dict | None:
    return lake.read_json_or(f"{curated_dir(reg.resource)}/{CURRENT}")


def curate_resource(spark: SparkSession, settings: Settings, reg: Registration, *,
                    fail_before_switch: bool = False) -> CurateResult:
    lake = Lake.from_settings(settings)
    batches = promotable_batches(settings, reg)
    now = current(lake, reg)
    if not batches:
        return CurateResult(reg.resource, "empty", 0, now and now.get("version"), [])
    if now and sorted(now.get("batches", [])) == sorted(batches) and lake.exists(now["path"]):
        return CurateResult(reg.resource, "unchanged", now["rows"], now["version"], batches)

    df = spark.read.parquet(*[lake.spark_uri(standardized_dir(reg.resource, b)) for b in batches])
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
    staged = staging_dir("curate", reg.resource, version)
    target = f"{curated_dir(reg.resource)}/version={version}"
    out.coalesce(max(1, spark.sparkContext.defaultParallelism // 2)).write.mode("overwrite").parquet(
        lake.spark_uri(staged)
    )
    lake.delete_dir(target)
    lake.move(staged, target)
    if fail_before_switch:  # used by the crash-safety test
        raise RuntimeError(f"{reg.resource}: simulated crash before switching curated version")
    written = spark.read.parquet(lake.spark_uri(target))
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
    lake.write_json(f"{curated_dir(reg.resource)}/{CURRENT}", pointer)
    _prune_versions(lake, reg, keep={version, now["version"] if now else version})
    return CurateResult(reg.resource, "curated", rows, version, sorted(batches))


def _prune_versions(lake: Lake, reg: Registration, keep: set[str]) -> None:
    """Remove curated versions other than the current and the previous one (in-flight readers)."""
    for d in lake.list_dirs(curated_dir(reg.resource)):
        if d.startswith("version=") and d.split("=", 1)[1] not in keep:
            lake.delete_dir(f"{curated_dir(reg.resource)}/{d}")


def main(argv: list[str] | None = None) -> int:
    from jobs.resource_job import start

    parser = argparse.ArgumentParser(description="Merge promoted batches of one resource into curated")
    args, settings, reg, spark = start(parser, argv, "curate")
    r = curate_resource(spark, settings, reg)
    print(f"{r.resource}: {r.status} rows={r.rows} version={r.version} batches={len(r.batches)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
