"""Incidents: officers and police analysts report them; they are never about a named person."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from api.access import Allow
from api.deps import AuthUser, DbConn
from api.schemas import IncidentCreated
from etl.incidents import IncidentIn, create_incident
from geodata.errors import PermissionDenied
from geodata.roles import Role
from geodata.scopes import scope_condition

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])
REPORTERS = Allow(Role.officer, Role.police_analyst, limit="area")
Reporter = Annotated[AuthUser, Depends(REPORTERS)]


@router.post("", response_model=IncidentCreated, status_code=status.HTTP_201_CREATED)
def report_incident(conn: DbConn, user: Reporter, body: IncidentIn) -> dict:
    """Report an incident in your area (or update one, by its ``incident_id``): type, date, point or commune,
    the number of persons affected, status, source. No names."""
    from sqlalchemy import text

    incident_id = create_incident(conn, body, who=user.username)
    inside = conn.execute(text(f"""SELECT {scope_condition("i.commune_code", "i.structure")} FROM incident i
                                   WHERE i.incident_id = :id"""), {"id": incident_id, "scope_user_id": str(user.id)}).scalar()
    if not inside:
        # Refused inside the request's transaction: nothing is stored.
        raise PermissionDenied("the incident lies outside your area; report it to an officer or analyst of that area")
    return {"incident_id": incident_id}
