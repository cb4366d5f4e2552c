"""Survey counts per unit, kind and year, with small counts suppressed.

The table leaders and planners see: for every unit of a boundary structure
(commune, district, province), how many records of each kind were collected
in a year, and all kinds together. A record counts in the commune its GPS
point fell in (the declared commune when the point is in none) and in that
commune's ancestors. Anonymised records still count.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from geodata.scopes import Reader, scope_condition
from geodata.structures import Structure
from geodata.vietnam import TIMEZONE_NAME
from maps.aggregates import AggregateRow
from maps.suppression import suppressed_cells
from survey.definition import KINDS

ALL_KINDS = "all"
MEASURES = (*KINDS, ALL_KINDS)

# Every unit of the structure with its counts per kind, rolled up the
# hierarchy in one statement (each commune counted in itself, its parent and
# its grandparent).
COUNTS_SQL = """
WITH counts AS (
    SELECT coalesce(r.assigned_commune_code, r.declared_commune_code) AS commune, r.kind, count(*) AS n
    FROM survey_record r
    WHERE r.structure = :structure
      AND r.collected_at >= make_timestamptz(:year, 1, 1, 0, 0, 0, :tz)
      AND r.collected_at < make_timestamptz(:year + 1, 1, 1, 0, 0, 0, :tz)
    GROUP BY 1, 2
),
up AS (
    SELECT c.code AS commune, c.code AS unit FROM admin_unit c WHERE c.structure = :structure AND c.level = 'commune'
    UNION ALL
    SELECT c.code, c.parent_code FROM admin_unit c
    WHERE c.structure = :structure AND c.level = 'commune' AND c.parent_code IS NOT NULL
    UNION ALL
    SELECT c.code, p.parent_code FROM admin_unit c
    JOIN admin_unit p ON p.structure = c.structure AND p.code = c.parent_code
    WHERE c.structure = :structure AND c.level = 'commune' AND p.parent_code IS NOT NULL
)
SELECT u.code, u.name, u.level, u.parent_code, u.geom_quality,
       coalesce(sum(n.n) FILTER (WHERE n.kind = 'aspirant'), 0)::int AS aspirant,
       coalesce(sum(n.n) FILTER (WHERE n.kind = 'returnee'), 0)::int AS returnee,
       coalesce(sum(n.n) FILTER (WHERE n.kind = 'departure'), 0)::int AS departure
FROM admin_unit u
LEFT JOIN up ON up.unit = u.code
LEFT JOIN counts n ON n.commune = up.commune
WHERE u.structure = :structure
GROUP BY u.code, u.name, u.level, u.parent_code, u.geom_quality
"""


@dataclass(frozen=True)
class CountTable:
    """Counts per unit and kind (``all`` included), and which cells are hidden."""

    structure: str
    year: int
    k: int | None
    units: dict[str, dict[str, Any]]
    hidden: frozenset[tuple[str, str]]

    def cell(self, code: str, kind: str) -> dict[str, Any]:
        return self.row(code).cell(kind)

    def row(self, code: str) -> AggregateRow:
        """The unit's counts as the shared aggregate result (hidden counts are None)."""
        u = self.units[code]
        hidden = frozenset(m for m in MEASURES if (code, m) in self.hidden)
        return AggregateRow(code, u["name"], u["level"], u["parent_code"], self.structure, str(self.year),
                            {m: None if m in hidden else u[m] for m in MEASURES}, hidden, u["geom_quality"])


def survey_count_table(conn: Connection, structure: Structure | str, year: int, k: int | None) -> CountTable:
    """The whole country's count table for ``structure`` and ``year``, suppressed with ``k`` (None: no suppression).

    Suppression runs on the whole table so that every user sees the same
    cells hidden whatever their area (see :mod:`maps.suppression`).

    Example (needs a database)::

        t = survey_count_table(conn, "2025", 2026, k=5)
        t.cell("42", "aspirant")
        # {'count': 137, 'suppressed': False}
    """
    structure = Structure(structure).value
    units: dict[str, dict[str, Any]] = {}
    children: dict[str, list[str]] = defaultdict(list)
    for row in conn.execute(text(COUNTS_SQL), {"structure": structure, "year": year, "tz": TIMEZONE_NAME}).mappings():
        u = dict(row)
        u[ALL_KINDS] = sum(u[kind] for kind in KINDS)
        units[u["code"]] = u
        if u["parent_code"]:
            children[u["parent_code"]].append(u["code"])
    hidden: set[tuple[str, str]] = set()
    if k is not None:
        counts = {(code, kind): u[kind] for code, u in units.items() for kind in MEASURES}
        relations = [((code, ALL_KINDS), [(code, kind) for kind in KINDS]) for code in units]
        relations += [((parent, kind), [(c, kind) for c in kids])
                      for parent, kids in children.items() if parent in units for kind in MEASURES]
        hidden = suppressed_cells(counts, relations, k)
    return CountTable(structure, year, k, units, frozenset(hidden))


def visible_units(conn: Connection, structure: Structure | str, level: str | None, parent: str | None, reader: Reader) -> list[str]:
    """Codes of the units of ``structure`` (at ``level``, under ``parent``) inside the reader's area, by code."""
    sql = f"""SELECT u.code FROM admin_unit u
              WHERE u.structure = :structure
                AND (CAST(:level AS text) IS NULL OR u.level = :level)
                AND (CAST(:parent AS text) IS NULL OR u.parent_code = :parent)
                AND (CAST(:scope_user_id AS uuid) IS NULL OR {scope_condition("u.code", "u.structure")})
              ORDER BY u.code"""
    params = {"structure": Structure(structure).value, "level": level, "parent": parent, **reader.params()}
    return list(conn.execute(text(sql), params).scalars())
