"""The map pages: ``/maps/coverage``, ``/maps/hotspots``, ``/maps/recruiters``.

A page is a small public shell (the unit, period and classification pickers,
and sign-in) that fetches its map — a folium page, made for the signed-in
user by the same layer routes as the GeoJSON — with the user's token, and
shows it. Everything a page loads is served by the app: it works on an
intranet without internet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.access import PUBLIC
from api.deps import DbConn
from api.routers import layers
from geodata.structures import Level, Structure
from maps.pages import coverage_map, hotspot_map, recruiter_map

router = APIRouter(prefix="/maps", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")
PAGES = ("coverage", "hotspots", "recruiters")
Lang = Literal["vi", "en"]
TITLES = {"coverage": {"vi": "Tỷ lệ hoàn thành chỉ tiêu", "en": "Target coverage"},
          "hotspots": {"vi": "Điểm nóng vụ việc", "en": "Incident hot spots"},
          "recruiters": {"vi": "Doanh nghiệp và địa bàn hoạt động", "en": "Recruiters and activity areas"}}


def _shell(request: Request, page: str, lang: str) -> HTMLResponse:
    lang = "en" if lang == "en" else "vi"
    return templates.TemplateResponse(request, "maps.html", {"page": page, "lang": lang, "title": TITLES[page][lang],
                                                            "titles": TITLES}, headers={"Cache-Control": "no-cache"})


@router.get("/coverage", response_class=HTMLResponse, dependencies=[Depends(PUBLIC)])
def coverage_page(request: Request, lang: Lang = "vi") -> HTMLResponse:
    """The coverage map page (sign-in and pickers; the map comes from /maps/coverage/frame)."""
    return _shell(request, "coverage", lang)


@router.get("/hotspots", response_class=HTMLResponse, dependencies=[Depends(PUBLIC)])
def hotspots_page(request: Request, lang: Lang = "vi") -> HTMLResponse:
    """The hot-spot map page."""
    return _shell(request, "hotspots", lang)


@router.get("/recruiters", response_class=HTMLResponse, dependencies=[Depends(PUBLIC)])
def recruiters_page(request: Request, lang: Lang = "vi") -> HTMLResponse:
    """The recruiter map page."""
    return _shell(request, "recruiters", lang)


@router.get("/coverage/frame", response_class=HTMLResponse)
def coverage_frame(conn: DbConn, user: layers.CoverageReader, structure: Structure = Structure.v2025,
                   level: Level = Level.province, parent: layers.ParentQuery = None,
                   year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
                   half: Annotated[str | None, Query(pattern=r"^[0-9]{4}-[Hh][12]$")] = None,
                   view: Literal["departures", "surveys"] = "departures",
                   classification: Literal["fixed", "quantiles", "natural_breaks"] = "fixed",
                   classes: Annotated[int, Query(ge=2, le=9)] = 5, lang: Lang = "vi", basemap: bool = False) -> HTMLResponse:
    """The coverage map for the signed-in user (the rows of /api/v1/layers/coverage)."""
    collection = layers.coverage(conn, user, structure, level, parent, year, half, view, classification, classes, True, lang)
    return HTMLResponse(coverage_map(collection, lang, basemap), headers={"Cache-Control": "private, no-cache"})


@router.get("/hotspots/frame", response_class=HTMLResponse)
def hotspots_frame(conn: DbConn, user: layers.AggregateReader, structure: Structure = Structure.v2025,
                   level: Level = Level.commune, parent: layers.ParentQuery = None, date_from: layers.DateFrom = None,
                   date_to: layers.DateTo = None, types: layers.Types = None,
                   permutations: Annotated[int, Query(ge=99, le=9999)] = 999, seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 12345,
                   view: Literal["units", "hexagons"] = "units", hexagon_m: Annotated[int, Query(ge=500, le=100_000)] = 5000,
                   lang: Lang = "vi", basemap: bool = False) -> HTMLResponse:
    """The hot-spot map for the signed-in user (the rows of /api/v1/layers/hotspots)."""
    collection = layers.hotspot_layer(conn, user, structure, level, parent, date_from, date_to, types, permutations, seed, view,
                                      hexagon_m, True)
    return HTMLResponse(hotspot_map(collection, lang, basemap), headers={"Cache-Control": "private, no-cache"})


@router.get("/recruiters/frame", response_class=HTMLResponse)
def recruiters_frame(conn: DbConn, user: layers.AggregateReader, date_from: layers.DateFrom = None, date_to: layers.DateTo = None,
                     lang: Lang = "vi", basemap: bool = False) -> HTMLResponse:
    """The recruiter map for the signed-in user (/api/v1/layers/recruiters and /recruiter-areas)."""
    register = layers.recruiters(conn, user, date_from, date_to)
    areas = layers.recruiter_areas(conn, user, Structure.v2025, date_from, date_to)
    return HTMLResponse(recruiter_map(register, areas, lang, basemap), headers={"Cache-Control": "private, no-cache"})
