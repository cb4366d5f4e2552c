"""The breakdowns of a periodic report, as datasets that leaders and planners read only through releases.

Departures by market and by the state of the recruiter's licence on the
departure day, returnees by job status, and departures of the priority groups
(poor and near-poor households, ethnic minorities, demobilised soldiers).
Each is counted per commune in SQL, every record placed in the asked
structure as the coverage actuals are (:mod:`maps.placement`), and
registered in :data:`maps.releases.DATASETS`: officers count them live,
everybody else reads the frozen, audited releases. Like departures, they are
released per province only (``levels``): per commune nearly every cell is
below k.

Where a breakdown has a total (``departures``, ``returnees``), the total is
a measure of the same table with ``parts_of``, so that the suppression
protects the parts against it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Connection, text

from geodata.roles import Role
from maps.aggregates import Dataset
from maps.placement import commune_in
from maps.recruiters import licence_valid_sql
from survey.definition import FORM

if TYPE_CHECKING:
    from maps.periods import Period

MARKETS = tuple(c.value for c in FORM.choices["market"])
JOB_STATUSES = (*(c.value for c in FORM.choices["job_status"]), "not_stated")
LICENCE_STATES = ("licence_valid", "licence_not_valid", "not_in_register")
PRIORITY_GROUPS = ("poor", "near_poor", "ethnic_minority", "demobilised_soldier")
KINH = "01"  # the majority group in the GSO code list (survey.definition.ETHNIC_GROUPS): every other code is a minority

_PLACE = commune_in(":structure", "r.structure", "coalesce(r.assigned_commune_code, r.declared_commune_code)", "r.geom")

# (commune, measure, n): the departures of the period (by departure date) per commune and one column of the record.
DEPARTURES_BY_SQL = """
SELECT commune, measure, count(*)::int AS n FROM (
    SELECT {place} AS commune, {measure} AS measure
    FROM survey_record r {join}
    WHERE r.kind = 'departure' AND r.departure_date >= :start AND r.departure_date < :end) placed
WHERE commune IS NOT NULL GROUP BY commune, measure
"""

MARKET_SQL = DEPARTURES_BY_SQL.format(
    place=_PLACE, join="", measure="CASE WHEN r.market = ANY(CAST(:markets AS text[])) THEN r.market ELSE 'OTHER' END")

LICENCE_SQL = DEPARTURES_BY_SQL.format(
    place=_PLACE, join="LEFT JOIN recruiter rc ON rc.licence_number = r.recruiter_licence",
    measure=f"""CASE WHEN rc.licence_number IS NULL THEN 'not_in_register'
                     WHEN {licence_valid_sql("rc", "r.departure_date")} THEN 'licence_valid'
                     ELSE 'licence_not_valid' END""")

# Returnees surveyed in the period (by collection time, Viet Nam), by the job they have now.
RETURNEE_SQL = f"""
SELECT commune, measure, count(*)::int AS n FROM (
    SELECT {_PLACE} AS commune,
           CASE WHEN r.answers->>'job_status' = ANY(CAST(:statuses AS text[])) THEN r.answers->>'job_status'
                ELSE 'not_stated' END AS measure
    FROM survey_record r
    WHERE r.kind = 'returnee' AND r.collected_at >= :starts_at AND r.collected_at < :ends_at) placed
WHERE commune IS NOT NULL GROUP BY commune, measure
"""

# Departures of the period from each priority group (a person may be in several groups: no total).
PRIORITY_SQL = f"""
SELECT commune,
       count(*) FILTER (WHERE household_status = 'poor')::int AS poor,
       count(*) FILTER (WHERE household_status = 'near_poor')::int AS near_poor,
       count(*) FILTER (WHERE ethnicity IS NOT NULL AND ethnicity <> :kinh)::int AS ethnic_minority,
       count(*) FILTER (WHERE demobilised)::int AS demobilised_soldier
FROM (
    SELECT {_PLACE} AS commune, r.answers->>'household_status' AS household_status, r.answers->>'ethnicity' AS ethnicity,
           r.answers->'demobilised_soldier' = 'true'::jsonb AS demobilised
    FROM survey_record r
    WHERE r.kind = 'departure' AND r.departure_date >= :start AND r.departure_date < :end) placed
WHERE commune IS NOT NULL GROUP BY commune
"""


def _by_measure(rows) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for commune, measure, n in rows:
        out.setdefault(commune, {})[measure] = n
    return out


def departures_by_market(conn: Connection, structure: str, period: Period) -> dict[str, dict[str, int]]:
    """Departures per commune and destination market (codes of the form; anything else is OTHER).

    Example (needs a database)::

        departures_by_market(conn, "2025", Period.parse("2026-03"))
        # {'18073': {'JP': 4, 'KR': 1}, ...}
    """
    return _by_measure(conn.execute(text(MARKET_SQL), {"structure": structure, "start": period.start, "end": period.end,
                                                       "markets": list(MARKETS)}))


def departures_by_licence(conn: Connection, structure: str, period: Period) -> dict[str, dict[str, int]]:
    """Departures per commune by the recruiter's licence on the departure day: valid, not valid, not in the register."""
    return _by_measure(conn.execute(text(LICENCE_SQL), {"structure": structure, "start": period.start, "end": period.end}))


def returnees_by_job(conn: Connection, structure: str, period: Period) -> dict[str, dict[str, int]]:
    """Returnees surveyed in the period per commune, by their job status now (``not_stated`` when missing)."""
    return _by_measure(conn.execute(text(RETURNEE_SQL), {"structure": structure, "starts_at": period.starts_at,
                                                         "ends_at": period.ends_at, "statuses": list(JOB_STATUSES)}))


def priority_departures(conn: Connection, structure: str, period: Period) -> dict[str, dict[str, int]]:
    """Departures per commune from poor and near-poor households, ethnic minorities and demobilised soldiers."""
    rows = conn.execute(text(PRIORITY_SQL), {"structure": structure, "start": period.start, "end": period.end, "kinh": KINH})
    return {r.commune: {g: getattr(r, g) for g in PRIORITY_GROUPS} for r in rows}


DEPARTURES_BY_MARKET = Dataset(
    name="departures_by_market",
    measures=(*MARKETS, "departures"),
    parts_of={"departures": MARKETS},
    readers=(Role.leader, Role.planner),
    leaf_counts=departures_by_market,
    levels=("province",),
)

DEPARTURES_BY_LICENCE = Dataset(
    name="departures_by_licence",
    measures=(*LICENCE_STATES, "departures"),
    parts_of={"departures": LICENCE_STATES},
    readers=(Role.leader, Role.planner),
    leaf_counts=departures_by_licence,
    levels=("province",),
)

RETURNEES_BY_JOB = Dataset(
    name="returnees_by_job",
    measures=(*JOB_STATUSES, "returnees"),
    parts_of={"returnees": JOB_STATUSES},
    readers=(Role.leader, Role.planner),
    leaf_counts=returnees_by_job,
    levels=("province",),
)

PRIORITY_DEPARTURES = Dataset(
    name="priority_departures",
    measures=PRIORITY_GROUPS,
    parts_of={},
    readers=(Role.leader, Role.planner),
    leaf_counts=priority_departures,
    levels=("province",),
)

REPORT_DATASETS = (DEPARTURES_BY_MARKET, DEPARTURES_BY_LICENCE, RETURNEES_BY_JOB, PRIORITY_DEPARTURES)
"""The report's breakdowns; :mod:`maps.releases` registers them beside the layers' datasets."""
