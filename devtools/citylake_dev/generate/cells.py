"""What the generator puts in a cell, and the text conform reads back from it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from citylake.core.identifiers import normalize_text

EXCEL_EPOCH = date(1899, 12, 30)


class GenerationError(RuntimeError):
    """The generator produced a value that does not mean what it was meant to mean (a bug)."""


class _Missing:
    """A JSON key left out of an object (conform reads it as empty)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


@dataclass(frozen=True)
class XDate:
    """An XLSX cell holding an Excel serial day with a date number format."""

    serial: int

    @property
    def text(self) -> str:
        return (EXCEL_EPOCH + timedelta(days=self.serial)).isoformat()


@dataclass
class RawLine:
    """A line written as is (a malformed CSV or JSON line)."""

    text: str


def cell_text(cell) -> str:
    """The text conform reads from a cell (decode rules: numbers become text, dates YYYY-MM-DD)."""
    if cell is None or cell is MISSING:
        return ""
    if isinstance(cell, XDate):
        return cell.text
    if isinstance(cell, float):
        return repr(cell)
    return str(cell)


def is_null_text(text: str) -> bool:
    return normalize_text(text) is None


def excel_serial(d: date) -> int:
    return (d - EXCEL_EPOCH).days


def dec_str(value: Decimal) -> str:
    """Plain decimal text without exponent or needless trailing zeros."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def thousands(text: str) -> str:
    sign = "-" if text.startswith("-") else ""
    body = text.lstrip("-")
    whole, _, frac = body.partition(".")
    grouped = f"{int(whole):,}"
    return sign + grouped + ("." + frac if frac else "")
