"""Conform: raw batch → standardized rows + quarantined rows (docs/conform-rules.md).

Run by ``spark-submit citylake/drivers/sparkjob.py conform --resource R [--batch ID …]`` (the
DAGs), ``citylake run`` and the tests. Decoding happens first (:mod:`citylake.stages.decode`);
every check after that is a native Spark column expression from
:mod:`citylake.core.expressions` — no per-row Python.
Outputs are staged, then committed per batch: the zone folder is swapped in
and a commit marker is written last, so a batch is visible whole
or not at all and a re-run after a crash rewrites the same result.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from citylake.core import expressions as X
from citylake.core import tables, zones
from citylake.core.identifiers import CHECKERS
from citylake.core.lake import Lake, now_utc
from citylake.core.ledger import Ledger
from citylake.core.registry import FieldSpec, Registration
from citylake.core.settings import Settings
from citylake.core.spark import use_catalog
from citylake.stages.decode import DecodeError, DecodeInfo, decode_batches, schema_for

ROW_REASONS = "_reasons"
LINEAGE = ["_batch_id", "_source_row", "_received_at"]
# When the department exported the rows, where the registration says (export_time): curate's winner rule.
EXPORTED_AT = "_exported_at"


def exported_at(reg: Registration, settings: Settings, manifest: dict) -> list[Column]:
    """The batch's ``_exported_at`` column (null where the drop does not state it), or none at all
    when the registration names no export time."""
    stated = reg.export_time
    if stated is None:
        return []
    if stated.field:
        return [F.col(stated.field).cast("timestamp").alias(EXPORTED_AT)]
    at = stated.stated_in(manifest["source_name"])
    local = at.replace(tzinfo=ZoneInfo(settings.timezone)) if at else None
    return [F.lit(local).cast("timestamp").alias(EXPORTED_AT)]


def quarantined_key(field_name: str) -> str:
    """The quarantine column holding a key field as conformed, for a full snapshot's rows: the
    snapshot still holds that key, so curate does not end it (citylake.stages.curate)."""
    return f"_key_{field_name}"


class ConformError(RuntimeError):
    """A batch could not be conformed; the message names resource, batch and reason."""


@dataclass
class ConformResult:
    resource: str
    batch_id: str
    status: str  # conformed | rejected
    received: int = 0
    standardized: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    decode: dict = field(default_factory=dict)
    error: dict | None = None

    def as_dict(self) -> dict:
        return self.__dict__.copy()


# ---- expressions per field ------------------------------------------------------------------
def _reason_if(cond: Column, code: str, fld: FieldSpec) -> Column:
    return F.when(cond, F.lit(f"{code}:{fld.name}"))


MEMBERSHIP_CHECKS = ("cn_id", "division_code")


def _norm(name: str) -> str:
    return f"_n_{name}"


def _ident(name: str) -> str:
    return f"_id_{name}"


def _known(name: str) -> str:
    return f"_k_{name}"


def _identifier_stages(reg: Registration, settings: Settings, decoded: DataFrame,
                       bindings: X.Bindings) -> DataFrame:
    """Materialize each identifier's normalized form, then its GB/T 2260 membership (one SQL IN each)."""
    idents = [
        X.identifier_normalized(
            f.check, F.col(_norm(f.name)), **({"legacy15": f.legacy15} if f.check == "cn_id" else {})
        ).alias(_ident(f.name))
        for f in reg.fields
        if f.check in CHECKERS
    ]
    if idents:
        decoded = bindings.apply(decoded).select("*", *idents)
    known = [
        X.division_membership(
            _ident(f.name),
            any_edition=f.check == "cn_id",
            prefix6=f.check == "cn_id",
            retired_window_years=settings.division_retired_window_years,
        ).alias(_known(f.name))
        for f in reg.fields
        if f.check in MEMBERSHIP_CHECKS
    ]
    if known:
        decoded = decoded.select("*", *known)
    return decoded


def field_columns(fld: FieldSpec, settings: Settings, missing: bool) -> tuple[list[Column], list[Column]]:
    """(typed output columns, reason columns) for one field, from its normalized text column.

    The reasons read the typed value by name (``fld.name``): :func:`conform_frame` computes the
    outputs in a projection before the one that computes the reasons, so each text is parsed once.
    """
    norm = F.col(_norm(fld.name))
    parsed = F.col(fld.name)
    reasons: list[Column] = []
    if fld.required and not missing:
        reasons.append(_reason_if(norm.isNull(), "required", fld))

    if fld.check in CHECKERS:
        kw: dict = {"legacy15": fld.legacy15} if fld.check == "cn_id" else {}
        if fld.check == "division_code":
            kw["retired_window_years"] = settings.division_retired_window_years
        if fld.check in MEMBERSHIP_CHECKS:
            kw["known"] = F.col(_known(fld.name))
        code = X.identifier_reason(fld.check, norm, **kw)
        reasons.append(F.when(code.isNotNull(), F.concat(code, F.lit(f":{fld.name}"))))
        return [F.col(_ident(fld.name)).alias(fld.name)], reasons
    if fld.check == "codelist":
        value = X.codelist_value(norm, fld.codes or {})
        reasons.append(_reason_if(norm.isNotNull() & parsed.isNull(), "not_in_codelist", fld))
        return [value.alias(fld.name)], reasons

    outputs: list[Column]
    if fld.type == "date":
        value = X.parse_date(norm)
        reasons.append(_reason_if(norm.isNotNull() & parsed.isNull(), "bad_date", fld))
        outputs = [value.alias(fld.name)]
    elif fld.type == "timestamp":
        value = X.parse_timestamp(norm)
        reasons.append(_reason_if(norm.isNotNull() & parsed.isNull(), "bad_timestamp", fld))
        outputs = [value.alias(fld.name)]
    elif fld.type == "integer":
        value = X.parse_integer(norm)
        reasons.append(_reason_if(norm.isNotNull() & parsed.isNull(), "bad_number", fld))
        outputs = [value.alias(fld.name)]
    elif fld.type in ("decimal", "double"):
        value = X.parse_decimal(norm)
        reasons.append(_reason_if(norm.isNotNull() & parsed.isNull(), "bad_number", fld))
        outputs = [value.alias(fld.name)]
    elif fld.type == "money":
        money = X.parse_money(norm, fld.unit or "元")
        value = money.getField("amount")
        reasons.append(_reason_if(norm.isNotNull() & parsed.isNull(), "bad_money", fld))
        outputs = [value.alias(fld.name), money.getField("currency").alias(f"{fld.name}_currency")]
    elif fld.type == "boolean":
        lowered = F.lower(norm)
        value = F.when(lowered.isin("是", "true", "y", "yes", "1"), F.lit(True)).when(
            lowered.isin("否", "false", "n", "no", "0"), F.lit(False)
        )
        reasons.append(_reason_if(norm.isNotNull() & parsed.isNull(), "bad_boolean", fld))
        outputs = [value.alias(fld.name)]
    else:  # string / text
        value = norm
        outputs = [value.alias(fld.name)]

    if fld.min is not None or fld.max is not None:
        out_of_range = F.lit(False)
        if fld.min is not None:
            out_of_range = out_of_range | (parsed < F.lit(fld.min))
        if fld.max is not None:
            out_of_range = out_of_range | (parsed > F.lit(fld.max))
        reasons.append(_reason_if(parsed.isNotNull() & out_of_range, "out_of_range", fld))
    return outputs, reasons


def conform_frame(decoded: DataFrame, reg: Registration, settings: Settings, missing_fields: list[str],
                  missing_required: list[str] | None = None) -> DataFrame:
    """Typed values + ``_reasons`` for every decoded row (nothing filtered)."""
    # Normalize every field once into its own column. Spark keeps this projection separate
    # from the next one (it does not inline expensive expressions twice), which keeps the
    # generated code small and each field's text processed a single time.
    originals = [F.col(f.name).alias(f"_orig_{f.name}") for f in reg.fields]
    normalized = [X.normalize_text(F.col(f.name)).alias(_norm(f.name)) for f in reg.fields]
    damaged = F.lit(False)
    for fld in reg.fields:
        damaged = damaged | X.has_encoding_damage(F.col(fld.name))
    decoded = decoded.select(
        "_source_row", "_source_row_end", "_raw_line", "_pre_reasons", *originals, *normalized,
        damaged.alias("_damaged"),
    )
    # The checks' intermediate values become columns rather than lambda variables (X.Bindings).
    bindings = X.Bindings()
    with X.materialized(bindings):
        decoded = _identifier_stages(reg, settings, decoded, bindings)
        typed: list[Column] = []
        reason_cols: list[Column] = []
        for fld in reg.fields:
            outs, reasons = field_columns(fld, settings, fld.name in missing_fields)
            typed += outs
            reason_cols += reasons
    # Typed values in a projection of their own, before the reasons that read them: Spark keeps
    # it apart (a costly expression used twice is not inlined), so no text is parsed twice.
    decoded = bindings.apply(decoded).select("*", *typed)
    reason_cols.append(F.when(F.col("_damaged"), F.lit("encoding_damage")))
    # A required field the file has no column for: every row that could be split lacks it.
    reason_cols += [F.lit(f"missing_column:{name}") for name in missing_required or []]
    # array_except drops the nulls with generated code (a `filter` lambda runs interpreted); the
    # codes are distinct (each names its field), so its de-duplication changes nothing.
    field_reasons = F.array_except(F.array(*reason_cols), F.array(F.lit(None).cast("string")))
    # A row that could not be split has no fields to judge: its decode reason is the whole story.
    all_reasons = F.when(F.col("_raw_line").isNotNull(), F.col("_pre_reasons")).otherwise(
        F.concat(F.col("_pre_reasons"), field_reasons)
    )
    df = decoded.select(
        "_source_row",
        "_source_row_end",
        "_raw_line",
        *[c for c in decoded.columns if c.startswith("_orig_")],
        *output_columns(reg),
        all_reasons.alias(ROW_REASONS),
    )

    # Duplicates, judged only among rows that are otherwise good, first occurrence kept.
    clean = F.size(ROW_REASONS) == 0
    orig_names = [f"_orig_{f.name}" for f in reg.fields]
    by_text = Window.partitionBy(clean.alias("_c"), *orig_names).orderBy("_source_row")
    df = df.withColumn("_dup_row", clean & (F.row_number().over(by_text) > 1))
    still_clean = clean & ~F.col("_dup_row")
    by_key = Window.partitionBy(still_clean.alias("_c2"), *[F.col(k) for k in reg.key]).orderBy("_source_row")
    df = df.withColumn("_dup_key", still_clean & (F.row_number().over(by_key) > 1))
    df = df.withColumn(
        ROW_REASONS,
        F.when(F.col("_dup_row"), F.array(F.lit("duplicate_row")))
        .when(F.col("_dup_key"), F.array(F.lit("duplicate_key")))
        .otherwise(F.col(ROW_REASONS)),
    ).drop("_dup_row", "_dup_key")
    return df


def output_columns(reg: Registration) -> list[str]:
    cols = []
    for f in reg.fields:
        cols.append(f.name)
        if f.type == "money":
            cols.append(f"{f.name}_currency")
    return cols


# ---- commit ---------------------------------------------------------------------------------
def _parquet_rows(lake: Lake, rel: str) -> int:
    import pyarrow.parquet as pq

    total = 0
    for f in lake.list_files(rel):
        if f.name.endswith(".parquet"):
            with lake.open_read(f.path) as fh:
                total += pq.ParquetFile(fh).metadata.num_rows
    return total


def _reason_counts(spark: SparkSession, lake: Lake, rel: str) -> dict[str, int]:
    rows = (
        spark.read.parquet(lake.spark_uri(rel)).select(F.explode(ROW_REASONS).alias("r")).groupBy("r").count().collect()
    )
    return {r["r"]: int(r["count"]) for r in sorted(rows, key=lambda r: r["r"])}


def write_standardized(spark: SparkSession, settings: Settings, reg: Registration, batch_id: str,
                        good: DataFrame) -> dict:
    """Replace the batch's partition of the standardized table with ``good``: one Iceberg commit
    (also when ``good`` is empty, so a batch conformed again never keeps rows it no longer has)."""
    use_catalog(spark, settings)
    table = tables.standardized_table(reg)
    tables.ensure_table(spark, settings, reg, table, good.schema, partitioned_by=["_batch_id"],
                        properties=tables.STANDARDIZED_PROPERTIES)
    write_id = uuid.uuid4().hex
    props = {tables.SNAPSHOT_BATCH: batch_id, tables.SNAPSHOT_WRITE_ID: write_id, tables.SNAPSHOT_OPERATION: "conform"}
    with tables.snapshot_properties(spark, props):
        tables.aligned(spark, settings, table, good).writeTo(table.spark(settings)).overwrite(
            F.col("_batch_id") == F.lit(batch_id)
        )
    written = tables.snapshot_by_write(spark, settings, table, write_id)
    if written is None:  # pragma: no cover - Iceberg returned without committing
        raise ConformError(f"{reg.resource} batch {batch_id}: no standardized snapshot was committed")
    return written


def _record_failure(lake: Lake, reg: Registration, batch_id: str, error: DecodeError, manifest: dict) -> dict:
    failure = {
        "batch_id": batch_id,
        "resource": reg.resource,
        "code": error.code,
        "message_zh": error.message_zh,
        "message_en": error.message_en,
        "source_name": manifest["source_name"],
        "failed_at": now_utc().isoformat(),
    }
    lake.write_json(zones.failure_marker(reg.resource, batch_id), failure)
    return failure


FILE_COLUMN = "_file"  # the batch a decoded row came from, as the partition of the decode output


def _spark_ddl(schema) -> str:
    types = {"int64": "bigint", "string": "string", "list<item: string>": "array<string>"}
    return ", ".join(f"`{f.name}` {types[str(f.type)]}" for f in schema)


def _info_path(out: str, batch_id: str) -> str:
    return f"{out}/_info/{zones.batch_dir_name(batch_id)}.json"


def _decode_task(settings: Settings, reg: Registration, out: str):
    """What each executor task runs on its files (rows: batch id, raw path): it streams the decoded
    rows back to Spark, tagged with the batch, and leaves what it learned about each file in
    ``<out>/_info/<batch>.json`` (a DecodeError there when the file is unreadable)."""

    def run(files):
        lake = Lake.from_settings(settings)
        for part in files:
            for batch_id, raw_rel in zip(part.column("batch_id").to_pylist(), part.column("raw_path").to_pylist(),
                                         strict=True):
                info = DecodeInfo(encoding=None)
                tag = None
                try:
                    for batch in decode_batches(lake, reg, raw_rel, info):
                        if tag is None or len(tag) != batch.num_rows:
                            tag = pa.array([batch_id] * batch.num_rows, pa.string())
                        yield batch.append_column(FILE_COLUMN, tag)
                except DecodeError as exc:
                    info.error = exc.as_dict()
                lake.write_json(_info_path(out, batch_id), info.as_dict())

    return run


@dataclass
class Decoded:
    """One file decoded by an executor: its rows (Parquet under ``path``) and what was learned."""

    path: str | None  # None when the file has no rows
    info: DecodeInfo


def decode_in_executors(spark: SparkSession, settings: Settings, reg: Registration, files: dict[str, str],
                        out: str) -> dict[str, Decoded | DecodeError]:
    """Decode every file (batch id -> raw path) in one Spark job, one task per file, so files decode
    in parallel; the driver only plans and reads back each file's DecodeInfo."""
    use_catalog(spark, settings)  # also the lake's S3 credentials for Spark's own writes
    lake = Lake.from_settings(settings)
    lake.delete_dir(out)
    jobs = sorted(files.items())
    plan = spark.createDataFrame(spark.sparkContext.parallelize(jobs, len(jobs)), "batch_id string, raw_path string")
    schema = schema_for(reg).append(pa.field(FILE_COLUMN, pa.string()))
    decoded = plan.mapInArrow(_decode_task(settings, reg, out), _spark_ddl(schema))
    decoded.write.mode("overwrite").partitionBy(FILE_COLUMN).parquet(lake.spark_uri(f"{out}/rows"))
    results: dict[str, Decoded | DecodeError] = {}
    for batch_id, _raw in jobs:
        info = DecodeInfo.from_dict(lake.read_json(_info_path(out, batch_id)))
        if info.error:
            results[batch_id] = DecodeError(info.error["code"], info.error["message_zh"], info.error["message_en"])
            continue
        path = f"{out}/rows/{FILE_COLUMN}={batch_id}"
        written = _parquet_rows(lake, path) if lake.exists(path) else 0
        if written != info.rows:  # pragma: no cover - Spark lost or repeated rows of a task
            raise ConformError(f"{reg.resource} batch {batch_id}: {info.rows} rows decoded but {written} written")
        results[batch_id] = Decoded(path if written else None, info)
    return results


ROWS_PER_CONFORM_TASK = 250_000


def _conform_partitions(spark: SparkSession, rows: int) -> int:
    """Tasks for conforming ``rows``: a few per core, so that one late task does not leave the
    other cores idle (adaptive execution merged 1 M rows into 3 tasks on 2 cores), and more as the
    rows grow, so that a task's share stays small."""
    return max(2 * spark.sparkContext.defaultParallelism, -(-rows // ROWS_PER_CONFORM_TASK))


def conform_batch(
    spark: SparkSession, settings: Settings, reg: Registration, batch_id: str, ledger: Ledger | None = None,
    decoded: Decoded | DecodeError | None = None,
) -> ConformResult:
    """Conform one batch; ``decoded`` is its file already decoded by :func:`conform_batches`."""
    lake = Lake.from_settings(settings)
    use_catalog(spark, settings)
    manifest = (ledger or Ledger.read(lake, reg)).batch(batch_id).manifest
    if manifest["status"] != "ingested":
        return ConformResult(reg.resource, batch_id, "rejected", error={"code": manifest.get("reason")})
    work = zones.staging_dir("conform", reg.resource, zones.batch_dir_name(batch_id))
    lake.delete_dir(work)
    if decoded is None:
        decoded = decode_in_executors(spark, settings, reg, {batch_id: manifest["raw_path"]}, f"{work}/decode")[batch_id]
    if isinstance(decoded, DecodeError):
        # The whole file is unreadable: nothing to split. Bytes stay in raw; the receipt says why.
        failure = _record_failure(lake, reg, batch_id, decoded, manifest)
        lake.delete_dir(work)
        return ConformResult(reg.resource, batch_id, "rejected", error=failure)

    info = decoded.info
    # A file decodes in one task into one Parquet file, which Spark would read back as one
    # partition: spread its rows first so every core conforms a share (one core did all of it).
    rows = (spark.read.parquet(lake.spark_uri(decoded.path)).repartition(_conform_partitions(spark, info.rows),
                                                                          "_source_row")
            if decoded.path else spark.createDataFrame([], _spark_ddl(schema_for(reg))))
    df = conform_frame(rows, reg, settings, info.missing_fields, info.missing_required).persist()
    try:
        received_at = F.lit(manifest["received_at"]).cast("timestamp")
        lineage = [F.lit(batch_id).alias("_batch_id"), F.col("_source_row"), received_at.alias("_received_at")]
        good = df.filter(F.size(ROW_REASONS) == 0).select(*output_columns(reg), *lineage,
                                                          *exported_at(reg, settings, manifest))
        keys = [F.col(k).alias(quarantined_key(k)) for k in reg.key] if reg.snapshot == "full" else []
        bad = df.filter(F.size(ROW_REASONS) > 0).select(
            *[F.col(f"_orig_{f.name}").alias(f.name) for f in reg.fields],
            "_raw_line",
            ROW_REASONS,
            *lineage,
            "_source_row_end",
            *keys,
        )
        bad.write.mode("overwrite").parquet(lake.spark_uri(f"{work}/quarantine"))
        n_bad = _parquet_rows(lake, f"{work}/quarantine")
        reasons = _reason_counts(spark, lake, f"{work}/quarantine") if n_bad else {}
        written = write_standardized(spark, settings, reg, batch_id, good)
    finally:
        df.unpersist()

    n_good = int(written["summary"].get("added-records", 0) or 0)
    if n_good + n_bad != info.rows:  # the invariant every receipt promises
        # The table holds the batch's rows but no marker says so: the ledger still sees the batch
        # unconformed, and conforming it again replaces them.
        raise ConformError(
            f"{reg.resource} batch {batch_id}: {info.rows} rows decoded but {n_good} standardized + {n_bad} quarantined"
        )
    committed_at = now_utc().isoformat()
    lake.commit(
        f"{work}/quarantine",
        zones.quarantine_dir(reg.resource, batch_id),
        zones.quarantine_marker(reg.resource, batch_id),
        {"batch_id": batch_id, "rows": n_bad, "reasons": reasons, "committed_at": committed_at},
    )
    # Written last: the batch is conformed once this marker names its standardized snapshot.
    lake.write_json(
        zones.standardized_marker(reg.resource, batch_id),
        {
            "batch_id": batch_id,
            "rows": n_good,
            "table": tables.standardized_table(reg).ident,
            "snapshot_id": written["snapshot_id"],
            "columns": [{"name": f.name, "type": f.dataType.simpleString()} for f in good.schema.fields],
            "committed_at": committed_at,
            "decode": info.as_dict(),
        },
    )
    lake.delete_dir(work)
    return ConformResult(reg.resource, batch_id, "conformed", info.rows, n_good, n_bad, reasons, info.as_dict())


def conform_batches(
    spark: SparkSession, settings: Settings, reg: Registration, batch_ids: list[str] | None = None
) -> list[ConformResult]:
    """Conform the named batches, or every batch waiting for conform."""
    ledger = Ledger.read(settings, reg)
    batch_ids = ledger.pending("conform") if batch_ids is None else batch_ids
    files = {b: ledger.batch(b).manifest["raw_path"] for b in batch_ids
             if ledger.batch(b).manifest["status"] == "ingested"}
    if not files:
        return [conform_batch(spark, settings, reg, b, ledger) for b in batch_ids]
    lake = Lake.from_settings(settings)
    out = zones.staging_dir("decode", reg.resource, uuid.uuid4().hex)
    try:
        decoded = decode_in_executors(spark, settings, reg, files, out)
        return [conform_batch(spark, settings, reg, b, ledger, decoded.get(b)) for b in batch_ids]
    finally:
        lake.delete_dir(out)
