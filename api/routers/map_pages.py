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
from maps.sources.coverage import COVERAGE, CoverageFilters
from maps.sources.hotspots import HOTSPOTS, HotspotFilters
from maps.sources.recruiters import ACTIVITY, REGISTER, ActivityFilters, RecruiterFilters

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
def coverage_frame(conn: DbConn, user: layers.CoverageReader, filters: Annotated[CoverageFilters, Query()],
                   basemap: bool = False) -> HTMLResponse:
    """The coverage map for the signed-in user (the rows of /api/v1/layers/coverage)."""
    collection = layers.read(conn, COVERAGE, filters, user)
    from maps.pages import coverage_map  # folium, imported for the first map page (not held by every server)

    return HTMLResponse(coverage_map(collection, filters.lang, basemap), headers={"Cache-Control": "private, no-cache"})


@router.get("/hotspots/frame", response_class=HTMLResponse)
def hotspots_frame(conn: DbConn, user: layers.AggregateReader, filters: Annotated[HotspotFilters, Query()], lang: Lang = "vi",
                   basemap: bool = False) -> HTMLResponse:
    """The hot-spot map for the signed-in user (the rows of /api/v1/layers/hotspots)."""
    collection = layers.read(conn, HOTSPOTS, filters, user)
    from maps.pages import hotspot_map  # folium, imported for the first map page (not held by every server)

    return HTMLResponse(hotspot_map(collection, lang, basemap), headers={"Cache-Control": "private, no-cache"})


@router.get("/recruiters/frame", response_class=HTMLResponse)
def recruiters_frame(conn: DbConn, user: layers.RegisterReader, filters: Annotated[ActivityFilters, Query()], lang: Lang = "vi",
                     basemap: bool = False) -> HTMLResponse:
    """The recruiter map for the signed-in user (/api/v1/layers/recruiters and /recruiter-areas)."""
    register = layers.read(conn, REGISTER, RecruiterFilters(date_from=filters.date_from, date_to=filters.date_to), user)
    areas = layers.read(conn, ACTIVITY, filters, user)
    from maps.pages import recruiter_map  # folium, imported for the first map page (not held by every server)

    return HTMLResponse(recruiter_map(register, areas, lang, basemap), headers={"Cache-Control": "private, no-cache"})
