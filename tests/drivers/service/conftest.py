"""The data service on the curated query lake (tests/stages/test_query.py builds it once per run)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def query_lake(spark, tmp_path_factory):
    from tests.stages.test_query import query_lake as build

    return build(spark, tmp_path_factory)
