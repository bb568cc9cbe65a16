"""Run a resource's suite on one standardized batch and write the quality zone.

``check_batch`` reads the batch through Spark from the standardized Iceberg table, at the snapshot
its commit marker names and pruned to its ``_batch_id`` partition, and validates it with Great
Expectations 1.x (ephemeral context, Spark datasource, whole-dataframe batch). No row of the batch
comes into the Python process: what GE collects are aggregates and at most ``OBSERVED_SAMPLE``
unexpected values (with their ``_source_row``) per expectation. Then it evaluates the batch-level
quarantine gate and writes ``quality/<resource>/batch_id=<id>/result.json`` (our summary, below),
``validation.json`` (the raw GE validation result) and, last, the short quality marker that the
batch ledger reads (:mod:`citylake.core.zones`).

Passes over the batch's files (each reading only the columns it needs): the row count (from
Iceberg's metadata), GE's aggregate metrics of every expectation bundled into a few select jobs,
one job per uniqueness expectation (a window over its column), and, only for expectations that
counted unexpected rows, a second round that samples them (:func:`validate_frame`).

result.json::

    {batch_id, resource, suite, success,
     blocking_failures: [{expectation, column, description_zh, description_en,
                          observed: {unexpected_count, unexpected_percent, unexpected_sample,
                                     source_rows | observed_value, details | error}}],
     pass_rate, evaluated, successful, rows, quarantined, quarantine_rate, max_quarantine_rate,
     checked_at, summary_zh, summary_en, great_expectations_version,
     results: [{expectation_type, column, kwargs, blocking, source, description_zh,
                description_en, success, unexpected_count, unexpected_percent, observed?}]}

``column`` is the column, "a,b" for a compound key, null for table-level expectations.
``kwargs`` leave out GE's batch id and abbreviate long value sets (``{count, first}``); the full
configuration is in validation.json.

``success`` is false when any blocking expectation (or the quarantine gate) failed; such a
batch must not be promoted to curated. ``pass_rate`` = successful / evaluated over every
expectation, blocking or not, including the gate.

Columns keep their Spark types (integers, decimals, strings), except that dates and time-zone-aware
timestamps become ``timestamp_ntz`` in Beijing wall-clock time (:func:`to_frame`), so samples and
the not-in-the-future comparison read as local times; the suite's type expectations name Spark
type kinds (:data:`citylake.stages.check.suite.TYPE_EXPECTATIONS`).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from citylake.core import tables, zones
from citylake.core.lake import Lake
from citylake.core.ledger import QUALITY_OF
from citylake.core.registry import Registration
from citylake.core.settings import Settings
from citylake.core.spark import get_session, use_catalog
from citylake.stages.check.suite import BATCH_ID_PARAMETER, KINDS, _gx, describe, expectation_columns, suite_for

LOCAL_TZ = "Asia/Shanghai"
GATE_TYPE = "citylake_quarantine_rate_at_most"
OBSERVED_SAMPLE = 10  # unexpected values (and their _source_row) kept per failed expectation
# What the ledger needs of a result (the quality marker); the rest stays in result.json.
MARKER_KEYS = (
    "batch_id",
    "success",
    "pass_rate",
    "evaluated",
    "successful",
    "rows",
    "quarantined",
    "blocking_failures",
    "checked_at",
    "summary_zh",
    "summary_en",
    QUALITY_OF,  # the standardized commit this result judged: re-conforming makes it stale
)


# ---- reading -----------------------------------------------------------------------------
def read_standardized(spark, settings: Settings, reg: Registration, batch_id: str, marker: dict | None = None):
    """The standardized batch as a Spark DataFrame (lazy: nothing is read yet), from the table
    snapshot its commit marker names (so the rows judged are the rows that commit wrote), with the
    columns the batch was written with."""
    from pyspark.sql import functions as F

    lake = Lake.from_settings(settings)
    marker = marker or lake.read_json_or(zones.standardized_marker(reg.resource, batch_id))
    if marker is None:
        raise FileNotFoundError(f"standardized batch {reg.resource}/{batch_id} is not committed in {lake.uri}")
    use_catalog(spark, settings)
    name = tables.standardized_table(reg).spark(settings)
    if not spark.catalog.tableExists(name):
        raise FileNotFoundError(f"standardized table {tables.standardized_table(reg).ident} is missing")
    reader = spark.read
    if marker.get("snapshot_id") is not None:
        # Spark's own time-travel option (Iceberg on Spark 4 refuses its older "snapshot-id").
        reader = reader.option("versionAsOf", str(marker["snapshot_id"]))
    df = reader.table(name)
    names = [c["name"] for c in marker.get("columns") or []]
    have = set(df.columns)
    # Iceberg prunes to the batch's partition from this filter: only its files are read.
    df = df.where(F.col("_batch_id") == batch_id)
    return df.select(*[n for n in names if n in have] or df.columns)


def to_frame(df):
    """The frame GE validates, with the mapping the suite's type expectations expect (module
    docstring): dates and time-zone-aware timestamps become Beijing wall-clock timestamps."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, TimestampType

    session_tz = df.sparkSession.conf.get("spark.sql.session.timeZone")
    cols = []
    for f in df.schema.fields:
        col = F.col(f"`{f.name}`")
        if isinstance(f.dataType, DateType):
            col = col.cast("timestamp_ntz")
        elif isinstance(f.dataType, TimestampType):
            # The cast gives wall-clock time in the session's zone: citylake's sessions run in
            # Beijing time (citylake.core.spark); any other session is converted explicitly.
            col = col.cast("timestamp_ntz")
            if session_tz != LOCAL_TZ:
                col = F.convert_timezone(F.lit(session_tz), F.lit(LOCAL_TZ), col)
        cols.append(col.alias(f.name))
    return df.select(*cols)


def quarantined_rows(lake: Lake, reg: Registration, batch_id: str) -> int:
    marker = lake.read_json_or(zones.quarantine_marker(reg.resource, batch_id))
    return int((marker or {}).get("rows") or 0)


# ---- validating --------------------------------------------------------------------------
def _context(gx):
    """An ephemeral GE context: in memory, no data-docs site, no progress bars on stderr."""
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def validate_frame(df, suite, batch_id: str):
    """Validate a Spark frame with an ephemeral GE context (Spark engine); returns (GE result,
    expectations in suite order with the ids GE gave them).

    Two rounds, so that sampling costs only where there is something to sample. GE's Spark engine
    computes the counting metrics of all expectations in a few aggregate jobs, but collects the
    unexpected values and their ``_source_row`` with two more queries per expectation, found or
    not. The first round asks for counts only (no sample, no index column: a limit of 0, which
    Spark answers without running a job); the second runs only the expectations that counted
    unexpected rows, with samples, and their results replace the first round's. The result is
    what one SUMMARY round would have given (:func:`_as_sampled` adds the empty sample fields of
    the expectations that found nothing).
    """
    gx, _ = _gx()
    context = _context(gx)
    # persist=False: GE would persist the frame and never release it (check_batch measured
    # caching slower than reading the files again, and it holds the batch in executor memory).
    batch_def = (
        context.data_sources.add_spark("citylake", persist=False)
        .add_dataframe_asset(name="standardized")
        .add_batch_definition_whole_dataframe("batch")
    )
    batch = batch_def.get_batch(batch_parameters={"dataframe": df})
    own = context.suites.add(
        gx.ExpectationSuite(
            name=suite.name,
            expectations=[copy.copy(e) for e in suite.expectations],
            meta=dict(suite.meta or {}),
        )
    )
    params = {BATCH_ID_PARAMETER: [batch_id]}
    index = ["_source_row"] if "_source_row" in df.columns else None
    result = batch.validate(own, result_format=_result_format(0, None), expectation_parameters=params)
    found = {r.expectation_config.id for r in result.results if (r.result or {}).get("unexpected_count")}
    sampled: dict = {}
    if found:
        chosen = [e for e in own.expectations if e.id in found]
        again = context.suites.add(
            gx.ExpectationSuite(name=f"{suite.name}.sampled", expectations=[copy.copy(e) for e in chosen])
        )
        second = batch.validate(again, result_format=_result_format(OBSERVED_SAMPLE, index),
                                expectation_parameters=params)
        by_id = {r.expectation_config.id: r for r in second.results}
        sampled = {e.id: by_id[a.id] for e, a in zip(chosen, again.expectations, strict=True)}
    for i, res in enumerate(result.results):
        own_id = res.expectation_config.id
        if own_id in sampled:
            res = result.results[i] = sampled[own_id]
            res.expectation_config.id = own_id  # the id in the suite the caller gets back
        else:
            _as_sampled(res.result, index)
        if res.result and res.result.get("element_count") == 0 and res.result.get("unexpected_count", 0) is None:
            res.result["unexpected_count"] = 0  # Spark sums no rows to null: none were unexpected
    return result, own.expectations


def _result_format(sample: int, index: list[str] | None) -> dict:
    # SUMMARY: counts plus up to ``sample`` unexpected values (Spark collects no more than that);
    # with the lineage column as index, GE also reports each sampled value's _source_row, so a
    # receipt can point at the file's lines. return_unexpected_index_query False: GE would
    # otherwise have Spark analyse every condition again to render a query SUMMARY leaves out.
    out: dict = {"result_format": "SUMMARY", "partial_unexpected_count": sample, "return_unexpected_index_query": False}
    if index:
        out["unexpected_index_column_names"] = index
    return out


def _as_sampled(result: dict | None, index: list[str] | None) -> None:
    """The fields a sampling round gives a map expectation that found nothing (empty samples),
    added to its result from the counting round, which asked for none."""
    if result is None or "partial_unexpected_list" not in result:
        return
    result["partial_unexpected_counts"] = []
    if index:
        result["unexpected_index_column_names"] = list(index)
        result["partial_unexpected_index_list"] = []


def _exception_message(res_json: dict) -> str | None:
    info = res_json.get("exception_info") or {}
    if info.get("raised_exception"):
        return info.get("exception_message")
    for value in info.values():  # keyed by metric id when a metric failed
        if isinstance(value, dict) and value.get("exception_message"):
            return value["exception_message"]
    return None


def _observed(res_json: dict) -> dict:
    result = res_json.get("result") or {}
    error = _exception_message(res_json)
    out: dict[str, Any] = {}
    if error:
        out["error"] = error.strip().splitlines()[-1][:500]
    if "observed_value" in result:
        out["observed_value"] = result["observed_value"]
    if result.get("details"):
        out["details"] = result["details"]
    if "unexpected_count" in result:
        out["unexpected_count"] = result["unexpected_count"]
        out["unexpected_percent"] = result.get("unexpected_percent")
        out["unexpected_sample"] = (result.get("partial_unexpected_list") or [])[:OBSERVED_SAMPLE]
        index = result.get("partial_unexpected_index_list") or []
        rows = [r.get("_source_row") for r in index if isinstance(r, dict)]
        if rows:
            out["source_rows"] = rows[:OBSERVED_SAMPLE]
    return out


def _column(kwargs: dict) -> str | None:
    cols = expectation_columns(kwargs)
    if not cols or "column_set" in kwargs:
        return None
    return ",".join(cols)


def _public_kwargs(kwargs: dict) -> dict:
    """kwargs for result.json: without GE's batch id, long value sets abbreviated."""
    out = {}
    for k, v in kwargs.items():
        if k == "batch_id":
            continue
        if k == "value_set" and isinstance(v, list) and len(v) > 50:
            v = {"count": len(v), "first": v[:5]}
        out[k] = v
    return out


# ---- the stage function ------------------------------------------------------------------
def session(settings: Settings):
    """The running Spark session (the stage's caller usually has one), else a new one."""
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession() or get_session(settings, "citylake-check")


def check_batch(
    settings: Settings,
    reg: Registration,
    batch_id: str,
    quarantined: int | None = None,
    *,
    spark=None,
) -> dict:
    """Validate one standardized batch; write quality/<resource>/batch_id=<id>/result.json and
    validation.json; return the result.json content. ``spark``: the session to use (default: the
    running one, else a new one from ``settings``)."""
    spark = spark or session(settings)
    lake = Lake.from_settings(settings)
    gx, _ = _gx()
    # Read before the rows: if the batch is conformed again meanwhile, this result names the older
    # commit and the ledger will not count it.
    marker = lake.read_json_or(zones.standardized_marker(reg.resource, batch_id)) or {}
    judged = marker.get("committed_at")
    df = to_frame(read_standardized(spark, settings, reg, batch_id, marker or None))
    if quarantined is None:
        quarantined = quarantined_rows(lake, reg, batch_id)
    suite = suite_for(reg, division_retired_window_years=settings.division_retired_window_years)
    # Not cached: each pass reads only the columns it needs from the batch's Parquet files (one
    # snapshot, so every pass sees the same rows), and building Spark's in-memory cache measured
    # slower than those few passes (1 M rows: 18-30 s cached, 10-16 s not) and holds the batch in
    # the executors' memory. The count comes from Iceberg's metadata.
    rows = df.count()
    validation, expectations = validate_frame(df, suite, batch_id)
    vjson = validation.to_json_dict()

    by_id = {r["expectation_config"].get("id"): r for r in vjson["results"]}
    results: list[dict] = []
    blocking_failures: list[dict] = []
    for exp in expectations:  # suite order
        res = by_id.get(exp.id)
        if res is None:  # not evaluated (should not happen)
            continue
        d = describe(exp)
        kwargs = _public_kwargs(res["expectation_config"].get("kwargs", {}))
        result = res.get("result") or {}
        entry = {
            "expectation_type": exp.expectation_type,
            "column": _column(kwargs),
            "kwargs": kwargs,
            "blocking": d["blocking"],
            "source": d["source"],
            "description_zh": d["description_zh"],
            "description_en": d["description_en"],
            "success": bool(res["success"]),
            "unexpected_count": result.get("unexpected_count"),
            "unexpected_percent": result.get("unexpected_percent"),
        }
        if not entry["success"]:
            entry["observed"] = _observed(res)
        results.append(entry)

    # batch-level quarantine gate (blocking)
    total = rows + quarantined
    rate = round(quarantined / total, 6) if total else 0.0
    limit = reg.quality.max_quarantine_rate
    pct = f"{limit:.0%}" if (limit * 100).is_integer() else f"{limit * 100:g}%"
    gate = {
        "expectation_type": GATE_TYPE,
        "column": None,
        "kwargs": {"max_quarantine_rate": limit},
        "blocking": True,
        "source": "registration",
        "description_zh": KINDS["quarantine_rate"][0].format(pct=pct),
        "description_en": KINDS["quarantine_rate"][1].format(pct=pct),
        "success": rate <= limit,
        "unexpected_count": quarantined,
        "unexpected_percent": round(rate * 100, 4),
    }
    if not gate["success"]:
        gate["observed"] = {"observed_value": rate, "quarantined": quarantined, "received": total}
    results.append(gate)

    for r in results:
        if r["blocking"] and not r["success"]:
            blocking_failures.append(
                {
                    "expectation": r["expectation_type"],
                    "column": r["column"],
                    "description_zh": r["description_zh"],
                    "description_en": r["description_en"],
                    "observed": r.get("observed", {}),
                }
            )
    evaluated = len(results)
    successful = sum(1 for r in results if r["success"])
    success = not blocking_failures
    if success:
        summary_zh = f"质量校验通过（{successful}/{evaluated} 项规则通过）"
        summary_en = f"quality check passed ({successful}/{evaluated} rules passed)"
    else:
        summary_zh = "质量校验未通过，本批次不入库：" + "；".join(f["description_zh"] for f in blocking_failures)
        summary_en = "quality check failed, batch not promoted: " + "; ".join(
            f["description_en"] for f in blocking_failures
        )

    out = {
        "batch_id": batch_id,
        "resource": reg.resource,
        "suite": suite.name,
        "success": success,
        "blocking_failures": blocking_failures,
        "pass_rate": round(successful / evaluated, 4) if evaluated else 0.0,
        "evaluated": evaluated,
        "successful": successful,
        "rows": rows,
        "quarantined": quarantined,
        "quarantine_rate": rate,
        "max_quarantine_rate": limit,
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "summary_zh": summary_zh,
        "summary_en": summary_en,
        "great_expectations_version": gx.__version__,
        QUALITY_OF: judged,
        "results": results,
    }
    out = json.loads(json.dumps(out, ensure_ascii=False, default=str))  # plain JSON types only
    lake.write_json(zones.quality_validation_path(reg.resource, batch_id), vjson)
    lake.write_json(zones.quality_result_path(reg.resource, batch_id), out)
    # The short marker is written last: the ledger reads it instead of the large result.
    lake.write_json(zones.quality_marker(reg.resource, batch_id), {k: out[k] for k in MARKER_KEYS})
    return out


def read_result(settings: Settings, reg: Registration, batch_id: str) -> dict | None:
    """The stored result.json of a batch, or None when it was not checked yet."""
    lake = Lake.from_settings(settings)
    return lake.read_json_or(zones.quality_result_path(reg.resource, batch_id))
