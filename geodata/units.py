"""Queries on administrative units: listing, search, one unit as a Feature."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Connection, text

from geodata.locate import structure_on
from geodata.text import fold

PROPERTIES = "structure, code, name, unit_type, level, parent_code, valid_from, valid_to, geom_quality, geom_source"


def current_structure(conn: Connection) -> str:
    """The boundary structure in force today."""
    return structure_on(conn, dt.date.today())


def _feature(row: Any, with_geometry: bool) -> dict[str, Any]:
    props = {k: row._mapping[k] for k in PROPERTIES.split(", ")}
    for k in ("valid_from", "valid_to"):
        props[k] = props[k].isoformat() if props[k] else None
    geometry = json.loads(row.geometry) if with_geometry and row.geometry else None
    return {"type": "Feature", "id": f"{row.structure}:{row.code}", "geometry": geometry, "properties": props}


def list_units(
    conn: Connection,
    *,
    structure: str,
    level: str | None = None,
    parent: str | None = None,
    q: str | None = None,
    geometry: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """Units of ``structure`` as a GeoJSON FeatureCollection, ordered by code.

    ``q`` matches names ignoring diacritics and case ("ha tinh" finds "Hà
    Tĩnh"), or a code prefix when it is all digits. ``geometry`` is ``None``
    (no geometry), ``"web"`` (simplified) or ``"full"``.
    """
    where = ["structure = :structure"]
    params: dict[str, Any] = {"structure": structure, "limit": limit, "offset": offset}
    if level:
        where.append("level = :level")
        params["level"] = level
    if parent:
        where.append("parent_code = :parent")
        params["parent"] = parent
    if q:
        if q.strip().isdigit():
            where.append("code LIKE :code_prefix")
            params["code_prefix"] = q.strip() + "%"
        else:
            where.append("name_folded LIKE '%' || :q || '%'")
            params["q"] = fold(q)
    geom_col = {"web": "geom_web", "full": "geom"}.get(geometry or "")
    select_geom = f", ST_AsGeoJSON({geom_col}, 6) AS geometry" if geom_col else ""
    sql = f"SELECT {PROPERTIES}{select_geom}, count(*) OVER () AS matched FROM admin_unit WHERE {' AND '.join(where)} ORDER BY level <> 'province', code LIMIT :limit OFFSET :offset"
    rows = conn.execute(text(sql), params).all()
    matched = rows[0].matched if rows else conn.execute(
        text(f"SELECT count(*) FROM admin_unit WHERE {' AND '.join(where)}"), params
    ).scalar()
    return {
        "type": "FeatureCollection",
        "numberMatched": matched,
        "numberReturned": len(rows),
        "features": [_feature(r, bool(geom_col)) for r in rows],
    }


def get_unit(conn: Connection, structure: str, code: str, geometry: str = "full") -> dict[str, Any] | None:
    """One unit as a GeoJSON Feature, or None when the code is unknown."""
    geom_col = "geom_web" if geometry == "web" else "geom"
    row = conn.execute(
        text(f"SELECT {PROPERTIES}, ST_AsGeoJSON({geom_col}, 7) AS geometry FROM admin_unit WHERE structure = :s AND code = :c"),
        {"s": structure, "c": code},
    ).first()
    return _feature(row, True) if row else None
