"""Hot spots and emerging hot spots as layers. Leaders and planners get the classes only: a live count, or the
z and p that give it back with the weights, would escape the releases."""

from __future__ import annotations

from typing import Annotated, Literal

import shapely
from pydantic import Field
from sqlalchemy import Connection

from geodata.roles import Role
from geodata.structures import Level, Structure
from maps.emerging import check_step_range, emerging_hotspots
from maps.hotspots import HotspotRequest, hexagon_geometries, hotspots
from maps.incidents import incident_k
from maps.sources.base import FieldSpec, LayerSource, Page, Rows, Shape, Viewer, check_level, in_chunks, unit_shapes
from maps.sources.incidents import IncidentDates
from maps.sources.units import ParentCode

READERS = (Role.officer, Role.police_analyst, Role.leader, Role.planner)


class HotspotFilters(IncidentDates):
    structure: Structure = Structure.v2025
    level: Level = Level.commune
    parent: ParentCode = None
    permutations: Annotated[int, Field(ge=99, le=9999)] = 999
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 12345
    view: Literal["units", "hexagons"] = "units"
    hexagon_m: Annotated[int, Field(ge=500, le=100_000, description="Hexagon size in metres (view=hexagons)")] = 5000


FIELDS = (
    FieldSpec("code", "text", "Unit code (or hexagon i:j)"),
    FieldSpec("name", "text", "Name of the unit"),
    FieldSpec("incidents", "integer", "Incidents in the unit (empty where hidden for your role)"),
    FieldSpec("rate", "real", "Empirical Bayes rate per person, where rates were used"),
    FieldSpec("z", "real", "Gi* z-score (officers and police)"),
    FieldSpec("p", "real", "Pseudo p-value from the permutations"),
    FieldSpec("p_fdr", "real", "p-value corrected by Benjamini-Hochberg"),
    FieldSpec("class", "text", "hot_99 ... cold_99, not_significant"),
    FieldSpec("geom_quality", "text", "official or approximate polygon"),
    FieldSpec("suppressed", "json", "Values hidden for your role"),
)


def _geometry(structure: str, shape: Shape, hexagons: dict | None):
    def fetch(c: Connection, ids: list[str]) -> list:
        if hexagons is not None:
            found = [hexagons.get(i) for i in ids] if shape.include else [None] * len(ids)
            if shape.encoding == "wkb":
                return [None if g is None else shapely.to_wkb(shapely.multipolygons([shapely.geometry.shape(g)]))
                        for g in found]
            return found
        shapes = unit_shapes(c, structure, ids, shape)
        return [shapes.get(i) for i in ids]

    return fetch


def open_hotspots(conn: Connection, f: HotspotFilters, viewer: Viewer, shape: Shape, page: Page) -> Rows:
    check_level(f.structure, f.level)
    flt = f.incident_filter()
    req = HotspotRequest(f.structure.value, f.level.value, f.parent, flt, f.permutations,
                         f.seed, f.view, f.hexagon_m)
    layer = hotspots(conn, req, viewer.reader)
    classes_only = incident_k(viewer.role) is not None
    items = [(r.code, {
        "code": r.code, "name": r.name, "incidents": None if classes_only else r.incidents,
        "rate": None if classes_only else r.rate,
        # z and p are functions of the counts: with the weights, they would give the counts back.
        "z": None if classes_only else round(r.z, 4), "p": None if classes_only else round(r.p, 4),
        "p_fdr": None if classes_only else round(r.p_fdr, 4), "class": r.klass, "geom_quality": r.geom_quality,
        "suppressed": ["incidents"] if classes_only else []}, None) for r in layer.rows]
    members = {"layer": "hotspots", "view": f.view, "structure": f.structure.value, "level": f.level.value,
               "period": f"{flt.start}/{flt.end}", "statistic": layer.statistic, "weights": layer.weights,
               "inference": layer.inference, "permutations": f.permutations, "seed": f.seed, "caveats": layer.caveats}
    hexagons = hexagon_geometries(layer) if f.view == "hexagons" else None
    return Rows(members, len(items), in_chunks(FIELDS, items, page, _geometry(f.structure.value, shape, hexagons)))


HOTSPOTS = LayerSource(
    name="hotspots", title="Hot spots of incidents", description="Getis-Ord Gi* on incidents per unit (or hexagon), "
    "conditional permutations, false-discovery-rate corrected classes; leaders and planners get the classes only",
    readers=READERS, limit="area", filters=HotspotFilters, fields=FIELDS, geometry_type="MultiPolygon", opener=open_hotspots)


class EmergingFilters(IncidentDates):
    structure: Structure = Structure.v2025
    level: Level = Level.commune
    parent: ParentCode = None
    step: Literal["month", "quarter"] = "month"
    permutations: Annotated[int, Field(ge=99, le=9999)] = 499
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 12345


EMERGING_FIELDS = (
    FieldSpec("code", "text", "GSO code of the unit"),
    FieldSpec("name", "text", "Name of the unit"),
    FieldSpec("label", "text", "new, consecutive, intensifying, persistent, diminishing, sporadic, oscillating or historical "
                               "hot (or cold) spot, or no pattern"),
    FieldSpec("trend_z", "real", "Mann-Kendall z of the unit's Gi* z-scores over the steps"),
    FieldSpec("trend_p", "real", "Its p-value"),
    FieldSpec("hot_steps", "integer", "Steps in which the unit was hot"),
    FieldSpec("cold_steps", "integer", "Steps in which the unit was cold"),
    FieldSpec("final_class", "text", "hot, cold or not_significant in the last step"),
    FieldSpec("geom_quality", "text", "official or approximate polygon"),
)


def open_emerging(conn: Connection, f: EmergingFilters, viewer: Viewer, shape: Shape, page: Page) -> Rows:
    check_level(f.structure, f.level)
    flt = f.incident_filter()
    check_step_range(flt.start, flt.end)
    layer = emerging_hotspots(conn, structure=f.structure.value, level=f.level.value, parent=f.parent,
                              incidents=flt, step=f.step, reader=viewer.reader,
                              permutations=f.permutations, seed=f.seed)
    classes_only = incident_k(viewer.role) is not None
    items = [(r.code, {"code": r.code, "name": r.name, "label": r.label, "trend_z": None if classes_only else r.trend_z,
                       "trend_p": None if classes_only else r.trend_p, "hot_steps": r.hot_steps, "cold_steps": r.cold_steps,
                       "final_class": r.final_class, "geom_quality": r.geom_quality}, None) for r in layer.rows]
    members = {"layer": "emerging-hotspots", "structure": f.structure.value, "level": f.level.value, "step": f.step,
               "steps": [f"{a}/{b}" for a, b in layer.steps], "method": layer.method, "caveats": layer.caveats}
    return Rows(members, len(items), in_chunks(EMERGING_FIELDS, items, page, _geometry(f.structure.value, shape, None)))


EMERGING = LayerSource(
    name="emerging-hotspots", title="Emerging hot spots", description="How hot and cold spots developed: Gi* per month or "
    "quarter, a Mann-Kendall trend per unit, and a label after ArcGIS's Emerging Hot Spot Analysis",
    readers=READERS, limit="area", filters=EmergingFilters, fields=EMERGING_FIELDS, geometry_type="MultiPolygon",
    opener=open_emerging)
