"""Vector tiles: ``/tiles/{layer}/{z}/{x}/{y}.mvt`` for units, coverage, hot spots and recruiters.

Each tile is cut from the same rows as the layer's GeoJSON route (same roles,
areas and hidden counts), cached in memory, and sent with an ETag: a client
holding the tile gets 304.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from api.access import PUBLIC, reader_for
from api.deps import DbConn
from api.routers.layers import AGGREGATE_READERS, COVERAGE_READERS, AggregateReader, CoverageReader
from geodata.data_versions import versions
from geodata.structures import Level, Structure
from maps.coverage import Released, coverage_by_unit, parse_period
from maps.hotspots import HotspotRequest, hotspots, parse_dates
from maps.incidents import IncidentFilter, incident_k
from maps.recruiters import recruiter_activity, register
from maps.sources.base import check_level
from maps.sources.incidents import IncidentType
from maps.suppression import suppression_k
from maps.tiles import CachedTile, Tile, cache, features_tile, level_for_zoom, rows_tile, units_tile

router = APIRouter(prefix="/tiles", tags=["tiles"])
MVT = "application/vnd.mapbox-vector-tile"
TILE_ANSWER = {200: {"content": {MVT: {}}, "description": "A Mapbox vector tile"}, 304: {"description": "Not modified"}}
Z = Annotated[int, Path(ge=0, le=18)]
XY = Annotated[int, Path(ge=0, le=2**18 - 1)]
# Live layers (an officer's coverage) are recomputed at most this often.
LIVE_SECONDS = 60
DateFrom = Annotated[dt.date | None, Query(alias="from", description="First day (default: a year before `to`)")]
DateTo = Annotated[dt.date | None, Query(alias="to", description="Last day (default: today)")]
Types = Annotated[list[IncidentType] | None, Query(description="Incident types (default: all)")]


def tile_response(request: Request, tile: CachedTile, *, public: bool) -> Response:
    # Compressed when cached; the compression middleware leaves an encoded answer alone. Each encoding has an
    # ETag of its own (RFC 9110: a strong ETag names one representation).
    zipped = "gzip" in request.headers.get("accept-encoding", "") and len(tile.gzipped) < len(tile.data)
    etag = tile.etag[:-1] + '-gzip"' if zipped else tile.etag
    headers = {"ETag": etag, "Cache-Control": f"{'public' if public else 'private'}, max-age={3600 if public else LIVE_SECONDS}",
               "Vary": "Authorization, Accept-Encoding"}
    if etag in (t.strip() for t in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers=headers)
    if zipped:
        return Response(tile.gzipped, media_type=MVT, headers=headers | {"Content-Encoding": "gzip"})
    return Response(tile.data, media_type=MVT, headers=headers)


@router.get("/units/{z}/{x}/{y}.mvt", response_class=Response, responses=TILE_ANSWER, dependencies=[Depends(PUBLIC)])
def units(request: Request, conn: DbConn, z: Z, x: XY, y: XY, structure: Structure = Structure.v2025,
          level: Level | None = None) -> Response:
    """Boundaries of the units (public): provinces when zoomed out, communes when zoomed in (or ``level``)."""
    tile = Tile(z, x, y).check()
    chosen = level.value if level else level_for_zoom(structure.value, z)
    key = ("units", structure.value, chosen, z, x, y, versions(conn, "admin_unit"))
    found = cache.get(key) or cache.put(key, units_tile(conn, tile, structure.value, chosen))
    return tile_response(request, found, public=True)


@router.get("/coverage/{z}/{x}/{y}.mvt", response_class=Response, responses=TILE_ANSWER)
def coverage(request: Request, conn: DbConn, user: CoverageReader, z: Z, x: XY, y: XY,
             structure: Structure = Structure.v2025, level: Level | None = None,
             year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
             half: Annotated[str | None, Query(pattern=r"^[0-9]{4}-[Hh][12]$")] = None,
             classification: Literal["fixed", "quantiles", "natural_breaks"] = "fixed") -> Response:
    """Target coverage per unit (the properties of ``/api/v1/layers/coverage``; hidden counts stay hidden)."""
    tile = Tile(z, x, y).check()
    chosen = level or Level(level_for_zoom(structure.value, z))
    check_level(structure, chosen)
    period = parse_period(year if half is None else None, half)
    reader = reader_for(user, COVERAGE_READERS.limit)
    k = suppression_k(user.role)
    key = ("coverage", reader, k, structure.value, chosen.value, period.label, classification, z, x, y,
           versions(conn, "admin_unit", "target"), int(time.time() // LIVE_SECONDS))
    found = cache.get(key)
    if found is None:
        released = Released(user.role, reader) if k is not None else None
        layer = coverage_by_unit(conn, structure=structure.value, level=chosen.value, period=period, reader=reader, method=classification,
                                 released=released, with_geometry=False, today=dt.date.today())
        rows = {r.row.unit_code: {"name": r.row.unit_name, "class": r.klass, "ratio": r.row.values["ratio"],
                                  "actual": r.row.values["actual"], "target": r.row.values["target_lower"], "status": r.status,
                                  "geom_quality": r.row.geom_quality} for r in layer.rows}
        data = rows_tile(conn, tile, structure.value, "coverage", rows, {"name": "text", "class": "text", "ratio": "float8",
                                                                        "actual": "int", "target": "float8", "status": "text",
                                                                        "geom_quality": "text"})
        found = cache.put(key, data)
    return tile_response(request, found, public=False)


@router.get("/hotspots/{z}/{x}/{y}.mvt", response_class=Response, responses=TILE_ANSWER)
def hotspot_tiles(request: Request, conn: DbConn, user: AggregateReader, z: Z, x: XY, y: XY,
                  structure: Structure = Structure.v2025, level: Level = Level.commune,
                  parent: Annotated[str | None, Query(pattern=r"^[0-9]{2,5}$")] = None, date_from: DateFrom = None,
                  date_to: DateTo = None, types: Types = None, permutations: Annotated[int, Query(ge=99, le=9999)] = 999,
                  seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 12345) -> Response:
    """Hot-spot classes per unit (the rows of ``/api/v1/layers/hotspots``, with the same parameters)."""
    tile = Tile(z, x, y).check()
    check_level(structure, level)
    start, end = parse_dates(date_from, date_to)
    req = HotspotRequest(structure.value, level.value, parent, IncidentFilter(start, end, tuple(types or ())), permutations, seed)
    reader = reader_for(user, AGGREGATE_READERS.limit)
    layer = hotspots(conn, req, reader)  # cached by parameters and data version
    k = incident_k(user.role)
    key = ("hotspots", reader, k, req, z, x, y, versions(conn, "incident", "admin_unit", "unit_population"))
    found = cache.get(key)
    if found is None:
        rows = {r.code: {"name": r.name, "class": r.klass,
                         "incidents": None if k is not None else r.incidents,  # leaders' counts: releases only
                         "z": None if k is not None else round(r.z, 4)} for r in layer.rows}
        found = cache.put(key, rows_tile(conn, tile, structure.value, "hotspots", rows,
                                         {"name": "text", "class": "text", "incidents": "int", "z": "float8"}))
    return tile_response(request, found, public=False)


@router.get("/recruiters/{z}/{x}/{y}.mvt", response_class=Response, responses=TILE_ANSWER)
def recruiter_tiles(request: Request, conn: DbConn, user: AggregateReader, z: Z, x: XY, y: XY,
                    date_from: DateFrom = None, date_to: DateTo = None) -> Response:
    """Two layers: ``recruiters`` (head offices of the register) and ``recruiter_areas`` (activity areas in your area)."""
    import json

    tile = Tile(z, x, y).check()
    start, end = parse_dates(date_from, date_to)
    reader = reader_for(user, AGGREGATE_READERS.limit)
    key = ("recruiters", reader, start, end, z, x, y, versions(conn, "recruiter", "recruitment_event"))
    found = cache.get(key)
    if found is None:
        offices = [{"id": r.licence_number, "geometry": json.loads(r.geometry) if r.geometry else None,
                    "props": {"licence_number": r.licence_number, "name": r.name, "status": r.status}} for r in register(conn)]
        activity = recruiter_activity(conn, structure="2025", start=start, end=end, reader=reader)
        areas = [{"id": a.key, "geometry": activity.areas[a.key], "props": {
            "actor": a.key, "name": a.name, "registered": a.registered, "events": len(a.events),
            "flags": len(activity.flags.get(a.key, []))}} for a in activity.actors]
        data = features_tile(conn, tile, "recruiters", offices, {"licence_number": "text", "name": "text", "status": "text"}) + \
            features_tile(conn, tile, "recruiter_areas", areas, {"actor": "text", "name": "text", "registered": "boolean",
                                                                "events": "int", "flags": "int"})
        found = cache.put(key, data)
    return tile_response(request, found, public=False)
