"""`make bench`: the pipeline timed beside the floors, on the same generated file, in one run.

    .venv/bin/python -m citylake_dev.bench [--sizes 100000,1000000] [--10m] [--resource R]

For each size: generate one export of ``--resource`` (default enterprise_registration, a GBK CSV),
then time

* the pipeline: ingest → conform → check → curate, through :func:`citylake.stages.chain.run_resource`
  (the code the DAGs run), per stage;
* a second batch changing 1 % of the keys (1 % of the file's records with a changed non-key value,
  same encoding and format), dropped into landing and run through the same chain;
* three floors, bare CSV→Parquet copies of the same file: Spark's (the same session), pyarrow's
  (streaming ``open_csv`` → ``ParquetWriter``) and DuckDB's (of a UTF-8 copy made first, untimed).

Each timed step also gets the peak RSS of the whole process tree (this process and every
descendant: the Spark JVM and its Python workers). All figures go to
``$CITYLAKE_HOME/bench/bench-<timestamp>.json``; a table goes to stdout. Nothing is asserted:
a failing step is recorded with its error and the run goes on. docs/benchmark.md says more.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import psutil

from citylake.core import zones
from citylake.core.identifiers import normalize_text
from citylake.core.registry import Registration, find_registration, normalize_header
from citylake.core.settings import Settings
from citylake.stages.chain import AFTER_FIRST, run_resource

# ingest → conform → check → curate: the chain after detect, without the receipt (not data work).
# Taken from the chain so that a step added there is timed here too.
PIPELINE = tuple(step for step in AFTER_FIRST if step != "receipt")
DEFAULT_SIZES = (100_000, 1_000_000)
TEN_MILLION = 10_000_000
DEFAULT_RESOURCE = "enterprise_registration"
DEFAULT_SEED = 1
INCREMENT_FRACTION = 0.01
RSS_INTERVAL = 0.2  # seconds between samples of the process tree
FLOORS = ("spark_copy", "pyarrow", "duckdb")
FLOOR_LABELS = {
    "spark_copy": "Spark bare CSV→Parquet copy",
    "pyarrow": "pyarrow CSV→Parquet",
    "duckdb": "DuckDB CSV→Parquet (UTF-8 copy)",
}
GB_FAMILY = frozenset({"gbk", "gb2312", "gb18030", "cp936", "euc-cn"})
JAVA_CHARSETS = "spark.sql.legacy.javaCharsets"  # Spark 4 reads GB18030 only with this on


# ---- memory of the process tree ---------------------------------------------------------------
def tree_rss() -> int:
    """Resident bytes of this process and all its descendants (shared pages count in each)."""
    me = psutil.Process()
    total = 0
    for proc in [me, *me.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass  # a Spark Python worker may exit between listing and reading
    return total


class TreeRSS:
    """Samples :func:`tree_rss` in a background thread while the block runs; keeps the peak.

    A thread, not the timed code, samples: the JVM's memory can only be seen from outside.
    """

    def __init__(self, interval: float = RSS_INTERVAL):
        self.interval = interval
        self.start = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> int:
        rss = tree_rss()
        self.peak = max(self.peak, rss)
        return rss

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> TreeRSS:
        self.start = self.peak = 0
        self.start = self.sample()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()  # a step shorter than the interval still gets its end state


def measure(step: dict, fn: Callable, *args, **kwargs):
    """Run ``fn``; put its wall seconds and the tree's RSS (at start, peak) into ``step``.

    An exception is recorded in ``step["error"]`` (traceback on stderr) and None returned: the
    bench reports what it could measure rather than stopping.
    """
    rss = TreeRSS()
    started = time.perf_counter()
    try:
        with rss:
            return fn(*args, **kwargs)
    except Exception as exc:  # reported, see the docstring
        traceback.print_exc()
        step["error"] = f"{type(exc).__name__}: {exc}"
        return None
    finally:
        step["seconds"] = round(time.perf_counter() - started, 4)
        step["start_rss_bytes"] = rss.start
        step["peak_rss_bytes"] = rss.peak


def add_rates(step: dict, rows: int, cores: int) -> dict:
    """rows/s, rows/s per core and µs per row of a measured step (over the file's rows)."""
    secs = step.get("seconds")
    if secs and "error" not in step:
        step["rows_per_s"] = round(rows / secs, 1)
        step["rows_per_s_per_core"] = round(rows / secs / cores, 1)
        step["us_per_row"] = round(secs / rows * 1e6, 3)
    return step


# ---- the file's encoding and shape --------------------------------------------------------------
def read_codec(declared: str) -> str:
    """The Python codec to read a file of this declared encoding (the GB family as GB18030, its
    superset, as the decoder does; UTF-8 with its BOM, if any, dropped)."""
    name = codecs.lookup(declared).name
    if name in GB_FAMILY:
        return "gb18030"
    if name in ("utf-8", "utf-8-sig"):
        return "utf-8-sig"
    return name


def is_utf8(codec: str) -> bool:
    return codecs.lookup(codec).name in ("utf-8", "utf-8-sig")


def spark_charset(codec: str) -> str:
    return "UTF-8" if is_utf8(codec) else codecs.lookup(codec).name.upper()


def csv_shape(path: Path, codec: str) -> tuple[str, list[str], str]:
    """(delimiter, header cells, line ending) of a CSV file, from its first line."""
    with open(path, encoding=codec, newline="", errors="replace") as f:
        first = f.readline()
    eol = "\r\n" if first.endswith("\r\n") else "\n"
    line = first.rstrip("\r\n")
    delimiter = max(",\t;|", key=line.count)  # the registrations' candidates; a header has many
    header = next(csv.reader([line], delimiter=delimiter))
    return delimiter, header, eol


# ---- the floors ---------------------------------------------------------------------------------
def parquet_rows(folder_or_file: Path) -> int:
    import pyarrow.parquet as pq

    files = [folder_or_file] if folder_or_file.is_file() else sorted(folder_or_file.rglob("*.parquet"))
    return sum(pq.read_metadata(f).num_rows for f in files)


def spark_copy(spark, src: Path, out: Path, codec: str, delimiter: str) -> None:
    """Spark's own CSV reader and Parquet writer, nothing else: every column as text (no schema
    inference), as the pipeline reads them."""
    before = spark.conf.get(JAVA_CHARSETS)  # registered with a default: never unset
    spark.conf.set(JAVA_CHARSETS, "true")
    try:
        (spark.read.option("header", True).option("encoding", spark_charset(codec)).option("sep", delimiter)
         .csv(src.as_uri()).write.mode("overwrite").parquet(out.as_uri()))
    finally:
        # Back to the session's own setting: the pipeline runs with the jobs' configuration only.
        spark.conf.set(JAVA_CHARSETS, before)


def pyarrow_copy(src: Path, out: Path, codec: str, delimiter: str) -> None:
    """Streaming: one block at a time from ``open_csv`` to a ``ParquetWriter`` (bounded memory)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    _, header, _ = csv_shape(src, codec)
    reader = pacsv.open_csv(
        src,
        # Names given, not read: every column typed as text (per-block type inference could
        # disagree between blocks and stop the stream).
        read_options=pacsv.ReadOptions(encoding=codec, column_names=header, skip_rows=1),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                         invalid_row_handler=lambda row: "skip"),
        convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string())),
    )
    with pq.ParquetWriter(out, reader.schema, compression="zstd") as writer:
        for batch in reader:
            writer.write_batch(batch)


def _sql_text(value: str | Path) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def duckdb_copy(src_utf8: Path, out: Path, delimiter: str) -> None:
    """DuckDB's COPY of a UTF-8 file (DuckDB reads no GB encodings), every column as text.

    Not strict, bad rows skipped: with its defaults DuckDB refuses the whole file over one line
    with an unclosed quote (the generator writes some), where the other readers go on; without
    ``ignore_errors`` it still stops on a few of the records such a line runs into. No
    ``null_padding`` (short rows are skipped, not padded): DuckDB's parallel scanner refuses it in a
    file with quoted line breaks, and a single-threaded scan would not be DuckDB's floor; only a
    file its sniffer cannot read that way is copied padded, in one thread.
    """
    import duckdb

    con = duckdb.connect()

    def copy(options: str) -> None:
        con.execute(
            f"COPY (SELECT * FROM read_csv({_sql_text(src_utf8)}, header = true, delim = {_sql_text(delimiter)}, "
            f"quote = '\"', escape = '\"', all_varchar = true, strict_mode = false, ignore_errors = true{options})) "
            f"TO {_sql_text(out)} (FORMAT parquet, COMPRESSION zstd)"
        )

    try:
        try:
            copy("")
        except duckdb.Error:
            # A file its sniffer cannot settle (short rows beside an unclosed quote): padded, one thread.
            copy(", null_padding = true, parallel = false")
    finally:
        con.close()


def transcode(src: Path, dst: Path, codec: str) -> None:
    """A UTF-8 copy, streamed (for DuckDB; not timed as part of its copy)."""
    with open(src, encoding=codec, newline="", errors="replace") as fin, \
            open(dst, "w", encoding="utf-8", newline="") as fout:
        while chunk := fin.read(1 << 22):
            fout.write(chunk)


# ---- the 1 % increment --------------------------------------------------------------------------
CHANGE_MARK = "变更"


def change_field(reg: Registration, columns: dict[str, int]) -> str:
    """The field the increment changes: free text (no check, no code list), not part of the key or
    the version, shared (so the change reaches curated), and present in the file."""
    def usable(f) -> bool:
        return (f.name in columns and f.name not in reg.key and f.name != reg.version_field
                and f.type == "string")

    candidates = [f for f in reg.fields if usable(f)]
    plain = [f for f in candidates if not f.check and not f.codes and f.sensitivity != "restricted"]
    chosen = (plain or candidates)
    if not chosen:
        raise ValueError(f"{reg.resource}: no non-key text column in the file to change")
    return chosen[0].name


def make_increment(src: Path, dst: Path, reg: Registration, rows: int | None = None,
                   fraction: float = INCREMENT_FRACTION) -> dict:
    """Write ``dst``: the header, then ``fraction`` of ``rows`` (the full load's rows; default the
    records the csv module finds) taken from ``src``'s records, spread evenly over the file, each
    with one non-key value changed, in ``src``'s encoding, delimiter and line ending.

    Read with the csv module over the whole file, so a quoted cell holding a line break stays one
    record. Only eligible records are taken: well-formed (as many cells as the header, key present;
    a malformed line would come out re-quoted as a different record) and with a value that the
    change does not repair (not blank, not a null token, room for the mark within the field's
    length), so that the batch changes existing keys rather than adding rows the full load
    quarantined. Two streaming passes: count, then pick.
    """
    codec = read_codec(reg.source.encoding)
    delimiter, header, eol = csv_shape(src, codec)
    by_header = reg.header_map()
    columns: dict[str, int] = {}
    for idx, text in enumerate(header):
        name = by_header.get(normalize_header(text))
        if name is not None:
            columns.setdefault(name, idx)
    missing_key = [k for k in reg.key if k not in columns]
    if missing_key:
        raise ValueError(f"{reg.resource}: key column(s) {missing_key} not in the header")
    key_idx = [columns[k] for k in reg.key]
    field_name = change_field(reg, columns)
    idx = columns[field_name]
    length = reg.field_map[field_name].length  # in bytes

    def eligible(cells: list[str]) -> bool:
        if len(cells) != len(header) or not all(cells[k].strip() for k in key_idx):
            return False
        value = cells[idx]
        return normalize_text(value) is not None and not (
            length and len((value + CHANGE_MARK).encode("utf-8")) > length)

    counts = {"records": 0}

    def records():
        with open(src, encoding=codec, newline="", errors="surrogateescape") as f:
            reader = csv.reader(f, delimiter=delimiter)
            next(reader, None)
            total = 0
            for cells in reader:
                total += 1
                if eligible(cells):
                    yield cells
            counts["records"] = total

    n_eligible = sum(1 for _ in records())
    target = min(max(1, round((rows or counts["records"]) * fraction)), n_eligible)
    written = 0
    # Written in the declared encoding (e.g. gbk); surrogateescape carries undecodable bytes through.
    with open(dst, "w", encoding=reg.source.encoding, newline="", errors="surrogateescape") as out:
        writer = csv.writer(out, delimiter=delimiter, lineterminator=eol)
        writer.writerow(header)
        for j, cells in enumerate(records()):
            if (j * target) // n_eligible != ((j + 1) * target) // n_eligible:  # evenly spread
                cells[idx] += CHANGE_MARK
                writer.writerow(cells)
                written += 1
    return {"records_in_file": counts["records"], "eligible": n_eligible, "rows": written,
            "changed_field": field_name}


# ---- one size -----------------------------------------------------------------------------------
def size_settings(home: Path) -> Settings:
    """A fresh lake, directory and Iceberg catalog under ``home`` (nothing shared between sizes)."""
    settings = Settings.from_env(
        home=home,
        lake_uri=(home / "lake").as_uri(),
        directory_url=f"sqlite:///{home / 'directory' / 'directory.db'}",
        catalog_uri=f"sqlite:///{home / 'catalog' / 'iceberg.db'}",
    )
    settings.ensure_local_dirs()
    return settings


def _landing_files(settings: Settings, reg: Registration) -> list[Path]:
    folder = settings.home / "lake" / zones.landing_dir(reg.department, reg.resource)
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def _chain_summary(run) -> dict:
    """What the chain did, to tell a measured run from one that did nothing."""
    if run is None:
        return {}
    out: dict = {"stages": {s.step: round(s.seconds, 4) for s in run.steps}}
    ingested = run.result("ingest") or []
    out["ingest"] = [getattr(o, "status", None) for o in ingested]
    conformed = run.result("conform") or []
    out["conform"] = {
        "status": [getattr(r, "status", None) for r in conformed],
        "received": sum(getattr(r, "received", 0) or 0 for r in conformed),
        "standardized": sum(getattr(r, "standardized", 0) or 0 for r in conformed),
        "quarantined": sum(getattr(r, "quarantined", 0) or 0 for r in conformed),
    }
    checked = run.result("check") or []
    out["check"] = {"passed": [bool(c.get("success")) for c in checked if isinstance(c, dict)]}
    curated = run.result("curate")
    if curated is not None:
        out["curate"] = {k: getattr(curated, k, None)
                         for k in ("status", "rows", "added_records", "deleted_records")}
    return out


def ratio(a: dict, b: dict) -> float | None:
    if "error" in a or "error" in b or not a.get("seconds") or not b.get("seconds"):
        return None
    return round(a["seconds"] / b["seconds"], 3)


def bench_size(spark, reg: Registration, rows: int, seed: int, root: Path, cores: int,
               log: Callable[[str], None] = print) -> dict:
    """Every figure of one size. ``root`` is this size's own folder (home and work files)."""
    settings = size_settings(root / "home")
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    from citylake_dev.generate import generate

    result: dict = {"rows": rows}
    log(f"[{rows:,} rows] generating …")
    gen = result["generate"] = {}
    measure(gen, generate, settings, [reg], rows=rows, seed=seed)
    landed = _landing_files(settings, reg)
    if "error" in gen or len(landed) != 1:
        gen.setdefault("error", f"expected one generated file, found {len(landed)}")
        return result
    # Ingest moves the landing file away: keep the same bytes for the floors and the increment
    # (a hard link costs nothing; a copy where links are not possible).
    src = work / f"source{landed[0].suffix}"
    try:
        os.link(landed[0], src)
    except OSError:
        shutil.copyfile(landed[0], src)
    codec = read_codec(reg.source.encoding)
    delimiter, _, _ = csv_shape(src, codec)
    result["file"] = {"name": landed[0].name, "bytes": src.stat().st_size, "encoding": reg.source.encoding,
                      "delimiter": delimiter}

    log(f"[{rows:,} rows] pipeline ({' → '.join(PIPELINE)}) …")
    pipe = result["pipeline"] = {}
    run = measure(pipe, run_resource, spark, settings, reg, only=PIPELINE)
    pipe.update(_chain_summary(run))
    add_rates(pipe, rows, cores)

    log(f"[{rows:,} rows] 1 % increment …")
    inc = result["increment"] = {}
    delta = work / f"increment{src.suffix}"
    build: dict = {}
    made = measure(build, make_increment, src, delta, reg, rows)
    inc["build_seconds"] = build["seconds"]
    if made is None:
        inc["error"] = build["error"]
    else:
        inc.update(made)
        landing = zones.landing_dir(reg.department, reg.resource)
        target = settings.home / "lake" / landing / f"{landed[0].stem}_increment{src.suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(delta, target)
        run = measure(inc, run_resource, spark, settings, reg, only=PIPELINE)
        inc.update(_chain_summary(run))
        add_rates(inc, inc["rows"] or 1, cores)
        inc["cost_vs_full"] = ratio(inc, pipe)

    floors = result["floors"] = {}
    log(f"[{rows:,} rows] Spark copy …")
    step = floors["spark_copy"] = {"encoding": spark_charset(codec)}
    measure(step, spark_copy, spark, src, work / "spark-copy", codec, delimiter)
    log(f"[{rows:,} rows] pyarrow copy …")
    step = floors["pyarrow"] = {"encoding": codec}
    measure(step, pyarrow_copy, src, work / "pyarrow.parquet", codec, delimiter)
    log(f"[{rows:,} rows] DuckDB copy …")
    step = floors["duckdb"] = {}
    utf8 = src
    if not is_utf8(codec):
        utf8 = work / f"source-utf8{src.suffix}"
        started = time.perf_counter()
        transcode(src, utf8, codec)
        step["transcode_seconds_untimed"] = round(time.perf_counter() - started, 4)
    step["encoding"] = "utf-8" if utf8 is src else f"utf-8 (transcoded from {codec} first, not timed)"
    measure(step, duckdb_copy, utf8, work / "duckdb.parquet", delimiter)

    outputs = {"spark_copy": work / "spark-copy", "pyarrow": work / "pyarrow.parquet",
               "duckdb": work / "duckdb.parquet"}
    for name in FLOORS:
        step = floors[name]
        add_rates(step, rows, cores)
        if "error" not in step:
            # Rows each reader made of the file: a reader that splits or skips records shows here.
            step["rows_out"] = parquet_rows(outputs[name])
    result["ratios"] = {name: ratio(pipe, floors[name]) for name in FLOORS}
    return result


# ---- the run ------------------------------------------------------------------------------------
def run_bench(sizes: list[int], resource: str = DEFAULT_RESOURCE, *, seed: int = DEFAULT_SEED, spark=None,
              out_dir: Path | None = None, work_dir: Path | None = None, keep: bool = False,
              log: Callable[[str], None] = print) -> tuple[dict, Path]:
    """Measure every size; write the JSON report and return (report, its path).

    ``spark``: a running session to use (the tests'); by default one is started (and timed) here
    and stopped at the end. Each size gets a fresh CITYLAKE_HOME under ``work_dir`` (default: a new
    temporary folder), removed after the size unless ``keep``.
    """
    import duckdb
    import pyarrow

    base = Settings.from_env()
    reg = find_registration(base.resources_dir, resource)
    if reg.source.kind != "file" or reg.source.format != "csv":
        raise ValueError(f"{resource}: the floors are CSV→Parquet copies; choose a CSV file-drop resource")
    root = Path(work_dir or tempfile.mkdtemp(prefix="citylake-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "started_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "resource": resource,
        "source": {"format": reg.source.format, "encoding": reg.source.encoding},
        "sizes": list(sizes),
        "seed": seed,
        "pipeline_steps": list(PIPELINE),
        "increment_fraction": INCREMENT_FRACTION,
        "rss_interval_seconds": RSS_INTERVAL,
    }
    own_session = spark is None
    start: dict = {}
    if own_session:
        from citylake.core.spark import get_session

        log("starting Spark …")

        def start_spark():
            session = get_session(size_settings(root / "session"), "citylake-bench")
            session.range(1).count()  # the JVM is up and has run a job
            return session

        spark = measure(start, start_spark)
        if spark is None:
            raise RuntimeError(f"Spark did not start: {start.get('error')}")
    cores = int(spark.sparkContext.defaultParallelism) or os.cpu_count() or 1
    report["spark_start"] = start if own_session else None
    report["machine"] = {
        "cores": cores,
        "cpu_count": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "spark_master": spark.sparkContext.master,
        "platform": platform.platform(),
    }
    report["versions"] = {"python": platform.python_version(), "spark": spark.version,
                          "pyarrow": pyarrow.__version__, "duckdb": duckdb.__version__}
    report["results"] = []
    try:
        for rows in sizes:
            size_root = root / f"rows-{rows}"
            try:
                report["results"].append(bench_size(spark, reg, rows, seed, size_root, cores, log))
            finally:
                if not keep:
                    shutil.rmtree(size_root, ignore_errors=True)
    finally:
        if own_session:
            spark.stop()
        if not keep and work_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    # How the pipeline's cost per row moves as the file grows (a target: within ±20 % from 1 M to 10 M).
    previous = None
    for res in report["results"]:
        current = res.get("pipeline", {}).get("us_per_row")
        res["us_per_row_vs_previous_size"] = round(current / previous, 3) if current and previous else None
        previous = current
    report["finished_at"] = datetime.now().astimezone().isoformat(timespec="seconds")
    out_dir = Path(out_dir or base.home / "bench")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"bench-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    return report, path


# ---- the table ----------------------------------------------------------------------------------
def _gib(n: int | None) -> str:
    return "" if not n else f"{n / 2**30:.2f} GiB"


def _num(value, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def format_report(report: dict) -> str:
    lines = []
    m = report["machine"]
    start = report.get("spark_start")
    lines.append(f"resource {report['resource']} ({report['source']['format']}, {report['source']['encoding']}); "
                 f"{m['cores']} cores ({m['spark_master']}); Spark {report['versions']['spark']}")
    if start:
        lines.append(f"Spark start: {start['seconds']:.1f} s (not in any figure below)")
    head = (f"  {'step':<34}{'seconds':>9}{'rows/s':>11}{'rows/s/core':>12}{'µs/row':>10}"
            f"{'peak RSS':>11}{'pipeline ×':>12}")
    for res in report["results"]:
        rows = res["rows"]
        gen = res.get("generate", {})
        lines.append("")
        if "file" not in res:
            lines.append(f"{rows:,} rows: generation failed: {gen.get('error')}")
            continue
        f = res["file"]
        lines.append(f"{rows:,} rows · {f['bytes'] / 1e6:.1f} MB {f['encoding']} · generated in "
                     f"{gen['seconds']:.1f} s, peak RSS {_gib(gen['peak_rss_bytes'])} (not in any ratio)")
        lines.append(head)

        def row(label: str, step: dict, times: float | None = None, note: str = "") -> str:
            if "error" in step:
                return f"  {label:<34}failed: {step['error'][:90]}"
            return (f"  {label:<34}{step['seconds']:>9.2f}{_num(step.get('rows_per_s'), ',.0f'):>11}"
                    f"{_num(step.get('rows_per_s_per_core'), ',.0f'):>12}{_num(step.get('us_per_row'), '.1f'):>10}"
                    f"{_gib(step.get('peak_rss_bytes')):>11}{_num(times, '.1f'):>12}{note}")

        pipe = res["pipeline"]
        lines.append(row("citylake pipeline", pipe))
        for name, secs in pipe.get("stages", {}).items():
            lines.append(f"    {name:<32}{secs:>9.2f}")
        if pipe.get("conform"):
            c = pipe["conform"]
            lines.append(f"    (received {c['received']:,}, standardized {c['standardized']:,}, "
                         f"quarantined {c['quarantined']:,}; check passed {pipe['check']['passed']}; "
                         f"curated {pipe.get('curate', {}).get('rows')})")
        for name in FLOORS:
            step = res["floors"][name]
            note = f"  {step['rows_out']:,} rows out" if "rows_out" in step else ""
            if "transcode_seconds_untimed" in step:
                note += f"; UTF-8 copy made first in {step['transcode_seconds_untimed']:.2f} s, untimed"
            lines.append(row(FLOOR_LABELS[name], step, res["ratios"].get(name), note))
        inc = res["increment"]
        if "error" in inc:
            lines.append(f"  {'1 % increment':<34}failed: {inc['error'][:90]}")
        else:
            label = f"1 % increment ({inc['rows']:,} rows)"
            cost = inc.get("cost_vs_full")
            lines.append(row(label, inc, None, f"  = {cost * 100:.1f} % of the full load" if cost else ""))
            for name, secs in inc.get("stages", {}).items():
                lines.append(f"    {name:<32}{secs:>9.2f}")
            lines.append(f"    (changed field {inc['changed_field']}; curate "
                         f"{inc.get('curate', {}).get('status')}; per row the increment costs "
                         f"{_num(inc.get('us_per_row'), '.0f')} µs, the full load {_num(pipe.get('us_per_row'), '.0f')} µs)")
    if len(report["results"]) > 1:
        lines.append("")
        lines.append(f"{'rows':>12}{'pipeline s':>12}{'Spark s':>9}{'pyarrow s':>11}{'DuckDB s':>10}{'× Spark':>9}"
                     f"{'× pyarrow':>11}{'× DuckDB':>10}{'µs/row':>9}{'× prev':>8}{'incr %':>8}{'peak RSS':>11}")
        for res in report["results"]:
            if "pipeline" not in res:
                continue
            fl, r, p = res["floors"], res["ratios"], res["pipeline"]
            cost = res["increment"].get("cost_vs_full")
            lines.append(
                f"{res['rows']:>12,}{p['seconds']:>12.1f}{fl['spark_copy'].get('seconds', 0):>9.1f}"
                f"{fl['pyarrow'].get('seconds', 0):>11.1f}{fl['duckdb'].get('seconds', 0):>10.1f}"
                f"{_num(r['spark_copy'], '.1f'):>9}{_num(r['pyarrow'], '.1f'):>11}{_num(r['duckdb'], '.1f'):>10}"
                f"{_num(p.get('us_per_row'), '.1f'):>9}{_num(res.get('us_per_row_vs_previous_size'), '.2f'):>8}"
                f"{_num(cost and cost * 100, '.1f'):>8}"
                f"{_gib(p.get('peak_rss_bytes')):>11}")
    return "\n".join(lines)


# ---- command line -------------------------------------------------------------------------------
def parse_sizes(text: str) -> list[int]:
    sizes = [int(s.replace("_", "")) for s in text.split(",") if s.strip()]
    if not sizes or any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError("sizes are positive row counts, e.g. 100000,1000000")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m citylake_dev.bench", description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--sizes", type=parse_sizes, metavar="N,N,…",
                       help=f"rows per generated file (default {','.join(map(str, DEFAULT_SIZES))})")
    which.add_argument("--rows", type=int, metavar="N", help="one size only (same as --sizes N)")
    parser.add_argument("--10m", dest="ten_million", action="store_true", help="add 10,000,000 rows")
    parser.add_argument("--resource", default=DEFAULT_RESOURCE, help=f"a CSV resource (default {DEFAULT_RESOURCE})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, help="folder of the JSON report (default $CITYLAKE_HOME/bench)")
    parser.add_argument("--work-dir", type=Path, help="where the per-size homes go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the per-size homes and copies")
    args = parser.parse_args(argv)
    sizes = [args.rows] if args.rows else list(args.sizes or DEFAULT_SIZES)
    if args.ten_million and TEN_MILLION not in sizes:
        sizes.append(TEN_MILLION)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    report, path = run_bench(sizes, args.resource, seed=args.seed, out_dir=args.out, work_dir=args.work_dir,
                             keep=args.keep, log=log)
    print(format_report(report))
    print(f"\nfigures: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
