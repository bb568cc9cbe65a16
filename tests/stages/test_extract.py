"""Incremental SQL extraction (citylake/stages/extract.py) on SQLite and PostgreSQL: rows straight
into a raw batch, the watermark after it, a lookback window for late rows, and runs killed at each
step finished by the next."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy import create_engine, text

from citylake.core.lake import Lake
from citylake.core.ledger import Ledger
from citylake.core.registry import Registration, load_registration
from citylake.core.settings import REPO_ROOT
from citylake.stages import extract as extract_mod
from citylake.stages.extract import (
    ExtractError,
    extract,
    read_watermark,
    sqlalchemy_url,
    staging_dir,
    watermark_path,
    window_start,
)

REG_PATH = REPO_ROOT / "registrations" / "rsj" / "social_insurance_enrollment.yaml"
T0 = datetime(2024, 6, 1, 8, 30, 0)


def registration(table: str | None = None, query: str | None = None, **source) -> Registration:
    raw = yaml.safe_load(REG_PATH.read_text(encoding="utf-8"))
    raw["source"] = {"kind": "sql", "conn_id": "rsj_source_db", "watermark": "aae036",
                     **({"table": table} if table else {"query": query}), **source}
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


def read_raw(settings, rel: str) -> list[dict]:
    data = Lake.from_settings(settings).read_bytes(rel)
    assert not data.startswith(b"\xef\xbb\xbf"), "plain UTF-8, no BOM"
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def manifests(settings, reg) -> list[dict]:
    """The raw batches as every later step counts them (one per batch id)."""
    return Ledger.read(settings, reg).manifests()


def raw_names(settings, reg) -> list[str]:
    """姓名 of every row of every ingested raw batch, duplicates included."""
    return sorted(r["姓名"] for m in manifests(settings, reg) if m["status"] == "ingested"
                  for r in read_raw(settings, m["raw_path"]))


@pytest.fixture
def written(monkeypatch) -> list[str]:
    """Every lake path written from now on (whole-object writes and streamed copies)."""
    paths: list[str] = []
    write_bytes, copy_stream = Lake.write_bytes, Lake.copy_stream

    def record_write(self, rel, data):
        paths.append(rel)
        return write_bytes(self, rel, data)

    def record_copy(self, src, rel):
        paths.append(rel)
        return copy_stream(self, src, rel)

    monkeypatch.setattr(Lake, "write_bytes", record_write)
    monkeypatch.setattr(Lake, "copy_stream", record_copy)
    return paths


def check_incremental(settings, reg, conn, engine, table, written, as_text=False):
    insert(engine, table, 1, 5, T0, as_text)

    first = extract(settings, reg, conn)
    assert first.rows == 5 and first.watermark_before is None
    assert first.raw_path.startswith(f"raw/rsj/{reg.resource}/ingest_date=")
    assert first.raw_path.rsplit("/", 1)[1].startswith(f"{reg.resource}_20240601083000-20240601085800_")
    [m] = manifests(settings, reg)
    assert (m["batch_id"], m["raw_path"], m["status"]) == (first.batch_id, first.raw_path, "ingested")
    rows = read_raw(settings, first.raw_path)
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

    # Nothing new: no batch, watermark unchanged.
    again = extract(settings, reg, conn)
    assert again.rows == 0 and again.raw_path is None and again.batch_id is None
    assert read_watermark(settings, reg) == mark
    assert len(manifests(settings, reg)) == 1

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
    rows = read_raw(settings, second.raw_path)
    assert [r["姓名"] for r in rows] == ["测试6", "测试7", "测试8", "测试2"], "only rows past the watermark, in order"
    assert rows[-1]["参保状态"] == "3"
    assert len(manifests(settings, reg)) == 2
    state = Lake.from_settings(settings).read_json(watermark_path(reg))
    assert [h["rows"] for h in state["history"]] == [5, 4]
    assert [h["batch_id"] for h in state["history"]] == [first.batch_id, second.batch_id]
    assert state["column"] == "aae036" and state["conn_id"] == "rsj_source_db" and "pending" not in state
    assert not [p for p in written if p.startswith("landing/")], "the liaison's landing folder is never written"
    assert not Lake.from_settings(settings).list_files(staging_dir(reg)), "nothing left in staging"


# ---- SQLite ---------------------------------------------------------------------------------------------
def test_sqlite_second_extraction_takes_only_rows_past_the_watermark(settings, tmp_path, written):
    db_path = tmp_path / "rsj.db"
    engine = create_engine(f"sqlite:///{db_path}")
    create_table(engine, "si_enrollment", "TEXT")
    reg = registration(table="si_enrollment")
    # the connection as Airflow hands it over: Connection.get_uri() percent-encodes the path
    airflow_uri = "sqlite:///" + str(db_path).replace("/", "%2F")
    check_incremental(settings, reg, airflow_uri, engine, "si_enrollment", written, as_text=True)


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
    assert "参保单位统一社会信用代码" not in read_raw(settings, result.raw_path)[0]
    insert(engine, "si_enrollment", 5, 1, T0 + timedelta(days=1), as_text=True)
    assert extract(settings, reg, engine).rows == 1


def test_watermark_stays_when_the_staging_write_fails(settings, tmp_path, monkeypatch):
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
    assert raw_names(settings, reg) == ["测试1", "测试2", "测试3"]


def test_a_rerun_after_a_lost_watermark_file_is_the_same_batch(settings, tmp_path):
    """Without its watermark file extract reads every row again: the same bytes, which ingest
    recognises by checksum, so nothing doubles."""
    engine = create_engine(f"sqlite:///{tmp_path / 'rsj.db'}")
    create_table(engine, "si_enrollment", "TEXT")
    insert(engine, "si_enrollment", 1, 3, T0, as_text=True)
    reg = registration(table="si_enrollment")
    lake = Lake.from_settings(settings)
    first = extract(settings, reg, engine)
    lake.delete(watermark_path(reg))
    second = extract(settings, reg, engine)
    assert (second.rows, second.batch_id, second.raw_path) == (3, first.batch_id, first.raw_path)
    assert len(manifests(settings, reg)) == 1 and read_watermark(settings, reg) == first.watermark_after


def test_the_extracted_rows_are_a_raw_batch_waiting_for_conform(settings, tmp_path):
    from citylake.stages.ingest import ingest_resource

    engine = create_engine(f"sqlite:///{tmp_path / 'rsj.db'}")
    create_table(engine, "si_enrollment", "TEXT")
    insert(engine, "si_enrollment", 1, 3, T0, as_text=True)
    reg = load_registration(REG_PATH)
    result = extract(settings, reg, engine)
    assert ingest_resource(settings, reg) == [], "the chain's ingest after extract finds nothing in landing"
    assert Ledger.read(settings, reg).pending("conform") == [result.batch_id]
    [m] = manifests(settings, reg)
    assert m["source_name"] == result.raw_path.rsplit("/", 1)[1] and m["landing_path"].startswith("_staging/extract/")


# ---- killed at each step ---------------------------------------------------------------------------------
class Killed(BaseException):
    """The process dies here (a BaseException: no ``except Exception`` on the way catches it)."""


def _kill_after(monkeypatch, name: str):
    real = getattr(extract_mod, name)

    def wrapper(*args, **kwargs):
        real(*args, **kwargs)
        raise Killed(name)

    monkeypatch.setattr(extract_mod, name, wrapper)


def _kill_before(monkeypatch, name: str):
    def wrapper(*args, **kwargs):
        raise Killed(name)

    monkeypatch.setattr(extract_mod, name, wrapper)


def _kill_on_write(monkeypatch, wanted):
    """Die instead of the first ``Lake.write_json`` for which ``wanted(rel, obj)`` holds (the write is
    atomic: dying during it leaves the old object, as dying just before it does)."""
    write_json = Lake.write_json

    def wrapper(self, rel, obj):
        if wanted(rel, obj):
            raise Killed(rel)
        return write_json(self, rel, obj)

    monkeypatch.setattr(Lake, "write_json", wrapper)


KILLS = {
    # after the query, before anything is written
    "after_query": lambda mp, reg: _kill_after(mp, "_extract_rows"),
    # the staging file is written, the extraction not yet recorded as pending
    "after_staging_write": lambda mp, reg: _kill_on_write(mp, lambda rel, obj: "pending" in obj),
    # recorded as pending, ingest not started
    "before_ingest": lambda mp, reg: _kill_before(mp, "ingest_file"),
    # inside ingest: raw copy and manifest written, checksum index not
    "during_ingest": lambda mp, reg: _kill_on_write(mp, lambda rel, obj: "/_index/" in rel),
    # ingest done (raw batch, index, staging file removed), watermark not written
    "after_ingest": lambda mp, reg: _kill_after(mp, "ingest_file"),
    # during the watermark write that commits the extraction
    "during_watermark_write": lambda mp, reg: _kill_on_write(
        mp, lambda rel, obj: rel == watermark_path(reg) and "pending" not in obj),
}
# Whether the next run finishes the killed extraction (its rows were recorded as pending).
FINISHED_BY_NEXT_RUN = {"before_ingest", "during_ingest", "after_ingest", "during_watermark_write"}


@pytest.mark.parametrize("source_moves_on", [False, True], ids=["same_source", "new_rows_meanwhile"])
@pytest.mark.parametrize("step", list(KILLS))
def test_extraction_killed_at_each_step_loses_and_duplicates_nothing(settings, tmp_path, monkeypatch, written,
                                                                     step, source_moves_on):
    engine = create_engine(f"sqlite:///{tmp_path / 'rsj.db'}")
    create_table(engine, "si_enrollment", "TEXT")
    reg = registration(table="si_enrollment", lookback="1h")
    lake = Lake.from_settings(settings)
    insert(engine, "si_enrollment", 1, 5, T0, as_text=True)
    assert extract(settings, reg, engine).rows == 5
    mark = read_watermark(settings, reg)

    insert(engine, "si_enrollment", 6, 3, T0 + timedelta(hours=1), as_text=True)
    with monkeypatch.context() as mp:
        KILLS[step](mp, reg)
        with pytest.raises(Killed):
            extract(settings, reg, engine)
    assert read_watermark(settings, reg) == mark, "the watermark did not move"
    if source_moves_on:
        insert(engine, "si_enrollment", 9, 2, T0 + timedelta(hours=3), as_text=True)

    rerun = extract(settings, reg, engine)
    assert (rerun.recovered is not None) == (step in FINISHED_BY_NEXT_RUN)
    assert extract(settings, reg, engine).rows == 0, "and then nothing is left to extract"
    total = 10 if source_moves_on else 8
    assert raw_names(settings, reg) == sorted(f"测试{i}" for i in range(1, total + 1)), \
        "every source row in raw exactly once"
    assert all(m["status"] == "ingested" for m in manifests(settings, reg))
    last = T0 + (timedelta(hours=3, minutes=7) if source_moves_on else timedelta(hours=1, minutes=14))
    assert read_watermark(settings, reg) == last.strftime("%Y-%m-%d %H:%M:%S")
    state = lake.read_json(watermark_path(reg))
    assert "pending" not in state and sum(h["rows"] for h in state["history"]) == total
    assert not lake.list_files(staging_dir(reg)), "staging is left empty"
    assert not [p for p in written if p.startswith("landing/")], "the liaison's landing folder is never written"


def test_an_extraction_ingest_refuses_keeps_the_watermark(settings, tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'rsj.db'}")
    create_table(engine, "si_enrollment", "TEXT")
    insert(engine, "si_enrollment", 1, 2, T0, as_text=True)
    reg = registration(table="si_enrollment", pattern="*.txt")
    with pytest.raises(ExtractError, match=r"social_insurance_enrollment: .* pattern '\*\.txt'"):
        extract(settings, reg, engine)
    assert read_watermark(settings, reg) is None and manifests(settings, reg) == []

    def rejecting(settings, reg, staged, lake):
        from citylake.stages.ingest import IngestOutcome

        lake.delete(staged)
        return IngestOutcome(staged, "rejected", "b" * 16, "0" * 64, 1, reason="unexpected_file_type")

    reg = registration(table="si_enrollment")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(extract_mod, "ingest_file", rejecting)
        with pytest.raises(ExtractError, match=r"did not become an ingested raw batch \(rejected: unexpected_file_type"):
            extract(settings, reg, engine)
    assert read_watermark(settings, reg) is None
    assert extract(settings, reg, engine).rows == 2, "the next run extracts the rows"


# ---- lookback -------------------------------------------------------------------------------------------
def test_late_rows_inside_the_lookback_window_are_extracted_outside_it_not(settings, tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'rsj.db'}")
    create_table(engine, "si_enrollment", "TEXT")
    reg = registration(table="si_enrollment", lookback="1h")
    lake = Lake.from_settings(settings)
    insert(engine, "si_enrollment", 1, 5, T0, as_text=True)  # 08:30 … 08:58
    assert extract(settings, reg, engine).rows == 5
    mark = read_watermark(settings, reg)

    # Re-reading the window finds only rows extracted before: no batch, the watermark file untouched.
    state = lake.read_bytes(watermark_path(reg))
    for _ in range(2):
        again = extract(settings, reg, engine)
        assert (again.rows, again.reread, again.raw_path) == (0, 5, None)
    assert lake.read_bytes(watermark_path(reg)) == state and len(manifests(settings, reg)) == 1

    # Committed late, stamped 08:20 and 08:44 (before the watermark, inside the hour), and one row
    # changed without a new stamp: those three are extracted, the watermark stays.
    insert(engine, "si_enrollment", 6, 1, T0 - timedelta(minutes=10), as_text=True)
    insert(engine, "si_enrollment", 7, 1, T0 + timedelta(minutes=14), as_text=True)
    with engine.begin() as db:
        db.execute(text("UPDATE si_enrollment SET aac008 = '2' WHERE id = 4"))
    late = extract(settings, reg, engine)
    assert late.rows == 3 and late.reread == 4
    assert [r["姓名"] for r in read_raw(settings, late.raw_path)] == ["测试6", "测试7", "测试4"]
    assert read_watermark(settings, reg) == mark == late.watermark_after

    # Stamped 07:00, more than the hour before the watermark: missed (the documented limit).
    insert(engine, "si_enrollment", 8, 1, T0 - timedelta(minutes=90), as_text=True)
    assert extract(settings, reg, engine).rows == 0
    assert "测试8" not in raw_names(settings, reg)

    # Newer rows move the window on; the rows read in it are remembered for the next run.
    insert(engine, "si_enrollment", 9, 2, T0 + timedelta(hours=3), as_text=True)
    assert extract(settings, reg, engine).rows == 2
    assert extract(settings, reg, engine).rows == 0
    assert raw_names(settings, reg) == sorted(["测试1", "测试2", "测试3", "测试4", "测试4", "测试5", "测试6", "测试7",
                                              "测试9", "测试10"]), "测试4 twice: changed; curate keeps one per key"


def test_without_lookback_rows_stamped_equal_to_the_watermark_later_are_extracted(settings, tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'rsj.db'}")
    create_table(engine, "si_enrollment", "TEXT")
    reg = registration(table="si_enrollment")
    insert(engine, "si_enrollment", 1, 3, T0, as_text=True)
    assert extract(settings, reg, engine).rows == 3
    insert(engine, "si_enrollment", 4, 1, T0 + timedelta(minutes=14), as_text=True)  # the watermark's stamp
    insert(engine, "si_enrollment", 5, 1, T0 + timedelta(minutes=13), as_text=True)  # older: missed
    again = extract(settings, reg, engine)
    assert (again.rows, again.reread) == (1, 1)
    assert [r["姓名"] for r in read_raw(settings, again.raw_path)] == ["测试4"]
    assert extract(settings, reg, engine).rows == 0


def test_numeric_watermark_with_a_numeric_lookback(settings, tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'rsj.db'}")
    create_table(engine, "si_enrollment", "TEXT")
    reg = registration(table="si_enrollment", watermark="id", lookback=3)
    for first_id, n in ((1, 1), (5, 2), (8, 2)):  # ids 1 5 6 8 9
        insert(engine, "si_enrollment", first_id, n, T0, as_text=True)
    assert extract(settings, reg, engine).rows == 5 and read_watermark(settings, reg) == 9
    insert(engine, "si_enrollment", 7, 1, T0, as_text=True)  # 9 - 3 = 6 <= 7: inside the window
    insert(engine, "si_enrollment", 2, 1, T0, as_text=True)  # outside
    late = extract(settings, reg, engine)
    assert (late.rows, late.reread) == (1, 3) and read_watermark(settings, reg) == 9
    assert [r["姓名"] for r in read_raw(settings, late.raw_path)] == ["测试7"]


def test_a_watermark_file_from_before_the_lookback_counts_everything_up_to_it_as_extracted(settings, tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'rsj.db'}")
    create_table(engine, "si_enrollment", "TEXT")
    reg = registration(table="si_enrollment", lookback="1h")
    lake = Lake.from_settings(settings)
    insert(engine, "si_enrollment", 1, 3, T0, as_text=True)
    assert extract(settings, reg, engine).rows == 3
    old = {k: v for k, v in lake.read_json(watermark_path(reg)).items() if k != "seen"}
    lake.write_json(watermark_path(reg), old)
    assert extract(settings, reg, engine).rows == 0
    insert(engine, "si_enrollment", 4, 1, T0 + timedelta(hours=1), as_text=True)
    assert extract(settings, reg, engine).rows == 1
    assert raw_names(settings, reg) == ["测试1", "测试2", "测试3", "测试4"]
    assert "seen" in lake.read_json(watermark_path(reg))


def test_window_start_for_each_kind_of_watermark():
    hours = registration(table="t", lookback="1h30m")
    assert window_start(hours, datetime(2024, 6, 1, 8, 30)) == datetime(2024, 6, 1, 7, 0)
    assert window_start(hours, date(2024, 6, 1)) == date(2024, 5, 31)
    # text stamps keep their own spelling, so the database compares them as its own values
    assert window_start(hours, "2024-06-01 08:30:00") == "2024-06-01 07:00:00"
    assert window_start(hours, "2024-06-01T08:30:00.250000") == "2024-06-01T07:00:00.250000"
    assert window_start(hours, "2024-06-01 08:30") == "2024-06-01 07:00"
    assert window_start(hours, "2024-06-01") == "2024-05-31"
    assert window_start(hours, None) is None
    assert window_start(registration(table="t"), "anything") == "anything"
    numbers = registration(table="t", lookback=2.5)
    assert window_start(numbers, 10) == 7.5 and window_start(numbers, Decimal("10.0")) == Decimal("7.5")
    with pytest.raises(ExtractError, match=r"lookback '1h30m' does not apply .* give a number"):
        window_start(hours, 42)
    with pytest.raises(ExtractError, match=r"lookback '1h30m' does not apply .* 'v17'"):
        window_start(hours, "v17")
    with pytest.raises(ExtractError, match=r"lookback 2.5 does not apply .* give a duration such as '2h'"):
        window_start(numbers, datetime(2024, 6, 1))


@pytest.mark.parametrize("bad", ["2 hours", "", "1h-5m", -1, True, [1]])
def test_a_bad_lookback_is_refused_at_load(bad):
    with pytest.raises(ValidationError, match="lookback"):
        registration(table="t", lookback=bad)


def test_the_registration_sets_a_lookback():
    reg = load_registration(REG_PATH)
    assert isinstance(reg.source.lookback_window(), timedelta) and reg.source.lookback_window() > timedelta(0)


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


def test_postgresql_second_extraction_takes_only_rows_past_the_watermark(settings, pg_table, written):
    engine, table = pg_table
    create_table(engine, table, "TIMESTAMP")
    reg = registration(table=table)
    # Airflow's Connection.get_uri() form for a postgres connection
    u = engine.url
    check_incremental(settings, reg, f"postgres://{u.username}@{u.host}:{u.port}/{u.database}", engine, table,
                      written)
    state = Lake.from_settings(settings).read_json(watermark_path(reg))
    assert state["watermark"]["type"] == "datetime", "a timestamp watermark is bound back as a timestamp"


def test_postgresql_query_source_with_timezone_watermark(settings, pg_table):
    engine, table = pg_table
    create_table(engine, table, "TIMESTAMPTZ")
    insert(engine, table, 1, 3, T0)
    reg = registration(query=f"SELECT * FROM {table} WHERE aac008 = '1'", lookback="1h")
    assert extract(settings, reg, engine).rows == 3
    insert(engine, table, 4, 2, T0 + timedelta(days=2))
    second = extract(settings, reg, engine)
    assert second.rows == 2 and second.watermark_after > second.watermark_before
    # committed late: 3 minutes before the watermark (inside the hour) and a day before it (outside)
    insert(engine, table, 6, 1, T0 + timedelta(days=2, minutes=4))
    insert(engine, table, 7, 1, T0 + timedelta(days=1))
    late = extract(settings, reg, engine)
    assert (late.rows, late.reread) == (1, 2) and late.watermark_after == second.watermark_after
    assert [r["姓名"] for r in read_raw(settings, late.raw_path)] == ["测试6"]
    assert extract(settings, reg, engine).rows == 0
