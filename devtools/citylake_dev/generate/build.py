"""Building export files: one file from its records and defect plan, and all files of a run."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from citylake.core.lake import Lake
from citylake.core.reasons import reason as reason_string
from citylake.core.registry import Registration
from citylake.core.settings import Settings
from citylake_dev.generate import defects
from citylake_dev.generate.cells import GenerationError
from citylake_dev.generate.noise import render_good
from citylake_dev.generate.truth import write_truth
from citylake_dev.generate.values import FileGen
from citylake_dev.generate.writers import csv_bytes, json_bytes, xlsx_bytes

PARALLEL_MIN_ROWS = 60_000
VERIFY_ALL_ROWS = 20_000


def generate(
    settings: Settings,
    registrations: list[Registration],
    rows: int,
    seed: int,
    files_per_resource: int = 1,
    workers: int | None = None,
) -> dict:
    """Write dirty sample exports for every registration into the landing zone; return the truth.

    The return value is this run's truth (``{"seed", "rows", "files_per_resource", "files"}``);
    the same is merged into ``$CITYLAKE_HOME/generated/truth.json``. Each file depends only on
    (seed, registration, file index, rows), so big runs build files in parallel processes
    (``workers``: default one per CPU, up to 4, when there are at least
    ``PARALLEL_MIN_ROWS`` rows in all; 1 means in this process). The bytes are the same either way.
    """
    if rows < 1:
        raise ValueError("rows must be at least 1")
    if files_per_resource < 1:
        raise ValueError("files_per_resource must be at least 1")
    lake = Lake.from_settings(settings)
    jobs = [(reg, index) for reg in registrations for index in range(files_per_resource)]
    if workers is None:
        workers = min(len(jobs), os.cpu_count() or 1, 4) if rows * len(jobs) >= PARALLEL_MIN_ROWS else 1
    files: dict[str, dict] = {}

    def keep(path: str, data: bytes, entry: dict) -> None:
        if path in files:
            raise GenerationError(f"two files named {path}")
        lake.write_bytes(path, data)
        files[path] = entry

    if workers > 1 and len(jobs) > 1:
        # spawn, not fork: the caller may hold threads (Spark's JVM gateway, Airflow).
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [
                pool.submit(build_file, settings, reg, seed, index, files_per_resource, rows) for reg, index in jobs
            ]
            for future in futures:
                keep(*future.result())
    else:
        for reg, index in jobs:
            keep(*build_file(settings, reg, seed, index, files_per_resource, rows))
    truth = {"seed": seed, "rows": rows, "files_per_resource": files_per_resource, "files": files}
    write_truth(settings, lake, truth)
    return truth


def build_file(
    settings: Settings, reg: Registration, seed: int, index: int, count: int, rows: int
) -> tuple[str, bytes, dict]:
    """(lake path, bytes, truth entry) of file ``index`` of ``count`` for ``reg``."""
    g = FileGen(settings, reg, seed, index, count, rows)
    rng = g.rng

    # 1. base records, unique by key (and by unique fields)
    records: list[dict] = []
    seen: set = set()
    for i in range(rows):
        for _attempt in range(200):
            rec = g.record(i)
            sigs = g.unique_signatures(rec)
            if not any(s in seen for s in sigs):
                break
        else:
            raise GenerationError(f"{reg.resource}: could not make a record with a unique key at row {i}")
        seen.update(sigs)
        records.append(rec)

    # 2. which rows are bad, and how
    assignment = defects.plan(g, rows)
    fallback = ("column_count", None) if g.fmt in ("csv", "xlsx") else ("malformed_line", None)

    # 3. rows
    out_rows: list = []  # list of cells, or RawLine
    good_cells: dict[int, list] = {}
    good_done: list[int] = []
    used_sources: set[int] = set()
    bad: dict[str, int] = {}

    def pick_source() -> int | None:
        """An earlier good row not used as a source yet."""
        for _ in range(30):
            if not good_done:
                return None
            j = good_done[rng.randrange(len(good_done))]
            if j not in used_sources:
                return j
        candidates = [j for j in good_done if j not in used_sources]
        return rng.choice(candidates) if candidates else None

    for i in range(rows):
        rec = records[i]
        if i not in assignment:
            # Every good identifier of the first VERIFY_ALL_ROWS rows is checked with citylake.core.identifiers
            # (the tests re-check every row of every file they generate); beyond that, every 8th row.
            cells = render_good(g, rec, allow_missing=(i > 0), verify=(i < VERIFY_ALL_ROWS or i % 8 == 0))
            out_rows.append(cells)
            good_cells[i] = cells
            good_done.append(i)
            continue
        code, fname = assignment[i]
        row = None
        if code == "duplicate_row":
            j = pick_source()
            if j is not None:
                used_sources.add(j)
                row = list(good_cells[j])
        elif code == "duplicate_key":
            j = pick_source()
            if j is not None:
                row = defects.duplicate_key_row(g, good_cells[j], rec)
                if row is not None:
                    used_sources.add(j)
        if code in ("duplicate_row", "duplicate_key") and row is None:
            code, fname = fallback
        if row is None:
            row = defects.defect_row(g, code, fname, rec, i)
        out_rows.append(row)
        key = reason_string(code, fname)
        bad[key] = bad.get(key, 0) + 1

    # 4. bytes
    if g.fmt == "csv":
        data = csv_bytes(g, out_rows)
    elif g.fmt == "xlsx":
        sheet = reg.source.sheet or "Sheet1"
        data = xlsx_bytes(sheet, [list(g.headers)] + out_rows, g.export_at, reg.department_name)
    else:
        data = json_bytes(g, out_rows)

    entry = {
        "resource": reg.resource,
        "department": reg.department,
        "format": g.fmt,
        "encoding": g.encoding,
        "rows": rows,
        "good": rows - sum(bad.values()),
        "bad": dict(sorted(bad.items())),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "headers": list(g.headers),
    }
    return g.path, data, entry
