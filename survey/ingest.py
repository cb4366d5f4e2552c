"""Idempotent ingest of survey submissions.

One path for every channel (API, batch, OpenRosa, web form): each payload is
validated against the form definition; the survivors go to PostGIS in one
set-based statement (:mod:`survey.store`) that checks the declared commune and
the sender's area, assigns the commune covering the GPS point at the
collection date, flags mismatches, inserts (keyed by the client's
``instance_id``) and links probable duplicates. Every rejected payload goes to
the quarantine with its reasons.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, text

from geodata.vietnam import VIETNAM_TZ
from survey.definition import FORM, FormDefinition
from survey.identity import national_id_hash
from survey.quarantine import Rejected, canonical_json, quarantine_rows
from survey.schemas import FieldError, validate_submission
from survey.store import Sender, commune_problems, store_rows

Status = Literal["created", "exists", "conflict", "rejected", "forbidden"]

# Answers kept in their own columns (used by SQL: duplicates, maps, reports);
# everything else the form asks goes to the ``answers`` JSON column.
COLUMNS = ("full_name", "birth_year", "sex", "departure_date", "market", "recruiter_licence")
NOT_IN_ANSWERS = {"instance_id", "kind", "collected_at", "surveyor", "consent", "commune_code", "location",
                  "mock_location", "national_id", *COLUMNS}


_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKETS = re.compile(r"[\[\]{}]")
MAX_DEPTH = 16
"""How deeply a submission may nest (a record is two levels deep; hostile bodies go to 100,000)."""


@dataclass
class Incoming:
    """A payload as received: its text (kept verbatim if rejected), parsed value, and why it cannot be read."""

    text: str
    payload: Any
    row_number: int | None = None
    problem: FieldError | None = None


@dataclass
class Outcome:
    status: Status
    instance_id: str | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    quarantine_id: int | None = None
    row_number: int | None = None
    record: dict[str, Any] | None = None  # what the sender is told about a record created now


def parse_payload(body: bytes | str) -> Incoming:
    """Decode a JSON body; one that cannot be read is still kept (as text) for the quarantine, with the reason.

    >>> parse_payload(b'{"kind": "aspirant"}').payload
    {'kind': 'aspirant'}
    >>> parse_payload('{"full_name": "Lê"}'.encode("latin-1")).problem.message
    'not valid UTF-8: byte 0xea at position 16 (send the body in UTF-8)'
    >>> parse_payload(b"[" * 100_000).problem.message
    'nested more than 16 levels deep'
    """
    if isinstance(body, bytes):
        try:
            text_ = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            # Refused, not repaired: a replaced character would be stored as if the sender had typed it.
            return Incoming(body.decode("utf-8", "backslashreplace"), None, problem=FieldError(
                "body", f"not valid UTF-8: byte 0x{body[exc.start]:02x} at position {exc.start} (send the body in UTF-8)"))
    else:
        text_ = body
    if json_depth(text_) > MAX_DEPTH:
        return Incoming(text_, None, problem=FieldError("body", f"nested more than {MAX_DEPTH} levels deep"))
    try:
        payload = json.loads(text_)
    except ValueError as exc:
        return Incoming(text_, None, problem=FieldError("body", f"not valid JSON: {exc}"))
    return Incoming(text_, payload)


def json_depth(text_: str, limit: int = MAX_DEPTH) -> int:
    """How deeply ``text_`` nests arrays and objects, counted up to ``limit + 1`` (strings are skipped).

    Checked before parsing: Python's parser recurses, and 100,000 levels exhaust its stack.

    >>> json_depth('{"a": [1, {"b": "[[["}]}')
    3
    """
    depth = deepest = 0
    for bracket in _BRACKETS.finditer(_STRINGS.sub("", text_)):
        if bracket.group() in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


def to_row(clean: dict[str, Any], *, n: int, source: str, defn: FormDefinition) -> dict[str, Any]:
    """The database row of a valid submission (no national ID in clear)."""
    point = clean.get("location")  # None: no GPS, and the reason is in the answers
    answers = {k: (v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v) for k, v in clean.items() if k not in NOT_IN_ANSWERS}
    return {
        "n": n,
        "instance_id": str(clean["instance_id"]),
        "form_id": defn.form_id,
        "form_version": defn.version,
        "kind": clean["kind"],
        "collected_at": clean["collected_at"].isoformat(),
        "surveyor": clean["surveyor"],
        "source": source,
        "commune_code": clean["commune_code"],
        "lon": point.lon if point else None,
        "lat": point.lat if point else None,
        "accuracy": point.accuracy if point else None,
        "mock_location": bool(clean.get("mock_location")),
        "id_hash": national_id_hash(clean["national_id"]) if clean.get("national_id") else None,
        **{c: (clean[c].isoformat() if isinstance(clean.get(c), dt.date) else clean.get(c)) for c in COLUMNS},
        "answers": answers,
    }


RECORD_FIELDS = ("kind", "structure", "declared_commune_code", "assigned_commune_code", "location_mismatch",
                 "mismatch_distance_m", "accuracy_flag", "mock_location", "location_missing_reason", "probable_duplicates")
"""The fields of a stored record that a submission's answer shows (nothing personal)."""


def ingest(
    conn: Connection,
    items: list[Incoming],
    *,
    source: str,
    file_name: str | None = None,
    defn: FormDefinition = FORM,
    now: dt.datetime | None = None,
    sender: Sender | None = None,
) -> list[Outcome]:
    """Validate and store submissions in the caller's transaction; one outcome per item.

    ``created``: stored now. ``exists``: the same payload was stored before
    (nothing new). ``conflict``: another payload holds this ``instance_id``.
    ``rejected``: quarantined, with every reason. ``forbidden``: outside the
    sender's area scope; quarantined too, for an officer of that area.
    """
    outcomes: list[Outcome | None] = [None] * len(items)
    rows: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    rejected: list[tuple[int, list[dict[str, str]], Status]] = []  # (item, reasons, status)
    declared: list[tuple[int, str, dt.date]] = []  # communes of rejected forms, checked below
    for n, item in enumerate(items):
        clean: dict[str, Any] = {}
        if item.problem is not None:
            errors = [item.problem]
        elif not isinstance(item.payload, dict):
            errors = [FieldError("body", "not a JSON object")]
        else:
            clean, errors = validate_submission(item.payload, defn, now)
        if not errors:
            row = to_row(clean, n=n, source=source, defn=defn)
            iid = row["instance_id"]
            if iid in seen:  # the same id twice in one batch
                status: Status = "exists" if seen[iid] == canonical_json(row | {"n": 0}) else "conflict"
                outcomes[n] = Outcome(status, iid, row_number=item.row_number)
                continue
            seen[iid] = canonical_json(row | {"n": 0})
            rows.append(row)
            continue
        rejected.append((n, [e.as_dict() for e in errors], "rejected"))
        if clean.get("commune_code") and "commune_code" not in {e.field for e in errors}:
            day = (clean.get("collected_at") or now or dt.datetime.now(dt.UTC)).astimezone(VIETNAM_TZ).date()
            declared.append((len(rejected) - 1, clean["commune_code"], day))
    # A form refused for one field is told of its commune too: every failing field at once.
    for i, problem in commune_problems(conn, declared).items():
        rejected[i][1].append(problem)
    for r in store_rows(conn, rows, sender=sender) if rows else []:
        item = items[r.n]
        if r.error_field:
            rejected.append((r.n, [{"field": r.error_field, "message": r.error_message, "code": r.error_code,
                                    "params": {k: v for k, v in (r.error_params or {}).items() if v is not None}}],
                             "forbidden" if r.error_field == "scope" else "rejected"))
        elif r.inserted:
            record = {k: getattr(r, k) for k in RECORD_FIELDS} | {"review_status": "received"}
            outcomes[r.n] = Outcome("created", r.instance_id, row_number=item.row_number, record=record)
        else:
            stored = r.stored_hash or conn.execute(
                text("SELECT r.payload_hash FROM survey_record_key k JOIN survey_record r USING (province_code, instance_id) "
                     "WHERE k.instance_id = CAST(:i AS uuid)"), {"i": r.instance_id}
            ).scalar()
            status = "exists" if stored == r.payload_hash else "conflict"
            outcomes[r.n] = Outcome(status, r.instance_id, row_number=item.row_number)
    # Every rejected payload of the call goes to the quarantine in one statement.
    submitted_by = sender.name if sender else None
    quarantine_ids = quarantine_rows(conn, [
        Rejected(source, items[n].text, items[n].payload, reasons, file_name, items[n].row_number, submitted_by)
        for n, reasons, _ in rejected
    ], defn)
    for (n, reasons, status), qid in zip(rejected, quarantine_ids, strict=True):
        payload = items[n].payload
        iid = payload.get("instance_id") if isinstance(payload, dict) else None
        outcomes[n] = Outcome(status, str(iid) if iid is not None else None, reasons, qid, items[n].row_number)
    return [o for o in outcomes if o is not None]
