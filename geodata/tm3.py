"""Provincial VN-2000 TM-3 grids: the central meridian of each province.

VN-2000 plane coordinates of a province (cadastral maps, the land
department's boundary files) are Transverse Mercator with a 3-degree zone,
scale 0.9999 and false easting 500 km, centred on a meridian chosen per
province by Circular 973/2001/TT-TCĐC. The table is one data file,
``reference/vn2000_tm3_meridians.csv`` (its source and how sure each value is
are in ``reference/README.md``); boundary imports suggest the zone of a
province from it and exports write in it.

Every meridian in the table is an EPSG "VN-2000 / TM-3" CRS (5897-5899,
9205-9218), so :meth:`Meridian.crs` returns EPSG's definition, with EPSG's
VN-2000 to WGS 84 transformation.

>>> m = provincial_meridians()["42"]
>>> m.province_name, m.dms, m.epsg
('Hà Tĩnh', "105°30'", 9209)
>>> [m.dms for m in meridians_of("25", "2025")]  # Phú Thọ of 2025: Hòa Bình, Phú Thọ, Vĩnh Phúc merged
["104°45'", "105°00'", "106°00'"]
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache

from pyproj import CRS

from geodata.reference_data import REFERENCE_DIR
from geodata.structures import Structure

MERIDIANS_FILE = REFERENCE_DIR / "vn2000_tm3_meridians.csv"
PROVINCE_MAPPING_FILE = REFERENCE_DIR / "vn_2025_mapping_provinces.csv"


def format_dms(degrees: float) -> str:
    """A meridian the way Vietnamese documents write it.

    >>> format_dms(107.25)
    "107°15'"
    """
    whole = int(degrees)
    return f"{whole}°{round((degrees - whole) * 60):02d}'"


@dataclass(frozen=True)
class Meridian:
    """The TM-3 central meridian of one pre-2025 province."""

    province_code: str
    province_name: str
    degrees: float
    dms: str
    epsg: int
    checked_against: str

    def crs(self) -> CRS:
        """EPSG's CRS of this zone (VN-2000 / TM-3, scale 0.9999, false easting 500 km)."""
        return CRS.from_epsg(self.epsg)

    @property
    def label(self) -> str:
        """E.g. ``VN-2000 / TM-3 105°30' (EPSG:9209)``."""
        return f"VN-2000 / TM-3 {self.dms} (EPSG:{self.epsg})"


@cache
def provincial_meridians() -> dict[str, Meridian]:
    """Pre-2025 province code -> its official TM-3 central meridian (63 provinces).

    >>> provincial_meridians()["20"].label
    "VN-2000 / TM-3 107°15' (EPSG:9215)"
    """
    with open(MERIDIANS_FILE, encoding="utf-8") as f:
        return {
            r["province_code"]: Meridian(r["province_code"], r["province_name"], float(r["central_meridian"]),
                                         r["central_meridian_dms"], int(r["epsg"]), r["checked_against"])
            for r in csv.DictReader(f)
        }


@cache
def _former_provinces() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    with open(PROVINCE_MAPPING_FILE, encoding="utf-8") as f:
        for r in csv.DictReader(f):
            out.setdefault(r["new_province_code"], []).append(r["old_province_code"])
    return {k: tuple(sorted(v)) for k, v in out.items()}


def meridians_of(province_code: str, structure: Structure | str) -> list[Meridian]:
    """The TM-3 meridians in use in a province, one per distinct meridian, west to east.

    A pre-2025 province has one. A 2025 province has those of the provinces
    merged into it: the circular predates the reform, and no new assignment
    for the merged provinces is known here, so each former province's
    territory keeps its own zone. Unknown codes give an empty list.

    >>> [m.province_name for m in meridians_of("42", Structure.pre2025)]
    ['Hà Tĩnh']
    """
    table = provincial_meridians()
    if Structure(structure) is Structure.pre2025:
        return [table[province_code]] if province_code in table else []
    found: dict[float, Meridian] = {}
    for old in _former_provinces().get(province_code, ()):
        found.setdefault(table[old].degrees, table[old])
    return [found[d] for d in sorted(found)]
