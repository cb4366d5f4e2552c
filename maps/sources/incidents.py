"""Incidents as layers: the points (police analysts and officers of the area) and counts per unit (also leaders and
planners, who read them only from releases, small counts hidden)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field
from sqlalchemy import Connection, text

from geodata.errors import InvalidInput
from geodata.roles import Role
from geodata.scopes import scope_condition
from geodata.structures import Level, Structure
from maps.hotspots import parse_dates
from maps.incidents import INCIDENT_COUNTS, POINT_SQL, POINTS_SELECT, POINTS_SQL, IncidentFilter, incident_counts, incident_k
from maps.periods import EXAMPLES, Period
from maps.releases import aggregate_view, last_closed_period
from maps.sources.base import (
    FieldSpec,
    Filters,
    LayerSource,
    Page,
    Rows,
    Shape,
    Viewer,
    Where,
    check_level,
    geometry_sql,
    in_chunks,
    sql_rows,
    unit_shapes,
    where_sql,
)
from maps.sources.units import ParentCode

POINT_READERS = (Role.officer, Role.police_analyst)
COUNT_READERS = (Role.officer, Role.police_analyst, Role.leader, Role.planner)
IncidentType = Literal["illegal_brokerage", "recruitment_fraud", "trafficking", "irregular_departure", "other"]
IncidentStatus = Literal["reported", "verified", "closed"]
DateFrom = Annotated[dt.date | None, Field(alias="from", description="First day (default: a year before `to`)")]
DateTo = Annotated[dt.date | None, Field(alias="to", description="Last day (default: today)")]
Types = Annotated[list[IncidentType] | None, Field(description="Incident types (default: all)")]
Statuses = Annotated[list[IncidentStatus] | None, Field(description="Statuses (default: all)")]


class IncidentDates(Filters):
    """Which incidents: a date range (the last 12 months by default) and types."""

    date_from: DateFrom = None
    date_to: DateTo = None
    types: Types = None

    def incident_filter(self) -> IncidentFilter:
        start, end = parse_dates(self.date_from, self.date_to)
        return IncidentFilter(start, end, tuple(self.types or ()), tuple(getattr(self, "statuses", None) or ()))


class IncidentFilters(IncidentDates):
    statuses: Statuses = None


POINT_FIELDS = (
    FieldSpec("incident_id", "text", "Identifier of the incident"),
    FieldSpec("type", "text", "illegal_brokerage, recruitment_fraud, trafficking, irregular_departure, other"),
    FieldSpec("occurred_on", "date", "Day it happened"),
    FieldSpec("persons_affected", "integer", "How many persons were affected (a count: never a name)"),
    FieldSpec("status", "text", "reported, verified, closed"),
    FieldSpec("source", "text", "Who reported it"),
    FieldSpec("structure", "text", "Boundary structure of its commune"),
    FieldSpec("commune_code", "text", "Its commune"),
    FieldSpec("province_code", "text", "Its province"),
    FieldSpec("commune_name", "text", "Name of its commune"),
    FieldSpec("located_by", "text", "point: reported with a point; commune: only its commune (shown at a point inside it)"),
)


def open_incidents(conn: Connection, f: IncidentFilters, viewer: Viewer, shape: Shape, page: Page, where: Where | None = None) -> Rows:
    flt = f.incident_filter()
    params = {**flt.params(), **viewer.reader.params(), **page.params()}
    if where is None:
        sql = POINTS_SQL.format(geometry=geometry_sql(POINT_SQL, shape, 6))
        count = conn.execute(text(f"SELECT count(*) FROM ({sql}) x"), {**params, "limit": None, "offset": 0}).scalar_one()
    else:
        # The placeholder is followed by "AS geometry": the id and the point come before it.
        inner = POINTS_SELECT.format(geometry=f"i.incident_id AS _id, {POINT_SQL} AS _geom, {geometry_sql(POINT_SQL, shape, 6)}")
        count_sql, sql, where_params = where_sql(inner, POINT_FIELDS, where, "ORDER BY x.occurred_on DESC, x.incident_id")
        params = {**params, **where_params}
        count = conn.execute(text(count_sql), params).scalar_one()

    return sql_rows({"layer": "incidents", "period": f"{flt.start}/{flt.end}"}, count, text(sql), params, POINT_FIELDS)


INCIDENTS = LayerSource(
    name="incidents", title="Incidents", description="Reports of illegal brokerage, recruitment fraud, trafficking and "
    "irregular departure of your area, each at its point (or its commune's): a count of persons affected, never a name",
    readers=POINT_READERS, limit="area", filters=IncidentFilters, fields=POINT_FIELDS, geometry_type="Point",
    opener=open_incidents, temporal="occurred_on", sql_where=True)


class IncidentCountFilters(IncidentFilters):
    structure: Structure = Structure.v2025
    level: Level = Level.province
    parent: ParentCode = None
    period: Annotated[str | None, Field(description="Leaders and planners: a released period, e.g. 2026-10 (default: the "
                                                    "latest released)")] = None


COUNT_FIELDS = (
    FieldSpec("code", "text", "GSO code of the unit"),
    FieldSpec("name", "text", "Name of the unit"),
    FieldSpec("level", "text", "province, district or commune"),
    FieldSpec("parent_code", "text", "Code of the parent unit"),
    FieldSpec("geom_quality", "text", "official or approximate polygon"),
    FieldSpec("period", "text", "Dates or released period counted"),
    FieldSpec("incidents", "integer", "Incidents (empty where hidden)"),
    FieldSpec("persons_affected", "integer", "Persons affected (empty where hidden)"),
    FieldSpec("suppressed", "json", "Values hidden to protect small counts"),
)

UNITS_IN_AREA = f"""SELECT u.code FROM admin_unit u WHERE u.structure = :s AND u.level = :l
    AND (CAST(:parent AS text) IS NULL OR u.parent_code = :parent OR u.code = :parent)
    AND (CAST(:scope_user_id AS uuid) IS NULL OR {scope_condition("u.code", "u.structure")}) ORDER BY u.code"""


def open_incident_counts(conn: Connection, f: IncidentCountFilters, viewer: Viewer, shape: Shape, page: Page) -> Rows:
    check_level(f.structure, f.level)
    k = incident_k(viewer.role)
    release = None
    if k is None:
        flt = f.incident_filter()
        rows = incident_counts(conn, f.structure.value, flt)
        label = f"{flt.start}/{flt.end}"
    else:
        if f.date_from or f.date_to or f.types or f.statuses:
            raise InvalidInput("incident counts for your role come from monthly releases: ask for a period such as "
                               f"{EXAMPLES['month']} (period=), without dates, types or statuses", loc=("query", "period"))
        # No period (a GIS client adding the collection cannot send one): the last period whose release is due.
        period = Period.parse(f.period) if f.period else last_closed_period(dt.datetime.now(dt.UTC))
        if f.level is not Level.province:
            raise InvalidInput("incident counts for your role are released per province (communes hold too few to show): "
                               "ask for level=province", loc=("query", "level"))
        view = aggregate_view(conn, INCIDENT_COUNTS, viewer.role, f.structure, period, viewer.reader,
                              level=f.level.value)
        rows = {r.unit_code: r for r in view.rows}
        release, label = view.release, view.period
    codes = [c for c in conn.execute(text(UNITS_IN_AREA), {"s": f.structure.value, "l": f.level.value, "parent": f.parent,
                                                           **viewer.reader.params()}).scalars() if c in rows]
    items = []
    for code in codes:
        r = rows[code]
        items.append((f"{f.structure.value}:{code}", {
            "code": code, "name": r.unit_name, "level": r.level, "parent_code": r.parent_code, "geom_quality": r.geom_quality,
            "period": r.period, "incidents": r.values["incidents"], "persons_affected": r.values["persons_affected"],
            "suppressed": sorted(r.suppressed)}, None))
    members = {
        "layer": "incident-counts", "structure": f.structure.value, "level": f.level.value, "period": label,
        "suppressed_below": k, "source": "live" if k is None else "release",
        "release": None if release is None else {"id": release.id, "revision": release.revision, "made_at": release.made_at,
                                                  "made_by": release.made_by},
        "method": "incidents by date of occurrence, each placed in the asked structure by its point (else its commune "
                  "through the crosswalk)" + ("" if k is None else "; counts below k, zero included, hidden by cell "
                                              "suppression with audited protection intervals (maps.releases)")}

    def geometry(c: Connection, ids: list[str]) -> list:
        shapes = unit_shapes(c, f.structure.value, [i.split(":")[1] for i in ids], shape)
        return [shapes.get(i.split(":")[1]) for i in ids]

    return Rows(members, len(items), in_chunks(COUNT_FIELDS, items, page, geometry))


INCIDENT_COUNT_LAYER = LayerSource(
    name="incident-counts", title="Incident counts", description="Incidents and persons affected per unit: live for "
    "officers and police analysts, from audited releases (small counts hidden) for leaders and planners",
    readers=COUNT_READERS, limit="area", filters=IncidentCountFilters, fields=COUNT_FIELDS, geometry_type="MultiPolygon",
    opener=open_incident_counts)
