"""The base libraries (基础库): one Iceberg table per library, joined across departments.

A base library is registered in ``registrations/base/<library>.yaml`` (``source: {kind: base}``);
every department resource whose registration marks a field ``base: <library>`` (the key: a USCC
for ``legal_entity``, a citizen ID for ``population``) feeds it, and ``base: <library>.<field>``
marks the fields that give the library's attributes (:func:`citylake.core.registry.load_base_libraries`).

Built from the sources' **curated** tables, not from standardized: curated already holds each
key's winning version (version field, export time, full snapshots' ended keys) of batches that
passed the quality gate, masked, so the library repeats none of those rules and never reads an
unmasked personal value. Curate writes, beside each marked key, ``_<library>_key``: HMAC-SHA256
of the key with :meth:`Settings.record_secret` (:func:`citylake.core.masking.keyed_hash_column`),
computed while the unmasked ID is at hand; the sources are joined on it. Its value is the
library's ``_record_key``.

Tables, for a library ``L`` (namespace ``base``):

* ``base.L`` — one row per key found in any source: ``_record_key``, the key (as curated stores
  it: a citizen ID masked), the best-known value of each attribute, ``_sources`` (per source: its
  resource, its curated table, its values, how many of its records carry the key, and its last
  update ``updated_at``: the export time when the source states one, else the time the batch was
  received), ``_source_count`` and ``_updated_at`` (the newest of them).
  **The rule for the best value**: the value of the first resource in ``source.authority`` that
  has one (market registration for a legal entity's name and status, the household register for a
  person); otherwise the value of the most recently updated source that has one (ties: resource
  name). A source holding several records of one key (a person's insurance types, an owner's
  properties) gives its most recently updated one.
* ``base.L_conflicts`` — one row per key, attribute (of ``source.compare``) and pair of sources
  whose values differ after normalising white space and full-width forms: ``attribute``,
  ``source_a`` / ``value_a`` / ``updated_a`` and the same for ``source_b`` (``source_a`` sorts
  first). Disagreements are listed, never resolved silently; the best value above only says which
  one the rule picked.

Personal attributes are masked again by their registered rule (masking a masked value changes
nothing); a birth date is kept to its year, so no column completes a masked ID.

Incremental: a build records the curated snapshot of every source (``curated/L/_CURRENT.json``);
with none changed (and the library and its markers as they were) it does nothing. Otherwise the
library is recomputed from the current curated tables and written with one ``MERGE`` (insert new
keys, update changed rows, delete keys no source holds any more), so a snapshot holds only what
changed; the conflicts table is replaced.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType, TimestampType

from citylake.core import tables, zones
from citylake.core.expressions import comparable_text
from citylake.core.lake import Lake, now_utc
from citylake.core.masking import key_id, mask_column
from citylake.core.registry import BaseLibrary, BaseSourceSpec
from citylake.core.settings import Settings
from citylake.core.spark import use_catalog

OPERATION = "base"
SOURCE_COLUMNS = ("resource", "table", "records", "updated_at")


@dataclass
class BaseResult:
    library: str
    status: str  # built | unchanged | empty
    rows: int = 0
    conflicts: int = 0
    version: str | None = None
    sources: dict[str, int | None] = field(default_factory=dict)  # resource -> curated snapshot id used

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def source_rows(spark: SparkSession, settings: Settings, lib: BaseLibrary, src: BaseSourceSpec) -> DataFrame | None:
    """One row per key of one source: its most recently updated record's values, as strings."""
    table = tables.curated_table(src.reg)
    name = table.spark(settings)
    key_col = tables.base_key_column(lib.name)
    if not spark.catalog.tableExists(name):
        return None
    df = spark.table(name)
    if key_col not in df.columns:  # curated before the marker: its next curate rebuilds it
        return None
    updated = F.coalesce(*([F.col("_exported_at")] if "_exported_at" in df.columns else []), F.col("_received_at"))
    df = df.filter(F.col(key_col).isNotNull()).withColumn("updated_at", updated.cast("timestamp"))
    latest = Window.partitionBy(key_col).orderBy(F.col("updated_at").desc(), F.col("_record_key").desc())
    per_key = Window.partitionBy(key_col)
    df = (df.withColumn("_n", F.row_number().over(latest)).withColumn("records", F.count(F.lit(1)).over(per_key))
          .filter(F.col("_n") == 1))
    fm = lib.reg.field_map
    values = []
    for attr in [lib.key, *lib.attributes]:
        own = src.key if attr == lib.key else src.attributes.get(attr)
        value = F.col(own).cast("string") if own else F.lit(None).cast("string")
        kind = fm[attr].effective_mask if fm[attr].sensitivity == "personal" else None
        values.append((mask_column(kind, value) if kind else value).alias(attr))
    return df.select(
        F.col(key_col).alias("_record_key"), *values,
        F.lit(src.reg.resource).alias("resource"), F.lit(table.ident).alias("table"),
        F.col("records").cast("int").alias("records"), F.col("updated_at"),
    )


def _priority(lib: BaseLibrary) -> Column:
    order = lib.reg.source.authority
    rank = F.lit(len(order))
    for i, resource in reversed(list(enumerate(order))):
        rank = F.when(F.col("resource") == resource, F.lit(i)).otherwise(rank)
    return rank


def library_rows(lib: BaseLibrary, rows: DataFrame) -> DataFrame:
    """``base.L``: one row per ``_record_key``, best values by the module's rule."""
    best = []
    for attr in lib.attributes:
        # min_by over a struct: has a value first, then authority, then newest update, then resource
        order = F.struct(F.col(attr).isNull(), _priority(lib), (-F.unix_micros(F.col("updated_at"))),
                         F.col("resource"))
        best.append(F.min_by(F.col(attr), order).alias(attr))
    per_source = F.struct(F.col("resource"), F.col("table"), *[F.col(a) for a in lib.attributes],
                          F.col("records"), F.col("updated_at"))
    return rows.groupBy("_record_key").agg(
        F.first(F.col(lib.key), ignorenulls=True).alias(lib.key),
        *best,
        F.array_sort(F.collect_list(per_source)).alias("_sources"),
        F.count(F.lit(1)).cast("int").alias("_source_count"),
        F.max("updated_at").alias("_updated_at"),
    )


def conflict_rows(lib: BaseLibrary, rows: DataFrame) -> DataFrame:
    """``base.L_conflicts``: each pair of sources whose values of a compared attribute differ."""
    out = rows.sparkSession.createDataFrame([], CONFLICT_SCHEMA(lib.key))
    for attr in lib.reg.source.compare:
        sel = rows.filter(F.col(attr).isNotNull()).select(
            "_record_key", lib.key, "resource", "updated_at", F.col(attr).alias("value"),
            comparable_text(F.col(attr)).alias("_cmp"))
        a, b = sel.alias("a"), sel.alias("b")
        pairs = a.join(b, (F.col("a._record_key") == F.col("b._record_key"))
                       & (F.col("a.resource") < F.col("b.resource")) & (F.col("a._cmp") != F.col("b._cmp")))
        part = pairs.select(
            F.col("a._record_key").alias("_record_key"), F.col(f"a.{lib.key}").alias(lib.key),
            F.lit(attr).alias("attribute"),
            F.col("a.resource").alias("source_a"), F.col("a.value").alias("value_a"),
            F.col("a.updated_at").alias("updated_a"),
            F.col("b.resource").alias("source_b"), F.col("b.value").alias("value_b"),
            F.col("b.updated_at").alias("updated_b"),
        )
        out = out.unionByName(part)
    return out


def CONFLICT_SCHEMA(key: str) -> StructType:
    s, t = StringType(), TimestampType()
    return StructType([StructField("_record_key", s), StructField(key, s), StructField("attribute", s),
                       StructField("source_a", s), StructField("value_a", s), StructField("updated_a", t),
                       StructField("source_b", s), StructField("value_b", s), StructField("updated_b", t)])


def _differs(columns: list[str]) -> str:
    return " OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" for c in columns) or "FALSE"


def definition(lib: BaseLibrary) -> dict:
    """What the library is made of: its fields and rules, and each source's marked fields."""
    src = lib.reg.source
    return {"fields": [[f.name, f.type, f.sensitivity, f.effective_mask] for f in lib.reg.fields],
            "authority": list(src.authority), "compare": list(src.compare),
            "sources": {s.reg.resource: {"key": s.key, **s.attributes} for s in lib.sources}}


def build_library(spark: SparkSession, settings: Settings, lib: BaseLibrary, *, force: bool = False) -> BaseResult:
    """Build (or bring up to date) one base library; see the module docstring."""
    use_catalog(spark, settings)
    lake = Lake.from_settings(settings)
    pointer_path = zones.curated_pointer(lib.name)
    before = lake.read_json(pointer_path) if lake.exists(pointer_path) else {}
    kid = key_id(settings.record_secret())
    seen: dict[str, int | None] = {}
    received: list[str] = []
    parts = []
    for src in lib.sources:
        facts = tables.table_facts(settings, tables.curated_table(src.reg))
        rows = source_rows(spark, settings, lib, src)
        if facts is None or rows is None:
            continue
        seen[src.reg.resource] = facts.snapshot_id
        received += [facts.received_through] if facts.received_through else []
        parts.append(rows)
    table, conflicts_table = tables.base_table(lib.reg), tables.base_conflicts_table(lib.reg)
    if not parts:
        return BaseResult(lib.name, "empty")
    if (not force and before.get("sources") == seen and before.get("record_key_id") == kid
            and before.get("definition") == definition(lib) and spark.catalog.tableExists(table.spark(settings))):
        return BaseResult(lib.name, "unchanged", int(before.get("rows", 0)), int(before.get("conflicts", 0)),
                          before.get("version"), seen)
    rows = parts[0]
    for p in parts[1:]:
        rows = rows.unionByName(p)
    rows = rows.localCheckpoint()  # read each source once for both tables
    entities = library_rows(lib, rows)
    conflicts = conflict_rows(lib, rows)

    write_id = uuid.uuid4().hex
    props = {tables.SNAPSHOT_WRITE_ID: write_id, tables.SNAPSHOT_OPERATION: OPERATION,
             tables.SNAPSHOT_RECEIVED_THROUGH: max(received, default=""),
             tables.SNAPSHOT_BATCHES: ",".join(f"{r}@{s}" for r, s in sorted(seen.items()))}
    name = table.spark(settings)
    tables.ensure_table(spark, settings, lib.reg, table, entities.schema, properties=tables.CURATED_PROPERTIES)
    entities = tables.aligned(spark, settings, table, entities)
    with tables.snapshot_properties(spark, props):
        view = f"citylake_base_{lib.name}_{write_id[:8]}"
        entities.createOrReplaceTempView(view)
        try:
            spark.sql(
                f"MERGE INTO {name} t USING {view} s ON t._record_key = s._record_key "
                f"WHEN MATCHED AND ({_differs([c for c in entities.columns if c != '_record_key'])}) "
                f"THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT * WHEN NOT MATCHED BY SOURCE THEN DELETE")
        finally:
            spark.catalog.dropTempView(view)
        cname = conflicts_table.spark(settings)
        tables.ensure_table(spark, settings, lib.reg, conflicts_table, conflicts.schema,
                            properties={**tables.CURATED_PROPERTIES, "comment": f"{lib.reg.name}（冲突）"})
        tables.aligned(spark, settings, conflicts_table, conflicts).writeTo(cname).overwrite(F.lit(True))
    facts = tables.table_facts(settings, table)
    cfacts = tables.table_facts(settings, conflicts_table)
    pointer = {
        "resource": lib.name,
        "table": table.ident,
        "conflicts_table": conflicts_table.ident,
        "version": str(facts.snapshot_id) if facts.snapshot_id is not None else None,
        "rows": facts.rows,
        "conflicts": cfacts.rows if cfacts else 0,
        "columns": [{"name": c["name"], "type": c["type"]} for c in facts.columns],
        "sources": seen,
        "updated_at": now_utc().isoformat(),
        "received_through": max(received, default=None),
        "record_key_id": kid,
        "definition": definition(lib),  # a changed library or marker rebuilds it, sources unchanged or not
    }
    lake.write_json(pointer_path, pointer)
    rows.unpersist()
    return BaseResult(lib.name, "built", facts.rows, pointer["conflicts"], pointer["version"], seen)


def build_libraries(spark: SparkSession, settings: Settings, libs: list[BaseLibrary], *,
                    force: bool = False) -> list[BaseResult]:
    return [build_library(spark, settings, lib, force=force) for lib in libs]
