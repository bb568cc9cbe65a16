"""What an export file is called, which period it covers, and how its header row is spelled."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from fnmatch import fnmatch

from citylake.core.lake import Lake
from citylake.core.registry import FieldSpec, Registration
from citylake.core.zones import landing_dir


def _base_day(seed: int) -> date:
    # a seed like 20261121 means "exported that day": the data ends the day before
    text = str(seed)
    if len(text) == 8:
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:8])) - timedelta(days=1)
        except ValueError:
            pass
    return date(2026, 1, 1) + timedelta(days=seed % 365)


def period(seed: int, cycle: str, back: int) -> tuple[str, datetime]:
    """(file-name stamp, end of the period the file covers), ``back`` periods before the latest."""
    base = _base_day(seed)
    if cycle == "实时":
        end = datetime.combine(base, time(10)) - timedelta(hours=back)
        return end.strftime("%Y%m%d%H"), end
    if cycle not in ("每月", "每季度", "每半年", "每年"):
        day = base - timedelta(days=(7 if cycle == "每周" else 1) * back)
        return day.strftime("%Y%m%d"), datetime.combine(day, time(23))
    months = {"每月": 1, "每季度": 3, "每半年": 6, "每年": 12}[cycle]
    number = (base.year * 12 + base.month - 1) // months - 1 - back  # the last complete period
    y, m0 = divmod(number * months, 12)
    ny, nm0 = divmod(number * months + months, 12)
    end = date(ny, nm0 + 1, 1) - timedelta(days=1)
    stamp = {1: f"{y}{m0 + 1:02d}", 3: f"{y}Q{m0 // 3 + 1}", 6: f"{y}H{m0 // 6 + 1}", 12: f"{y}"}[months]
    return stamp, datetime.combine(end, time(23))


def file_name(reg: Registration, fmt: str, stamp: str, ext: str | None = None) -> tuple[str, str]:
    """(lake path in the landing zone, file name): the name a liaison would give, matching the pattern.
    ``ext`` picks the JSON extension (``json`` for an array, ``jsonl`` for lines)."""
    tail = reg.resource.split("_")[-1]
    pattern = reg.source.pattern or "*"
    if fmt == "csv":
        clean = "".join(c for c in reg.name if c not in "（）()[]【】/\\:*?\"<>| ")
        name = f"{clean}_{stamp}.csv"
    elif fmt in ("xlsx", "xls"):
        name = f"{reg.department}_{tail}_{stamp}.{fmt}"
    else:
        name = ""
        for suffix in [ext] if ext else ["jsonl", "json"]:
            name = f"{tail}_{stamp}.{suffix}"
            if fnmatch(name, pattern):
                break
    if not fnmatch(name, pattern):
        name = f"{reg.resource}_{stamp}.{ext or ('jsonl' if fmt == 'json' else fmt)}"
    if not fnmatch(name, pattern) and "*" in pattern:
        name = pattern.replace("*", stamp, 1).replace("*", "").replace("?", "0")
    return Lake.join(landing_dir(reg.department, reg.resource), name), name


def pick_headers(rng: random.Random, fields: list[FieldSpec]) -> list[str]:
    """One header per field: mostly the title, sometimes the canonical name or an alias."""
    out = []
    for f in fields:
        aliases = [h for h in f.headers if h not in (f.title, f.name)]
        r = rng.random()
        if r < 0.45 or (not aliases and r < 0.9):
            h = f.title
        elif r < 0.55 or not aliases:
            h = f.name  # the canonical name, as some systems export it
        else:
            h = rng.choice(aliases)
        if "(" in h and rng.random() < 0.3:
            h = h.replace("(", "（").replace(")", "）")
        out.append(h)
    return out
