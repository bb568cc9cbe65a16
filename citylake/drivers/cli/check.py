"""`citylake check`: check identifiers from the command line or a pipe.

    citylake check uscc 91110000802100433B 9111000080210043XB
    cut -d, -f3 export.csv | citylake check cn_id --legacy15 convert --json

Pure Python (citylake.core.identifiers), no Spark: it starts in a fraction of a second.
Exit code: 0 all valid, 1 any invalid, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys

from citylake.core import identifiers
from citylake.core.reasons import REASONS

KINDS = tuple(identifiers.CHECKERS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Plain parse_args fills all positionals at the first one, so `check cn_id --legacy15 convert X`
    # would reject X; intermixed parsing lets options stand anywhere (cli.main calls parse_args).
    parser.parse_args = parser.parse_intermixed_args  # type: ignore[method-assign]
    parser.add_argument("kind", choices=KINDS, help="identifier kind")
    parser.add_argument(
        "values",
        nargs="*",
        metavar="VALUE",
        help="values to check; none: read one value per line from standard input",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per value: value, valid, reason, normalized, message_zh, message_en",
    )
    parser.add_argument(
        "--legacy15",
        choices=("quarantine", "convert"),
        default=None,
        help="cn_id only: convert legacy 15-digit numbers to 18 digits, or refuse them (default: quarantine)",
    )
    parser.add_argument(
        "--retired-window-years",
        type=int,
        default=None,
        metavar="N",
        help="division_code only: accept codes retired within N years of the latest edition "
        "(default: CITYLAKE_DIVISION_RETIRED_WINDOW_YEARS, else 5)",
    )


def _usage_error(message: str) -> int:
    print(f"citylake check: error: {message}", file=sys.stderr)
    return 2


def _default_window() -> int:
    from citylake.core.settings import Settings

    return Settings.from_env().division_retired_window_years


def _messages(result: identifiers.CheckResult) -> tuple[str, str]:
    """(Chinese, English) for the result: the reason's text, or 有效 / valid."""
    if result.valid:
        return "有效", "valid"
    return REASONS.get(result.reason, (result.reason, result.reason))


def _text_line(result: identifiers.CheckResult) -> str:
    if result.valid:
        return f"{result.value}\tvalid 有效\tnormalized={result.normalized}"
    zh, en = _messages(result)
    return f"{result.value}\tinvalid 无效\t{result.reason}: {zh} / {en}\tnormalized={result.normalized}"


def _json_line(result: identifiers.CheckResult) -> str:
    zh, en = _messages(result)
    return json.dumps({**result.as_dict(), "message_zh": zh, "message_en": en}, ensure_ascii=False)


def run(args: argparse.Namespace) -> int:
    kind = args.kind
    if args.legacy15 is not None and kind != "cn_id":
        return _usage_error("--legacy15 applies only to cn_id")
    if args.retired_window_years is not None and kind != "division_code":
        return _usage_error("--retired-window-years applies only to division_code")

    if kind == "cn_id":
        legacy15 = args.legacy15 or "quarantine"

        def check(v):
            return identifiers.check_cn_id(v, legacy15=legacy15)

    elif kind == "division_code":
        try:
            window = args.retired_window_years if args.retired_window_years is not None else _default_window()
        except ValueError as exc:  # a non-integer CITYLAKE_DIVISION_RETIRED_WINDOW_YEARS
            return _usage_error(f"CITYLAKE_DIVISION_RETIRED_WINDOW_YEARS: {exc}")
        if window < 0:
            return _usage_error("--retired-window-years must not be negative")

        def check(v):
            return identifiers.check_division_code(v, retired_window_years=window)

    else:
        check = identifiers.CHECKERS[kind]

    if args.values:
        values = list(args.values)
    else:
        if sys.stdin is None or sys.stdin.isatty():
            return _usage_error("give VALUE arguments or pipe values, one per line, to standard input")
        # One line, one value, blank lines included, so the output lines up with a piped column.
        values = [line.rstrip("\r\n") for line in sys.stdin]

    any_invalid = False
    for value in values:
        result = check(value)
        any_invalid |= not result.valid
        if args.json:
            print(_json_line(result))
        else:
            print(_text_line(result))
    return 1 if any_invalid else 0
