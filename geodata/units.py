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


def resolve_codes(conn: Connection, structure: str, given: list[str]) -> dict[str, list[str]]:
    """The units of ``structure`` each given code may mean: itself, or itself zero-padded to a level's width.

    Spreadsheets drop leading zeros ("4" for district "004", "1" for "01"),
    so a code that is not a unit as written is padded to 2, 3 and 5 digits;
    the caller accepts exactly one candidate and refuses none or several.

    Example (needs a database)::

        resolve_codes(conn, "pre2025", ["42", "4", "1"])
        # {'42': ['42'], '4': ['004'], '1': ['01', '001', '00001']}
    """
    candidates = {g: [g] + [g.zfill(w) for w in (2, 3, 5) if g.isdigit() and len(g) < w] for g in given}
    every = sorted({c for cs in candidates.values() for c in cs})
    known = set(conn.execute(text("SELECT code FROM admin_unit WHERE structure = :s AND code = ANY(:codes)"),
                             {"s": structure, "codes": every}).scalars())
    out = {}
    for g, cs in candidates.items():
        out[g] = [g] if g in known else list(dict.fromkeys(c for c in cs[1:] if c in known))
    return out
