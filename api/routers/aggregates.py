"""Aggregates of survey records for leaders, planners and officers; small counts suppressed."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from api.access import Allow, reader_for
from api.deps import AuthUser, DbConn
from api.security import Role
from geodata.settings import get_settings
from geodata.structures import Structure
from maps.survey_counts import ALL_KINDS, KINDS, survey_count_table, visible_units

router = APIRouter(prefix="/api/v1/aggregates", tags=["aggregates"])

COUNT_READERS = Allow(Role.officer, Role.leader, Role.planner, limit="area")
CountReader = Annotated[AuthUser, Depends(COUNT_READERS)]


def suppression_k(role: Role) -> int | None:
    """The threshold below which counts served to ``role`` are hidden (None: not suppressed).

    Officers see the personal records of their area, so their counts are not
    hidden; every role that sees aggregates only gets them suppressed.
    """
    s = get_settings()
    return {Role.leader: s.suppress_below_leader, Role.planner: s.suppress_below_planner,
            Role.police_analyst: s.suppress_below_police}.get(role)


@router.get("/survey-counts")
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
    return {
        "structure": table.structure,
        "year": year,
        "suppressed_below": k,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "units": [
            {key: table.units[c][key] for key in ("code", "name", "level", "parent_code")}
            | {kind: table.cell(c, kind) for kind in (*KINDS, ALL_KINDS)}
            for c in codes
        ],
    }
