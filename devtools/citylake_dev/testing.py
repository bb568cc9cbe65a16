"""Test helpers shared by the test suites."""

from __future__ import annotations

import os
from pathlib import Path

from citylake.core.settings import REPO_ROOT, Settings


def ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def service_unavailable(reason: str):
    """Skip, or with CI=true fail: a service the test needs (S3 server, PostgreSQL, Chromium,
    docker-compose) could not be had. CI must install and start what the tests need."""
    import pytest

    if ci():
        pytest.fail(f"CI=true and a service the test needs is unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def local_settings(home: Path) -> Settings:
    """Settings for a throw-away local lake, directory and catalog under ``home`` (folders made),
    named explicitly so that CITYLAKE_* variables of the calling shell cannot point a test elsewhere."""
    s = Settings.from_env(home=home, lake_uri=(home / "lake").as_uri(),
                          directory_url=f"sqlite:///{home / 'directory' / 'directory.db'}",
                          spark_master="local[2]", resources_dir=REPO_ROOT / "registrations")
    s.ensure_local_dirs()
    return s
