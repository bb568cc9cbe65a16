"""更新周期 (update cycle) → pick-up schedule, and when the next pick-up of a cycle is due.

The Airflow DAGs (:mod:`citylake.drivers.airflow.schedules`) schedule from this table and the
receipts tell the liaison from it when a file sent now is picked up. Cron expressions are read in
:data:`TIMEZONE`, the DAGs' time zone.

:func:`next_pickup` evaluates the table's cron forms in plain Python (no Airflow or croniter in
core): five fields (minute hour day-of-month month day-of-week), each ``*``, ``*/n``, a number, a
range ``a-b`` with an optional ``/n`` step, or a comma list of these; day of week 0-7 (0 and 7 are
Sunday). As in cron, when both day fields are restricted a day matching either one fires.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from citylake.core.registry import UPDATE_CYCLES

TIMEZONE = "Asia/Shanghai"

# 更新周期 -> cron (Beijing time). Batch exports arrive overnight, so daily and slower
# cycles run early in the morning; 实时 polls the landing zone every 10 minutes.
CYCLE_SCHEDULES: dict[str, str] = {
    "实时": "*/10 * * * *",
    "每日": "0 2 * * *",
    "每周": "0 3 * * 1",
    "每月": "0 3 1 * *",
    "每季度": "0 3 1 1,4,7,10 *",
    "每半年": "0 3 1 1,7 *",
    "每年": "0 3 1 1 *",
    "其他": "0 2 * * *",  # 不定期: look for drops daily
}

assert set(CYCLE_SCHEDULES) == set(UPDATE_CYCLES)

# (name, lowest, highest) of the five cron fields.
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
# Any month/day-of-week combination (29 February included) recurs within this many days.
_HORIZON_DAYS = 366 * 8 + 7


def _parse_field(text: str, name: str, lo: int, hi: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if span == "*":
                first, last = lo, hi
            elif "-" in span:
                a, b = span.split("-", 1)
                first, last = int(a), int(b)
            else:
                first = int(span)
                last = hi if step_text else first  # "5/15": from 5 to the end, every 15
        except ValueError:
            raise ValueError(f"cron {name} {text!r}: only numbers, '*', ranges and steps are supported") from None
        if step < 1 or not lo <= first <= last <= hi:
            raise ValueError(f"cron {name} {text!r} is out of range {lo}-{hi}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def parse_cron(expr: str) -> tuple[frozenset[int], ...]:
    """The five value sets of a cron expression (day of week with Sunday as 0)."""
    parts = expr.split()
    if len(parts) != 5:
        raise ValueError(f"cron {expr!r}: expected 5 fields (minute hour day month weekday)")
    sets = [_parse_field(p, name, lo, hi) for p, (name, lo, hi) in zip(parts, _FIELDS, strict=True)]
    sets[4] = frozenset(0 if d == 7 else d for d in sets[4])
    return tuple(sets)


def next_cron_time(expr: str, after: datetime, tz: str | tzinfo = TIMEZONE) -> datetime:
    """The first time strictly after ``after`` (time-zone aware) at which ``expr`` fires, read in
    ``tz``; the result is aware, in ``tz``."""
    if after.tzinfo is None:
        raise ValueError("after must carry a time zone")
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    minutes, hours, days, months, weekdays = parse_cron(expr)
    parts = expr.split()
    dom_any, dow_any = parts[2].startswith("*"), parts[4].startswith("*")
    times = [time(h, m) for h in sorted(hours) for m in sorted(minutes)]

    def day_fires(day) -> bool:
        if day.month not in months:
            return False
        dom, dow = day.day in days, (day.isoweekday() % 7) in weekdays
        if dom_any or dow_any:  # cron: a restricted field alone decides; both restricted: either
            return dom and dow
        return dom or dow

    local = after.astimezone(zone)
    day = local.date()
    for _ in range(_HORIZON_DAYS):
        if day_fires(day):
            for t in times:
                candidate = datetime.combine(day, t, tzinfo=zone)
                if candidate > after:
                    return candidate
        day += timedelta(days=1)
    raise ValueError(f"cron {expr!r} never fires")


def next_pickup(update_cycle: str, after: datetime, tz: str | tzinfo = TIMEZONE) -> datetime | None:
    """When the schedule of ``update_cycle`` next runs after ``after``, read in ``tz`` (the DAGs'
    zone by default); None for a cycle that is not in the table."""
    schedule = CYCLE_SCHEDULES.get(update_cycle)
    return None if schedule is None else next_cron_time(schedule, after, tz)
