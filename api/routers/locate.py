"""Which units cover a point on a date."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.access import PUBLIC
from api.deps import DbConn
from api.schemas import Location
from geodata.errors import NotFound
from geodata.locate import locate

router = APIRouter(prefix="/api/v1", tags=["locate"], dependencies=[Depends(PUBLIC)])


@router.get("/locate", response_model=Location,
            responses={404: {"description": "No unit covers the point (outside Vietnam, at sea), or no structure is valid on the date"}})
def locate_point(
    conn: DbConn,
    lon: Annotated[float, Query(ge=-180, le=180, description="Longitude, WGS 84 degrees")],
    lat: Annotated[float, Query(ge=-90, le=90, description="Latitude, WGS 84 degrees")],
    date: Annotated[dt.date | None, Query(description="Date whose boundary structure applies (default: today)")] = None,
) -> dict:
    """Province, district (pre-2025 only) and commune covering the point.

    A point on a shared border gets one answer (the lower code). 404 when no
    unit covers the point, or no boundary structure is valid on the date.
    """
    loc = locate(conn, lon, lat, date)
    if not loc.found:
        raise NotFound(
            f"no administrative unit of the {loc.structure} structure covers lon={lon}, lat={lat} "
            "(outside Vietnam, at sea, or in an area without loaded boundaries)"
        )
    return asdict(loc)
