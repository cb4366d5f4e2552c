"""Targets of units: officers set them for their area; officers, leaders and planners read them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query
from sqlalchemy import text

from api.access import OFFICERS, Allow, OfficerUser, reader_for
from api.deps import AuthUser, DbConn
from api.schemas import TargetOut, TargetsStored
from etl.targets import TargetIn, set_targets
from geodata.errors import PermissionDenied
from geodata.roles import Role
from geodata.scopes import scope_condition
from geodata.structures import Structure

router = APIRouter(prefix="/api/v1/targets", tags=["targets"])
READERS = Allow(Role.officer, Role.leader, Role.planner, limit="area")
TargetReader = Annotated[AuthUser, Depends(READERS)]
MAX_TARGETS = 5000

OUTSIDE_SQL = text(f"""
SELECT t.structure, t.unit_code FROM jsonb_to_recordset(CAST(:units AS jsonb)) AS t(structure text, unit_code text)
WHERE NOT {scope_condition("t.unit_code", "t.structure")} LIMIT 1
""")


@router.put("", response_model=TargetsStored)
def put_targets(conn: DbConn, user: OfficerUser,
                body: Annotated[list[TargetIn], Body(max_length=MAX_TARGETS)]) -> dict:
    """Set targets of units of your area (insert or update by unit, structure, year and indicator); all or none."""
    import json

    # Codes are resolved (zero-padded) by set_targets; the area is checked on the codes as stored. The check
    # follows the upsert inside the request's transaction, so a refusal commits nothing.
    inserted, updated = set_targets(conn, body, source="api", who=user.username)
    units = json.dumps([{"structure": t.structure.value, "unit_code": t.unit_code} for t in body])
    outside = conn.execute(OUTSIDE_SQL, {"units": units, **reader_for(user, OFFICERS.limit).params()}).first()
    if outside is not None:
        raise PermissionDenied(f"unit {outside.unit_code} ({outside.structure}) is outside your area; no target was set")
    return {"inserted": inserted, "updated": updated}


@router.get("", response_model=list[TargetOut])
def get_targets(
    conn: DbConn,
    user: TargetReader,
    structure: Structure | None = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    unit: Annotated[str | None, Query(pattern=r"^[0-9]{2,5}$")] = None,
) -> list[dict]:
    """Targets of the units of your area, by structure, unit, year and indicator."""
    rows = conn.execute(text(f"""
        SELECT structure, unit_code, year, indicator, kind, value::float8 AS value, value_max::float8 AS value_max,
               notes, source, updated_by, updated_at
        FROM target t
        WHERE (CAST(:structure AS text) IS NULL OR structure = :structure)
          AND (CAST(:year AS int) IS NULL OR year = :year)
          AND (CAST(:unit AS text) IS NULL OR unit_code = :unit)
          AND (CAST(:scope_user_id AS uuid) IS NULL OR {scope_condition("t.unit_code", "t.structure")})
        ORDER BY structure, unit_code, year, indicator"""),
        {"structure": structure.value if structure else None, "year": year, "unit": unit,
         **reader_for(user, READERS.limit).params()}).mappings()
    return [dict(r) for r in rows]
