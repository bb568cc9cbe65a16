"""What the CLI tests share: the settings exported as the CITYLAKE_* variables the CLI reads."""

from __future__ import annotations

import pytest


@pytest.fixture
def env(settings, monkeypatch):
    """The CLI reads its settings from CITYLAKE_*: point them at the test's lake and directory."""
    for key, value in settings.as_env().items():
        monkeypatch.setenv(key, value)
    return settings


@pytest.fixture(scope="session")
def query_lake(spark, tmp_path_factory):
    """One curated lake for the query, tables and describe commands: building it runs every stage."""
    from tests.stages.test_query import query_lake as build

    return build(spark, tmp_path_factory)


@pytest.fixture
def lake_env(query_lake, monkeypatch):
    """The query lake's settings as the CITYLAKE_* variables the CLI reads."""
    for key, value in query_lake.as_env().items():
        monkeypatch.setenv(key, value)
    return query_lake
