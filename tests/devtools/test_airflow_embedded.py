"""Dev tooling behind the demo and the DAG tests: the development environment file, the embedded
Airflow environment and the demo source database."""

from __future__ import annotations

import json
import sqlite3
from urllib.parse import urlsplit

import pytest

from citylake.core.identifiers import check_cn_id, check_uscc
from citylake.core.settings import REPO_ROOT
from citylake_dev.airflow_embedded import airflow_env
from citylake_dev.demo_source import demo_source_path, seed_demo_source_db
from citylake_dev.dev_env import dev_env, parse_env_file


def test_env_file_parsing(tmp_path):
    p = tmp_path / "x.env"
    p.write_text("# comment\nA=${HOME_X}/a\nexport B='{\"k\": \"${HOME_X}\"}'\nC=\"$A/c\"\nD=${MISSING:-dflt}\n",
                 encoding="utf-8")
    assert parse_env_file(p, {"HOME_X": "/h"}) == {"A": "/h/a", "B": '{"k": "${HOME_X}"}', "C": "/h/a/c", "D": "dflt"}
    p.write_text("E=${NOT_SET}\n", encoding="utf-8")
    with pytest.raises(KeyError, match="NOT_SET"):
        parse_env_file(p, {})


def test_dev_file_has_no_secrets_and_expands_the_home(settings):
    values = dev_env(settings)
    assert values["AIRFLOW_CONN_RSJ_SOURCE_DB"] == f"sqlite:///{settings.home}/sources/rsj_source.db"
    for key, value in values.items():
        if key.startswith("AIRFLOW_CONN_"):
            if value.lstrip().startswith("{"):
                assert "password" not in json.loads(value), key
            else:
                assert urlsplit(value).password is None, f"{key} carries a password"


def test_embedded_airflow_env(settings, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
    monkeypatch.setenv("AIRFLOW_HOME", "/somewhere/else")
    monkeypatch.setenv("AIRFLOW_CONN_RSJ_SOURCE_DB", "postgresql://reader@db/si")
    env = airflow_env(settings)
    assert env["AIRFLOW_HOME"] == str(settings.home / "airflow")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{settings.home / 'airflow' / 'airflow.db'}"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO_ROOT / "dags")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert "AIRFLOW__CORE__UNIT_TEST_MODE" not in env, "the caller's Airflow configuration does not leak in"
    assert env["AIRFLOW_CONN_RSJ_SOURCE_DB"] == "postgresql://reader@db/si", "a real connection wins"
    assert env["CITYLAKE_LAKE_URI"] == settings.lake_uri
    assert any((p.endswith("pyspark/bin")) for p in env["PATH"].split(":")), "spark-submit from pyspark"


def test_seed_demo_source_db(settings):
    info = seed_demo_source_db(settings, rows=150, seed=3)
    path = demo_source_path(settings)
    assert path == settings.home / "sources" / "rsj_source.db" and path.exists()
    assert info["inserted"] == info["rows_total"] == 150 and info["defective"] > 0
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT aac002, dwtyshxydm, aae036 FROM si_enrollment ORDER BY id").fetchall()
    stamps = [r[2] for r in rows]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), "a strictly increasing watermark"
    valid_ids = sum(check_cn_id(r[0]).valid for r in rows)
    valid_usccs = sum(check_uscc(r[1]).valid for r in rows if r[1])
    assert 0.9 * len(rows) < valid_ids < len(rows) or valid_ids == len(rows)
    assert valid_usccs >= 0.9 * sum(1 for r in rows if r[1])

    # deterministic for a seed; append adds changes after the newest one
    assert seed_demo_source_db(settings, rows=150, seed=3) == info
    more = seed_demo_source_db(settings, rows=20, seed=3, append=True)
    assert more["inserted"] + more["updated"] == 20 and more["rows_total"] == 150 + more["inserted"]
    with sqlite3.connect(path) as db:
        newest = db.execute("SELECT COUNT(*) FROM si_enrollment WHERE aae036 > ?", (stamps[-1],)).fetchone()[0]
    assert newest == 20
