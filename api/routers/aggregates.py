"""Aggregates of survey records: live for officers, from frozen audited releases for leaders and planners."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from api.access import Allow, reader_for
from api.deps import AuthUser, DbConn
from api.schemas import SurveyCounts
from geodata.errors import InvalidInput
from geodata.roles import Role
from geodata.structures import Structure
from maps.periods import Period
from maps.releases import aggregate_view
from maps.survey_counts import MEASURES, SURVEY_COUNTS

router = APIRouter(prefix="/api/v1/aggregates", tags=["aggregates"])

COUNT_READERS = Allow(Role.officer, Role.leader, Role.planner, limit="area")
CountReader = Annotated[AuthUser, Depends(COUNT_READERS)]


@router.get("/survey-counts", response_model=SurveyCounts)
def survey_counts(
    conn: DbConn,
    user: CountReader,
    period: Annotated[str | None, Query(description="2026-10 (a month), 2026-Q3, 2026-H1 or 2026 (Viet Nam time)",
                                        examples=["2026-10"])] = None,
    year: Annotated[int | None, Query(ge=2008, le=2100, description="Same as period=YEAR")] = None,
    structure: Structure = Structure.v2025,
    level: Literal["province", "district", "commune"] | None = None,
    parent: Annotated[str | None, Query(pattern=r"^[0-9]{2,5}$")] = None,
) -> dict:
    """Records collected in a period per unit of your area, by kind and in all.

    Officers get live counts of any period. Leaders and planners get the
    latest release of a closed period (a month by default): counts below k,
    zero included, are ``null`` with ``"suppressed": true``, and further cells
    are hidden so that no hidden count can be narrowed down from what is
    shown; the release never changes, ``release`` says which one it is and
    ``next_release_due`` when the next round comes.
    """
    if (period is None) == (year is None):
        raise InvalidInput("give the period (e.g. period=2026-10) or a year, not both", loc=("query", "period"))
    wanted = Period.parse(period) if period is not None else Period.parse(str(year), loc=("query", "year"))
    view = aggregate_view(conn, SURVEY_COUNTS, user.role, structure, wanted, reader_for(user, COUNT_READERS.limit),
                          level=level, parent=parent)
    release = view.release
    return {
        "structure": view.structure,
        "year": view.period_start.year,
        "period": view.period,
        "period_start": view.period_start,
        "period_end": view.period_end,
        "source": view.source,
        "suppressed_below": view.k,
        "release": None if release is None else {"id": release.id, "revision": release.revision,
                                                 "made_at": release.made_at, "made_by": release.made_by},
        "next_release_due": view.next_release_due,
        "generated_at": view.generated_at,
        "units": [
            {"code": r.unit_code, "name": r.unit_name, "level": r.level, "parent_code": r.parent_code,
             "geom_quality": r.geom_quality} | {m: r.cell(m) for m in MEASURES}
            for r in view.rows
        ],
    }
