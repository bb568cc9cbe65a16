"""Settings from environment variables, with defaults that need no servers.

Every other module takes a :class:`Settings` rather than reading the
environment itself, so tests can build one for a temporary lake.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


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
            resources_dir=Path(_env("CITYLAKE_RESOURCES_DIR", str(REPO_ROOT / "catalog" / "resources"))),
            s3=S3Options.from_env(),
            division_retired_window_years=int(_env("CITYLAKE_DIVISION_RETIRED_WINDOW_YEARS", "5")),
            landing_settle_seconds=float(_env("CITYLAKE_LANDING_SETTLE_SECONDS", "0")),
        )
        return replace(settings, **overrides) if overrides else settings

    @property
    def directory_dir(self) -> Path:
        return self.home / "directory"

    def ensure_local_dirs(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.directory_dir.mkdir(parents=True, exist_ok=True)
