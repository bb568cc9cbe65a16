"""Settings from environment variables, with defaults that need no servers.

Every other module takes a :class:`Settings` rather than reading the
environment itself, so tests can build one for a temporary lake.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class S3Options:
    """Where an ``s3://`` lake lives (MinIO in production, SeaweedFS in tests)."""

    endpoint: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    region: str = "us-east-1"

    @classmethod
    def from_env(cls) -> "S3Options":
        return cls(
            endpoint=_env("CITYLAKE_S3_ENDPOINT"),
            access_key=_env("CITYLAKE_S3_ACCESS_KEY", _env("AWS_ACCESS_KEY_ID")),
            secret_key=_env("CITYLAKE_S3_SECRET_KEY", _env("AWS_SECRET_ACCESS_KEY")),
            region=_env("CITYLAKE_S3_REGION", "us-east-1") or "us-east-1",
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
    # Spark: shuffle partitions, driver memory, log level of spark-submit runs.
    shuffle_partitions: int = 4
    spark_driver_memory: str = "2g"
    spark_log_level: str = "WARN"
    # Airflow task retries (exponential back-off from the delay).
    airflow_retries: int = 2
    airflow_retry_delay_seconds: float = 60.0
    # The spark-submit application of the Spark steps (tests point it at a failing stand-in).
    spark_job_script: Path = REPO_ROOT / "citylake" / "drivers" / "sparkjob.py"
    # Optional: a repository browser URL; DAG docs link code paths to it.
    repo_url: str = ""

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        home = Path(_env("CITYLAKE_HOME", "./var")).resolve()
        settings = cls(
            home=home,
            lake_uri=_env("CITYLAKE_LAKE_URI", (home / "lake").as_uri()),
            directory_url=_env(
                "CITYLAKE_DIRECTORY_URL", f"sqlite:///{home / 'directory' / 'directory.db'}"
            ),
            spark_master=_env("CITYLAKE_SPARK_MASTER", "local[*]"),
            resources_dir=Path(_env("CITYLAKE_RESOURCES_DIR", str(REPO_ROOT / "registrations"))),
            s3=S3Options.from_env(),
            division_retired_window_years=int(_env("CITYLAKE_DIVISION_RETIRED_WINDOW_YEARS", "5")),
            landing_settle_seconds=float(_env("CITYLAKE_LANDING_SETTLE_SECONDS", "0")),
            shuffle_partitions=int(_env("CITYLAKE_SHUFFLE_PARTITIONS", "4")),
            spark_driver_memory=_env("CITYLAKE_SPARK_DRIVER_MEMORY", "2g"),
            spark_log_level=_env("CITYLAKE_SPARK_LOG_LEVEL", "WARN"),
            airflow_retries=int(_env("CITYLAKE_AIRFLOW_RETRIES", "2")),
            airflow_retry_delay_seconds=float(_env("CITYLAKE_AIRFLOW_RETRY_DELAY_SECONDS", "60")),
            repo_url=_env("CITYLAKE_REPO_URL", ""),
            spark_job_script=Path(_env("CITYLAKE_SPARK_JOB", str(REPO_ROOT / "citylake" / "drivers" / "sparkjob.py"))),
        )
        return replace(settings, **overrides) if overrides else settings

    def as_env(self) -> dict[str, str]:
        """These settings as the CITYLAKE_* variables :meth:`from_env` reads back (for processes
        started by the embedded Airflow and spark-submit)."""
        env = {
            "CITYLAKE_HOME": str(self.home),
            "CITYLAKE_LAKE_URI": self.lake_uri,
            "CITYLAKE_DIRECTORY_URL": self.directory_url,
            "CITYLAKE_SPARK_MASTER": self.spark_master,
            "CITYLAKE_RESOURCES_DIR": str(self.resources_dir),
            "CITYLAKE_DIVISION_RETIRED_WINDOW_YEARS": str(self.division_retired_window_years),
            "CITYLAKE_LANDING_SETTLE_SECONDS": str(self.landing_settle_seconds),
            "CITYLAKE_SHUFFLE_PARTITIONS": str(self.shuffle_partitions),
            "CITYLAKE_SPARK_DRIVER_MEMORY": self.spark_driver_memory,
            "CITYLAKE_SPARK_LOG_LEVEL": self.spark_log_level,
            "CITYLAKE_AIRFLOW_RETRIES": str(self.airflow_retries),
            "CITYLAKE_AIRFLOW_RETRY_DELAY_SECONDS": str(self.airflow_retry_delay_seconds),
            "CITYLAKE_SPARK_JOB": str(self.spark_job_script),
        }
        if self.repo_url:
            env["CITYLAKE_REPO_URL"] = self.repo_url
        for name, value in (("CITYLAKE_S3_ENDPOINT", self.s3.endpoint), ("CITYLAKE_S3_ACCESS_KEY", self.s3.access_key),
                            ("CITYLAKE_S3_SECRET_KEY", self.s3.secret_key), ("CITYLAKE_S3_REGION", self.s3.region)):
            if value:
                env[name] = value
        return env

    @staticmethod
    def connection_uri(conn_id: str) -> str | None:
        """A source database's URI from ``AIRFLOW_CONN_<ID>`` (Airflow's own convention), so the CLI
        and the DAGs find a SQL source the same way."""
        return _env(f"AIRFLOW_CONN_{conn_id.upper()}")

    @property
    def directory_dir(self) -> Path:
        return self.home / "directory"

    def ensure_local_dirs(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.directory_dir.mkdir(parents=True, exist_ok=True)
