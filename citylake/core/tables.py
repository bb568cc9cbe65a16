"""The lake's tables: Apache Iceberg tables in one SQL catalog that every engine shares.

Two tables per registered resource (docs/zones.md):

* ``standardized.<resource>`` — every good row of every conformed batch, one snapshot per batch,
  partitioned by ``_batch_id`` (identity): each stage reads or replaces whole batches, and a batch
  conformed again replaces exactly its own partition;
* ``<department>.<resource>`` — curated: one row per key, latest state, masked per sensitivity.
  A namespace per department, so analysts' engines list only curated tables under department
  names; ``standardized`` is the pipeline's own namespace.

The catalog is an Iceberg SQL catalog: a database (SQLite in the embedded default, PostgreSQL in
production, :attr:`Settings.catalog_uri`) holding one row per table with its current metadata
file. Spark uses it through Iceberg's ``JdbcCatalog`` (schema version V1) and Python through
pyiceberg's ``SqlCatalog``: both read and write the same ``iceberg_tables`` rows under the same
catalog name (:attr:`Settings.catalog_name`), so a table Spark commits is listed and read by
pyiceberg and, from its metadata file, by DuckDB's iceberg extension. Table data and metadata live
in the lake under ``warehouse/``.

Table and column properties carry the registration: the table comment is the resource's name,
each column's comment its title, and ``citylake.*`` table properties the department, the
directory code and each field's sensitivity.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

from citylake.core import zones
from citylake.core.registry import Registration
from citylake.core.settings import Settings

STANDARDIZED_NAMESPACE = "standardized"
# Curated tables are merged by row-level deletes plus new files (merge-on-read), so a merge writes
# the changed rows, not the table; format v2 position deletes are read by Spark, pyiceberg and DuckDB.
CURATED_PROPERTIES = {
    "format-version": "2",
    "write.delete.mode": "merge-on-read",
    "write.update.mode": "merge-on-read",
    "write.merge.mode": "merge-on-read",
}
# A conform writes one batch, i.e. one partition: Iceberg's default (hash) distribution would
# send all its rows to one writer task, leaving one file that check and curate read in one task.
STANDARDIZED_PROPERTIES = {"format-version": "2", "write.distribution-mode": "none"}
COMMON_PROPERTIES = {
    "write.parquet.compression-codec": "zstd",
    # Old metadata files are removed as new ones are written (the snapshots stay until expired).
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
}
# Table property the directory publisher sets: the entry's 目录代码.
DIRECTORY_CODE = "citylake.directory-code"
# Snapshot summary keys citylake writes (``citylake.`` prefix): which batches a commit holds.
SNAPSHOT_BATCH = "citylake.batch-id"
SNAPSHOT_BATCHES = "citylake.batches"
SNAPSHOT_WRITE_ID = "citylake.write-id"
SNAPSHOT_OPERATION = "citylake.operation"
# The newest ``received_at`` among the batches a curated table holds: how current its data is.
SNAPSHOT_RECEIVED_THROUGH = "citylake.received-through"


# ---- names ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TableName:
    namespace: str
    name: str

    @property
    def ident(self) -> str:
        """``namespace.name``: what analysts write after the catalog."""
        return f"{self.namespace}.{self.name}"

    def spark(self, settings: Settings) -> str:
        """The name in Spark SQL: ``<catalog>.<namespace>.<name>``."""
        return f"{settings.catalog_name}.{self.ident}"

    @property
    def tuple(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def standardized_table(reg: Registration) -> TableName:
    return TableName(STANDARDIZED_NAMESPACE, reg.resource)


def curated_table(reg: Registration) -> TableName:
    return TableName(reg.department, reg.resource)


def base_table(reg: Registration) -> TableName:
    """A base library's table, ``base.<library>`` (its registration's department is ``base``)."""
    return TableName(reg.department, reg.resource)


def base_conflicts_table(reg: Registration) -> TableName:
    """Where a base library lists the values its sources disagree on: ``base.<library>_conflicts``."""
    return TableName(reg.department, f"{reg.resource}_conflicts")


def base_key_column(library: str) -> str:
    """The curated column holding the keyed hash of a field marked ``base: <library>``."""
    return f"_{library}_key"


def warehouse_uri(settings: Settings) -> str:
    """Where the tables' files live: ``<lake>/warehouse`` (``s3://`` for an S3 lake)."""
    root = settings.lake_uri.rstrip("/")
    if root.startswith("s3a://"):
        root = "s3://" + root[len("s3a://"):]
    return f"{root}/{zones.WAREHOUSE_DIR}"


def is_s3(settings: Settings) -> bool:
    return settings.lake_uri.startswith(("s3://", "s3a://"))


# ---- the catalog database -------------------------------------------------------------------
@dataclass(frozen=True)
class CatalogDatabase:
    """The catalog's database, as Spark's JDBC catalog and pyiceberg each want it."""

    sqlalchemy_url: str
    jdbc_url: str
    user: str | None = None
    password: str | None = None


def catalog_database(settings: Settings) -> CatalogDatabase:
    url = settings.catalog_uri
    parsed = urlparse(url)
    scheme = parsed.scheme.split("+", 1)[0]
    if scheme == "sqlite":
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if not path:
            raise ValueError(f"catalog URI {url!r}: a SQLite catalog needs a file (sqlite:////abs/path.db)")
        return CatalogDatabase(url, f"jdbc:sqlite:{path}")
    if scheme in ("postgresql", "postgres"):
        host = parsed.hostname or "localhost"
        port = f":{parsed.port}" if parsed.port else ""
        jdbc = f"jdbc:postgresql://{host}{port}{parsed.path}"
        if parsed.query:
            jdbc += f"?{parsed.query}"
        return CatalogDatabase(
            url,
            jdbc,
            unquote(parsed.username) if parsed.username else None,
            unquote(parsed.password) if parsed.password else None,
        )
    raise ValueError(f"catalog URI {url!r}: use sqlite:///… or postgresql+psycopg2://…")


def _s3_properties(settings: Settings) -> dict[str, str]:
    """Iceberg's S3 file I/O settings (the same keys in Spark's catalog and in pyiceberg)."""
    s3 = settings.s3
    props = {"s3.path-style-access": "true", "client.region": s3.region, "s3.region": s3.region}
    if s3.endpoint:
        props["s3.endpoint"] = s3.endpoint if "://" in s3.endpoint else f"http://{s3.endpoint}"
    if s3.access_key:
        props["s3.access-key-id"] = s3.access_key
        props["s3.secret-access-key"] = s3.secret_key or ""
    return props


def spark_catalog_conf(settings: Settings) -> dict[str, str]:
    """Spark configuration of the catalog (``spark.sql.catalog.<name>.*``)."""
    db = catalog_database(settings)
    prefix = f"spark.sql.catalog.{settings.catalog_name}"
    conf = {
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.type": "jdbc",
        f"{prefix}.uri": db.jdbc_url,
        f"{prefix}.warehouse": warehouse_uri(settings),
        # V1 adds the views column that pyiceberg's SqlCatalog also knows; V0 would be read-only there.
        f"{prefix}.jdbc.schema-version": "V1",
        # Snapshots are read fresh by each job; a cached table would hide another engine's commit.
        f"{prefix}.cache-enabled": "false",
    }
    if db.user:
        conf[f"{prefix}.jdbc.user"] = db.user
        conf[f"{prefix}.jdbc.password"] = db.password or ""
    if is_s3(settings):
        conf[f"{prefix}.io-impl"] = "org.apache.iceberg.aws.s3.S3FileIO"
        conf.update({f"{prefix}.{k}": v for k, v in _s3_properties(settings).items()})
    return conf


_catalogs: dict[tuple, object] = {}
_catalogs_lock = threading.Lock()


def python_catalog(settings: Settings):
    """pyiceberg's SQL catalog on the same database, under the same name (one per settings)."""
    from pyiceberg.catalog.sql import SqlCatalog

    props = {"uri": catalog_database(settings).sqlalchemy_url, "warehouse": warehouse_uri(settings)}
    if is_s3(settings):
        props.update(_s3_properties(settings))
    key = (settings.catalog_name, tuple(sorted(props.items())))
    with _catalogs_lock:
        if key not in _catalogs:
            settings.ensure_local_dirs()
            _catalogs[key] = SqlCatalog(settings.catalog_name, **props)
        return _catalogs[key]


def load_table(settings: Settings, table: TableName):
    """The pyiceberg table, or None when it does not exist (yet)."""
    from pyiceberg.exceptions import NoSuchTableError

    try:
        return python_catalog(settings).load_table(table.tuple)
    except NoSuchTableError:
        return None


# ---- facts from table metadata -----------------------------------------------------------------
@dataclass(frozen=True)
class TableFacts:
    """What a table's metadata says, without reading a data file."""

    table: str
    rows: int
    snapshot_id: int | None  # the current snapshot
    updated_at_ms: int | None  # its commit time
    data_files: int
    metadata_location: str
    columns: list[dict]
    # The last snapshot citylake committed (maintenance, e.g. compaction, commits snapshots that
    # change no data): its id, commit time and the newest batch receipt time it holds.
    changed_snapshot_id: int | None = None
    changed_at_ms: int | None = None
    received_through: str | None = None


def live_rows(summary: dict) -> int:
    """Rows a reader sees: records in data files less the rows deleted by position deletes."""
    def num(key: str) -> int:
        return int(summary.get(key, 0) or 0)

    return num("total-records") - num("total-position-deletes") - num("total-equality-deletes")


def table_facts(settings: Settings, table: TableName) -> TableFacts | None:
    tbl = load_table(settings, table)
    if tbl is None:
        return None
    snap = tbl.current_snapshot()
    summary = dict(snap.summary.additional_properties) if snap and snap.summary else {}
    columns = [
        {"name": f.name, "type": str(f.field_type), "doc": f.doc or ""} for f in tbl.schema().fields
    ]
    changed = snap
    while changed is not None and SNAPSHOT_OPERATION not in (changed.summary.additional_properties if changed.summary else {}):
        changed = tbl.snapshot_by_id(changed.parent_snapshot_id) if changed.parent_snapshot_id else None
    changed_props = dict(changed.summary.additional_properties) if changed and changed.summary else {}
    return TableFacts(
        table=table.ident,
        rows=live_rows(summary) if snap else 0,
        snapshot_id=snap.snapshot_id if snap else None,
        updated_at_ms=snap.timestamp_ms if snap else None,
        data_files=int(summary.get("total-data-files", 0) or 0),
        metadata_location=tbl.metadata_location,
        columns=columns,
        changed_snapshot_id=changed.snapshot_id if changed else None,
        changed_at_ms=changed.timestamp_ms if changed else None,
        received_through=changed_props.get(SNAPSHOT_RECEIVED_THROUGH),
    )


def registration_properties(reg: Registration) -> dict[str, str]:
    """The registration's facts as table properties (``comment`` is Spark's table comment)."""
    props = {
        "comment": reg.name,
        "citylake.resource": reg.resource,
        "citylake.department": reg.department,
        "citylake.department-name": reg.department_name,
        "citylake.directory-prefix": reg.classification.prefix,
        "citylake.key": ",".join(reg.key),
    }
    for f in reg.fields:
        props[f"citylake.field.{f.name}.sensitivity"] = f.sensitivity
        if f.effective_mask and f.sensitivity == "personal":
            props[f"citylake.field.{f.name}.mask"] = f.effective_mask
    return props


# ---- Spark: create, evolve and write --------------------------------------------------------
class TableSchemaError(RuntimeError):
    """A registration's fields cannot be applied to its table (an incompatible type change)."""


def _sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _quote(name: str) -> str:
    return f"`{name}`"


def _comment(reg: Registration, column: str) -> str:
    fm = reg.field_map
    if column in fm:
        return fm[column].title
    if column.endswith("_currency") and column[: -len("_currency")] in fm:
        return f"{fm[column[: -len('_currency')]].title}币种"
    if column.startswith("_") and column.endswith("_key") and column not in LINEAGE_COMMENTS:
        return f"基础库键 (keyed hash of the {column[1:-4]} base-library key, HMAC-SHA256, for joining)"
    return LINEAGE_COMMENTS.get(column, BASE_COMMENTS.get(column, ""))


LINEAGE_COMMENTS = {
    "_batch_id": "批次号 (batch id)",
    "_source_row": "源文件行号 (row in the file as sent)",
    "_received_at": "接收时间 (when the batch was received)",
    "_exported_at": "导出时间 (when the department exported it, as the drop states)",
    "_record_key": "记录键 (keyed hash of the key, HMAC-SHA256, for joining)",
}

# The columns a base library's tables add to its fields (citylake.stages.base).
BASE_COMMENTS = {
    "_sources": "各来源取值 (per source: resource, table, values, records, last update)",
    "_source_count": "来源数 (sources holding the key)",
    "_updated_at": "最近更新 (the newest update among the sources)",
    "attribute": "不一致的信息项 (the attribute the sources disagree on)",
    "source_a": "来源甲 (resource)", "value_a": "来源甲取值", "updated_a": "来源甲更新时间",
    "source_b": "来源乙 (resource)", "value_b": "来源乙取值", "updated_b": "来源乙更新时间",
}

# Type changes Iceberg makes without rewriting data (its "type promotion" rules).
_WIDENINGS = {("int", "bigint"), ("float", "double")}


def _widens(old: str, new: str) -> bool:
    if (old, new) in _WIDENINGS:
        return True
    if old.startswith("decimal(") and new.startswith("decimal("):
        (p1, s1), (p2, s2) = (tuple(int(x) for x in t[8:-1].split(",")) for t in (old, new))
        return s1 == s2 and p2 >= p1
    return False


def ensure_table(spark, settings: Settings, reg: Registration, table: TableName, schema, *,
                 partitioned_by: list[str] | None = None, properties: dict[str, str] | None = None) -> list[str]:
    """Create ``table`` with ``schema`` (a Spark StructType), or bring an existing one up to it.

    Returns the changes made, in words. The rules (docs/zones.md, "Schema evolution"):

    * a field added to the registration adds a nullable column; no data file is rewritten;
    * a field renamed in the registration (its ``formerly`` lists the old name) renames the column;
      the data files keep their column ids, so old rows read under the new name;
    * a field removed from the registration keeps its column: old rows keep their values, new rows
      leave it empty. Dropping a column is an engineer's decision, not a side effect of a run;
    * a type change is applied only when Iceberg can promote the type in place (int → bigint,
      float → double, a wider decimal); any other change stops the run with the field named.
    """
    name = table.spark(settings)
    props = {**COMMON_PROPERTIES, **registration_properties(reg), **(properties or {})}
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {settings.catalog_name}.{_quote(table.namespace)}")
    if not spark.catalog.tableExists(name):
        cols = ", ".join(
            f"{_quote(f.name)} {f.dataType.simpleString()} COMMENT {_sql_string(_comment(reg, f.name))}"
            for f in schema.fields
        )
        parts = f" PARTITIONED BY ({', '.join(_quote(p) for p in partitioned_by)})" if partitioned_by else ""
        tblprops = ", ".join(f"{_sql_string(k)}={_sql_string(v)}" for k, v in props.items() if k != "comment")
        spark.sql(
            f"CREATE TABLE {name} ({cols}) USING iceberg{parts} "
            f"COMMENT {_sql_string(props['comment'])} TBLPROPERTIES ({tblprops})"
        )
        return [f"created {table.ident}"]

    changes: list[str] = []
    existing = {f.name: f.dataType.simpleString() for f in spark.table(name).schema.fields}
    for fld in reg.fields:
        if fld.name in existing:
            continue
        for old in fld.formerly:
            if old in existing:
                renames = [(old, fld.name)]
                if f"{old}_currency" in existing and fld.type == "money":
                    renames.append((f"{old}_currency", f"{fld.name}_currency"))
                for a, b in renames:
                    spark.sql(f"ALTER TABLE {name} RENAME COLUMN {_quote(a)} TO {_quote(b)}")
                    existing[b] = existing.pop(a)
                    changes.append(f"renamed column {a} to {b}")
                break
    for f in schema.fields:
        wanted = f.dataType.simpleString()
        have = existing.get(f.name)
        if have is None:
            spark.sql(
                f"ALTER TABLE {name} ADD COLUMN {_quote(f.name)} {wanted} COMMENT {_sql_string(_comment(reg, f.name))}"
            )
            changes.append(f"added column {f.name} {wanted}")
        elif have != wanted:
            if not _widens(have, wanted):
                raise TableSchemaError(
                    f"{table.ident}: column {f.name} is {have} in the table but the registration now makes it "
                    f"{wanted}; Iceberg cannot change that type in place. Register a new field (and list the old "
                    f"one under its `formerly` if it replaces it) or migrate the table by hand."
                )
            spark.sql(f"ALTER TABLE {name} ALTER COLUMN {_quote(f.name)} TYPE {wanted}")
            changes.append(f"widened column {f.name} from {have} to {wanted}")
    current = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {name}").collect()}
    stale = {k: v for k, v in props.items() if current.get(k) != v}
    if stale:
        spark.sql(
            f"ALTER TABLE {name} SET TBLPROPERTIES ("
            + ", ".join(f"{_sql_string(k)}={_sql_string(v)}" for k, v in stale.items()) + ")"
        )
    return changes


def aligned(spark, settings: Settings, table: TableName, df):
    """``df`` with the table's columns in the table's order; columns it lacks (a field since
    removed from the registration) are written empty."""
    from pyspark.sql import functions as F

    have = set(df.columns)
    target = spark.table(table.spark(settings)).schema
    return df.select(
        *[F.col(f.name) if f.name in have else F.lit(None).cast(f.dataType).alias(f.name) for f in target.fields]
    )


class snapshot_properties:
    """Within the block, Iceberg commits made by this session carry these summary properties
    (``spark.sql.iceberg.snapshot-property.*``), SQL MERGE included."""

    PREFIX = "spark.sql.iceberg.snapshot-property."

    def __init__(self, spark, props: dict[str, str]):
        self.spark, self.props = spark, props

    def __enter__(self):
        for k, v in self.props.items():
            self.spark.conf.set(self.PREFIX + k, v)
        return self

    def __exit__(self, *exc):
        for k in self.props:
            self.spark.conf.unset(self.PREFIX + k)
        return False


def snapshot_by_write(spark, settings: Settings, table: TableName, write_id: str) -> dict | None:
    """The snapshot committed with ``citylake.write-id = write_id``: id, time and summary."""
    rows = spark.sql(
        f"SELECT snapshot_id, committed_at, summary FROM {table.spark(settings)}.snapshots "
        f"WHERE summary[{_sql_string(SNAPSHOT_WRITE_ID)}] = {_sql_string(write_id)}"
    ).collect()
    if not rows:
        return None
    r = rows[-1]
    return {"snapshot_id": int(r["snapshot_id"]), "committed_at": r["committed_at"], "summary": dict(r["summary"])}


# ---- DuckDB -------------------------------------------------------------------------------------
def duckdb_connection():
    """A DuckDB connection with the iceberg extension loaded from its PyPI wheel (no download at
    run time). DuckDB does not speak the SQL catalog: :func:`duckdb_source` gives it a table's
    current metadata file, which the catalog knows."""
    import duckdb
    import duckdb_ext

    con = duckdb.connect()
    duckdb_ext.init(con)
    con.execute("SET autoload_known_extensions = false")
    con.execute("LOAD iceberg")
    return con


def duckdb_source(settings: Settings, table: TableName) -> str:
    """``iceberg_scan('<metadata file>')`` for the table's current state, for a DuckDB FROM clause."""
    facts = table_facts(settings, table)
    if facts is None:
        raise LookupError(f"no table {table.ident} in catalog {settings.catalog_name}")
    location = facts.metadata_location
    if location.startswith("file:"):
        location = urlparse(location).path
    return f"iceberg_scan({_sql_string(location)})"
