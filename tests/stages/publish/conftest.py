"""Fixtures for the directory tests (helpers in catalog_fixtures.py)."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from catalog_fixtures import build_small_lake

from citylake.core.lake import Lake
from citylake.core.settings import Settings


@pytest.fixture
def small_lake(settings) -> Lake:
    return build_small_lake(settings)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_settings(request, settings) -> Settings:
    """``settings`` with the directory database on SQLite, then on PostgreSQL in a schema of its own
    (created for the test and dropped after it)."""
    if request.param == "sqlite":
        yield settings
        return
    from sqlalchemy import create_engine, text

    pg_url = request.getfixturevalue("pg_url")
    schema = f"citylake_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in pg_url else "?"
    try:
        yield replace(settings, directory_url=f"{pg_url}{sep}options=-csearch_path%3D{schema}")
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
