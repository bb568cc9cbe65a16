"""`citylake query`: SQL over the curated and reference tables, shown as a table or written to a file.

    citylake query "SELECT count(*) FROM scjg.enterprise_registration"
    citylake query --titles "SELECT d.name, count(*) AS n FROM scjg.enterprise_registration e
                             JOIN ref.divisions d ON d.code = e.division_code GROUP BY d.name ORDER BY n DESC"
    citylake query "SELECT * FROM gaj.resident_population" --out people.xlsx
    citylake query --engine spark "SELECT status, count(*) FROM scjg.enterprise_registration GROUP BY status"
    citylake query --role steward "SELECT cn_id, birth_date FROM gaj.resident_population LIMIT 5"

Tables by name: curated ``<department>.<resource>`` and ``ref.divisions``, ``ref.division_editions``,
``ref.codes`` (``citylake tables`` lists them, ``citylake describe`` shows their columns); nothing else
(:mod:`citylake.stages.query`). DuckDB SQL by default, Spark SQL with ``--engine spark``. The terminal
shows the first ``--limit`` rows; a file gets them all. Personal fields are masked unless ``--role``
names a role that sees them (:data:`citylake.core.access.ROLES`; on an S3 lake the settings must hold
that role's storage keys). Exit code: 0; 2 for an unknown table, a
statement that is not a query, a refused read or an SQL error.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
from pathlib import Path

from citylake.core.access import DEFAULT_ROLE, ROLES
from citylake.core.registry import RegistrationError
from citylake.core.settings import Settings
from citylake.drivers.cli.common import UsageError, fail, listed_registrations, unknown_names
from citylake.stages.query import (
    ENGINES,
    FORMATS,
    QueryError,
    QueryResult,
    UnknownTable,
    python_rows,
    query,
    text_value,
    write_csv,
    write_json,
    write_result,
)

TERMINAL_ROWS = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sql", metavar="SQL",
                        help="one query (SELECT …, WITH …, FROM …); - reads it from standard input")
    parser.add_argument("--engine", choices=ENGINES, default="duckdb",
                        help="duckdb: in this process, no JVM (default); spark: Spark SQL on the jobs' session, "
                             "for tables too large for one machine")
    parser.add_argument("--titles", action="store_true",
                        help="head the columns with their Chinese titles (the registration's) instead of their names")
    parser.add_argument("--format", choices=("table", *FORMATS), default=None,
                        help="table: readable, on the terminal (default); csv (UTF-8 with BOM in a file, for "
                             "Excel), json, parquet or xlsx; default with --out: the file's suffix")
    parser.add_argument("--out", metavar="FILE", help="write the whole result to FILE")
    parser.add_argument("--role", choices=sorted(ROLES), default=DEFAULT_ROLE,
                        help="; ".join(f"{r.name}: {r.description}" for r in ROLES.values())
                        + f" (default {DEFAULT_ROLE})")
    parser.add_argument("--limit", type=int, default=TERMINAL_ROWS, metavar="N",
                        help=f"rows shown on the terminal (default {TERMINAL_ROWS}, 0 for all); files get every row")


# ---- a readable table on the terminal (also for `citylake tables` and `citylake describe`) ----------
def print_table(headers: list[str], rows: list[list[str]], *, right: set[int] = frozenset()) -> None:
    """An aligned table on standard output (Chinese characters count two columns). On a terminal it
    fits the window; in a pipe or a file every line is whole."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else 100_000
    console = Console(file=io.StringIO(), width=width, highlight=False, emoji=False, color_system=None)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for i, heading in enumerate(headers):
        table.add_column(Text(heading), justify="right" if i in right else "left")
    for row in rows:
        table.add_row(*[Text(cell) for cell in row])  # Text: a value is never read as rich markup
    with console.capture() as captured:
        console.print(table)
    # rich pads every cell to its column's width: no trailing blanks at the ends of lines.
    print("\n".join(line.rstrip() for line in captured.get().splitlines()))


def _numeric(result: QueryResult) -> set[int]:
    import pyarrow as pa

    return {i for i, f in enumerate(result.table.schema)
            if pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_decimal(f.type)}


def render(result: QueryResult, *, limit: int, titles: bool, timezone: str) -> None:
    shown = result.table if limit <= 0 else result.table.slice(0, limit)
    rows = [["NULL" if v is None else text_value(v) for v in row] for row in python_rows(shown, timezone)]
    print_table(result.header(titles), rows, right=_numeric(result))
    more = result.rows - shown.num_rows
    if more:
        print(f"… {more:,} more row{'s' if more > 1 else ''} (--limit 0 shows all; --out FILE writes all)")
    print(f"{result.rows:,} row{'s' if result.rows != 1 else ''} · {result.engine} · {result.seconds:.2f} s")


def _format(args) -> str:
    if args.format:
        return args.format
    if args.out:
        suffix = Path(args.out).suffix.lower().lstrip(".")
        if suffix not in FORMATS:
            raise UsageError(f"cannot tell the format of {args.out}: give --format {'|'.join(FORMATS)}")
        return suffix
    return "table"


def run(args) -> int:
    try:
        settings = Settings.from_env()
        regs = listed_registrations(settings.resources_dir)
        fmt = _format(args)
        if fmt == "table" and args.out:
            raise UsageError("--out writes a file: give --format csv|json|parquet|xlsx or a file with that suffix")
        if fmt in ("parquet", "xlsx") and not args.out:
            raise UsageError(f"{fmt} is written to a file: add --out FILE")
    except (RegistrationError, ValueError, UsageError) as exc:
        return fail("query", exc)
    sql = sys.stdin.read() if args.sql == "-" else args.sql
    try:
        result = query(settings, sql, regs, engine=args.engine, role=args.role)
        if args.out:
            path = write_result(result, args.out, fmt, titles=args.titles, timezone=settings.timezone)
    except UnknownTable as exc:
        return fail("query", unknown_names("table", exc.unknown, exc.known)
                    + " (raw, standardized and quarantine data are not queryable)")
    except QueryError as exc:
        return fail("query", exc)
    if args.out:
        what = "CSV, UTF-8 with BOM" if fmt == "csv" else fmt
        print(f"wrote {result.rows:,} row{'s' if result.rows != 1 else ''} to {path} ({what}) · {result.engine} · "
              f"{result.seconds:.2f} s")
    elif fmt == "csv":
        write_csv(result, sys.stdout, titles=args.titles, timezone=settings.timezone)
    elif fmt == "json":
        write_json(result, sys.stdout, titles=args.titles, timezone=settings.timezone)
    else:
        render(result, limit=args.limit, titles=args.titles, timezone=settings.timezone)
    return 0
