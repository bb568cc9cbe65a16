"""更新周期 (update cycle) → Airflow schedule.

The table itself is :data:`citylake.core.cycles.CYCLE_SCHEDULES` (the receipts read it too).
Cron expressions are read in the DAGs' time zone (Asia/Shanghai). A department DAG
serves all of the department's resources, so it runs on the most frequent cycle
among them; a resource polled more often than its cycle simply finds nothing new
(its tasks are skipped).
"""

from __future__ import annotations

from collections.abc import Iterable

from citylake.core.cycles import CYCLE_SCHEDULES, TIMEZONE
from citylake.core.registry import UPDATE_CYCLES

__all__ = ["CYCLE_SCHEDULES", "FRESHNESS_SCHEDULE", "TIMEZONE", "department_schedule", "most_frequent_cycle",
           "schedule_for_cycle"]

# Most frequent first; 其他 (irregular) is polled daily.
_FREQUENCY_RANK = {"实时": 0, "每日": 1, "其他": 1, "每周": 2, "每月": 3, "每季度": 4, "每半年": 5, "每年": 6}

FRESHNESS_SCHEDULE = "30 6 * * *"  # every morning, before office hours

assert set(CYCLE_SCHEDULES) == set(UPDATE_CYCLES) == set(_FREQUENCY_RANK)


def schedule_for_cycle(update_cycle: str) -> str:
    try:
        return CYCLE_SCHEDULES[update_cycle]
    except KeyError:
        raise ValueError(f"unknown update cycle {update_cycle!r}; expected one of {', '.join(UPDATE_CYCLES)}") from None


def most_frequent_cycle(cycles: Iterable[str]) -> str:
    cycles = list(cycles)
    if not cycles:
        raise ValueError("no update cycles given")
    return min(cycles, key=lambda c: (_FREQUENCY_RANK[c], c))


def department_schedule(regs) -> str:
    """Schedule of a department DAG: the most frequent 更新周期 of its resources."""
    return schedule_for_cycle(most_frequent_cycle(r.update_cycle for r in regs))
