"""`citylake check`: text and JSON output, stdin, options and exit codes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from citylake.core.reasons import REASONS
from citylake.drivers.cli import main


def run(capsys, *argv: str) -> tuple[int, list[str], str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_text_valid_and_invalid(capsys):
    code, lines, _ = run(capsys, "check", "uscc", "91110000802100433B", "9114010663015395x2")
    assert code == 0
    assert lines == [
        "91110000802100433B\tvalid 有效\tnormalized=91110000802100433B",
        "9114010663015395x2\tvalid 有效\tnormalized=9114010663015395X2",
    ]
    code, lines, _ = run(capsys, "check", "uscc", "91110000802100433B", "9111000080210043XB")
    assert code == 1
    zh, en = REASONS["uscc_check"]
    assert lines[1] == f"9111000080210043XB\tinvalid 无效\tuscc_check: {zh} / {en}\tnormalized=9111000080210043XB"


def test_json(capsys):
    code, lines, _ = run(capsys, "check", "cn_id", "--json", "11010519491231002x", "990426199112010074")
    assert code == 1
    zh, en = REASONS["cn_id_area"]
    assert [json.loads(line) for line in lines] == [
        {"value": "11010519491231002x", "valid": True, "reason": None, "normalized": "11010519491231002X",
         "message_zh": "有效", "message_en": "valid"},
        {"value": "990426199112010074", "valid": False, "reason": "cn_id_area", "normalized": "990426199112010074",
         "message_zh": zh, "message_en": en},
    ]


def test_legacy15_option_anywhere(capsys):
    code, lines, _ = run(capsys, "check", "cn_id", "110105491231002", "--json")
    assert code == 1 and json.loads(lines[0])["reason"] == "cn_id_legacy15"
    code, lines, _ = run(capsys, "check", "cn_id", "--legacy15", "convert", "110105491231002", "--json")
    assert code == 0 and json.loads(lines[0])["normalized"] == "11010519491231002X"


def test_division_window(capsys, monkeypatch):
    monkeypatch.delenv("CITYLAKE_DIVISION_RETIRED_WINDOW_YEARS", raising=False)
    assert run(capsys, "check", "division_code", "110105")[0] == 0
    code, lines, _ = run(capsys, "check", "division_code", "110103")  # 崇文区, retired 2010
    assert code == 1 and "division_unknown" in lines[0]
    assert run(capsys, "check", "division_code", "--retired-window-years", "20", "110103")[0] == 0
    monkeypatch.setenv("CITYLAKE_DIVISION_RETIRED_WINDOW_YEARS", "20")
    assert run(capsys, "check", "division_code", "110103")[0] == 0
    monkeypatch.setenv("CITYLAKE_DIVISION_RETIRED_WINDOW_YEARS", "many")
    assert run(capsys, "check", "division_code", "110103")[0] == 2


def test_mobile_and_org_code(capsys):
    code, lines, _ = run(capsys, "check", "mobile", "--json", "+86 138-0013-8000", "12345678901")
    assert code == 1
    assert [json.loads(line)["reason"] for line in lines] == [None, "mobile_format"]
    assert json.loads(lines[0])["normalized"] == "13800138000"
    assert run(capsys, "check", "org_code", "80210043-3")[0] == 0


def test_values_from_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("91110000802100433B\n\n北京市某公司\r\n"))
    code, lines, _ = run(capsys, "check", "uscc", "--json")
    assert code == 1
    rows = [json.loads(line) for line in lines]  # one output line per input line, blank ones included
    assert [(r["value"], r["reason"]) for r in rows] == [
        ("91110000802100433B", None),
        ("", "uscc_format"),
        ("北京市某公司", "uscc_text"),
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["check"],
        ["check", "passport", "E12345678"],
        ["check", "uscc", "--legacy15", "convert", "91110000802100433B"],
        ["check", "cn_id", "--legacy15", "keep", "11010519491231002X"],
        ["check", "uscc", "--retired-window-years", "3", "91110000802100433B"],
        ["check", "division_code", "--retired-window-years", "-1", "110105"],
        ["check", "division_code", "--retired-window-years", "five", "110105"],
    ],
)
def test_usage_errors(capsys, argv):
    code, lines, err = run(capsys, *argv)
    assert code == 2 and not lines and err


def test_no_values_on_a_terminal_is_a_usage_error(capsys, monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Tty(""))
    assert run(capsys, "check", "mobile")[0] == 2


def test_check_does_not_import_spark():
    code = "import sys; from citylake.drivers.cli import main; main(['check', 'mobile', '13800138000']); " \
        "sys.exit(1 if 'pyspark' in sys.modules else 0)"  # fmt: skip
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_entry_point():
    exe = Path(sys.executable).with_name("citylake")
    proc = subprocess.run([str(exe), "check", "uscc", "91110000802100433B"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "91110000802100433B\tvalid 有效\tnormalized=91110000802100433B\n"
