"""Survey counts per unit, kind and period: the dataset behind the counts leaders and planners read.

For every unit of a boundary structure (commune, district, province), how
many records of each kind were collected in a period, and all kinds
together. A record counts in the commune its GPS point fell in (the declared
commune when the point is in none) and in that commune's ancestors.
Anonymised records still count. Officers get these counts live; leaders and
planners only from releases (:mod:`maps.releases`).
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Connection, text

from geodata.roles import Role
from maps.aggregates import Dataset
from maps.periods import Period
from survey.definition import KINDS

ALL_KINDS = "all"
MEASURES = (*KINDS, ALL_KINDS)

COMMUNE_COUNTS_SQL = """
SELECT coalesce(r.assigned_commune_code, r.declared_commune_code) AS commune, r.kind, count(*)::int AS n
FROM survey_record r
WHERE r.structure = :structure AND r.collected_at >= :starts_at AND r.collected_at < :ends_at
GROUP BY 1, 2
"""


def commune_counts(conn: Connection, structure: str, period: Period) -> dict[str, dict[str, int]]:
    """Records per commune and kind collected in ``period`` (Viet Nam time), in ``structure``.

    Example (needs a database)::

        commune_counts(conn, "2025", Period.parse("2026-10"))
        # {'18073': {'aspirant': 12, 'departure': 3}, ...}
    """
    found: dict[str, dict[str, int]] = defaultdict(dict)
    params = {"structure": structure, "starts_at": period.starts_at, "ends_at": period.ends_at}
    for commune, kind, n in conn.execute(text(COMMUNE_COUNTS_SQL), params):
        found[commune][kind] = n
    return dict(found)


SURVEY_COUNTS = Dataset(
    name="survey_counts",
    measures=MEASURES,
    parts_of={ALL_KINDS: tuple(KINDS)},
    readers=(Role.leader, Role.planner),
    leaf_counts=commune_counts,
)
"""Survey records per unit and kind: ``GET /api/v1/aggregates/survey-counts``; the coverage layer's actual departures."""
