"""Where a dated row given by a point or a commune lies: its boundary structure, commune and 2025 province.

Incidents and recruitment events are placed the same way, so the SQL and the
checks of a placed row live here once: the structure in force on the row's
date; the commune covering its point, else the commune given; the 2025
province (the distribution column) directly or through the crosswalk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from etl.tables import Problem

# Reads a CTE named ``given`` (columns occurred_on, lon, lat, commune_code, ...) and adds two CTEs: ``p`` (given, its
# structure and point ``pt``) and ``c`` (p and its ``commune``). Follows a ``WITH given AS (...),``.
PLACED_CTES = """
p AS (
    SELECT g.*, st.name AS structure, CASE WHEN g.lon IS NOT NULL THEN ST_SetSRID(ST_MakePoint(g.lon, g.lat), 4326) END AS pt
    FROM given g LEFT JOIN boundary_structure st ON st.valid_from <= g.occurred_on AND (st.valid_to IS NULL OR g.occurred_on < st.valid_to)
),
c AS (
    SELECT p.*,
           coalesce((SELECT a.code FROM admin_unit_part a WHERE p.pt IS NOT NULL AND a.structure = p.structure
                     AND a.level = 'commune' AND ST_Covers(a.geom, p.pt) ORDER BY a.code LIMIT 1),
                    (SELECT d.code FROM admin_unit d WHERE d.structure = p.structure AND d.level = 'commune'
                     AND d.code = p.commune_code)) AS commune
    FROM p
)"""

# The 2025 province of ``c.commune`` (a row of ``c``): its parent, or through the crosswalk the parent of the 2025 commune
# that took most of its area.
PROVINCE_2025 = """CASE WHEN c.structure = '2025' THEN (SELECT parent_code FROM admin_unit WHERE structure = '2025' AND code = c.commune)
            ELSE (SELECT n.parent_code FROM unit_crosswalk x JOIN admin_unit n ON n.structure = x.new_structure AND n.code = x.new_code
                  WHERE x.old_structure = c.structure AND x.old_code = c.commune AND x.new_structure = '2025'
                  ORDER BY x.area_share DESC, x.new_code LIMIT 1) END"""


def unplaced(row: Any, no_commune: Callable[[Any], tuple[str, str]], no_province_hint: str = "") -> Problem | None:
    """Why a placed row (n, occurred_on, structure, commune, province_code) cannot be stored, or None.

    ``no_commune(row)`` says (field, message) for a row in no commune: each importer words it for what it was given.

    >>> from types import SimpleNamespace as Row
    >>> print(unplaced(Row(n=3, occurred_on="1990-01-01", structure=None, commune=None, province_code=None), None))
    row 3, field occurred_on: no boundary structure is valid on 1990-01-01
    >>> print(unplaced(Row(n=4, occurred_on="2026-01-01", structure="2025", commune="26734", province_code=None), None))
    row 4, field commune_code: commune 26734 (2025) has no 2025 province
    """
    if row.structure is None:
        return Problem(row.n, "occurred_on", f"no boundary structure is valid on {row.occurred_on}")
    if row.commune is None:
        return Problem(row.n, *no_commune(row))
    if row.province_code is None:  # the distribution column: never stored as NULL (see docs/scale-out.md)
        return Problem(row.n, "commune_code", f"commune {row.commune} ({row.structure}) has no 2025 province{no_province_hint}")
    return None
