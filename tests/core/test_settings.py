"""Settings: every CITYLAKE_* variable is read in one place, and round-trips through the environment."""

from __future__ import annotations

import ast
import re

import pytest

from citylake.core.settings import REPO_ROOT, Settings

PRODUCT = [REPO_ROOT / "citylake", REPO_ROOT / "dags"]


def _string_constants(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node


def test_citylake_variables_are_read_only_in_settings():
    offenders = []
    for root in PRODUCT:
        for path in root.rglob("*.py"):
            if path == REPO_ROOT / "citylake/core/settings.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                          if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                          and n.body and isinstance(n.body[0], ast.Expr)}
            for node in _string_constants(tree):
                if id(node) not in docstrings and re.fullmatch(r"CITYLAKE_[A-Z0-9_]*[A-Z0-9]", node.value):
                    offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} {node.value}")
    assert offenders == [], "read CITYLAKE_* variables through Settings"


def test_every_setting_round_trips_through_the_environment(tmp_path, monkeypatch):
    s = Settings.from_env(home=tmp_path / "h", lake_uri="s3://lake/x", spark_master="local[3]",
                          shuffle_partitions=7, spark_driver_memory="3g", airflow_retries=0,
                          airflow_retry_delay_seconds=1.5, repo_url="https://example.org/r",
                          landing_settle_seconds=120.0, division_retired_window_years=9,
                          spark_job_script=tmp_path / "job.py")
    for key in list(__import__("os").environ):
        if key.startswith("CITYLAKE_"):
            monkeypatch.delenv(key)
    for key, value in s.as_env().items():
        monkeypatch.setenv(key, value)
    again = Settings.from_env()
    assert again == s


def test_the_record_key_secret(tmp_path, monkeypatch):
    import os
    import stat
    from dataclasses import replace

    monkeypatch.delenv("CITYLAKE_RECORD_KEY_SECRET", raising=False)
    local = Settings.from_env(home=tmp_path)
    secret = local.record_secret()
    path = tmp_path / "secrets" / "record_key"
    assert len(secret) == 64 and path.read_bytes().strip() == secret
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, "only its owner reads it"
    assert Settings.from_env(home=tmp_path).record_secret() == secret, "made once, then kept"
    assert "hunter2" not in repr(replace(local, record_key_secret="hunter2")), "never in a log"
    monkeypatch.setenv("CITYLAKE_RECORD_KEY_SECRET", "from-the-environment")
    assert Settings.from_env(home=tmp_path).record_secret() == b"from-the-environment"
    shared = replace(Settings.from_env(home=tmp_path), lake_uri="s3://lake", record_key_secret="")
    with pytest.raises(ValueError, match="set CITYLAKE_RECORD_KEY_SECRET: every machine of a shared lake"):
        shared.record_secret()
