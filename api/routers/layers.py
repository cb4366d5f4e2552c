"""Map layers as GeoJSON: target coverage, recruiters, incidents, hot spots.

Each route answers with the rows of one layer of the registry (:mod:`maps.sources`), read with
the caller's role and area; its query parameters are the layer's filters, the same that its
export takes. The tiles, pages, exports and OGC collections read the same layers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Connection

from api.access import layer_rule, viewer_for
from api.deps import AuthUser, DbConn
from api.schemas import (
    ActivityCollection,
    CoverageCollection,
    EmergingCollection,
    HotspotCollection,
    IncidentCollection,
    IncidentCountCollection,
    RecruiterCollection,
)
from maps.sources import ALL, WEB, LayerSource, Page, Rows, Shape
from maps.sources.coverage import COVERAGE, CoverageFilters
from maps.sources.hotspots import EMERGING, HOTSPOTS, EmergingFilters, HotspotFilters
from maps.sources.incidents import INCIDENT_COUNT_LAYER, INCIDENTS, IncidentCountFilters, IncidentFilters
from maps.sources.recruiters import ACTIVITY, REGISTER, ActivityFilters, RecruiterFilters

router = APIRouter(prefix="/api/v1/layers", tags=["layers"])

COVERAGE_READERS = layer_rule(COVERAGE)
POINT_READERS = layer_rule(INCIDENTS)
AGGREGATE_READERS = layer_rule(HOTSPOTS)
CoverageReader = Annotated[AuthUser, Depends(COVERAGE_READERS)]
PointReader = Annotated[AuthUser, Depends(POINT_READERS)]
AggregateReader = Annotated[AuthUser, Depends(AGGREGATE_READERS)]
CountReader = Annotated[AuthUser, Depends(layer_rule(INCIDENT_COUNT_LAYER))]
EmergingReader = Annotated[AuthUser, Depends(layer_rule(EMERGING))]
RegisterReader = Annotated[AuthUser, Depends(layer_rule(REGISTER))]
ActivityReader = Annotated[AuthUser, Depends(layer_rule(ACTIVITY))]
NO_GEOMETRY = Shape(include=False)
Geometry = Annotated[bool, Query(description="Include the polygons (false: properties only)")]


def collection(conn: Connection, rows: Rows) -> dict:
    """A layer's rows as a GeoJSON FeatureCollection with the members its layer says about itself."""
    features = [f for chunk in rows.chunks(conn) for f in chunk.features()]
    return {"type": "FeatureCollection", **rows.members, "features": features}


def read(conn: Connection, source: LayerSource, filters, user: AuthUser, geometry: bool = True, page: Page = ALL) -> dict:
    return collection(conn, source.open(conn, filters, viewer_for(user, source), WEB if geometry else NO_GEOMETRY, page))


@router.get("/coverage", response_model=CoverageCollection, response_model_by_alias=True)
def coverage(conn: DbConn, user: CoverageReader, filters: Annotated[CoverageFilters, Query()], geometry: Geometry = True) -> dict:
    """Target coverage per unit: target, actual departures, ratio, class and, this year, the projection and a label.

    ``view=surveys``: communes surveyed against communes planned. Leaders and
    planners get departures summed from the releases of the closed months
    (hidden where any month hid them, and then no ratio); officers get the
    live counts of their area.
    """
    return read(conn, COVERAGE, filters, user, geometry)


@router.get("/incidents", response_model=IncidentCollection)
def incidents(conn: DbConn, user: PointReader, filters: Annotated[IncidentFilters, Query()],
              limit: Annotated[int, Query(ge=1, le=50_000)] = 10_000) -> dict:
    """Incidents of your area, each at its point (or its commune's centre where only the commune was reported)."""
    answer = read(conn, INCIDENTS, filters, user, page=Page(limit))
    return answer | {"numberReturned": len(answer["features"])}


@router.get("/incident-counts", response_model=IncidentCountCollection)
def incident_count_layer(conn: DbConn, user: CountReader, filters: Annotated[IncidentCountFilters, Query()],
                         geometry: Geometry = True) -> dict:
    """Incidents and persons affected per unit of your area.

    Officers and police analysts (who see the incidents themselves) get live
    counts for any dates, types and statuses; leaders and planners get a
    released period (``period=2026-10``), small counts hidden, from the
    frozen, audited release of that period.
    """
    return read(conn, INCIDENT_COUNT_LAYER, filters, user, geometry)


@router.get("/hotspots", response_model=HotspotCollection)
def hotspot_layer(conn: DbConn, user: AggregateReader, filters: Annotated[HotspotFilters, Query()],
                  geometry: Geometry = True) -> dict:
    """Hot and cold spots of incidents: Getis-Ord Gi*, conditional permutations, FDR-corrected (see the answer's method).

    Fewer than 30 units or 30 incidents is refused with 422 saying which filter to widen.
    """
    return read(conn, HOTSPOTS, filters, user, geometry)


@router.get("/emerging-hotspots", response_model=EmergingCollection)
def emerging_layer(conn: DbConn, user: EmergingReader, filters: Annotated[EmergingFilters, Query()],
                   geometry: Geometry = True) -> dict:
    """How hot and cold spots developed: Gi* per time step, a Mann-Kendall trend per unit, and a label (rules in the answer)."""
    return read(conn, EMERGING, filters, user, geometry)


@router.get("/recruiters", response_model=RecruiterCollection)
def recruiters(conn: DbConn, user: RegisterReader, filters: Annotated[RecruiterFilters, Query()]) -> dict:
    """The recruiter register at the head offices, with each recruiter's events, communes and flags in your area."""
    return read(conn, REGISTER, filters, user)


@router.get("/recruiter-areas", response_model=ActivityCollection)
def recruiter_areas(conn: DbConn, user: ActivityReader, filters: Annotated[ActivityFilters, Query()]) -> dict:
    """Per recruiter (and per unregistered actor): the communes it worked in, its activity area, and flags."""
    return read(conn, ACTIVITY, filters, user)
