"""The things a record is about: places of Zhengzhou, people, organizations, air-quality readings.

Built on the value pools in :mod:`citylake_dev.fakes` and the shipped GB/T 2260 list. A
:class:`Record` makes each entity lazily, once, so the fields of one row agree (the same
person's name, citizen ID and birth date; a station's district).

Key values are unique by construction: a :class:`Permutation` scatters the row index over the
identifier's number space (a bijection), so no set of keys already written is needed however
many rows a file has.
"""

from __future__ import annotations

import hashlib
import math
import random
from datetime import date
from operator import mul

from citylake.core.identifiers import (
    CN_ID_CHECK_CHARS,
    CN_ID_WEIGHTS,
    ORG_WEIGHTS,
    USCC_ALPHABET,
    USCC_WEIGHTS,
    accepted_division_codes,
    all_division_codes,
    divisions,
    latest_division_edition,
)
from citylake_dev import fakes
from citylake_dev.generate import overlaps
from citylake_dev.generate.cells import GenerationError

OLD_DIVISION_BEFORE = 2002  # codes whose last GB/T 2260 edition is older than this are "old"


# ---- unique serials --------------------------------------------------------------------------------
class Permutation:
    """A keyed bijection of ``range(n)``: row index -> a scattered serial.

    Feistel rounds over Z_a x Z_b (``x = left * b + right``; each round maps ``(left, right)`` to
    ``(right, (left + F(right)) mod a)`` and swaps the moduli), with ``a * b = n`` when ``n`` factors
    that way (10**8 = 10**4 * 10**4, days * 1000), so no value is walked past; otherwise
    ``a * b >= n`` and the rare value beyond ``n`` is walked on. Distinct rows get distinct serials, in
    an order that looks random, with no memory of earlier rows.
    """

    __slots__ = ("a", "b", "keys", "n")

    def __init__(self, n: int, key: str):
        if n < 1:
            raise ValueError("a permutation needs a non-empty range")
        self.n = n
        root = math.isqrt(n)
        a = next((d for d in range(root, max(1, root // 4), -1) if n % d == 0), 0)
        if a < 2:  # no balanced factors: a square just above n
            a = root if root * root >= n else root + 1
            b = a
        else:
            b = n // a
        self.a, self.b = a, b
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        self.keys = tuple(int.from_bytes(digest[k : k + 4], "big") for k in range(0, 16, 4))

    def __call__(self, x: int) -> int:
        if not 0 <= x < self.n:
            raise GenerationError(f"serial {x} outside 0..{self.n - 1}: more rows than unique values")
        a, b = self.a, self.b
        while True:
            left, right = divmod(x, b)  # left in Z_a, right in Z_b
            for k in self.keys:
                left, right = right, (left + (((right ^ k) * 0x9E3779B1) >> 11)) % a
                a, b = b, a
            x = left * b + right
            a, b = self.a, self.b
            if x < self.n:  # only when a * b > n
                return x


# ---- check characters (the rules of citylake.core.identifiers, table-driven: this is the hot path) ----
_USCC_VALUES = bytes.maketrans(USCC_ALPHABET.encode(), bytes(range(len(USCC_ALPHABET))))
_ORG_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ORG_VALUES = bytes.maketrans(_ORG_CHARS.encode(), bytes(range(len(_ORG_CHARS))))
_CN_ID_ZERO = ord("0") * sum(CN_ID_WEIGHTS)


def uscc_check_char(first17: str) -> str:
    return USCC_ALPHABET[-sum(map(mul, first17.encode().translate(_USCC_VALUES), USCC_WEIGHTS)) % 31]


def org_check_char(body8: str) -> str:
    v = 11 - sum(map(mul, body8.encode().translate(_ORG_VALUES), ORG_WEIGHTS)) % 11
    return "X" if v == 10 else ("0" if v == 11 else str(v))


def cn_id_check_char(first17: str) -> str:
    return CN_ID_CHECK_CHARS[(sum(map(mul, first17.encode(), CN_ID_WEIGHTS)) - _CN_ID_ZERO) % 11]


# ---- places -------------------------------------------------------------------------------------
class Places:
    """Division codes for one retired-code window: where records live, and codes that do not exist."""

    def __init__(self, window: int):
        latest = str(latest_division_edition())
        divs = divisions()
        self.division_names = {c: d.name for c, d in divs.items()}
        current = sorted(
            c for c, d in divs.items() if c.startswith("4101") and not c.endswith("00") and d.last_edition == latest
        )
        accepted = accepted_division_codes(window)
        current = [c for c in current if c in accepted]
        if not current:
            raise GenerationError("the shipped GB/T 2260 list has no current Zhengzhou (4101xx) county codes")
        self.districts = current  # current Zhengzhou counties: where records live
        self.district_pick = fakes.Weighted([(c, fakes.DISTRICT_WEIGHTS.get(c, 2)) for c in current])
        every = all_division_codes()
        # Citizen-ID address codes come from the civil (MCA) editions: the statistical codes for
        # development zones (xxxx7x, e.g. 4101 71..73) never appear on identity cards. Codes abolished
        # before 2002 are left to the old_division_ids shape, so ordinary files do not depend on them.
        civil = sorted(
            c
            for c in every
            if not c.endswith("00") and c[4] != "7" and divs[c].first_edition[:4] < latest
            and divs[c].last_year >= OLD_DIVISION_BEFORE
        )
        self.henan_areas = [c for c in civil if c.startswith("41")]
        self.other_areas = [c for c in civil if not c.startswith("41")]
        self.zz_areas = [c for c in civil if c in set(current)] or self.henan_areas
        self.zz_area_set = frozenset(self.zz_areas)
        # codes in no edition, for the division_unknown and cn_id_area defects
        self.unknown_division = sorted(
            f"4101{n:02d}" for n in range(100) if f"4101{n:02d}" not in every and n not in (0,)
        )
        self.unknown_area = sorted(
            f"41{p:02d}{n:02d}" for p in range(1, 18) for n in range(50, 100) if f"41{p:02d}{n:02d}" not in every
        )
        self.stations = [s for s in fakes.STATIONS if s[2] in accepted] or [
            (f"ZZ{c}", f"{self.division_names[c]}监测站", c) for c in current
        ]
        # counties abolished before 2002 (GB/T 2260 editions since 1980): an ID keeps the code of its
        # first registration; Henan's first, as most people in a Zhengzhou register were born nearby
        old = sorted(
            (c for c, d in divs.items() if not c.endswith("00") and d.last_year < OLD_DIVISION_BEFORE),
            key=lambda c: (not c.startswith("41"), c),
        )
        self.old_areas = [(c, divs[c].last_year) for c in old]
        self.old_area_set = frozenset(old)

    def old_area(self, rng: random.Random, birth_year: int) -> str | None:
        """A county code abolished before 2002 that still existed when someone born in ``birth_year``
        could first be registered there, or None."""
        fits = [c for c, last in self.old_areas if last >= birth_year]
        if not fits:
            return None
        henan = [c for c in fits if c.startswith("41")]
        return rng.choice(henan if henan and rng.random() < 0.7 else fits)

    def pick_district(self, rng: random.Random) -> tuple[str, str]:
        code = self.district_pick.pick(rng)
        return code, self.division_names[code]


# ---- organizations ---------------------------------------------------------------------------------
USCC_SERIALS = 10**8  # organization bodies: 8 digits, or MA + 6 characters from the same serial


def _ma_body(serial: int) -> str:
    """``MA`` + 6 characters for ``serial`` < 4 * 31**5: distinct serials give distinct bodies."""
    head, rest = divmod(serial, 31**5)
    chars = []
    for _ in range(5):
        rest, k = divmod(rest, 31)
        chars.append(USCC_ALPHABET[k])
    return "MA" + "4359"[head] + "".join(chars)


def make_uscc(
    rng: random.Random, places: Places, kind: str | None = None, district: str | None = None, serial: int | None = None
) -> str:
    """A valid USCC; with ``serial`` (0 <= serial < USCC_SERIALS) its body is that serial's, so distinct
    serials give distinct codes whatever the kind and region."""
    kind = kind or "91"
    district = district or places.pick_district(rng)[0]
    region = "410100" if rng.random() < 0.5 else district
    if serial is not None:
        body = _ma_body(serial) if kind[0] == "9" and rng.random() < 0.8 else f"{serial:08d}"
        code = _uscc(kind, region, body)
        if "XXXX" in code:  # reads as masked: the digit body of the same serial never does
            code = _uscc(kind, region, f"{serial:08d}")
        return code
    for _ in range(50):
        if kind[0] == "9" and rng.random() < 0.8:
            body = "MA" + rng.choice(("44", "45", "46", "47", "3X", "40", "9G", "9K")) + "".join(
                rng.choices(USCC_ALPHABET, k=4)
            )
        else:
            body = f"{rng.randrange(10**8):08d}"
        code = _uscc(kind, region, body)
        if "XXXX" not in code:
            return code
    raise GenerationError("could not make a USCC")


def _uscc(kind: str, region: str, body: str) -> str:
    first17 = f"{kind}{region}{body}{org_check_char(body)}"
    return first17 + uscc_check_char(first17)


# ---- air quality (HJ 633-2012 hourly IAQI breakpoints) -------------------------------------
_IAQI = (0, 50, 100, 150, 200, 300, 400, 500)
_BREAKPOINTS = {
    "PM2.5": (0, 35, 75, 115, 150, 250, 350, 500),
    "PM10": (0, 50, 150, 250, 350, 420, 500, 600),
    "SO2": (0, 150, 500, 650, 800, 1600, 2100, 2620),
    "NO2": (0, 100, 200, 700, 1200, 2340, 3090, 3840),
    "CO": (0, 5, 10, 35, 60, 90, 120, 150),
    "O3": (0, 160, 200, 300, 400, 800, 1000, 1200),
}

# field name -> pollutant of an air-quality reading
POLLUTANT_FIELDS = {
    "pm25": "PM2.5", "pm2_5": "PM2.5", "pm10": "PM10", "so2": "SO2", "no2": "NO2", "co": "CO", "o3": "O3",
}


def _iaqi(pollutant: str, conc: float) -> float:
    bp = _BREAKPOINTS[pollutant]
    for k in range(1, len(bp)):
        if conc <= bp[k]:
            return (_IAQI[k] - _IAQI[k - 1]) / (bp[k] - bp[k - 1]) * (conc - bp[k - 1]) + _IAQI[k - 1]
    return 500.0


def air_reading(rng: random.Random) -> dict:
    """One hour at one station: concentrations, the AQI and the primary pollutant (None when AQI <= 50)."""
    pm25 = min(480.0, max(3.0, rng.lognormvariate(math.log(48), 0.6)))
    pm10 = min(590.0, pm25 * rng.uniform(1.3, 2.1))
    so2 = rng.uniform(3, 35)
    no2 = rng.uniform(8, 95)
    o3 = max(2.0, rng.lognormvariate(math.log(70), 0.55))
    o3 = min(o3, 380.0)
    co = rng.uniform(0.3, 2.4)
    values = {
        "PM2.5": round(pm25), "PM10": round(pm10), "SO2": round(so2), "NO2": round(no2), "O3": round(o3),
        "CO": round(co, 1),
    }
    iaqi = {p: _iaqi(p, v) for p, v in values.items()}
    primary = max(iaqi, key=lambda p: iaqi[p])
    aqi = min(500, math.ceil(iaqi[primary]))
    return {"values": values, "aqi": aqi, "primary": primary if aqi > 50 else None}


# ---- one record's entities -----------------------------------------------------------------------
_DAYS: dict[int, tuple[date, str]] = {}


def _day(ordinal: int) -> tuple[date, str]:
    """(date, YYYYMMDD) of a day: birth dates repeat over a few tens of thousands of days."""
    hit = _DAYS.get(ordinal)
    if hit is None:
        d = date.fromordinal(ordinal)
        hit = _DAYS[ordinal] = (d, f"{d.year:04d}{d.month:02d}{d.day:02d}")
    return hit


class Record:
    """Lazily made entities shared by the fields of one record (person, organization, place…)."""

    __slots__ = ("_air", "_district", "_org", "_person", "_station", "count", "g", "i", "rng")

    def __init__(self, g, i: int):  # g: the values.FileGen writing this record (not imported: no cycle)
        self.g, self.rng, self.i = g, g.rng, i
        self._district = self._person = self._org = self._station = self._air = None
        self.count = None

    def district(self) -> tuple[str, str]:
        if self._district is None:
            shared = overlaps.shared_unit(self.g, self.i, make_uscc)
            if shared is not None:
                self._district = shared["district"]
            elif self.g.has_station:
                code = self.station()[2]
                self._district = (code, self.g.places.division_names[code])
            else:
                self._district = self.g.places.pick_district(self.rng)
        return self._district

    def station(self) -> tuple[str, str, str]:
        if self._station is None:
            stations = self.g.places.stations
            if self.g.station_in_key:
                self._station = stations[self.i % len(stations)]
            else:
                self._station = self.rng.choice(stations)
        return self._station

    def person(self) -> dict:
        if self._person is None:
            self._person = self._make_person()
        return self._person

    def org(self) -> dict:
        if self._org is None:
            self._org = self._make_org()
        return self._org

    def air(self) -> dict:
        if self._air is None:
            self._air = air_reading(self.rng)
        return self._air

    def _make_person(self) -> dict:
        g, rng, places = self.g, self.rng, self.g.places
        r = rng.random()
        start, span = g.birth_span
        if g.person_serial is not None:
            # unique by construction: (birth date, 3-digit sequence) from the row's serial
            day, seq3 = divmod(g.person_serial(self.i), 1000)
            birth, ymd = _day(start + day)
            gender = "U" if r < 0.002 else ("M" if seq3 % 2 else "F")
        else:
            gender = "U" if r < 0.002 else ("M" if r < 0.51 else "F")
            birth, ymd = _day(start + rng.randrange(span))
            last = rng.randrange(5) * 2 + (1 if gender == "M" else 0) if gender != "U" else rng.randrange(10)
            seq3 = rng.randrange(100) * 10 + last  # two digits of the sequence, then the gender digit
        area = None
        if g.old_division_share and rng.random() < g.old_division_share:
            area = places.old_area(rng, birth.year)
        if area is None:
            area = self._area()
        body = f"{area}{ymd}{seq3:03d}"
        cn_id = body + cn_id_check_char(body)
        name = fakes.person_name(rng, male=(gender != "F"))
        return {"gender": gender, "birth": birth, "cn_id": cn_id, "name": name}

    def _area(self) -> str:
        """Where a person was first registered (the ID's address code)."""
        g, rng, places = self.g, self.rng, self.g.places
        r = rng.random()
        if g.has_birth and r < 0.7:
            area = self.district()[0]
            return area if area in places.zz_area_set else rng.choice(places.zz_areas)
        if r < 0.85:
            return rng.choice(places.henan_areas)
        if r < 0.93:
            return rng.choice(places.zz_areas)
        return rng.choice(places.other_areas)

    def _make_org(self) -> dict:
        rng = self.rng
        shared = overlaps.shared_unit(self.g, self.i, make_uscc)
        if shared is not None:
            return {"kind": shared["kind"], "name": shared["name"], "uscc": shared["uscc"]}
        if self.g.enterprise:
            kind = fakes.wchoice(rng, (("91", 80), ("92", 15), ("93", 5)))
        else:
            kind = fakes.wchoice(rng, (("91", 70), ("12", 14), ("11", 8), ("51", 5), ("92", 3)))
        code, dname = self.district()
        if kind == "91":
            name = fakes.enterprise_name(rng, dname)
        elif kind == "92":
            name = fakes.individual_business_name(rng, dname, fakes.person_name(rng, True)[0])
        elif kind == "93":
            name = fakes.cooperative_name(rng, dname)
        elif kind == "12":
            name = fakes.institution_name(rng, dname)
        elif kind == "11":
            name = fakes.organ_name(rng, dname)
        else:
            name = fakes.social_org_name(rng)
        serial = self.g.org_serial(self.i) if self.g.org_serial is not None else None
        return {"kind": kind, "name": name, "uscc": make_uscc(rng, self.g.places, kind, code, serial)}
