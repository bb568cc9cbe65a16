"""Settings from environment variables, with defaults that need no servers.

Every other module takes a :class:`Settings` rather than reading the
environment itself, so tests can build one for a temporary lake.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


# Settings field → the environment variable it is read from (and written to by ``as_env``).
ENV = {
    "home": "CITYLAKE_HOME",
    "lake_uri": "CITYLAKE_LAKE_URI",
    "directory_url": "CITYLAKE_DIRECTORY_URL",
    "spark_master": "CITYLAKE_SPARK_MASTER",
    "resources_dir": "CITYLAKE_RESOURCES_DIR",
    "division_retired_window_years": "CITYLAKE_DIVISION_RETIRED_WINDOW_YEARS",
    "landing_settle_seconds": "CITYLAKE_LANDING_SETTLE_SECONDS",
    "shuffle_partitions": "CITYLAKE_SHUFFLE_PARTITIONS",
    "spark_driver_memory": "CITYLAKE_SPARK_DRIVER_MEMORY",
    "spark_log_level": "CITYLAKE_SPARK_LOG_LEVEL",
    "airflow_retries": "CITYLAKE_AIRFLOW_RETRIES",
    "airflow_retry_delay_seconds": "CITYLAKE_AIRFLOW_RETRY_DELAY_SECONDS",
    "spark_job_script": "CITYLAKE_SPARK_JOB",
    "repo_url": "CITYLAKE_REPO_URL",
    "timezone": "CITYLAKE_TIMEZONE",
    "directory_base_url": "CITYLAKE_DIRECTORY_BASE_URL",
    "catalog_uri": "CITYLAKE_CATALOG_URI",
    "catalog_name": "CITYLAKE_CATALOG_NAME",
    "spark_jars_dir": "CITYLAKE_SPARK_JARS",
    "snapshot_retention_days": "CITYLAKE_SNAPSHOT_RETENTION_DAYS",
    "lease_url": "CITYLAKE_LEASE_URL",
    "record_key_secret": "CITYLAKE_RECORD_KEY_SECRET",
    "lease_ttl_seconds": "CITYLAKE_LEASE_TTL_SECONDS",
    "sql_token": "CITYLAKE_SQL_TOKEN",
    "environment": "CITYLAKE_ENV",
    "service_url": "CITYLAKE_SERVICE_URL",
    "service_rate_per_minute": "CITYLAKE_SERVICE_RATE_PER_MINUTE",
    "service_anon_rate_per_minute": "CITYLAKE_SERVICE_ANON_RATE_PER_MINUTE",
    "session_secret": "CITYLAKE_SESSION_SECRET",
}
S3_ENV = {
    "endpoint": "CITYLAKE_S3_ENDPOINT",
    "access_key": "CITYLAKE_S3_ACCESS_KEY",
    "secret_key": "CITYLAKE_S3_SECRET_KEY",
    "region": "CITYLAKE_S3_REGION",
}


PLACEHOLDER = "change-me"  # how every secret of .env.example starts


def is_placeholder(value: str | None) -> bool:
    """Whether ``value`` still holds a placeholder of .env.example: it starts with ``change-me``,
    or it is a URL whose password does (``postgresql+psycopg2://citylake:change-me-…@postgres/…``)."""
    if not value:
        return False
    if value.startswith(PLACEHOLDER):
        return True
    if "://" in value:
        try:
            password = urlsplit(value).password
        except ValueError:
            return False
        return bool(password) and unquote(password).startswith(PLACEHOLDER)
    return False


@dataclass(frozen=True)
class S3Options:
    """Where an ``s3://`` lake lives (MinIO in production, SeaweedFS in tests)."""

    endpoint: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    region: str = "us-east-1"

    @classmethod
    def from_env(cls) -> S3Options:
        return cls(
            endpoint=_env(S3_ENV["endpoint"]),
            access_key=_env(S3_ENV["access_key"], _env("AWS_ACCESS_KEY_ID")),
            secret_key=_env(S3_ENV["secret_key"], _env("AWS_SECRET_ACCESS_KEY")),
            region=_env(S3_ENV["region"], "us-east-1") or "us-east-1",
        )


@dataclass(frozen=True)
class Settings:
    home: Path
    lake_uri: str
    directory_url: str
    spark_master: str
    resources_dir: Path
    s3: S3Options = field(default_factory=S3Options)
    # Division codes retired from GB/T 2260 this many years ago are still accepted
    # in division-code fields (records keep the code they were registered under).
    division_retired_window_years: int = 5
    # A landing file modified more recently than this is treated as still uploading.
    landing_settle_seconds: float = 0.0
    # Spark: shuffle partitions (the most a shuffle starts with: adaptive execution coalesces them
    # to the data's size), driver memory, log level of spark-submit runs.
    shuffle_partitions: int = 64
    spark_driver_memory: str = "2g"
    spark_log_level: str = "WARN"
    # Airflow task retries (exponential back-off from the delay).
    airflow_retries: int = 2
    airflow_retry_delay_seconds: float = 60.0
    # The spark-submit application of the Spark steps (tests point it at a failing stand-in).
    spark_job_script: Path = REPO_ROOT / "citylake" / "drivers" / "sparkjob.py"
    # Optional: a repository browser URL; DAG docs link code paths to it.
    repo_url: str = ""
    # The centre's time zone (IANA name): receipts show times in it.
    timezone: str = "Asia/Shanghai"
    # Where the directory folder is served (its pages, exports; receipts link quality pages under
    # it); empty: the folder's own file:// URI.
    directory_base_url: str = ""
    # The Iceberg catalog: a SQL database (SQLAlchemy URL; SQLite embedded, PostgreSQL in production)
    # that Spark (Iceberg's JDBC catalog) and Python (pyiceberg's SQL catalog) share under one name.
    catalog_uri: str = ""
    catalog_name: str = "lake"
    # The JVM jars of deploy/spark/pom.xml (Iceberg, S3, JDBC drivers), fetched by `make venv`.
    spark_jars_dir: Path = Path(sys.prefix) / "share" / "citylake" / "jars"
    # Table snapshots older than this are expired by the maintenance task (time travel stops there).
    snapshot_retention_days: int = 30
    # The leases of resources and stages (citylake.core.lease): a SQL database (SQLAlchemy URL) every
    # runner shares; its own SQLite file embedded, so lease writes never lock the catalog's SQLite.
    lease_url: str = ""
    # A lease not renewed for this long (its holder crashed) expires and the next run takes it over.
    lease_ttl_seconds: float = 600.0
    # The secret of the keyed hashes that stand for personal keys in shared data (``_record_key``):
    # an unkeyed digest of a citizen ID is reversed by trying the ~40,000 birth dates. Kept out of
    # repr so it never lands in a log; see :meth:`record_secret`.
    record_key_secret: str = field(default="", repr=False)
    # The token Spark Connect clients of `citylake sql-server` send; out of repr like every secret.
    sql_token: str = field(default="", repr=False)
    # "production": servers refuse to start on a secret still holding .env.example's placeholder
    # (:func:`is_placeholder`); anything else is a development machine.
    environment: str = "development"
    # The data service (`citylake serve`): its public base URL (the DCAT export points at its
    # endpoints when set), and the requests a minute it answers per key and per anonymous client IP.
    service_url: str = ""
    service_rate_per_minute: int = 600
    service_anon_rate_per_minute: int = 60
    # The secret that signs the data service's session cookies (the directory pages behind a login);
    # out of repr. See :meth:`session_signing_secret`.
    session_secret: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        home = Path(overrides.get("home") or _env(ENV["home"], "./var")).resolve()
        # Defaults that depend on the home folder or the checkout; the rest are the field defaults.
        # An overridden home moves them too (tests build settings for a temporary home).
        derived = {
            "lake_uri": (home / "lake").as_uri(),
            "directory_url": f"sqlite:///{home / 'directory' / 'directory.db'}",
            "catalog_uri": f"sqlite:///{home / 'catalog' / 'iceberg.db'}",
            "lease_url": f"sqlite:///{home / 'leases' / 'leases.db'}",
            "spark_master": "local[*]",
            "resources_dir": REPO_ROOT / "registrations",
        }
        values: dict = {"home": home, "s3": S3Options.from_env()}
        for f in fields(cls):
            if f.name in values:
                continue
            default = derived.get(f.name, f.default)
            raw = _env(ENV[f.name])
            values[f.name] = default if raw is None else type(default)(raw)
        settings = cls(**values)
        overrides.pop("home", None)
        return replace(settings, **overrides) if overrides else settings

    def as_env(self) -> dict[str, str]:
        """These settings as the CITYLAKE_* variables :meth:`from_env` reads back (for processes
        started by the embedded Airflow and spark-submit)."""
        env = {var: str(getattr(self, name)) for name, var in ENV.items() if getattr(self, name) not in ("", None)}
        env.update({var: str(getattr(self.s3, name)) for name, var in S3_ENV.items() if getattr(self.s3, name)})
        return env

    @staticmethod
    def connection_uri(conn_id: str) -> str | None:
        """A source database's URI from ``AIRFLOW_CONN_<ID>`` (Airflow's own convention), so the CLI
        and the DAGs find a SQL source the same way."""
        return _env(f"AIRFLOW_CONN_{conn_id.upper()}")

    @property
    def is_production(self) -> bool:
        return self.environment.strip().lower() == "production"

    @property
    def directory_dir(self) -> Path:
        return self.home / "directory"

    def directory_link(self, rel: str) -> str:
        """The URL of ``rel`` (a path inside the directory folder) where users open it."""
        base = self.directory_base_url or (self.directory_dir.as_uri() + "/")
        return (base if base.endswith("/") else base + "/") + rel

    def record_secret(self) -> bytes:
        """The keyed-hash secret: ``CITYLAKE_RECORD_KEY_SECRET``, or on a local lake a random one
        made once in ``$CITYLAKE_HOME/secrets/record_key`` (owner-only). An S3 lake is shared by
        many machines, which must agree on the secret: there it must be set, never made up."""
        if self.record_key_secret:
            return self.record_key_secret.encode("utf-8")
        if not self.lake_uri.startswith("file:"):
            raise ValueError(f"set {ENV['record_key_secret']}: every machine of a shared lake "
                             f"({self.lake_uri}) must key its hashes with the same secret")
        return self._local_secret("record_key")

    def session_signing_secret(self) -> bytes:
        """The secret that signs the data service's session cookies: ``CITYLAKE_SESSION_SECRET``, or
        on a local lake a random one made once in ``$CITYLAKE_HOME/secrets/session`` (owner-only).
        Beside a shared (S3) lake it must be set, so that every replica of the service accepts the
        sessions of the others."""
        if self.session_secret:
            return self.session_secret.encode("utf-8")
        if not self.lake_uri.startswith("file:"):
            raise ValueError(f"set {ENV['session_secret']}: the data service beside a shared lake "
                             f"({self.lake_uri}) signs its sessions with a secret every replica shares")
        return self._local_secret("session")

    def _local_secret(self, name: str) -> bytes:
        """A random secret made once in ``$CITYLAKE_HOME/secrets/<name>`` (owner-only), then kept."""
        path = self.home / "secrets" / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:  # O_EXCL: two first runs at once keep the one written first
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as out:
                    out.write(os.urandom(32).hex())
        return path.read_text().strip().encode("utf-8")

    def ensure_local_dirs(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.directory_dir.mkdir(parents=True, exist_ok=True)
        for url in (self.catalog_uri, self.lease_url):
            if url.startswith("sqlite:///"):
                Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
