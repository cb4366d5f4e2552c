"""The audit log, for admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.access import AdminUser
from api.audit import list_audit
from api.deps import DbConn
from api.schemas import AuditEntry

router = APIRouter(prefix="/api/v1/admin/audit", tags=["admin"])


@router.get("", response_model=list[AuditEntry])
def audit_log(
    conn: DbConn,
    admin: AdminUser,
    actor: str | None = None,
    record_id: Annotated[str | None, Query(description="Rows that name this record id")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict]:
    """Who read which personal records, when, through which route, and why (newest first)."""
    return list_audit(conn, actor=actor, record_id=record_id, limit=limit, offset=offset)
