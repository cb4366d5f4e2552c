"""Departures per unit by departure date, each record placed in the asked structure: the actuals of coverage.

Officers count them live (:func:`departures_by_unit`); leaders and planners
read them from releases (:data:`DEPARTURES`, released and audited like the
survey counts by :mod:`maps.releases`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text

from geodata.roles import Role
from maps.aggregates import Dataset
from maps.placement import ancestors_sql, commune_in

if TYPE_CHECKING:
    from maps.periods import Period

MEASURE = "departures"


def placed_departures_sql(structure_param: str, start: str, end: str) -> str:
    """SQL: (commune, n) of the departures of ``structure_param`` between two dates (departure date, exclusive end)."""
    place = commune_in(structure_param, "r.structure", "coalesce(r.assigned_commune_code, r.declared_commune_code)", "r.geom")
    return f"""SELECT commune, count(*) AS n FROM (
                   SELECT {place} AS commune FROM survey_record r
                   WHERE r.kind = 'departure' AND r.departure_date >= {start} AND r.departure_date < {end}) placed
               WHERE commune IS NOT NULL GROUP BY commune"""


ACTUALS_SQL = f"""
WITH per_commune AS ({placed_departures_sql(":structure", ":start", ":end")}),
up AS ({ancestors_sql(":structure")})
SELECT up.unit, sum(pc.n)::int AS n FROM per_commune pc JOIN up ON up.commune = pc.commune GROUP BY up.unit
"""


def departures_by_unit(conn: Connection, structure: str, start: dt.date, end: dt.date) -> dict[str, int]:
    """Departures per unit (any level) of ``structure`` with a departure date in [start, end): live, for officers."""
    return dict(conn.execute(text(ACTUALS_SQL), {"structure": structure, "start": start, "end": end}).all())


def commune_departures(conn: Connection, structure: str, period: Period) -> dict[str, dict[str, int]]:
    """Departures per commune of ``structure`` in ``period`` (the leaf counts of :data:`DEPARTURES`)."""
    rows = conn.execute(text(placed_departures_sql(":structure", ":start", ":end")),
                        {"structure": structure, "start": period.start, "end": period.end})
    return {commune: {MEASURE: int(n)} for commune, n in rows}


DEPARTURES = Dataset(
    name="departures",
    measures=(MEASURE,),
    parts_of={},
    readers=(Role.leader, Role.planner),
    leaf_counts=commune_departures,
    levels=("province",),
)
"""Departures per unit by departure date: the actuals of the coverage layer for leaders and planners."""
