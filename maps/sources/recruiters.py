"""Recruiters as layers: the register at its head offices, and each actor's activity area with its flags."""

from __future__ import annotations

import json

import shapely
from sqlalchemy import Connection

from geodata.roles import Role
from geodata.structures import Structure
from maps.hotspots import parse_dates
from maps.recruiters import UNREGISTERED_CLUSTER, recruiter_activity, register
from maps.sources.base import FieldSpec, Filters, LayerSource, Page, Rows, Shape, Viewer, in_chunks
from maps.sources.incidents import DateFrom, DateTo

READERS = (Role.officer, Role.police_analyst, Role.leader, Role.planner)


class RecruiterFilters(Filters):
    date_from: DateFrom = None
    date_to: DateTo = None


REGISTER_FIELDS = (
    FieldSpec("licence_number", "text", "Licence number of the enterprise"),
    FieldSpec("name", "text", "Name of the enterprise"),
    FieldSpec("status", "text", "Licence status"),
    FieldSpec("valid_from", "date", "Licence valid from"),
    FieldSpec("valid_to", "date", "Licence valid to"),
    FieldSpec("markets", "json", "Markets it may send workers to"),
    FieldSpec("events", "integer", "Events in the period and in your area"),
    FieldSpec("communes", "integer", "Communes it worked in (period, area)"),
    FieldSpec("flags", "integer", "Events on a day its licence was not valid"),
)


def _as(geojson: dict | None, shape: Shape, multi: bool) -> object:
    if geojson is None or not shape.include:
        return None
    if shape.encoding == "geojson":
        return geojson
    geometry = shapely.geometry.shape(geojson)
    if multi and geometry.geom_type == "Polygon":
        geometry = shapely.multipolygons([geometry])
    return shapely.to_wkb(geometry)


def open_register(conn: Connection, f: RecruiterFilters, viewer: Viewer, shape: Shape, page: Page) -> Rows:
    start, end = parse_dates(f.date_from, f.date_to)
    activity = recruiter_activity(conn, structure="2025", start=start, end=end, reader=viewer.reader)
    by_key = {a.key: a for a in activity.actors}
    items = []
    for r in register(conn):
        a = by_key.get(r.licence_number)
        items.append((r.licence_number, {
            "licence_number": r.licence_number, "name": r.name, "status": r.status, "valid_from": r.valid_from,
            "valid_to": r.valid_to, "markets": list(r.markets or []), "events": len(a.events) if a else 0,
            "communes": len(activity.communes.get(r.licence_number, [])),
            "flags": sum(x["flag"] == "licence_not_valid" for x in activity.flags.get(r.licence_number, []))},
            _as(json.loads(r.geometry) if r.geometry else None, shape, multi=False)))
    return Rows({"layer": "recruiters", "period": f"{start}/{end}"}, len(items), in_chunks(REGISTER_FIELDS, items, page))


REGISTER = LayerSource(
    name="recruiters", title="Recruiter register", description="Licensed recruitment enterprises at their head offices, "
    "with their events, communes and licence flags in your area", readers=READERS, limit="area", filters=RecruiterFilters,
    fields=REGISTER_FIELDS, geometry_type="Point", opener=open_register)


class ActivityFilters(RecruiterFilters):
    structure: Structure = Structure.v2025


ACTIVITY_FIELDS = (
    FieldSpec("actor", "text", "Licence number, or name:<folded name> for an actor not in the register"),
    FieldSpec("name", "text", "Name"),
    FieldSpec("licence_number", "text", "Licence number (empty: not in the register)"),
    FieldSpec("registered", "boolean", "In the register"),
    FieldSpec("events", "integer", "Events in the period and your area"),
    FieldSpec("attendees", "integer", "Attendees of those events"),
    FieldSpec("communes", "json", "Communes it worked in"),
    FieldSpec("area_method", "text", "How the activity area was drawn"),
    FieldSpec("flags", "json", "Events on a day the licence was not valid, events by names not in the register"),
)


def open_activity(conn: Connection, f: ActivityFilters, viewer: Viewer, shape: Shape, page: Page) -> Rows:
    start, end = parse_dates(f.date_from, f.date_to)
    activity = recruiter_activity(conn, structure=f.structure.value, start=start, end=end, reader=viewer.reader)
    items = [(a.key, {"actor": a.key, "name": a.name, "licence_number": a.licence_number, "registered": a.registered,
                      "events": len(a.events), "attendees": sum(e.attendees or 0 for e in a.events),
                      "communes": activity.communes[a.key], "area_method": activity.area_method[a.key],
                      "flags": activity.flags.get(a.key, [])}, _as(activity.areas[a.key], shape, multi=True))
             for a in activity.actors]
    members = {"layer": "recruiter-areas", "structure": f.structure.value, "period": f"{start}/{end}",
               "method": ("events in the period and your area; communes in the asked structure; activity areas: concave hull of "
                          "the events, or a kernel density core where they are many; flags: events on a day the licence was "
                          "not valid, events by names not in the register, communes with "
                          f"{UNREGISTERED_CLUSTER} or more unregistered actors"),
               "unregistered_clusters": [{"commune": c, "actors": names}
                                         for c, names in sorted(activity.unregistered_clusters.items())]}
    return Rows(members, len(items), in_chunks(ACTIVITY_FIELDS, items, page))


ACTIVITY = LayerSource(
    name="recruiter-areas", title="Recruiter activity areas", description="Per recruiter (and unregistered actor): the "
    "communes it worked in, its activity area, and flags", readers=READERS, limit="area", filters=ActivityFilters,
    fields=ACTIVITY_FIELDS, geometry_type="MultiPolygon", opener=open_activity)
