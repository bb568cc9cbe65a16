"""Test helpers shared by the test suites."""

from __future__ import annotations

import os


def ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def service_unavailable(reason: str):
    """Skip, or with CI=true fail: a service the test needs (S3 server, PostgreSQL, Chromium,
    docker-compose) could not be had. CI must install and start what the tests need."""
    import pytest

    if ci():
        pytest.fail(f"CI=true and a service the test needs is unavailable: {reason}", pytrace=False)
    pytest.skip(reason)
