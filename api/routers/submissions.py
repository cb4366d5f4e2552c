"""Survey submissions: single and batch intake, records, review, quarantine, duplicates."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.access import OFFICERS, Allow, OfficerUser, reader_for
from api.deps import AuditedRead, AuthUser, DbConn
from api.schemas import BatchOutcome, QuarantineEntry, SubmissionOutcome, SurveyRecord
from geodata.errors import Conflict, NotFound, TooLarge
from geodata.roles import Role
from geodata.scopes import Reader
from survey.definition import FORM, RecordKind
from survey.ingest import (
    RECORD_FIELDS,
    Incoming,
    Outcome,
    ingest,
    parse_payload,
)
from survey.messages import Lang
from survey.quarantine import QuarantinedForm, list_quarantine, quarantined_form, resolve_quarantine
from survey.records import (
    ReviewStatus,
    get_record,
    list_records,
    readable_duplicates,
    review_record,
)
from survey.schemas import FieldError, in_language, submission_model
from survey.store import Sender

router = APIRouter(prefix="/api/v1", tags=["submissions"])

MAX_BATCH = 1000
# PostgreSQL's bigint: ids and offsets past it are refused as input, never sent to the database.
MAX_ID = MAX_OFFSET = 2**63 - 1
HTTP_STATUS = {"created": 201, "exists": 200, "conflict": 409, "rejected": 422, "forbidden": 403}

SENDERS = Allow(Role.surveyor, Role.officer, limit="own_or_area")
"""Surveyors and officers store records in their area; surveyors read what they sent, officers their area."""
SurveyUser = Annotated[AuthUser, Depends(SENDERS)]


def sender_of(user: AuthUser) -> Sender:
    return Sender(user.username, str(user.id))


SUBMISSION_SCHEMA = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": submission_model(FORM).model_json_schema()}}}
}


def answer_language(request: Request) -> Lang:
    """The language of the messages in an answer: the first of Vietnamese or English in Accept-Language (English
    when neither is there, as API clients expect); the web form asks for its own language."""
    for tag in request.headers.get("accept-language", "").split(","):
        tag = tag.split(";")[0].strip().lower()
        if tag.startswith("vi"):
            return "vi"
        if tag.startswith("en"):
            return "en"
    return "en"


def outcome_body(conn, o: Outcome, reader: Reader, lang: Lang = "en") -> dict:
    """The answer about one submission, built through :class:`~api.schemas.SubmissionOutcome` (its fields only)."""
    body: dict = {"status": o.status, "instance_id": o.instance_id}
    o.errors = in_language(o.errors, lang)
    if o.status == "rejected":
        # FastAPI's validation shape, plus the field/message list the web form shows.
        body |= {"detail": [{"loc": ["body", e["field"]], "msg": e["message"], "type": "value_error"} for e in o.errors],
                 "errors": o.errors, "quarantine_id": o.quarantine_id}
    elif o.status == "forbidden":
        body |= {"detail": "outside your area: kept in quarantine for an officer of that area", "errors": o.errors,
                 "quarantine_id": o.quarantine_id}
    elif o.status == "conflict":
        body["detail"] = f"instance_id {o.instance_id} is already used by a different submission"
    elif o.record is not None:  # created now: the store statement said it all
        body["record"] = o.record | {
            "probable_duplicates": readable_duplicates(conn, o.record["probable_duplicates"], reader)}
    elif (record := get_record(conn, o.instance_id, reader)) is not None:
        body["record"] = {k: record[k] for k in (*RECORD_FIELDS, "review_status")}
    return SubmissionOutcome.model_validate(body).model_dump(mode="json", exclude_unset=True)


def store_one(conn, item: Incoming, source: str, user: AuthUser, lang: Lang = "en") -> tuple[dict, int]:
    """Ingest one payload (blocking database work: run it off the event loop)."""
    (outcome,) = ingest(conn, [item], source=source, sender=sender_of(user))
    return outcome_body(conn, outcome, reader_for(user, SENDERS.limit), lang), HTTP_STATUS[outcome.status]


def store_correction(conn, item: Incoming, entry: QuarantinedForm, user: AuthUser, lang: Lang = "en") -> tuple[dict, int]:
    """Ingest the correction of a quarantined form; close the entry only with a record created from it now.

    The correction keeps the rejected form's instance id, or brings a new one
    (recorded as its successor). An id held by a stored record is never
    taken over: "exists" or "conflict" leave the entry open.
    """
    (outcome,) = ingest(conn, [item], source=f"api-resubmit:{entry.id}", sender=sender_of(user))
    body = outcome_body(conn, outcome, reader_for(user, SENDERS.limit), lang)
    if outcome.status == "created":
        resolve_quarantine(conn, entry.id, outcome.instance_id)
        return body, 201
    if outcome.status in ("exists", "conflict"):
        taken = "is already stored" if outcome.status == "exists" else "is already used by a different submission"
        body = {"status": "conflict", "instance_id": outcome.instance_id, "quarantine_id": entry.id,
                "detail": f"instance_id {outcome.instance_id} {taken}, not by a record made from this correction: "
                          f"quarantined submission {entry.id} stays open. Send the correction with the rejected form's "
                          f"instance_id{f' ({entry.instance_id})' if entry.instance_id else ''} or a new one."}
        return SubmissionOutcome.model_validate(body).model_dump(mode="json", exclude_unset=True), 409
    return body, HTTP_STATUS[outcome.status]


OUTCOMES = {201: {"model": SubmissionOutcome, "description": "Stored"},
            200: {"model": SubmissionOutcome, "description": "Already stored (same payload)"},
            409: {"model": SubmissionOutcome, "description": "instance_id used by another payload"},
            403: {"model": SubmissionOutcome, "description": "Outside your area (kept in quarantine) or not your role"},
            422: {"model": SubmissionOutcome, "description": "Rejected; every failing field listed; kept in quarantine"}}


@router.post("/submissions", openapi_extra=SUBMISSION_SCHEMA, status_code=201, response_model=SubmissionOutcome,
             responses=OUTCOMES)
async def submit(request: Request, conn: DbConn, user: SurveyUser) -> JSONResponse:
    """Store one survey record, idempotently (key: ``instance_id``), in your area (surveyors, officers)."""
    item = parse_payload(await request.body())
    body, status = await run_in_threadpool(store_one, conn, item, "api", user, answer_language(request))
    return JSONResponse(body, status_code=status)


@router.post("/submissions/batch", response_model=BatchOutcome,
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                 "type": "array", "maxItems": MAX_BATCH, "items": submission_model(FORM).model_json_schema()}}}}})
async def submit_batch(request: Request, conn: DbConn, user: SurveyUser) -> JSONResponse:
    """Store up to 1,000 records in your area; one outcome per record, in order."""
    body = parse_payload(await request.body())
    if not isinstance(body.payload, list):
        # Unreadable as a batch: the whole body is kept in the quarantine, as one rejected payload.
        if body.problem is None:
            body.problem = FieldError("body", "the body must be a JSON array of submissions")
        answer, _ = await run_in_threadpool(store_one, conn, body, "api-batch", user, answer_language(request))
        return JSONResponse(answer, status_code=422)
    if len(body.payload) > MAX_BATCH:
        raise TooLarge(f"{len(body.payload)} submissions in one batch; at most {MAX_BATCH}")
    items = [Incoming(json.dumps(p, ensure_ascii=False), p, row_number=i + 1) for i, p in enumerate(body.payload)]
    lang = answer_language(request)

    def store_all() -> tuple[list[Outcome], list[dict]]:
        outcomes = ingest(conn, items, source="api-batch", sender=sender_of(user))
        reader = reader_for(user, SENDERS.limit)
        return outcomes, [outcome_body(conn, o, reader, lang) | {"index": o.row_number - 1} for o in outcomes]

    outcomes, results = await run_in_threadpool(store_all)
    counts = {s: sum(o.status == s for o in outcomes) for s in HTTP_STATUS}
    return JSONResponse(BatchOutcome.model_validate({"counts": counts, "results": results}).model_dump(mode="json", exclude_unset=True))


@router.get("/submissions", response_model=list[SurveyRecord])
def records(
    conn: DbConn,
    user: SurveyUser,
    audit: AuditedRead,
    review_status: ReviewStatus | None = None,
    kind: RecordKind | None = None,
    commune: Annotated[str | None, Query(pattern=r"^[0-9]{5}$")] = None,
    duplicates_only: bool = False,
    flagged_only: Annotated[bool, Query(description="Only records flagged for review: coarse or mock GPS, a point "
                                                   "outside the declared commune, or no point (location_missing_reason)")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict]:
    """Stored records, newest first: an officer's area, or what a surveyor sent (personal data: purpose required, audited)."""
    found = list_records(conn, review_status=review_status, kind=kind, commune=commune, duplicates_only=duplicates_only,
                         flagged_only=flagged_only, limit=limit, offset=offset, reader=reader_for(user, SENDERS.limit))
    audit.log(r["instance_id"] for r in found)
    return found


@router.get("/submissions/{instance_id}", response_model=SurveyRecord)
def record(conn: DbConn, user: SurveyUser, audit: AuditedRead, instance_id: str) -> dict:
    """One stored record with its flags, review state and probable duplicates (purpose required, audited).

    404 as well for a record outside your area (or, for a surveyor, one you did not send).
    """
    found = get_record(conn, instance_id, reader_for(user, SENDERS.limit)) if _is_uuid(instance_id) else None
    if found is None:
        raise NotFound(f"no survey record with instance_id {instance_id!r}")
    audit.log([instance_id])
    return found


class Review(BaseModel):
    status: ReviewStatus
    comment: str | None = Field(default=None, max_length=2000)


@router.post("/submissions/{instance_id}/review", response_model=SurveyRecord)
def review(conn: DbConn, user: OfficerUser, audit: AuditedRead, instance_id: str, body: Review) -> dict:
    """Move a record of your area through review: received, approved, has issues, rejected (returns the record: audited)."""
    reader = reader_for(user, OFFICERS.limit)
    if not _is_uuid(instance_id) or not review_record(conn, instance_id, body.status, body.comment, user.username, reader):
        raise NotFound(f"no survey record with instance_id {instance_id!r}")
    audit.log([instance_id])
    return get_record(conn, instance_id, reader)


@router.get("/quarantine", response_model=list[QuarantineEntry])
def quarantine(
    conn: DbConn,
    user: SurveyUser,
    audit: AuditedRead,
    status: Literal["open", "resubmitted", "dismissed"] = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[dict]:
    """Rejected payloads, verbatim, with the reasons: those you sent (surveyors) or those of your area (officers).

    Personal data: purpose required, audited.
    """
    found = list_quarantine(conn, status, limit, offset, reader_for(user, SENDERS.limit))
    audit.log(f"quarantine:{q['id']}" for q in found)
    return found


@router.post("/quarantine/{quarantine_id}/resubmit", openapi_extra=SUBMISSION_SCHEMA, response_model=SubmissionOutcome,
             responses=OUTCOMES)
async def resubmit(request: Request, conn: DbConn, user: SurveyUser,
                   quarantine_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> JSONResponse:
    """Submit the correction of a quarantined form (one you sent, or, for officers, one of your area).

    The correction must pass validation and keep the rejected form's
    ``instance_id`` (or bring a new one, recorded as its successor). The entry
    is closed only when a record is created from the correction; an
    ``instance_id`` that another stored record holds gets 409, and the entry
    stays open.
    """
    entry = quarantined_form(conn, quarantine_id, reader_for(user, SENDERS.limit))
    if entry is None:
        raise NotFound(f"no quarantined submission {quarantine_id}")
    if entry.status != "open":
        resolved = f" by record {entry.resolved_instance_id}" if entry.resolved_instance_id else ""
        raise Conflict(f"quarantined submission {quarantine_id} is already {entry.status}{resolved}")
    item = parse_payload(await request.body())
    body, status = await run_in_threadpool(store_correction, conn, item, entry, user, answer_language(request))
    return JSONResponse(body, status_code=status)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
        return True
    except ValueError:
        return False
