"""Break-glass: an administrator reads one survey record in an emergency, with a reason, audited.

Administrators hold no personal data by default. This route is the one
exception, for cases such as a court order or a data-breach investigation:
it needs a written reason (20 characters or more), returns one record, and
writes an audit row whose purpose starts with ``BREAK-GLASS:`` so that every
such read stands out when the log is reviewed.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.access import AdminUser
from api.audit import record_access
from api.deps import DbConn
from api.schemas import SurveyRecord
from geodata.errors import NotFound
from geodata.scopes import Reader
from survey.records import get_record

router = APIRouter(prefix="/api/v1/admin/break-glass", tags=["admin"])

BREAK_GLASS = "BREAK-GLASS: "


class Justification(BaseModel):
    reason: str = Field(min_length=20, max_length=1000, description="Why this record must be read now (kept in the audit log)")


@router.post("/submissions/{instance_id}", response_model=SurveyRecord)
def read_record(request: Request, conn: DbConn, admin: AdminUser, instance_id: uuid.UUID, body: Justification) -> dict:
    """One survey record, for an administrator, with a written reason; the read is audited."""
    found = get_record(conn, str(instance_id), Reader())  # the one unlimited read, audited below
    if found is None:
        raise NotFound(f"no survey record with instance_id {instance_id}")
    record_access(conn, actor=admin.username, role=admin.role.value, method=request.method, route=request.url.path,
                  purpose=BREAK_GLASS + body.reason.strip(), record_ids=[instance_id])
    return found
