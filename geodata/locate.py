"""Which administrative units cover a point, in the structure valid on a date."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, text

from geodata.errors import NotFound


class NoStructureOnDate(NotFound):
    """No boundary structure is valid on the requested date."""


@dataclass
class LocatedUnit:
    code: str
    name: str
    unit_type: str
    level: str
    geom_quality: str | None


@dataclass
class Location:
    structure: str
    date: dt.date
    province: LocatedUnit | None = None
    district: LocatedUnit | None = None
    commune: LocatedUnit | None = None

    @property
    def found(self) -> bool:
        return self.province is not None


# The finest unit whose polygon covers the point decides; its ancestors come
# from the code hierarchy, so the answer is always one consistent chain even
# where polygons of different levels disagree by a sliver. The subdivided
# parts find candidates fast; the test itself is on the full polygon, since
# subdividing moves shared edges by rounding. On a shared border ST_Covers
# holds for both sides: the lower code wins, every time.
LOCATE_SQL = """
WITH RECURSIVE
pt AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g),
finest AS (
    SELECT u.structure, u.code FROM admin_unit u, pt
    WHERE u.structure = :structure
      AND u.code IN (
          SELECT p.code FROM admin_unit_part p, pt
          WHERE p.structure = :structure
            AND p.valid_from <= :d AND (p.valid_to IS NULL OR :d < p.valid_to)
            AND ST_DWithin(p.geom, pt.g, 1e-9))
      AND ST_Covers(u.geom, pt.g)
    ORDER BY CASE u.level WHEN 'commune' THEN 0 WHEN 'district' THEN 1 ELSE 2 END, u.code
    LIMIT 1
),
chain AS (
    SELECT u.* FROM admin_unit u JOIN finest f USING (structure, code)
    UNION ALL
    SELECT u.* FROM admin_unit u JOIN chain c ON u.structure = c.structure AND u.code = c.parent_code
)
SELECT code, name, unit_type, level, geom_quality FROM chain
"""


def structure_on(conn: Connection, date: dt.date) -> str:
    """The name of the boundary structure valid on ``date``."""
    name = conn.execute(
        text("SELECT name FROM boundary_structure WHERE valid_from <= :d AND (valid_to IS NULL OR :d < valid_to)"),
        {"d": date},
    ).scalar()
    if name is None:
        first = conn.execute(text("SELECT min(valid_from) FROM boundary_structure")).scalar()
        raise NoStructureOnDate(f"no boundary structure is valid on {date.isoformat()} (the first starts {first})")
    return name


def locate(conn: Connection, lon: float, lat: float, date: dt.date | None = None) -> Location:
    """Find the province, district (where the structure has one) and commune covering a point.

    Example::

        with get_engine().connect() as conn:
            locate(conn, 105.85, 21.03, dt.date(2026, 1, 1)).province.name
        # 'Hà Nội'
    """
    date = date or dt.date.today()
    structure = structure_on(conn, date)
    loc = Location(structure=structure, date=date)
    for row in conn.execute(text(LOCATE_SQL), {"structure": structure, "d": date, "lon": lon, "lat": lat}):
        setattr(loc, row.level, LocatedUnit(row.code, row.name, row.unit_type, row.level, row.geom_quality))
    return loc
