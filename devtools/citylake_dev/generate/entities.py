"""The things a record is about: places of Zhengzhou, people, organizations, air-quality readings.

Built on the value pools in :mod:`citylake_dev.fakes` and the shipped GB/T 2260 list. A
:class:`Record` makes each entity lazily, once, so the fields of one row agree (the same
person's name, citizen ID and birth date; a station's district).
"""

from __future__ import annotations

import math
import random
from datetime import date

from citylake.core.identifiers import (
    USCC_ALPHABET,
    accepted_division_codes,
    all_division_codes,
    cn_id_check_char,
    divisions,
    latest_division_edition,
    org_check_char,
    uscc_check_char,
)
from citylake_dev import fakes
from citylake_dev.generate.cells import GenerationError


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
        # Citizen-ID address codes come from the civil (MCA) editions: the 2023 statistical
        # codes for development zones (4101 71..73) never appear on identity cards.
        civil = sorted(c for c in every if not c.endswith("00") and divs[c].first_edition[:4] < latest)
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

    def pick_district(self, rng: random.Random) -> tuple[str, str]:
        code = self.district_pick.pick(rng)
        return code, self.division_names[code]


# ---- organizations ---------------------------------------------------------------------------------
def make_uscc(rng: random.Random, places: Places, kind: str | None = None, district: str | None = None) -> str:
    kind = kind or "91"
    district = district or places.pick_district(rng)[0]
    region = "410100" if rng.random() < 0.5 else district
    for _ in range(50):
        if kind[0] == "9" and rng.random() < 0.8:
            body = "MA" + rng.choice(("44", "45", "46", "47", "3X", "40", "9G", "9K")) + "".join(
                rng.choices(USCC_ALPHABET, k=4)
            )
        else:
            body = f"{rng.randrange(10**8):08d}"
        first17 = f"{kind}{region}{body}{org_check_char(body)}"
        code = first17 + uscc_check_char(first17)
        if "XXXX" not in code:
            return code
    raise GenerationError("could not make a USCC")


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
class Record:
    """Lazily made entities shared by the fields of one record (person, organization, place…)."""

    __slots__ = ("_air", "_district", "_org", "_person", "_station", "count", "g", "i", "rng")

    def __init__(self, g, i: int):  # g: the values.FileGen writing this record (not imported: no cycle)
        self.g, self.rng, self.i = g, g.rng, i
        self._district = self._person = self._org = self._station = self._air = None
        self.count = None

    def district(self) -> tuple[str, str]:
        if self._district is None:
            if self.g.has_station:
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
        gender = "U" if r < 0.002 else ("M" if r < 0.51 else "F")
        start, span = g.birth_span
        birth = date.fromordinal(start + rng.randrange(span))
        r = rng.random()
        if g.has_birth and r < 0.7:
            area = self.district()[0]
            if area not in places.zz_area_set:
                area = rng.choice(places.zz_areas)
        elif r < 0.85:
            area = rng.choice(places.henan_areas)
        elif r < 0.93:
            area = rng.choice(places.zz_areas)
        else:
            area = rng.choice(places.other_areas)
        seq = rng.randrange(100)  # first two digits of the sequence
        last = rng.randrange(5) * 2 + (1 if gender == "M" else 0) if gender != "U" else rng.randrange(10)
        body = f"{area}{birth.year}{birth.month:02d}{birth.day:02d}{seq:02d}{last}"
        cn_id = body + cn_id_check_char(body)
        name = fakes.person_name(rng, male=(gender != "F"))
        return {"gender": gender, "birth": birth, "cn_id": cn_id, "name": name}

    def _make_org(self) -> dict:
        rng = self.rng
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
        return {"kind": kind, "name": name, "uscc": make_uscc(rng, self.g.places, kind, code)}
