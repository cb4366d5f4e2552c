"""The administrative units as a layer (public data): polygons with codes, names, levels and their quality."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from sqlalchemy import Connection, text

from geodata.structures import Level, Structure
from geodata.text import fold
from geodata.units import current_structure
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
    sql_rows,
    where_sql,
)

ParentCode = Annotated[str | None, Field(pattern=r"^[0-9]{2,5}$", description="Only the units under this one (and itself)")]


class UnitFilters(Filters):
    structure: Structure | None = Field(None, description="Boundary structure: 'pre2025' or '2025' (default: the one in force today)")
    level: Level | None = None
    parent: ParentCode = None
    q: Annotated[str | None, Field(min_length=1, max_length=100, description="Name (diacritics and case ignored) or code prefix")] = None


FIELDS = (
    FieldSpec("code", "text", "GSO code of the unit"),
    FieldSpec("name", "text", "Name (Vietnamese)"),
    FieldSpec("unit_type", "text", "tỉnh, thành phố, huyện, quận, thị xã, xã, phường, thị trấn, đặc khu"),
    FieldSpec("level", "text", "province, district or commune"),
    FieldSpec("parent_code", "text", "Code of the parent unit"),
    FieldSpec("structure", "text", "Boundary structure: pre2025 or 2025"),
    FieldSpec("valid_from", "date", "First day of the unit"),
    FieldSpec("valid_to", "date", "Day after its last day (empty: still in force)"),
    FieldSpec("geom_quality", "text", "official, or approximate (Voronoi cells of commune centres)"),
    FieldSpec("geom_source", "text", "Where the polygon comes from"),
)

WHERE = """u.structure = :structure
  AND (CAST(:level AS text) IS NULL OR u.level = :level)
  AND (CAST(:parent AS text) IS NULL OR u.parent_code = :parent OR u.code = :parent)
  AND (CAST(:code_prefix AS text) IS NULL OR u.code LIKE :code_prefix)
  AND (CAST(:folded AS text) IS NULL OR u.name_folded LIKE '%' || :folded || '%')"""


def open_units(conn: Connection, f: UnitFilters, viewer: Viewer, shape: Shape, page: Page, where: Where | None = None) -> Rows:
    structure = f.structure.value if f.structure else current_structure(conn)
    if f.level is not None:
        check_level(Structure(structure), f.level)
    q = (f.q or "").strip()
    params = {"structure": structure, "level": f.level.value if f.level else None, "parent": f.parent,
              "code_prefix": q + "%" if q.isdigit() else None, "folded": fold(q) if q and not q.isdigit() else None}
    column = "u.geom_web" if shape.detail == "web" else "u.geom"
    select = f"""SELECT u.code, u.name, u.unit_type, u.level, u.parent_code, u.structure, u.valid_from, u.valid_to,
                        u.geom_quality, u.geom_source, {geometry_sql(column, shape, 6, multi=True)} AS geometry"""
    if where is None:
        count_sql = f"SELECT count(*) FROM admin_unit u WHERE {WHERE}"
        rows_sql = f"{select} FROM admin_unit u WHERE {WHERE} ORDER BY u.code LIMIT :limit OFFSET :offset"
    else:
        inner = f"{select}, u.structure || ':' || u.code AS _id, u.geom AS _geom FROM admin_unit u WHERE {WHERE}"
        count_sql, rows_sql, where_params = where_sql(inner, FIELDS, where, "ORDER BY x.code")
        params = {**params, **where_params}
    count = conn.execute(text(count_sql), params).scalar_one()
    return sql_rows({"layer": "units", "structure": structure}, count, text(rows_sql), {**params, **page.params()}, FIELDS,
                    ids=lambda code: f"{structure}:{code}")


UNITS = LayerSource(
    name="units", title="Administrative units", description="Provinces, districts (before 2025) and communes of either "
    "boundary structure, with their polygons; approximate communes are marked geom_quality = approximate",
    readers=None, limit="none", filters=UnitFilters, fields=FIELDS, geometry_type="MultiPolygon", opener=open_units,
    sql_where=True)
