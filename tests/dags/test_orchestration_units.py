"""The pieces behind the DAGs that need no Airflow run: failure messages, schedules, the development
environment, the embedded Airflow environment and the demo source database."""

from __future__ import annotations

import json
import sqlite3
from urllib.parse import urlsplit

import pytest

from citylake.airflow_support import (
    airflow_env,
    demo_source_path,
    dev_env,
    parse_env_file,
    seed_demo_source_db,
)
from citylake.identifiers import check_cn_id, check_uscc
from citylake.orchestration.schedules import department_schedule, most_frequent_cycle, schedule_for_cycle
from citylake.orchestration.stages import StageError, StageFailure, spark_failure_reason
from citylake.settings import REPO_ROOT

SPARK_FAILURE = """Cannot execute: spark-submit --master local[*] --name citylake-conform-x jobs/conform.py --resource x. \
Error code is: 1.
Last spark-submit output:
Traceback (most recent call last):
  File "/work/main/jobs/conform.py", line 297, in <module>
    raise SystemExit(main())
  File "/work/main/jobs/conform.py", line 253, in conform_batch
    raise ConformError(
jobs.conform.ConformError: enterprise_registration batch 5ecf54b0e097db80: 200 rows decoded but 150 standardized + 40 quarantined
26/11/21 16:35:34 INFO ShutdownHookManager: Shutdown hook called"""


def test_spark_failure_reason_is_the_jobs_own_error_line():
    assert spark_failure_reason(SPARK_FAILURE) == (
        "ConformError: enterprise_registration batch 5ecf54b0e097db80: 200 rows decoded but 150 standardized "
        "+ 40 quarantined")
    assert spark_failure_reason("Cannot execute: x. Error code is: 137.\nKilled") == "Killed"
    java = "Exception in thread \"main\" org.apache.spark.SparkException: Master removed our application: KILLED"
    assert "SparkException: Master removed our application" in spark_failure_reason(java)


def test_stage_failure_names_stage_resource_batch_and_reason():
    f = StageFailure("conform", "enterprise_registration", ["5ecf54b0e097db80"], "ConformError: boom")
    assert f.message == "conform failed for resource enterprise_registration (batch 5ecf54b0e097db80): ConformError: boom"
    assert StageFailure.from_dict(f.as_dict()) == f
    assert str(StageError(StageFailure("ingest", "r", [], "OSError: disk full"))) == \
        "ingest failed for resource r (no batch yet): OSError: disk full"


def test_schedules():
    assert most_frequent_cycle(["每月", "实时", "每日"]) == "实时"
    assert most_frequent_cycle(["每年", "其他"]) == "其他", "irregular drops are looked for daily"
    assert schedule_for_cycle("每季度") == "0 3 1 1,4,7,10 *"
    with pytest.raises(ValueError, match="每两月"):
        schedule_for_cycle("每两月")

    class R:
        def __init__(self, c):
            self.update_cycle = c

    assert department_schedule([R("每周"), R("每日")]) == "0 2 * * *"


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


def test_spark_master_from_connection():
    from airflow.sdk import Connection

    from citylake.orchestration.operators import connection_master, find_spark_submit

    prod = Connection.from_json('{"conn_type": "spark", "host": "spark://spark-master", "port": 7077}', conn_id="s")
    assert connection_master(prod) == "spark://spark-master:7077"
    assert connection_master(Connection.from_json('{"conn_type": "spark", "host": "local[*]"}', conn_id="s")) == "local[*]"
    assert connection_master(Connection(conn_id="s", conn_type="spark", host="yarn")) == "yarn"
    binary = find_spark_submit()
    assert binary is None or binary.endswith("pyspark/bin/spark-submit"), "PATH first, else pyspark's own"
