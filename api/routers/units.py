"""Administrative units: list and search, one unit as a GeoJSON Feature."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from api.access import PUBLIC
from api.deps import DbConn
from api.schemas import UnitCollection, UnitFeature
from geodata.errors import InvalidInput, NotFound
from geodata.structures import Level, Structure
from geodata.units import current_structure, get_unit, list_units

router = APIRouter(prefix="/api/v1/units", tags=["units"], dependencies=[Depends(PUBLIC)])

StructureQuery = Annotated[
    Structure | None,
    Query(description="Boundary structure: 'pre2025' or '2025' (default: the one in force today)"),
]


@router.get("", response_model=UnitCollection)
def units(
    conn: DbConn,
    structure: StructureQuery = None,
    level: Level | None = None,
    parent: Annotated[str | None, Query(pattern=r"^[0-9]{2,5}$", description="Code of the parent unit")] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100, description="Name (diacritics and case ignored) or code prefix")] = None,
    geometry: Annotated[Literal["web", "full"] | None, Query(description="Include geometry: simplified ('web') or full")] = None,
    limit: Annotated[int, Query(ge=1, le=20000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    """Units as a GeoJSON FeatureCollection (geometry null unless asked for)."""
    s = structure.value if structure else current_structure(conn)
    if level is Level.district and s == Structure.v2025.value:
        raise InvalidInput("the 2025 structure has no district level (levels: province, commune)", loc=("query", "level"))
    return list_units(conn, structure=s, level=level.value if level else None, parent=parent, q=q, geometry=geometry, limit=limit, offset=offset)


@router.get("/{code}", response_model=UnitFeature)
def unit(
    conn: DbConn,
    code: str,
    structure: StructureQuery = None,
    geometry: Literal["web", "full"] = "full",
) -> dict:
    """One unit as a GeoJSON Feature with its polygon (null where none is known)."""
    s = structure.value if structure else current_structure(conn)
    feature = get_unit(conn, s, code, geometry)
    if feature is None:
        raise NotFound(f"no unit with code {code!r} in the {s} structure")
    return feature
