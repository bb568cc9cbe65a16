"""Planted overlaps for the legal-entity base library (法人单位基础库, citylake.stages.base).

Every resource whose registration marks a USCC field ``base: legal_entity`` shares units with the
others: in its first file, one row in :data:`EVERY` (``i % EVERY == OFFSET``, up to :data:`MAX_SHARED`
units) is shared unit ``j = i // EVERY``, made from its own random stream, so every source writes the same USCC,
division and (unless planted otherwise) name and address. Which sources disagree, by ``j % 4``:

* 0 — nothing: an overlap only;
* 1 — a different name, 2 — a different address (a real conflict), in every source but the
  first by resource name;
* 3 — the same name spelled with a space inside and full-width brackets (not a conflict: the
  library compares values with white space and full-width forms normalised).

Each good planted row is recorded in its file's truth entry (``planted``: ``j``, ``uscc`` and the
values of the library's compared fields, canonical, before any noise); a planted row that the
file makes bad is not recorded, and is never copied by a duplicate defect. :func:`expected` turns
a truth into the overlaps and conflicts the library must find.
"""

from __future__ import annotations

import random
import re
from functools import lru_cache

from citylake_dev import fakes

LIBRARY = "legal_entity"
EVERY = 7
OFFSET = 3
# At most this many shared units per file: the truth records each, and memory must stay flat
# however many rows a file has (tests/devtools/test_generate_shapes.py).
MAX_SHARED = 150
COMPARED = ("name", "address")  # the library's compared fields (registrations/base/legal_entity.yaml)


def shared_index(g, i: int) -> int | None:
    """The shared unit row ``i`` of ``g``'s file is, or None."""
    if i % EVERY != OFFSET or i // EVERY >= MAX_SHARED or g.index != 0 or LIBRARY not in g.reg.base_marks:
        return None
    return i // EVERY


def _first_source(g) -> bool:
    from citylake.core.registry import load_registrations

    names = sorted(r.resource for r in _registrations(str(g.resources_dir), load_registrations)
                   if LIBRARY in r.base_marks)
    return not names or g.reg.resource == names[0]


@lru_cache(maxsize=4)
def _registrations(path: str, loader):
    return tuple(loader(path))


@lru_cache(maxsize=MAX_SHARED)
def _unit(seed: int, j: int, places, make_uscc) -> dict:
    rng = random.Random(f"citylake-generate/{seed}/shared/{LIBRARY}/{j}")
    code, dname = places.pick_district(rng)
    name = fakes.enterprise_name(rng, dname)
    address = fakes.street_address(rng, code, dname, "office")
    other_name = name
    while other_name == name:
        other_name = fakes.enterprise_name(rng, dname)
    other_address = address
    while other_address == address:
        other_address = fakes.street_address(rng, code, dname, "office")
    return {"kind": "91", "uscc": make_uscc(rng, places, "91", code), "district": (code, dname), "name": name,
            "address": address, "other_name": other_name, "other_address": other_address}


def shared_unit(g, i: int, make_uscc) -> dict | None:
    """Row ``i``'s shared unit as ``g``'s source writes it (``kind``, ``uscc``, ``name``,
    ``address``, ``district``), or None. ``make_uscc``: the entities' code maker, passed in because
    the entities module calls this one (no import cycle)."""
    j = shared_index(g, i)
    if j is None:
        return None
    u = _unit(g.seed, j, g.places, make_uscc)
    name, address = u["name"], u["address"]
    if not _first_source(g):
        if j % 4 == 1:
            name = u["other_name"]
        elif j % 4 == 2:
            address = u["other_address"]
        elif j % 4 == 3:
            name = name[:2] + " " + name[2:].replace("(", "（").replace(")", "）")
    return {"kind": u["kind"], "uscc": u["uscc"], "district": u["district"], "name": name, "address": address}


def planted_record(g, i: int, rec: dict) -> dict | None:
    """What the truth records of good row ``i`` when it is a shared unit."""
    j = shared_index(g, i)
    if j is None:
        return None
    marks = g.reg.base_marks[LIBRARY]
    out = {"j": j, "uscc": rec[marks[""]]}
    for attr in COMPARED:
        if attr in marks:
            out[attr] = rec[marks[attr]]
    return out


_SPACE = re.compile(r"\s+")


def _same(text: str) -> str:
    from citylake.core.identifiers import FULLWIDTH, HALFWIDTH

    return _SPACE.sub("", text.translate(str.maketrans(FULLWIDTH, HALFWIDTH)))


def expected(truth: dict) -> tuple[set[str], set[tuple[str, str, str, str]]]:
    """From a truth: the USCCs planted good in two or more sources, and the conflicts the library
    must list, ``(uscc, attribute, source_a, source_b)`` with ``source_a < source_b``."""
    by_uscc: dict[str, dict[str, dict]] = {}
    for entry in truth["files"].values():
        for p in entry.get("planted", []):
            by_uscc.setdefault(p["uscc"], {})[entry["resource"]] = p
    overlaps = {u for u, srcs in by_uscc.items() if len(srcs) > 1}
    conflicts = set()
    for u in overlaps:
        srcs = sorted(by_uscc[u].items())
        for k, (a, pa) in enumerate(srcs):
            for b, pb in srcs[k + 1:]:
                for attr in COMPARED:
                    va, vb = pa.get(attr), pb.get(attr)
                    if va is not None and vb is not None and _same(va) != _same(vb):
                        conflicts.add((u, attr, a, b))
    return overlaps, conflicts
