"""Target coverage as a layer: per unit the target, the actual departures, the ratio, its class and the projection.

Leaders and planners get actuals summed from releases (:class:`maps.coverage.Released`),
officers live counts of their area: :func:`maps.coverage.coverage_by_unit` decides,
this module only turns its rows into a layer.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Literal

from pydantic import Field
from sqlalchemy import Connection

from geodata.errors import InvalidInput
from geodata.roles import Role
from geodata.structures import Level, Structure
from geodata.vietnam import VIETNAM_TZ
from maps.coverage import STATUS_LABELS, CoverageLayer, Released, coverage_by_unit, parse_period, survey_coverage_by_unit
from maps.sources.base import FieldSpec, Filters, LayerSource, Page, Rows, Shape, Viewer, check_level, in_chunks, unit_shapes
from maps.sources.units import ParentCode
from maps.suppression import suppression_k

READERS = (Role.officer, Role.leader, Role.planner)


class CoverageFilters(Filters):
    structure: Structure = Structure.v2025
    level: Level = Level.province
    parent: ParentCode = None
    year: Annotated[int | None, Field(ge=2000, le=2100, description="A calendar year (default: this year, Viet Nam time, "
                                                                    "when no half-year is given either)")] = None
    half: Annotated[str | None, Field(pattern=r"^[0-9]{4}-[Hh][12]$", description="Or a half-year: 2025-H1, 2025-H2")] = None
    view: Literal["departures", "surveys"] = "departures"
    classification: Literal["fixed", "quantiles", "natural_breaks"] = "fixed"
    classes: Annotated[int, Field(ge=2, le=9)] = 5
    lang: Literal["vi", "en"] = "vi"


FIELDS = (
    FieldSpec("code", "text", "GSO code of the unit"),
    FieldSpec("name", "text", "Name of the unit"),
    FieldSpec("level", "text", "province, district or commune"),
    FieldSpec("parent_code", "text", "Code of the parent unit"),
    FieldSpec("geom_quality", "text", "official or approximate polygon"),
    FieldSpec("period", "text", "The year or half-year"),
    FieldSpec("target_lower", "real", "The target for the period (its lower bound for a range or a minimum)"),
    FieldSpec("target_upper", "real", "Upper bound of a target range"),
    FieldSpec("target_kind", "text", "absolute, minimum, growth_percent"),
    FieldSpec("target_method", "text", "'own', or how the target was carried from the other structure"),
    FieldSpec("actual", "integer", "Departures in the period (empty where hidden: see suppressed)"),
    FieldSpec("communes_surveyed", "integer", "Communes with a survey record in the period (view surveys)"),
    FieldSpec("communes_planned", "integer", "Communes planned (view surveys)"),
    FieldSpec("ratio", "real", "actual / target_lower"),
    FieldSpec("suppressed", "json", "Values hidden to protect small counts"),
    FieldSpec("class", "text", "Class of the ratio"),
    FieldSpec("projected", "real", "Projected total of the current year"),
    FieldSpec("status", "text", "on_track, at_risk, off_track"),
    FieldSpec("status_label", "text", "The status in words"),
)


def _members(layer: CoverageLayer, view: str, k: int | None) -> dict:
    method = ("actual departures (departure records, by departure date, each placed in the asked structure by its point) "
              "against the target of the period" if view == "departures" else
              "communes with at least one survey record in the period against communes planned")
    return {
        "layer": "coverage", "view": view, "structure": layer.structure, "level": layer.level, "period": layer.period.label,
        "classification": {"method": layer.classification.method, "description": layer.classification.description,
                           "classes": [{"label": b.label, "upper": None if math.isinf(b.upper) else b.upper}
                                       for b in layer.classification.classes], "no_data": "no data"},
        "projection": layer.projection, "method": method, "caveats": layer.caveats, "suppressed_below": k,
        "source": layer.source, "released_periods": layer.released_periods,
        "releases": [{"id": r.id, "revision": r.revision, "made_at": r.made_at, "made_by": r.made_by} for r in layer.releases],
    }


def open_coverage(conn: Connection, f: CoverageFilters, viewer: Viewer, shape: Shape, page: Page) -> Rows:
    check_level(f.structure, f.level)
    # A GIS client adding the collection sends no year (QGIS's OGC API provider cannot): this year, then.
    year = f.year if f.year is not None or f.half is not None else dt.datetime.now(VIETNAM_TZ).year
    period = parse_period(year if f.half is None else None, f.half)
    k = suppression_k(viewer.role)
    web = shape.include and shape.encoding == "geojson" and shape.detail == "web"
    common = {"structure": f.structure.value, "level": f.level.value, "period": period, "reader": viewer.reader,
              "parent": f.parent, "method": f.classification, "classes": f.classes, "with_geometry": web}
    if f.view == "surveys":
        if k is not None and f.level is not Level.province:
            # Whether a commune (or a district's few communes) has any record at all is a small count.
            raise InvalidInput("survey coverage for your role is given per province: a commune's 'surveyed' says it has "
                               "records, which small-count protection hides", loc=("query", "level"))
        layer = survey_coverage_by_unit(conn, **common)
    else:
        released = Released(viewer.role, viewer.reader) if k is not None else None
        layer = coverage_by_unit(conn, **common, released=released, today=dt.date.today())
    items = []
    for r in layer.rows:
        v = r.row.values
        items.append((f"{layer.structure}:{r.row.unit_code}", {
            "code": r.row.unit_code, "name": r.row.unit_name, "level": r.row.level, "parent_code": r.row.parent_code,
            "geom_quality": r.row.geom_quality, "period": r.row.period,
            "target_lower": v.get("target_lower"), "target_upper": v.get("target_upper"),
            "target_kind": r.target.kind if r.target else None, "target_method": r.target.method if r.target else None,
            "actual": v.get("actual"), "communes_surveyed": v.get("communes_surveyed"), "communes_planned": v.get("communes_planned"),
            "ratio": v.get("ratio"), "suppressed": sorted(r.row.suppressed), "class": r.klass,
            "projected": v.get("projected"), "status": r.status,
            "status_label": STATUS_LABELS[r.status][f.lang] if r.status else None,
        }, r.geometry))
    fetch = None if web or not shape.include else \
        (lambda c, ids: [unit_shapes(c, layer.structure, [i.split(":")[1] for i in ids], shape).get(i.split(":")[1]) for i in ids])
    return Rows(_members(layer, f.view, k), len(items), in_chunks(FIELDS, items, page, fetch))


COVERAGE = LayerSource(
    name="coverage", title="Target coverage", description="Per unit: the target of the period, actual departures (for "
    "leaders and planners summed from releases, small counts hidden), the ratio, its class and the projection",
    readers=READERS, limit="area", filters=CoverageFilters, fields=FIELDS, geometry_type="MultiPolygon", opener=open_coverage)
