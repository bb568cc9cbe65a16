"""The demo's department database: a SQLite source for the SQL-source registration (rsj).

:func:`seed_demo_source_db` creates (or advances) the ``si_enrollment`` table the registration
``rsj/social_insurance_enrollment`` extracts from, with realistic rows and a few planted defects;
a second call adds rows and updates some, so the watermark has something new to find.
"""

from __future__ import annotations

import os
import random
from datetime import date, datetime, timedelta
from pathlib import Path

from citylake.core.settings import Settings
from citylake_dev.dev_env import DEV_ENV_FILE, dev_env

DEMO_SOURCE_CONN_VAR = "AIRFLOW_CONN_RSJ_SOURCE_DB"
DEMO_SOURCE_TABLE = "si_enrollment"


def demo_source_url(settings: Settings) -> str | None:
    """SQLAlchemy URL of ``rsj_source_db`` as the environment / development file define it."""
    from citylake.stages.extract import sqlalchemy_url

    uri = os.environ.get(DEMO_SOURCE_CONN_VAR) or dev_env(settings).get(DEMO_SOURCE_CONN_VAR)
    return sqlalchemy_url(uri) if uri and not uri.lstrip().startswith("{") else None


def demo_source_path(settings: Settings) -> Path | None:
    """The SQLite file behind ``rsj_source_db`` in the demo (None if it is not a SQLite file)."""
    url = demo_source_url(settings)
    if not url or not url.startswith("sqlite:///") or url == "sqlite://":
        return None
    return Path(url[len("sqlite:///"):].split("?", 1)[0])


_INSURANCE_EMPLOYEE = ("110", "210", "310", "410", "510")
_INSURANCE_RESIDENT = ("170", "390")
_DDL = f"""CREATE TABLE IF NOT EXISTS {DEMO_SOURCE_TABLE} (
    id INTEGER PRIMARY KEY,
    aac002 VARCHAR(18),      -- 公民身份号码
    aac003 VARCHAR(60),      -- 姓名
    aae140 VARCHAR(3),       -- 险种类型
    aae030 VARCHAR(10),      -- 参保（开始）日期
    dwtyshxydm VARCHAR(18),  -- 参保单位统一社会信用代码
    aab301 VARCHAR(6),       -- 参保地行政区划
    aac008 VARCHAR(1),       -- 参保状态
    aae011 VARCHAR(20),      -- 经办人
    aae013 VARCHAR(200),     -- 备注
    aae036 TIMESTAMP NOT NULL -- 经办时间 (watermark)
)"""


def _cn_id(rng: random.Random, areas: list[str], born: date, male: bool) -> str:
    seq = rng.randrange(0, 100) * 10 + rng.choice((1, 3, 5, 7, 9) if male else (0, 2, 4, 6, 8))
    from citylake.core.identifiers import cn_id_check_char

    body = f"{rng.choice(areas)}{born:%Y%m%d}{seq:03d}"
    return body + cn_id_check_char(body)


def _uscc(rng: random.Random, division: str) -> str:
    """A valid GB 32100 code: mostly enterprises (91), some public institutions (12) and organs (11)."""
    from citylake.core.identifiers import USCC_ALPHABET, org_check_char, uscc_check_char

    kind = rng.choices(("91", "12", "11"), (85, 10, 5))[0]
    body8 = "".join(rng.choice("0123456789" if rng.random() < 0.8 else USCC_ALPHABET) for _ in range(8))
    first17 = f"{kind}{division}{body8}{org_check_char(body8)}"
    return first17 + uscc_check_char(first17)


def _wrong_check(value: str, alphabet: str) -> str:
    last = value[-1]
    return value[:-1] + next(c for c in alphabet if c != last)


def seed_demo_source_db(settings: Settings, rows: int = 400, seed: int = 20240601, *,
                        append: bool = False, url: str | None = None) -> dict:
    """Create and fill the demo department database behind ``rsj_source_db``.

    ``append=False`` (re)creates the table with ``rows`` enrolment records; ``append=True`` adds
    about ``rows`` new changes after the newest one: mostly new enrolments, some status changes of
    existing records (re-stamped ``aae036``), so the next extraction takes exactly those. About 4 % of
    the records carry a defect the conform job must quarantine (wrong check character, unknown
    insurance type, bad date, unknown division, missing name). Deterministic for a seed.
    """
    from sqlalchemy import create_engine, text

    from citylake.core.identifiers import divisions
    from citylake_dev import fakes

    url = url or demo_source_url(settings)
    if not url:
        raise RuntimeError(f"{DEMO_SOURCE_CONN_VAR} is not set and not in {DEV_ENV_FILE}")
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):].split("?", 1)[0]).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    try:
        with engine.begin() as db:
            if not append:
                db.execute(text(f"DROP TABLE IF EXISTS {DEMO_SOURCE_TABLE}"))
            db.execute(text(_DDL))
            existing = db.execute(text(f"SELECT COUNT(*), MAX(aae036), MAX(id) FROM {DEMO_SOURCE_TABLE}")).one()
            count, newest, max_id = existing[0] or 0, existing[1], existing[2] or 0
            rng = random.Random(f"{seed}:{count}")
            clock = (datetime.fromisoformat(str(newest)) if newest else datetime(2024, 6, 1, 8, 30))

            def tick() -> str:
                nonlocal clock
                clock += timedelta(minutes=rng.randint(1, 47), seconds=rng.randint(0, 59))
                if clock.hour >= 18:  # office hours: the next working morning
                    clock = (clock + timedelta(days=1)).replace(hour=8, minute=rng.randint(30, 59))
                return clock.strftime("%Y-%m-%d %H:%M:%S")

            updated = 0
            if append and count:
                ids = [r[0] for r in db.execute(text(f"SELECT id FROM {DEMO_SOURCE_TABLE} WHERE aac008 = '1'"))]
                for rid in rng.sample(ids, min(len(ids), max(1, rows // 5))):
                    db.execute(text(f"UPDATE {DEMO_SOURCE_TABLE} SET aac008 = :s, aae036 = :t, aae013 = :r "
                                    "WHERE id = :id"),
                               {"s": rng.choice("23"), "t": tick(), "r": rng.choice(("停保", "转出", "终止参保")), "id": rid})
                    updated += 1
                todo = rows - updated
            else:
                todo = rows

            districts = sorted(fakes.ROADS)
            areas = [c for c in divisions() if c.startswith("41") and not c.endswith("00")] or districts
            employers = [_uscc(rng, rng.choice(["410100", *districts])) for _ in range(max(8, todo // 25))]
            handlers = [f"JB{rng.randint(1000, 9999)}" for _ in range(12)]
            records, bad = [], 0
            while len(records) < todo:
                male = rng.random() < 0.52
                born = date(rng.randint(1958, 2005), rng.randint(1, 12), rng.randint(1, 28))
                person = {
                    "aac002": _cn_id(rng, areas, born, male),
                    "aac003": fakes.person_name(rng, male),
                    "aab301": rng.choice(districts),
                }
                employed = rng.random() < 0.7 and born.year <= 2004
                kinds = _INSURANCE_EMPLOYEE if employed else _INSURANCE_RESIDENT
                kinds = [k for k in kinds if k in ("110", "310", "170", "390") or rng.random() < 0.85]
                employer = rng.choice(employers) if employed else None
                start = date(max(born.year + 18, 2000), 1, 1) + timedelta(days=rng.randint(0, 3650))
                start = min(start, date(2024, 5, 31))
                for kind in kinds:
                    rec = {
                        **person,
                        "aae140": kind,
                        "aae030": start.isoformat(),
                        "dwtyshxydm": employer,
                        "aac008": rng.choices("123", (88, 7, 5))[0],
                        "aae011": rng.choice(handlers),
                        "aae013": rng.choice(fakes.REMARKS),
                    }
                    if rng.random() < 0.04:
                        bad += 1
                        defect = rng.randrange(6)
                        if defect == 0:
                            rec["aac002"] = _wrong_check(rec["aac002"], "0123456789X")
                        elif defect == 1 and employer:
                            rec["dwtyshxydm"] = _wrong_check(employer, "0123456789ABCDEFGHJKLMNPQRTUWXY")
                        elif defect == 2:
                            rec["aae140"] = "999"
                        elif defect == 3:
                            rec["aae030"] = f"{start.year}-02-30"
                        elif defect == 4:
                            rec["aab301"] = "419999"
                        else:
                            rec["aac003"] = ""
                    records.append(rec)
                    if len(records) >= todo:
                        break
            for i, rec in enumerate(records, 1):
                rec["id"] = max_id + i
                rec["aae036"] = tick()
            if records:
                db.execute(
                    text(
                        f"INSERT INTO {DEMO_SOURCE_TABLE} (id, aac002, aac003, aae140, aae030, dwtyshxydm, "
                        "aab301, aac008, aae011, aae013, aae036) VALUES (:id, :aac002, :aac003, :aae140, "
                        ":aae030, :dwtyshxydm, :aab301, :aac008, :aae011, :aae013, :aae036)"
                    ),
                    records,
                )
            total = db.execute(text(f"SELECT COUNT(*) FROM {DEMO_SOURCE_TABLE}")).scalar_one()
    finally:
        engine.dispose()
    return {
        "url": url,
        "table": DEMO_SOURCE_TABLE,
        "inserted": len(records),
        "updated": updated,
        "defective": bad,
        "rows_total": total,
    }
