"""Data-subject rights for officers: export and erase what the area holds about one person.

The person is found by the national ID number the officer types in (sent in
the body, never in the URL, so it stays out of logs); only its keyed hash is
compared. Both routes are audited with the record ids touched.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.access import OFFICERS, OfficerUser, reader_for
from api.deps import AuditedRead, DbConn
from api.schemas import PersonErasure, PersonExport
from geodata.errors import InvalidInput
from survey.subject_rights import erase_person, export_person

router = APIRouter(prefix="/api/v1/subjects", tags=["data-subject rights"])


class Person(BaseModel):
    national_id: str = Field(min_length=9, max_length=12, pattern=r"^[0-9]+$", description="CCCD (12 digits) or CMND (9)")


class Erasure(Person):
    confirm: bool = Field(description="Must be true: erasure cannot be undone")


@router.post("/export", response_model=PersonExport)
def export(conn: DbConn, user: OfficerUser, audit: AuditedRead, body: Person) -> dict:
    """Everything your area holds about the person with this ID: records and quarantined payloads."""
    found = export_person(conn, body.national_id, reader=reader_for(user, OFFICERS.limit))
    audit.log([r["instance_id"] for r in found["records"]] + [f"quarantine:{q['id']}" for q in found["quarantine"]])
    return found


@router.post("/erase", response_model=PersonErasure, responses={422: {"description": "Not confirmed"}})
def erase(conn: DbConn, user: OfficerUser, audit: AuditedRead, body: Erasure) -> dict:
    """Erase the person's personal data held in your area; the records stay as anonymous counts."""
    if not body.confirm:
        raise InvalidInput("set confirm to true: erasure cannot be undone", loc=("body", "confirm"))
    done = erase_person(conn, body.national_id, reader=reader_for(user, OFFICERS.limit))
    audit.log(done["records"] + [f"quarantine:{q}" for q in done["quarantine"]])
    return {"erased_records": done["records"], "erased_quarantine": done["quarantine"]}
