"""What the subcommands share: usage errors (exit 2) and loading the registrations."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from citylake.core.registry import Registration, load_base_libraries, load_registrations
from citylake.core.settings import ENV

USAGE = 2  # exit code of a usage error, as argparse uses


class UsageError(Exception):
    """A mistake of the caller (unknown name, missing folder…): print it and exit 2."""


def fail(command: str, message: object) -> int:
    """Print ``citylake COMMAND: error: MESSAGE`` to stderr (argparse's form) and return 2."""
    print(f"citylake {command}: error: {message}", file=sys.stderr)
    return USAGE


def unknown_names(kind: str, unknown: Iterable[str], known: Iterable[str]) -> str:
    """``unknown resource: x; registered resources: a, b`` (one wording for every command)."""
    unknown = list(unknown)
    plural = "s" if len(unknown) > 1 else ""
    return f"unknown {kind}{plural}: {', '.join(unknown)}; registered {kind}s: {', '.join(sorted(set(known)))}"


def registrations(resources_dir: Path | str, hint: str = ENV["resources_dir"]) -> list[Registration]:
    """The registrations in ``resources_dir``; a missing folder or one without any is a UsageError.

    ``load_registrations`` alone returns [] for both, and every command would then quietly do
    nothing. A broken file still raises :class:`RegistrationError` (naming the file and field).
    ``hint`` names what chose the folder, for the message."""
    path = Path(resources_dir)
    if not path.exists():
        raise UsageError(f"registrations folder {path} does not exist (check {hint})")
    if not path.is_dir():
        raise UsageError(f"registrations folder {path} is not a folder (check {hint})")
    regs = load_registrations(path)
    if not regs:
        raise UsageError(f"no registrations in {path} (expected <department>/<resource>.yaml files)")
    return regs



def listed_registrations(resources_dir: Path | str) -> list[Registration]:
    """The resources' registrations (as :func:`registrations`, with its errors) and the base
    libraries' (``registrations/base/``): what the directory lists and analysts query."""
    regs = registrations(resources_dir)
    return regs + [lib.reg for lib in load_base_libraries(resources_dir, regs)]
