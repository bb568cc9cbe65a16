"""The citylake command run in-process, for the CLI tests."""

from __future__ import annotations

from citylake.drivers.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``citylake *argv``."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse: usage errors, --help, --version
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err
