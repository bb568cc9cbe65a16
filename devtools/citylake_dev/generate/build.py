"""Building export files, streaming: rows are made in chunks and written as they are made.

Each chunk of ``CHUNK_ROWS`` rows has its own random stream (:meth:`FileGen.begin_chunk`), so the
bytes depend only on (seed, registration, file index, rows, shape) and chunks can be made in other
processes while this one writes them, in order, to the file. Memory stays flat whatever the rows:
keys are unique by construction (:class:`~.entities.Permutation`), duplicate rows copy one of the
last ``WINDOW`` good rows, and a file holds at most a few chunks in flight.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from citylake.core.identifiers import normalize_text
from citylake.core.lake import Lake
from citylake.core.reasons import reason as reason_string
from citylake.core.registry import Registration
from citylake.core.settings import Settings
from citylake_dev.generate import defects, overlaps, shapes
from citylake_dev.generate.cells import GenerationError, cell_text
from citylake_dev.generate.entities import Record
from citylake_dev.generate.noise import render_good
from citylake_dev.generate.truth import write_truth
from citylake_dev.generate.values import FileGen, Layout
from citylake_dev.generate.writers import chunk_writer, file_writer, written_headers

PARALLEL_MIN_ROWS = 60_000
VERIFY_ALL_ROWS = 20_000
CHUNK_ROWS = 20_000
WINDOW = 64  # recent good rows a duplicate may copy
_BREAK_AFTER = frozenset("省市区县镇乡路街道号院楼室层，,；;。")


def generate(
    settings: Settings,
    registrations: list[Registration],
    rows: int,
    seed: int,
    files_per_resource: int = 1,
    workers: int | None = None,
    shape: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> dict:
    """Write dirty sample exports for every registration into the landing zone; return the truth.

    The return value is this run's truth (``{"seed", "rows", "files_per_resource", "shape", "files"}``);
    the same is merged into ``$CITYLAKE_HOME/generated/truth.json``. ``shape`` (see
    :data:`~.shapes.SHAPES`) makes every file in that shape; a registration it cannot apply to is an
    error (:func:`~.shapes.problem`). Chunks of rows are made in ``workers`` processes (default one
    per CPU, up to 4, when there are at least ``PARALLEL_MIN_ROWS`` rows in all; 1 means in this
    process). The bytes are the same either way; they depend on ``chunk_rows`` (each chunk has its
    own random stream), which only tests change.
    """
    if rows < 1:
        raise ValueError("rows must be at least 1")
    if files_per_resource < 1:
        raise ValueError("files_per_resource must be at least 1")
    problems = [f"{reg.resource}: {p}" for reg in registrations if (p := shapes.problem(shape, reg, rows))]
    if problems:
        raise ValueError(f"cannot make {shape or 'the plain file'} for " + "; ".join(problems))
    lake = Lake.from_settings(settings)
    jobs = [(reg, index) for reg in registrations for index in range(files_per_resource)]
    gens = [file_gen(settings, reg, seed, index, files_per_resource, rows, shape, chunk_rows) for reg, index in jobs]
    paths = [g.path for g in gens]
    for path in paths:
        if paths.count(path) > 1:
            raise GenerationError(f"two files named {path}")
    chunks = -(-rows // chunk_rows)
    if workers is None:
        workers = min(len(jobs) * chunks, os.cpu_count() or 1, 4) if rows * len(jobs) >= PARALLEL_MIN_ROWS else 1
    if any(g.key_fallback for g in gens):
        workers = 1  # keys kept in one process's memory: chunks in order, here
    files: dict[str, dict] = {}
    tasks = [(n, c) for n in range(len(jobs)) for c in range(chunks)]
    if workers > 1 and len(tasks) > 1:
        # spawn, not fork: the caller may hold threads (Spark's JVM gateway, Airflow).
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:

            def submit(n: int, c: int) -> Future:
                reg, index = jobs[n]
                args = (settings, reg, seed, index, files_per_resource, rows, shape, chunk_rows)
                return pool.submit(_chunk_task, *args, c)

            results = _in_order(tasks, submit, ahead=2 * workers)
            for g in gens:
                files[g.path] = write_file(lake, g, (next(results) for _ in range(chunks)))
    else:
        for g in gens:
            files[g.path] = write_file(lake, g, (make_chunk(g, c) for c in range(chunks)))
    truth = {"seed": seed, "rows": rows, "files_per_resource": files_per_resource, "shape": shape, "files": files}
    write_truth(settings, lake, truth)
    return truth


def _in_order(tasks: list, submit, ahead: int) -> Iterator[dict]:
    """Results of ``tasks`` in order, with at most ``ahead`` running or done but not yet taken."""
    pending: list[Future] = []
    queue = iter(tasks)
    for task in queue:
        pending.append(submit(*task))
        if len(pending) >= ahead:
            break
    while pending:
        yield pending.pop(0).result()
        task = next(queue, None)
        if task is not None:
            pending.append(submit(*task))


def file_gen(
    settings: Settings,
    reg: Registration,
    seed: int,
    index: int,
    count: int,
    rows: int,
    shape: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> FileGen:
    """The maker of file ``index`` of ``count`` for ``reg`` in ``shape``: the same in every process."""
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    var = shapes.variant(reg, shape)
    g = FileGen(settings, var.registration, seed, index, count, rows, ext=var.ext)
    g.chunk_rows = chunk_rows
    shapes.lay_out(g, shape)
    g.overrides = var.overrides
    return g


_GENS: dict[tuple, FileGen] = {}


def _chunk_task(*args) -> dict:
    """A chunk made in a worker process (``file_gen``'s arguments, then the chunk number); the
    FileGen is kept for the file's next chunks."""
    *key, chunk = args
    _settings, reg, *rest = key
    cache_key = (reg.department, reg.resource, *rest)
    g = _GENS.get(cache_key)
    if g is None:
        _GENS.clear()
        g = _GENS[cache_key] = file_gen(*key)
    return make_chunk(g, chunk)


# ---- rows --------------------------------------------------------------------------------------------
def make_chunk(g: FileGen, chunk: int) -> dict:
    """Rows ``chunk * g.chunk_rows`` up to the next chunk, written: bytes (or .xls cells) and counts."""
    lay = g.layout
    start, stop = chunk * g.chunk_rows, min(g.rows, (chunk + 1) * g.chunk_rows)
    g.begin_chunk(chunk)
    rng = g.rng
    assignment = defects.plan(g, start, stop)
    fallback = ("column_count", None) if g.fmt in ("csv", "xlsx") else ("malformed_line", None)
    out = chunk_writer(g)
    window: list[tuple] = []  # recent good rows not copied yet: (cells, repeated-column cell, cells left out)
    bad: dict[str, int] = {}
    planted: list[dict] = []  # good rows that are shared units of a base library (overlaps.py)
    old_rows, old_codes = 0, set()
    cn_id_cells = [k for k, kind in enumerate(g.kinds) if kind == "cn_id"] if g.old_division_share else []

    for i in range(start, stop):
        rec = _record(g, i)
        planned = assignment.get(i)
        # Every good identifier of the first VERIFY_ALL_ROWS rows is checked with citylake.core.identifiers
        # (the tests re-check every row of every file they generate); beyond that, every 32nd row.
        verify = i < VERIFY_ALL_ROWS or i % 32 == 0
        if planned is None:
            cells = render_good(g, rec, allow_missing=(i > 0), verify=verify)
            left_out = _shape_good_row(g, lay, cells)
            entry = (cells, _extra_cell(g, lay, i), left_out)
            shared = overlaps.planted_record(g, i, rec)
            if shared is not None:
                planted.append(shared)  # and never copied: a duplicate key would quarantine it
            else:
                window.append(entry)
            if len(window) > WINDOW:
                del window[0]
            out.add(i, _written(lay, entry))
            for k in cn_id_cells:
                area = (normalize_text(cell_text(cells[k])) or "")[:6]
                if area in g.places.old_area_set:
                    old_rows += 1
                    old_codes.add(area)
                    break
            continue
        code, fname = planned
        entry = None
        if code == "duplicate_row" and window:
            entry = window.pop(rng.randrange(len(window)))
        elif code == "duplicate_key" and window:
            j = rng.randrange(len(window))
            cells, extra, _ = window[j]
            row = defects.duplicate_key_row(g, cells, rec)
            if row is not None:
                del window[j]
                entry = (row, extra, 0)
        if code in ("duplicate_row", "duplicate_key") and entry is None:
            code, fname = fallback  # no good row to copy yet
        if entry is None:
            row = defects.defect_row(g, code, fname, rec, i, verify)
            written = row if not isinstance(row, list) else _written(lay, (row, _extra_cell(g, lay, i), 0))
        else:
            written = _written(lay, entry)
        out.add(i, written)
        key = reason_string(code, fname)
        bad[key] = bad.get(key, 0) + 1

    result = out.result()
    result.update(rows=stop - start, bad=bad, old_division_rows=old_rows, old_division_codes=sorted(old_codes),
                  planted=planted)
    return result


def _record(g: FileGen, i: int) -> dict:
    if g.seen is None:
        return g.record(i)
    # no field can carry a serial: retry until the key (and every unique field) is new
    for _attempt in range(200):
        rec = g.record(i)
        sigs = g.unique_signatures(rec)
        if not any(s in g.seen for s in sigs):
            g.seen.update(sigs)
            return rec
    raise GenerationError(f"{g.reg.resource}: could not make a record with a unique key at row {i}")


def _shape_good_row(g: FileGen, lay: Layout, cells: list) -> int:
    """Apply the layout to a good row's cells in place; the number of trailing cells left out."""
    rng = g.rng
    if lay.multiline_share and rng.random() < lay.multiline_share:
        k = rng.choice(lay.multiline_fields)
        text = cells[k]
        if isinstance(text, str) and len(text.strip()) >= 4:
            # typed with Enter in a cell, mostly after a place word: LF from Excel, CRLF from other tools
            cuts = [n + 1 for n in range(1, len(text) - 2) if text[n] in _BREAK_AFTER]
            cut = rng.choice(cuts) if cuts else rng.randint(2, len(text) - 2)
            cells[k] = text[:cut] + rng.choice(("\n", "\n", "\r\n")) + text[cut:]
    if lay.short_share and rng.random() < lay.short_share:
        n = rng.randint(1, lay.short_fields)
        empty = None if g.fmt == "xlsx" else ""
        for k in range(len(cells) - n, len(cells)):
            cells[k] = empty
        return n
    return 0


def _extra_cell(g: FileGen, lay: Layout, i: int):
    """The repeated column's cell: another value of its field (a second address, a second name)."""
    if lay.extra_column is None:
        return None
    _, source = lay.extra_column
    f, kind = g.fields[source], g.kinds[source]
    value = g.present_value(f, kind, Record(g, i))
    return cell_text(value) if value is not None else ""


def _written(lay: Layout, entry: tuple) -> list:
    """The cells as written: the repeated column put in, the cells left out dropped."""
    cells, extra, left_out = entry
    if left_out:
        return cells[: len(cells) - left_out]
    if lay.extra_column is None:
        return cells
    position = lay.extra_column[0]
    return [*cells[:position], extra, *cells[position:]]


# ---- files -------------------------------------------------------------------------------------------
def write_file(lake: Lake, g: FileGen, chunks: Iterator[dict]) -> dict:
    """Write ``g``'s file from its chunks into the lake; return its truth entry."""
    bad: dict[str, int] = {}
    rows = old_rows = 0
    old_codes: set[str] = set()
    planted: list[dict] = []
    with _LakeOutput(lake, g.path) as out:
        writer = file_writer(g, out.file)
        writer.begin()
        for chunk in chunks:
            writer.add(chunk)
            rows += chunk["rows"]
            for key, n in chunk["bad"].items():
                bad[key] = bad.get(key, 0) + n
            old_rows += chunk["old_division_rows"]
            old_codes.update(chunk["old_division_codes"])
            planted += chunk.get("planted", [])
        stats = writer.close()
    if rows != g.rows:
        raise GenerationError(f"{g.path}: wrote {rows} rows, meant {g.rows}")
    stats.update(old_division_rows=old_rows, old_division_codes=old_codes)
    text = g.file_format in ("csv", "json")
    entry = {
        "resource": g.reg.resource,
        "department": g.reg.department,
        "format": g.file_format,
        "encoding": g.encoding if text else g.file_format,
        "rows": rows,
        "good": rows - sum(bad.values()),
        "bad": dict(sorted(bad.items())),
        "sha256": out.sha256,
        "size": out.size,
        "headers": written_headers(g),
    }
    if text:
        entry["lines"] = stats["lines"]
    if g.file_format in ("csv", "xlsx"):  # a legacy .xls reader pads every row to the sheet's width anyway
        entry["short_rows"] = stats["short_rows"]
    if planted:
        entry["planted"] = planted
    if g.layout.shape is not None:
        entry.update(shapes.truth(g, g.layout, stats, g.overrides))
    return entry


class _LakeOutput:
    """A file written in pieces into the lake: beside its target and renamed on a local lake (atomic,
    as Lake.write_bytes), through a local temporary file and one upload on S3."""

    def __init__(self, lake: Lake, path: str):
        self.lake, self.path = lake, path
        self.sha256, self.size = "", 0

    def __enter__(self) -> _LakeOutput:
        if self.lake.scheme == "file":
            self.target = self.lake.fs_path(self.path)
            os.makedirs(os.path.dirname(self.target), exist_ok=True)
            # .tmp- names are what ingest skips as in progress
            self.tmp = os.path.join(os.path.dirname(self.target), f".tmp-{uuid.uuid4().hex[:12]}")
        else:
            fd, self.tmp = tempfile.mkstemp(prefix="citylake-generate-")
            os.close(fd)
        self.file = open(self.tmp, "w+b")  # closed in __exit__
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.file.close()
        try:
            if exc_type is not None:
                return
            digest = hashlib.sha256()
            with open(self.tmp, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
                    self.size += len(chunk)
            self.sha256 = digest.hexdigest()
            if self.lake.scheme == "file":
                os.replace(self.tmp, self.target)
            else:
                with open(self.tmp, "rb") as f:
                    self.lake.copy_stream(f, self.path)
        finally:
            if os.path.exists(self.tmp):
                os.remove(self.tmp)
