"""Freshness: is each resource updated as often as its 更新周期 promises?

A resource's last update is how current its curated data is: the newest receipt time of the
batches the curated table holds (``received_through`` of the curated pointer, which curate also
stamps on the table's snapshot; ``updated_at`` for a pointer without it), as the batch ledger
reads it (docs/zones.md). A department that stops sending goes overdue even if curate runs again. :func:`max_age` is *the* table from update
cycle to the oldest acceptable last update; the directory publisher imports it
(or :func:`assess`) so the report and the directory never disagree.

The daily ``citylake_freshness`` DAG calls :func:`write_freshness_report`, which
writes ``directory/freshness.json`` into the lake and ``freshness.json`` /
``freshness.txt`` (in Chinese, for the centre) under ``$CITYLAKE_HOME/directory``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from citylake.core.lake import Lake
from citylake.core.ledger import Ledger
from citylake.core.registry import UPDATE_CYCLES, Registration, load_registrations
from citylake.core.settings import Settings

REPORT_REL = "directory/freshness.json"
BEIJING = ZoneInfo("Asia/Shanghai")

# The directory's vocabulary (citylake/stages/publish/facts.py uses the same codes and labels).
STATUS_ZH = {"on_time": "按时更新", "overdue": "更新逾期", "no_data": "暂无数据", "irregular": "不定期更新"}
STATUS_EN = {"on_time": "on time", "overdue": "overdue", "no_data": "no data yet", "irregular": "irregular"}


def max_age(update_cycle: str) -> timedelta | None:
    """Oldest acceptable last update for a 更新周期: the longest period of the cycle plus a
    grace for a late delivery. ``None`` for 其他 (不定期): an irregular resource cannot be late.
    """
    table = {
        "实时": timedelta(hours=1),
        "每日": timedelta(days=2),
        "每周": timedelta(days=8),
        "每月": timedelta(days=35),
        "每季度": timedelta(days=100),
        "每半年": timedelta(days=190),
        "每年": timedelta(days=380),
        "其他": None,
    }
    if update_cycle not in table:
        raise ValueError(f"unknown update cycle {update_cycle!r}; expected one of {', '.join(UPDATE_CYCLES)}")
    return table[update_cycle]


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(str(text))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def last_update(settings: Settings, reg: Registration, lake: Lake | None = None) -> datetime | None:
    """The newest receipt time the curated data holds, or None if never curated."""
    lake = lake or Lake.from_settings(settings)
    current = Ledger.read(lake, reg).curated or {}
    return _parse_time(current.get("received_through") or current.get("updated_at"))


def assess(update_cycle: str, updated_at: datetime | None, now: datetime) -> dict:
    """Freshness facts for one resource: status, age, allowed age, how much overdue."""
    limit = max_age(update_cycle)
    age = (now - updated_at) if updated_at else None
    if updated_at is None:
        status = "no_data"
    elif limit is None:
        status = "irregular"
    elif age > limit:
        status = "overdue"
    else:
        status = "on_time"
    return {
        "update_cycle": update_cycle,
        "max_age_hours": round(limit.total_seconds() / 3600, 2) if limit else None,
        "last_updated": updated_at.isoformat() if updated_at else None,
        "age_hours": round(age.total_seconds() / 3600, 2) if age is not None else None,
        "overdue": status == "overdue",
        "overdue_hours": round((age - limit).total_seconds() / 3600, 2) if status == "overdue" else None,
        "status": status,
        "status_zh": STATUS_ZH[status],
        "status_en": STATUS_EN[status],
    }


def is_overdue(update_cycle: str, updated_at: datetime | None, now: datetime | None = None) -> bool:
    return assess(update_cycle, updated_at, now or datetime.now(UTC))["overdue"]


def freshness_report(settings: Settings, now: datetime | None = None,
                     regs: list[Registration] | None = None) -> dict:
    now = now or datetime.now(UTC)
    regs = load_registrations(settings.resources_dir) if regs is None else regs
    lake = Lake.from_settings(settings)
    rows = []
    for reg in regs:
        row = {
            "resource": reg.resource,
            "name": reg.name,
            "department": reg.department,
            "department_name": reg.department_name,
            **assess(reg.update_cycle, last_update(settings, reg, lake), now),
        }
        rows.append(row)
    counts = {status: sum(1 for r in rows if r["status"] == status) for status in STATUS_ZH}
    return {
        "generated_at": now.isoformat(),
        "resources": rows,
        "counts": counts,
        "overdue": [r["resource"] for r in rows if r["overdue"]],
        "no_data": [r["resource"] for r in rows if r["status"] == "no_data"],
    }


def _duration_zh(hours: float) -> str:
    days, rest = divmod(round(hours), 24)
    if days and rest:
        return f"{days} 天 {rest} 小时"
    if days:
        return f"{days} 天"
    return f"{rest} 小时" if rest else "不足 1 小时"


def _local(text: str | None) -> str:
    if not text:
        return "—"
    return datetime.fromisoformat(text).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def render_text(report: dict) -> str:
    """The centre's report, in Chinese."""
    c = report["counts"]
    lines = [
        "数据资源更新及时性报告",
        f"生成时间：{_local(report['generated_at'])}（北京时间）",
        f"共 {len(report['resources'])} 项数据资源：按时更新 {c['on_time']} 项，更新逾期 {c['overdue']} 项，"
        f"暂无数据 {c['no_data']} 项，不定期更新 {c['irregular']} 项。",
        "判定规则：最近一次成功更新（整理区当前版本的更新时间）距今超过该更新周期允许的最长间隔，即为更新逾期。",
        "",
    ]
    order = {"overdue": 0, "no_data": 1, "on_time": 2, "irregular": 3}
    for r in sorted(report["resources"], key=lambda r: (order[r["status"]], r["department"], r["resource"])):
        lines.append(f"【{r['status_zh']}】{r['name']}（{r['resource']}）— {r['department_name']}")
        allowed = (f"（最长允许间隔 {_duration_zh(r['max_age_hours'])}）" if r["max_age_hours"] is not None
                   else "（不定期，不判定逾期）")
        lines.append(f"    更新周期：{r['update_cycle']}{allowed}；最近更新：{_local(r['last_updated'])}")
        if r["status"] == "overdue":
            lines.append(f"    已 {_duration_zh(r['age_hours'])} 未更新，逾期 {_duration_zh(r['overdue_hours'])}，请督促提供部门报送。")
        elif r["status"] == "no_data":
            lines.append("    尚无成功更新的数据，请联系提供部门报送。")
        elif r["age_hours"] is not None:
            lines.append(f"    距上次更新 {_duration_zh(r['age_hours'])}。")
    return "\n".join(lines) + "\n"


def write_freshness_report(
    settings: Settings, now: datetime | None = None, regs: list[Registration] | None = None
) -> dict:
    """Assess every registration; write the report into the lake and the local directory folder."""
    report = freshness_report(settings, now, regs)
    Lake.from_settings(settings).write_json(REPORT_REL, report)
    settings.ensure_local_dirs()
    (settings.directory_dir / "freshness.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    (settings.directory_dir / "freshness.txt").write_text(render_text(report), encoding="utf-8")
    return report
