"""Shared fixtures. One Spark session serves the whole test run (start-up costs ~7 s)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from citylake.settings import REPO_ROOT, Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a throw-away lake and directory under tmp_path."""
    home = tmp_path / "home"
    s = Settings.from_env(
        home=home,
        lake_uri=(home / "lake").as_uri(),
        directory_url=f"sqlite:///{home / 'directory' / 'directory.db'}",
        spark_master="local[2]",
        resources_dir=REPO_ROOT / "catalog" / "resources",
    )
    s.ensure_local_dirs()
    return s


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("citylake-tests")
        .config("spark.sql.session.timeZone", "Asia/Shanghai")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.ansi.enabled", "true")
        .config("spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
