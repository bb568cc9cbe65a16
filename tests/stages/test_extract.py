"""Incremental SQL extraction (citylake/extract.py) on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime, timedelta

import pytest
import yaml
from sqlalchemy import create_engine, text

from citylake.core.lake import Lake
from citylake.core.registry import Registration, load_registration
from citylake.core.settings import REPO_ROOT
from citylake.core.zones import landing_dir
from citylake.stages.extract import ExtractError, extract, read_watermark, sqlalchemy_url, watermark_path

REG_PATH = REPO_ROOT / "registrations" / "rsj" / "social_insurance_enrollment.yaml"
T0 = datetime(2024, 6, 1, 8, 30, 0)


def registration(table: str | None = None, query: str | None = None) -> Registration:
    raw = yaml.safe_load(REG_PATH.read_text(encoding="utf-8"))
    raw["source"] = {"kind": "sql", "conn_id": "rsj_source_db", "watermark": "aae036",
                     **({"table": table} if table else {"query": query})}
    return Registration.model_validate(raw)


def create_table(engine, table: str, timestamp_type: str = "TIMESTAMP") -> None:
    with engine.begin() as db:
        db.execute(text(f"""CREATE TABLE {table} (
            id INTEGER PRIMARY KEY, aac002 VARCHAR(18), aac003 VARCHAR(60), aae140 VARCHAR(3),
            aae030 DATE, dwtyshxydm VARCHAR(18), aab301 VARCHAR(6), aac008 VARCHAR(1),
            aae013 VARCHAR(200), aae036 {timestamp_type})"""))


def insert(engine, table: str, first_id: int, n: int, start: datetime, as_text: bool = False) -> list[dict]:
    rows = []
    for i in range(n):
        stamp = start + timedelta(minutes=7 * i)
        rows.append({
            "id": first_id + i, "aac002": f"41010519900101{first_id + i:03d}X"[:18], "aac003": f"测试{first_id + i}",
            "aae140": "110", "aae030": f"2020-01-0{1 + i % 9}", "dwtyshxydm": None, "aab301": "410105",
            "aac008": "1", "aae013": "系统导入", "aae036": stamp.strftime("%Y-%m-%d %H:%M:%S") if as_text else stamp,
        })
    with engine.begin() as db:
        db.execute(text(f"INSERT INTO {table} VALUES (:id, :aac002, :aac003, :aae140, :aae030, :dwtyshxydm, "
                        ":aab301, :aac008, :aae013, :aae036)"), rows)
    return rows


def read_landing(settings, rel: str) -> list[dict]:
    data = Lake.from_settings(settings).read_bytes(rel)
    assert not data.startswith(b"\xef\xbb\xbf"), "plain UTF-8, no BOM"
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def landing_files(settings, reg) -> list[str]:
    return [f.path for f in Lake.from_settings(settings).list_files(landing_dir(reg.department, reg.resource))]


def check_incremental(settings, reg, conn, engine, table, as_text=False):
    insert(engine, table, 1, 5, T0, as_text)

    first = extract(settings, reg, conn)
    assert first.rows == 5 and first.watermark_before is None
    assert first.landing_path.startswith(f"landing/rsj/{reg.resource}/{reg.resource}_20240601083000-")
    rows = read_landing(settings, first.landing_path)
    assert list(rows[0]) == [
        "公民身份号码",
        "姓名",
        "险种类型",
        "参保日期",
        "参保单位统一社会信用代码",
        "参保地行政区划",
        "参保状态",
    ], "the registration's titles, in registration order"
    assert [r["姓名"] for r in rows] == [f"测试{i}" for i in range(1, 6)]
    assert first.ignored_columns == ["id", "aae013", "aae036"]
    mark = read_watermark(settings, reg)
    assert str(mark).startswith("2024-06-01 08:58:00")

    # Nothing new: no file, watermark unchanged.
    again = extract(settings, reg, conn)
    assert again.rows == 0 and again.landing_path is None
    assert read_watermark(settings, reg) == mark
    assert len(landing_files(settings, reg)) == 1

    # Three newer rows and one update (re-stamped): the second extraction takes exactly those.
    insert(engine, table, 6, 3, T0 + timedelta(hours=2), as_text)
    later = T0 + timedelta(hours=5)
    with engine.begin() as db:
        db.execute(
            text(f"UPDATE {table} SET aac008 = '3', aae036 = :t WHERE id = 2"),
            {"t": later.strftime("%Y-%m-%d %H:%M:%S") if as_text else later},
        )
    second = extract(settings, reg, conn)
    assert second.rows == 4
    assert second.watermark_before == mark
    rows = read_landing(settings, second.landing_path)
    assert [r["姓名"] for r in rows] == ["测试6", "测试7", "测试8", "测试2"], "only rows past the watermark, in order"
    assert rows[-1]["参保状态"] == "3"
    assert len(landing_files(settings, reg)) == 2
    state = Lake.from_settings(settings).read_json(watermark_path(reg))
    assert [h["rows"] for h in state["history"]] == [5, 4]
    assert state["column"] == "aae036" and state["conn_id"] == "rsj_source_db"


# ---- SQLite ---------------------------------------------------------------------------------------------
def test_sqlite_second_extraction_takes_only_rows_past_the_watermark(settings, tmp_path):
    db_path = tmp_path / "rsj.db"
    engine = create_engine(f"sqlite:///{db_path}")
    create_table(engine, "si_enrollment", "TEXT")
    reg = registration(table="si_enrollment")
    # the connection as Airflow hands it over: Connection.get_uri() percent-encodes the path
    airflow_uri = "sqlite:///" + str(db_path).replace("/", "%2F")
    check_incremental(settings, reg, airflow_uri, engine, "si_enrollment", as_text=True)


def test_sqlite_query_source(settings, tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'rsj.db'}")
    create_table(engine, "si_enrollment", "TEXT")
    insert(engine, "si_enrollment", 1, 4, T0, as_text=True)
    reg = registration(
        query="SELECT aac002, aac003, aae140, aae030, aab301, aac008, aae036 FROM si_enrollment WHERE aae140 = '110';"
    )
    result = extract(settings, reg, engine)
    assert result.rows == 4
    assert result.missing_fields == ["employer_uscc"]
    assert "参保单位统一社会信用代码" not in read_landing(settings, result.landing_path)[0]
    insert(engine, "si_enrollment", 5, 1, T0 + timedelta(days=1), as_text=True)
    assert extract(settings, reg, engine).rows == 1


def test_watermark_moves_only_after_the_landing_write(settings, tmp_path, monkeypatch):
    engine = create_engine(f"sqlite:///{tmp_path / 'rsj.db'}")
    create_table(engine, "si_enrollment", "TEXT")
    insert(engine, "si_enrollment", 1, 3, T0, as_text=True)
    reg = registration(table="si_enrollment")

    def broken(self, src, rel):
        raise OSError("disk full")

    monkeypatch.setattr(Lake, "copy_stream", broken)
    with pytest.raises(OSError, match="disk full"):
        extract(settings, reg, engine)
    assert read_watermark(settings, reg) is None
    monkeypatch.undo()
    assert extract(settings, reg, engine).rows == 3, "the rows are extracted again on the next run"


def test_a_rerun_after_a_lost_watermark_writes_the_same_file(settings, tmp_path):
    """Crash between landing write and watermark write: the same rows give the same bytes, which
    ingest recognises by checksum."""
    engine = create_engine(f"sqlite:///{tmp_path / 'rsj.db'}")
    create_table(engine, "si_enrollment", "TEXT")
    insert(engine, "si_enrollment", 1, 3, T0, as_text=True)
    reg = registration(table="si_enrollment")
    lake = Lake.from_settings(settings)
    first = extract(settings, reg, engine)
    data = lake.read_bytes(first.landing_path)
    lake.delete(watermark_path(reg))
    second = extract(settings, reg, engine)
    assert second.landing_path == first.landing_path and lake.read_bytes(second.landing_path) == data


def test_extracted_file_is_an_ordinary_landing_file(settings, tmp_path):
    from citylake.stages.ingest import ingest_resource

    engine = create_engine(f"sqlite:///{tmp_path / 'rsj.db'}")
    create_table(engine, "si_enrollment", "TEXT")
    insert(engine, "si_enrollment", 1, 3, T0, as_text=True)
    reg = load_registration(REG_PATH)
    extract(settings, reg, engine)
    [outcome] = ingest_resource(settings, reg)
    assert outcome.status == "ingested", outcome


def test_clear_errors(settings, tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'rsj.db'}")
    with pytest.raises(ExtractError, match="social_insurance_enrollment: cannot read source si_enrollment"):
        extract(settings, registration(table="si_enrollment"), engine)
    create_table(engine, "si_enrollment", "TEXT")
    raw = yaml.safe_load(REG_PATH.read_text(encoding="utf-8"))
    raw["source"]["watermark"] = "updated_at"
    with pytest.raises(ExtractError, match="watermark column 'updated_at'"):
        extract(settings, Registration.model_validate(raw), engine)


def test_sqlalchemy_url_from_airflow_uris():
    assert sqlalchemy_url("sqlite:///%2Fvar%2Fhome%2Fsources%2Frsj.db") == "sqlite:////var/home/sources/rsj.db"
    assert sqlalchemy_url("sqlite:////var/home/rsj.db") == "sqlite:////var/home/rsj.db"
    assert sqlalchemy_url("sqlite:///relative.db") == "sqlite:///relative.db"
    assert sqlalchemy_url("postgres://u:p@db:5432/si") == "postgresql://u:p@db:5432/si"
    assert sqlalchemy_url("postgresql+psycopg2://u@db/si") == "postgresql+psycopg2://u@db/si"
    assert sqlalchemy_url("mysql://u:p@db/si?__extra__=%7B%7D") == "mysql+pymysql://u:p@db/si"


# ---- PostgreSQL ----------------------------------------------------------------------------------------
@pytest.fixture
def pg_table(pg_url):
    engine = create_engine(pg_url)
    table = f"si_enrollment_{uuid.uuid4().hex[:10]}"
    try:
        yield engine, table
    finally:
        with engine.begin() as db:
            db.execute(text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()


def test_postgresql_second_extraction_takes_only_rows_past_the_watermark(settings, pg_table):
    engine, table = pg_table
    create_table(engine, table, "TIMESTAMP")
    reg = registration(table=table)
    # Airflow's Connection.get_uri() form for a postgres connection
    u = engine.url
    check_incremental(settings, reg, f"postgres://{u.username}@{u.host}:{u.port}/{u.database}", engine, table)
    state = Lake.from_settings(settings).read_json(watermark_path(reg))
    assert state["watermark"]["type"] == "datetime", "a timestamp watermark is bound back as a timestamp"


def test_postgresql_query_source_with_timezone_watermark(settings, pg_table):
    engine, table = pg_table
    create_table(engine, table, "TIMESTAMPTZ")
    insert(engine, table, 1, 3, T0)
    reg = registration(query=f"SELECT * FROM {table} WHERE aac008 = '1'")
    assert extract(settings, reg, engine).rows == 3
    insert(engine, table, 4, 2, T0 + timedelta(days=2))
    second = extract(settings, reg, engine)
    assert second.rows == 2 and second.watermark_after > second.watermark_before
