"""The incidents layer: points for the police and officers of the area, aggregates for everyone else.

Incidents hold no name, only a count of persons affected; still, where they
are is enforcement information. Police analysts and officers see each
incident of their area (its point, or its commune's when only the commune
was reported); leaders and planners see counts per unit, small ones hidden.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text

from geodata.roles import Role
from geodata.scopes import scope_condition
from maps.aggregates import AggregateRow, Dataset
from maps.placement import ancestors_sql, commune_in
from maps.suppression import suppression_k

if TYPE_CHECKING:
    from maps.periods import Period


@dataclass(frozen=True)
class IncidentFilter:
    """Which incidents a layer shows: a date range (inclusive), types, statuses."""

    start: dt.date
    end: dt.date
    types: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()

    def params(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "types": list(self.types) or None, "statuses": list(self.statuses) or None}


FILTER_SQL = """i.occurred_on BETWEEN :start AND :end
  AND (CAST(:types AS text[]) IS NULL OR i.type = ANY(CAST(:types AS text[])))
  AND (CAST(:statuses AS text[]) IS NULL OR i.status = ANY(CAST(:statuses AS text[])))"""

POINTS_SQL = f"""
SELECT i.incident_id, i.type, i.occurred_on, i.persons_affected, i.status, i.source, i.structure, i.commune_code,
       i.province_code, c.name AS commune_name, CASE WHEN i.geom IS NOT NULL THEN 'point' ELSE 'commune' END AS located_by,
       {{geometry}} AS geometry
FROM incident i
LEFT JOIN admin_unit c ON c.structure = i.structure AND c.code = i.commune_code
WHERE {FILTER_SQL}
  AND (CAST(:scope_user_id AS uuid) IS NULL OR {scope_condition("i.commune_code", "i.structure")})
ORDER BY i.occurred_on DESC, i.incident_id
LIMIT :limit OFFSET :offset
"""
"""Incidents of the reader's area, newest first (``:limit`` NULL for all, after ``:offset``); ``{geometry}`` is the SQL of the
point (``POINT_SQL``) as the caller wants it: each at its point, or its commune's where none was reported."""

POINT_SQL = "coalesce(i.geom, ST_PointOnSurface(c.geom))"


def incident_k(role: Role) -> int | None:
    """Incident aggregates are hidden below k for roles that do not see the incidents themselves.

    Police analysts and officers see every incident of their area as a point,
    so counts of them hide nothing from them; leaders and planners get the
    counts suppressed.

    >>> incident_k(Role.police_analyst) is None, incident_k(Role.leader)
    (True, 5)
    """
    return None if role in (Role.officer, Role.police_analyst) else suppression_k(role)


PLACED_COUNTS_SQL = f"""
SELECT commune, count(*)::int AS incidents, coalesce(sum(persons_affected), 0)::int AS persons_affected
FROM (SELECT {commune_in(":structure", "i.structure", "i.commune_code", "i.geom")} AS commune, i.persons_affected
      FROM incident i WHERE {FILTER_SQL}) placed
WHERE commune IS NOT NULL GROUP BY commune
"""

COUNTS_SQL = f"""
WITH per_commune AS ({PLACED_COUNTS_SQL}),
up AS ({ancestors_sql(":structure")})
SELECT u.code, u.name, u.level, u.parent_code, u.geom_quality,
       coalesce(sum(pc.incidents), 0)::int AS incidents, coalesce(sum(pc.persons_affected), 0)::int AS persons_affected
FROM admin_unit u
LEFT JOIN up ON up.unit = u.code
LEFT JOIN per_commune pc ON pc.commune = up.commune
WHERE u.structure = :structure
GROUP BY u.code, u.name, u.level, u.parent_code, u.geom_quality
"""

MEASURES = ("incidents", "persons_affected")


def incident_counts(conn: Connection, structure: str, flt: IncidentFilter) -> dict[str, AggregateRow]:
    """Incidents and persons affected per unit of the whole ``structure`` (every level), live: for officers and police.

    Leaders and planners read :data:`INCIDENT_COUNTS` from releases instead.
    """
    rows = conn.execute(text(COUNTS_SQL), {"structure": structure, **flt.params()}).all()
    period = f"{flt.start.isoformat()}/{flt.end.isoformat()}"
    return {r.code: AggregateRow(r.code, r.name, r.level, r.parent_code, structure, period,
                                 {m: getattr(r, m) for m in MEASURES}, frozenset(), r.geom_quality) for r in rows}


def commune_incidents(conn: Connection, structure: str, period: Period) -> dict[str, dict[str, int]]:
    """Incidents and persons affected per commune of ``structure`` in ``period`` (the leaf counts of :data:`INCIDENT_COUNTS`)."""
    flt = IncidentFilter(period.start, period.end - dt.timedelta(days=1))
    rows = conn.execute(text(PLACED_COUNTS_SQL), {"structure": structure, **flt.params()})
    return {r.commune: {"incidents": r.incidents, "persons_affected": r.persons_affected} for r in rows}


INCIDENT_COUNTS = Dataset(
    name="incident_counts",
    measures=MEASURES,
    parts_of={},
    readers=(Role.leader, Role.planner),
    leaf_counts=commune_incidents,
    levels=("province",),
)
"""Incidents and persons affected per unit and period: what leaders and planners see of incidents, from releases."""
