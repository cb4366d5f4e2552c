"""Map layers as GeoJSON: target coverage, recruiters, incidents, hot spots.

Each route reads one layer function of :mod:`maps` with the caller's area and,
for roles that see aggregates only, suppressed counts; the tiles, pages and
exports read the same functions.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from api.access import Allow, reader_for
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
from geodata.errors import InvalidInput
from geodata.roles import Role
from geodata.structures import LEVELS, Level, Structure
from maps.coverage import STATUS_LABELS, CoverageLayer, Released, coverage_by_unit, parse_period, survey_coverage_by_unit
from maps.emerging import check_step_range, emerging_hotspots
from maps.hotspots import HotspotRequest, hexagon_geometries, hotspots, parse_dates
from maps.incidents import INCIDENT_COUNTS, IncidentFilter, incident_counts, incident_points
from maps.periods import EXAMPLES, Period
from maps.recruiters import UNREGISTERED_CLUSTER, recruiter_activity, register
from maps.releases import aggregate_view
from maps.suppression import suppression_k

router = APIRouter(prefix="/api/v1/layers", tags=["layers"])

COVERAGE_READERS = Allow(Role.officer, Role.leader, Role.planner, limit="area")
CoverageReader = Annotated[AuthUser, Depends(COVERAGE_READERS)]
ParentQuery = Annotated[str | None, Query(pattern=r"^[0-9]{2,5}$", description="Only the units under this one (and itself)")]


def check_level(structure: Structure, level: Level) -> None:
    if level not in LEVELS[structure]:
        raise InvalidInput(f"the {structure.value} structure has no {level.value} level "
                           f"(levels: {', '.join(x.value for x in LEVELS[structure])})", loc=("query", "level"))


def coverage_features(layer: CoverageLayer, lang: str = "vi") -> list[dict]:
    """The layer's rows as GeoJSON features (the properties of :class:`api.schemas.CoverageProperties`)."""
    out = []
    for r in layer.rows:
        v = r.row.values
        props = {
            "code": r.row.unit_code, "name": r.row.unit_name, "level": r.row.level, "parent_code": r.row.parent_code,
            "geom_quality": r.row.geom_quality, "period": r.row.period,
            "target_lower": v.get("target_lower"), "target_upper": v.get("target_upper"),
            "target_kind": r.target.kind if r.target else None, "target_method": r.target.method if r.target else None,
            "actual": v.get("actual"), "communes_surveyed": v.get("communes_surveyed"), "communes_planned": v.get("communes_planned"),
            "ratio": v.get("ratio"), "suppressed": sorted(r.row.suppressed), "class": r.klass,
            "projected": v.get("projected"), "status": r.status,
            "status_label": STATUS_LABELS[r.status][lang] if r.status else None,
        }
        out.append({"type": "Feature", "id": f"{layer.structure}:{r.row.unit_code}", "geometry": r.geometry, "properties": props})
    return out


def release_ref(release) -> dict:
    return {"id": release.id, "revision": release.revision, "made_at": release.made_at, "made_by": release.made_by}


def coverage_collection(layer: CoverageLayer, view: str, k: int | None, lang: str = "vi") -> dict:
    method = ("actual departures (departure records, by departure date, each placed in the asked structure by its point) "
              "against the target of the period" if view == "departures" else
              "communes with at least one survey record in the period against communes planned")
    return {
        "type": "FeatureCollection", "layer": "coverage", "view": view, "structure": layer.structure, "level": layer.level,
        "period": layer.period.label,
        "classification": {"method": layer.classification.method, "description": layer.classification.description,
                           "classes": [{"label": b.label, "upper": None if math.isinf(b.upper) else b.upper}
                                       for b in layer.classification.classes], "no_data": "no data"},
        "projection": layer.projection, "method": method, "caveats": layer.caveats, "suppressed_below": k,
        "source": layer.source, "released_periods": layer.released_periods,
        "releases": [release_ref(r) for r in layer.releases],
        "features": coverage_features(layer, lang),
    }


@router.get("/coverage", response_model=CoverageCollection, response_model_by_alias=True)
def coverage(
    conn: DbConn,
    user: CoverageReader,
    structure: Structure = Structure.v2025,
    level: Level = Level.province,
    parent: ParentQuery = None,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="A calendar year")] = None,
    half: Annotated[str | None, Query(pattern=r"^[0-9]{4}-[Hh][12]$", description="Or a half-year: 2025-H1, 2025-H2")] = None,
    view: Literal["departures", "surveys"] = "departures",
    classification: Literal["fixed", "quantiles", "natural_breaks"] = "fixed",
    classes: Annotated[int, Query(ge=2, le=9)] = 5,
    geometry: bool = True,
    lang: Literal["vi", "en"] = "vi",
) -> dict:
    """Target coverage per unit: target, actual departures, ratio, class and, this year, the projection and a label.

    ``view=surveys``: communes surveyed against communes planned. Leaders and
    planners get departures summed from the releases of the closed months
    (hidden where any month hid them, and then no ratio); officers get the
    live counts of their area.
    """
    check_level(structure, level)
    period = parse_period(year if half is None else None, half)
    reader = reader_for(user, COVERAGE_READERS.limit)
    k = suppression_k(user.role)
    if view == "surveys":
        if k is not None and level is not Level.province:
            # Whether a commune (or a district's few communes) has any record at all is a small count.
            raise InvalidInput("survey coverage for your role is given per province: a commune's 'surveyed' says it has "
                               "records, which small-count protection hides", loc=("query", "level"))
        layer = survey_coverage_by_unit(conn, structure=structure.value, level=level.value, period=period, reader=reader,
                                        parent=parent, method=classification, classes=classes, with_geometry=geometry)
    else:
        released = Released(user.role, reader) if k is not None else None
        layer = coverage_by_unit(conn, structure=structure.value, level=level.value, period=period, reader=reader, parent=parent,
                                 method=classification, classes=classes, released=released, with_geometry=geometry,
                                 today=dt.date.today())
    return coverage_collection(layer, view, k, lang)


# -- incidents and hot spots -------------------------------------------------------------------
POINT_READERS = Allow(Role.officer, Role.police_analyst, limit="area")
PointReader = Annotated[AuthUser, Depends(POINT_READERS)]
AGGREGATE_READERS = Allow(Role.officer, Role.police_analyst, Role.leader, Role.planner, limit="area")
AggregateReader = Annotated[AuthUser, Depends(AGGREGATE_READERS)]
IncidentType = Literal["illegal_brokerage", "recruitment_fraud", "trafficking", "irregular_departure", "other"]
DateFrom = Annotated[dt.date | None, Query(alias="from", description="First day (default: a year before `to`)")]
DateTo = Annotated[dt.date | None, Query(alias="to", description="Last day (default: today)")]
Types = Annotated[list[IncidentType] | None, Query(description="Incident types (default: all)")]
Statuses = Annotated[list[Literal["reported", "verified", "closed"]] | None, Query(description="Statuses (default: all)")]


def incident_k(role: Role) -> int | None:
    """Incident aggregates are hidden below k for roles that do not see the incidents themselves.

    Police analysts and officers see every incident of their area as a point,
    so counts of them hide nothing from them; leaders and planners get the
    counts suppressed.
    """
    return None if role in (Role.officer, Role.police_analyst) else suppression_k(role)


def unit_geometries(conn, structure: str, codes: list[str]) -> dict[str, dict]:
    import json

    from sqlalchemy import text

    rows = conn.execute(text("SELECT code, ST_AsGeoJSON(geom_web, 5) FROM admin_unit WHERE structure = :s AND code = ANY(:c)"),
                        {"s": structure, "c": codes}).all()
    return {code: json.loads(g) for code, g in rows if g}


@router.get("/incidents", response_model=IncidentCollection)
def incidents(conn: DbConn, user: PointReader, date_from: DateFrom = None, date_to: DateTo = None, types: Types = None,
              statuses: Statuses = None, limit: Annotated[int, Query(ge=1, le=50_000)] = 10_000) -> dict:
    """Incidents of your area, each at its point (or its commune's centre where only the commune was reported)."""
    start, end = parse_dates(date_from, date_to)
    flt = IncidentFilter(start, end, tuple(types or ()), tuple(statuses or ()))
    features = incident_points(conn, flt, reader_for(user, POINT_READERS.limit), limit)
    return {"type": "FeatureCollection", "layer": "incidents", "period": f"{start}/{end}", "numberReturned": len(features),
            "features": features}


@router.get("/incident-counts", response_model=IncidentCountCollection)
def incident_count_layer(conn: DbConn, user: AggregateReader, structure: Structure = Structure.v2025,
                         level: Level = Level.province, parent: ParentQuery = None, date_from: DateFrom = None,
                         date_to: DateTo = None, types: Types = None, statuses: Statuses = None,
                         period: Annotated[str | None, Query(description="Leaders and planners: a released period, e.g. 2026-10")] = None,
                         geometry: bool = True) -> dict:
    """Incidents and persons affected per unit of your area.

    Officers and police analysts (who see the incidents themselves) get live
    counts for any dates, types and statuses; leaders and planners get a
    released period (``period=2026-10``), small counts hidden, from the
    frozen, audited release of that period.
    """
    from sqlalchemy import text

    from geodata.scopes import scope_condition

    check_level(structure, level)
    k = incident_k(user.role)
    reader = reader_for(user, AGGREGATE_READERS.limit)
    release = None
    if k is None:
        start, end = parse_dates(date_from, date_to)
        rows = incident_counts(conn, structure.value, IncidentFilter(start, end, tuple(types or ()), tuple(statuses or ())))
        label = f"{start}/{end}"
    else:
        if date_from or date_to or types or statuses:
            raise InvalidInput("incident counts for your role come from monthly releases: ask for a period such as "
                               f"{EXAMPLES['month']} (period=), without dates, types or statuses", loc=("query", "period"))
        if period is None:
            raise InvalidInput(f"give a released period, e.g. period={EXAMPLES['month']}", loc=("query", "period"))
        if level is not Level.province:
            raise InvalidInput("incident counts for your role are released per province (communes hold too few to show): "
                               "ask for level=province", loc=("query", "level"))
        view = aggregate_view(conn, INCIDENT_COUNTS, user.role, structure, Period.parse(period), reader, level=level.value)
        rows = {r.unit_code: r for r in view.rows}
        release, label = view.release, view.period
    codes = list(conn.execute(text(f"""SELECT u.code FROM admin_unit u WHERE u.structure = :s AND u.level = :l
            AND (CAST(:parent AS text) IS NULL OR u.parent_code = :parent OR u.code = :parent)
            AND (CAST(:scope_user_id AS uuid) IS NULL OR {scope_condition("u.code", "u.structure")}) ORDER BY u.code"""),
        {"s": structure.value, "l": level.value, "parent": parent, **reader.params()}).scalars())
    codes = [c for c in codes if c in rows]
    shapes = unit_geometries(conn, structure.value, codes) if geometry else {}
    features = []
    for code in codes:
        r = rows[code]
        features.append({"type": "Feature", "id": f"{structure.value}:{code}", "geometry": shapes.get(code), "properties": {
            "code": code, "name": r.unit_name, "level": r.level, "parent_code": r.parent_code, "geom_quality": r.geom_quality,
            "period": r.period, "incidents": r.values["incidents"], "persons_affected": r.values["persons_affected"],
            "suppressed": sorted(r.suppressed)}})
    return {"type": "FeatureCollection", "layer": "incident-counts", "structure": structure.value, "level": level.value,
            "period": label, "suppressed_below": k, "source": "live" if k is None else "release",
            "release": None if release is None else release_ref(release),
            "method": "incidents by date of occurrence, each placed in the asked structure by its point (else its commune "
                      "through the crosswalk)" + ("" if k is None else "; counts below k, zero included, hidden by cell "
                                                  "suppression with audited protection intervals (maps.releases)"),
            "features": features}


@router.get("/hotspots", response_model=HotspotCollection)
def hotspot_layer(
    conn: DbConn,
    user: AggregateReader,
    structure: Structure = Structure.v2025,
    level: Level = Level.commune,
    parent: ParentQuery = None,
    date_from: DateFrom = None,
    date_to: DateTo = None,
    types: Types = None,
    permutations: Annotated[int, Query(ge=99, le=9999)] = 999,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 12345,
    view: Literal["units", "hexagons"] = "units",
    hexagon_m: Annotated[int, Query(ge=500, le=100_000, description="Hexagon size in metres (view=hexagons)")] = 5000,
    geometry: bool = True,
) -> dict:
    """Hot and cold spots of incidents: Getis-Ord Gi*, conditional permutations, FDR-corrected (see the answer's method).

    Fewer than 30 units or 30 incidents is refused with 422 saying which filter to widen.
    """
    check_level(structure, level)
    start, end = parse_dates(date_from, date_to)
    req = HotspotRequest(structure.value, level.value, parent, IncidentFilter(start, end, tuple(types or ())), permutations, seed,
                         view, hexagon_m)
    layer = hotspots(conn, req, reader_for(user, AGGREGATE_READERS.limit))
    classes_only = incident_k(user.role) is not None
    shapes = (hexagon_geometries(layer) if view == "hexagons" else unit_geometries(conn, structure.value, [r.code for r in layer.rows])) \
        if geometry else {}
    features = []
    for r in layer.rows:
        # Counts for leaders and planners come only from releases (incident-counts); a hot-spot map is live.
        features.append({"type": "Feature", "id": r.code, "geometry": shapes.get(r.code), "properties": {
            "code": r.code, "name": r.name, "incidents": None if classes_only else r.incidents,
            "rate": None if classes_only else r.rate,
            # z and p are functions of the counts: with the weights, they would give the counts back.
            "z": None if classes_only else round(r.z, 4), "p": None if classes_only else round(r.p, 4),
            "p_fdr": None if classes_only else round(r.p_fdr, 4), "class": r.klass, "geom_quality": r.geom_quality,
            "suppressed": ["incidents"] if classes_only else []}})
    return {"type": "FeatureCollection", "layer": "hotspots", "view": view, "structure": structure.value, "level": level.value,
            "period": f"{start}/{end}", "statistic": layer.statistic, "weights": layer.weights, "inference": layer.inference,
            "permutations": permutations, "seed": seed, "caveats": layer.caveats, "features": features}


@router.get("/emerging-hotspots", response_model=EmergingCollection)
def emerging_layer(
    conn: DbConn,
    user: AggregateReader,
    structure: Structure = Structure.v2025,
    level: Level = Level.commune,
    parent: ParentQuery = None,
    date_from: DateFrom = None,
    date_to: DateTo = None,
    types: Types = None,
    step: Literal["month", "quarter"] = "month",
    permutations: Annotated[int, Query(ge=99, le=9999)] = 499,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 12345,
    geometry: bool = True,
) -> dict:
    """How hot and cold spots developed: Gi* per time step, a Mann-Kendall trend per unit, and a label (rules in the answer)."""
    check_level(structure, level)
    start, end = parse_dates(date_from, date_to)
    check_step_range(start, end)
    layer = emerging_hotspots(conn, structure=structure.value, level=level.value, parent=parent,
                              incidents=IncidentFilter(start, end, tuple(types or ())), step=step,
                              reader=reader_for(user, AGGREGATE_READERS.limit), permutations=permutations, seed=seed)
    classes_only = incident_k(user.role) is not None
    shapes = unit_geometries(conn, structure.value, [r.code for r in layer.rows]) if geometry else {}
    features = [{"type": "Feature", "id": r.code, "geometry": shapes.get(r.code), "properties": {
        "code": r.code, "name": r.name, "label": r.label, "trend_z": None if classes_only else r.trend_z,
        "trend_p": None if classes_only else r.trend_p, "hot_steps": r.hot_steps, "cold_steps": r.cold_steps,
        "final_class": r.final_class, "geom_quality": r.geom_quality}} for r in layer.rows]
    return {"type": "FeatureCollection", "layer": "emerging-hotspots", "structure": structure.value, "level": level.value,
            "step": step, "steps": [f"{a}/{b}" for a, b in layer.steps], "method": layer.method, "caveats": layer.caveats,
            "features": features}


# -- recruiters ------------------------------------------------------------------------------
@router.get("/recruiters", response_model=RecruiterCollection)
def recruiters(conn: DbConn, user: AggregateReader, date_from: DateFrom = None, date_to: DateTo = None) -> dict:
    """The recruiter register at the head offices, with each recruiter's events, communes and flags in your area."""
    import json

    start, end = parse_dates(date_from, date_to)
    activity = recruiter_activity(conn, structure="2025", start=start, end=end, reader=reader_for(user, AGGREGATE_READERS.limit))
    by_key = {a.key: a for a in activity.actors}
    features = []
    for r in register(conn):
        a = by_key.get(r.licence_number)
        features.append({"type": "Feature", "id": r.licence_number, "geometry": json.loads(r.geometry) if r.geometry else None,
                         "properties": {"licence_number": r.licence_number, "name": r.name, "status": r.status,
                                        "valid_from": r.valid_from, "valid_to": r.valid_to, "markets": r.markets,
                                        "events": len(a.events) if a else 0, "communes": len(activity.communes.get(r.licence_number, [])),
                                        "flags": sum(f["flag"] == "licence_not_valid" for f in activity.flags.get(r.licence_number, []))}})
    return {"type": "FeatureCollection", "layer": "recruiters", "period": f"{start}/{end}", "features": features}


@router.get("/recruiter-areas", response_model=ActivityCollection)
def recruiter_areas(conn: DbConn, user: AggregateReader, structure: Structure = Structure.v2025, date_from: DateFrom = None,
                    date_to: DateTo = None) -> dict:
    """Per recruiter (and per unregistered actor): the communes it worked in, its activity area, and flags."""
    start, end = parse_dates(date_from, date_to)
    activity = recruiter_activity(conn, structure=structure.value, start=start, end=end,
                                  reader=reader_for(user, AGGREGATE_READERS.limit))
    features = [{"type": "Feature", "id": a.key, "geometry": activity.areas[a.key], "properties": {
        "actor": a.key, "name": a.name, "licence_number": a.licence_number, "registered": a.registered, "events": len(a.events),
        "attendees": sum(e.attendees or 0 for e in a.events), "communes": activity.communes[a.key],
        "area_method": activity.area_method[a.key], "flags": activity.flags.get(a.key, [])}} for a in activity.actors]
    return {"type": "FeatureCollection", "layer": "recruiter-areas", "structure": structure.value, "period": f"{start}/{end}",
            "method": ("events in the period and your area; communes in the asked structure; activity areas: concave hull of the "
                       "events, or a kernel density core where they are many; flags: events on a day the licence was not valid, "
                       f"events by names not in the register, communes with {UNREGISTERED_CLUSTER} or more unregistered actors"),
            "unregistered_clusters": [{"commune": c, "actors": names} for c, names in sorted(activity.unregistered_clusters.items())],
            "features": features}
