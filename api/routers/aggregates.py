"""Aggregates of survey records for leaders, planners and officers; small counts suppressed."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from api.access import Allow, reader_for
from api.deps import AuthUser, DbConn
from api.schemas import SurveyCounts
from geodata.roles import Role
from geodata.structures import Structure
from maps.suppression import suppression_k
from maps.survey_counts import MEASURES, survey_count_table, visible_units

router = APIRouter(prefix="/api/v1/aggregates", tags=["aggregates"])

COUNT_READERS = Allow(Role.officer, Role.leader, Role.planner, limit="area")
CountReader = Annotated[AuthUser, Depends(COUNT_READERS)]


@router.get("/survey-counts", response_model=SurveyCounts)
def survey_counts(
    conn: DbConn,
    user: CountReader,
    year: Annotated[int, Query(ge=2008, le=2100, description="Calendar year of collection (Viet Nam time)")],
    structure: Structure = Structure.v2025,
    level: Literal["province", "district", "commune"] | None = None,
    parent: Annotated[str | None, Query(pattern=r"^[0-9]{2,5}$")] = None,
) -> dict:
    """Records collected in ``year`` per unit of your area, by kind and in all.

    For leaders and planners, counts from 1 to k-1 are ``null`` with
    ``"suppressed": true``, and further cells are hidden where a hidden one
    could be recovered from a total (complementary suppression). Only single
    years are offered: overlapping periods could be subtracted from each other.
    """
    k = suppression_k(user.role)
    table = survey_count_table(conn, structure, year, k)
    codes = visible_units(conn, structure, level, parent, reader_for(user, COUNT_READERS.limit))
    rows = [table.row(c) for c in codes]
    return {
        "structure": table.structure,
        "year": year,
        "period": str(year),
        "suppressed_below": k,
        "generated_at": dt.datetime.now(dt.UTC),
        "units": [
            {"code": r.unit_code, "name": r.unit_name, "level": r.level, "parent_code": r.parent_code,
             "geom_quality": r.geom_quality} | {m: r.cell(m) for m in MEASURES}
            for r in rows
        ],
    }
