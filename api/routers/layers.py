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
from api.schemas import CoverageCollection
from geodata.errors import InvalidInput
from geodata.roles import Role
from geodata.structures import LEVELS, Level, Structure
from maps.coverage import STATUS_LABELS, CoverageLayer, coverage_by_unit, parse_period, suppressed_departures, survey_coverage_by_unit
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
    planners get departures with small counts hidden (and no ratio where the
    count is hidden); officers get the live counts of their area.
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
        actuals = suppressed_departures(conn, structure.value, period, k) if k is not None else None
        layer = coverage_by_unit(conn, structure=structure.value, level=level.value, period=period, reader=reader, parent=parent,
                                 method=classification, classes=classes, actuals=actuals, with_geometry=geometry,
                                 today=dt.date.today())
    return coverage_collection(layer, view, k, lang)
