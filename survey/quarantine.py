"""Quarantine: every rejected payload, kept verbatim with the reasons.

The one exception to "verbatim": a payload without consent loses its personal
fields before it is stored, because nothing personal may be kept from it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from geodata.scopes import Reader, scope_condition, whole_country_condition
from survey.definition import FORM, YES_WORDS, FormDefinition


def payload_hash(payload_text: str) -> str:
    return hashlib.sha256(payload_text.encode("utf-8", "surrogatepass")).hexdigest()


def canonical_json(payload: Any) -> str:
    """One text per JSON value, whatever the key order or spacing."""
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def without_personal_data(payload: dict[str, Any], defn: FormDefinition = FORM) -> dict[str, Any]:
    """The payload minus every personal field of the form (and unknown extras)."""
    keep = {f.name for f in defn.fields if not f.personal} | {"form_id", "form_version"}
    return {k: v for k, v in payload.items() if k in keep}


def consented(payload: Any) -> bool:
    """Did the payload record consent? (Anything but an explicit yes is no.)"""
    if not isinstance(payload, dict):
        return False
    value = payload.get("consent")
    return value is True or (isinstance(value, str) and value.strip().lower() in YES_WORDS)


def masked_national_id(payload_text: str, payload: Any) -> str:
    """The text with the payload's national ID number replaced by ``hmac:<keyed hash>``.

    Works on JSON, XML and CSV-row texts alike: the number is replaced where
    it appears verbatim.
    """
    value = payload.get("national_id") if isinstance(payload, dict) else None
    if not isinstance(value, (str, int)) or not str(value).strip():
        return payload_text
    from survey.identity import national_id_hash

    return payload_text.replace(str(value), f"hmac:{national_id_hash(str(value))}")


@dataclass
class Rejected:
    """A rejected payload on its way to the quarantine."""

    source: str
    payload_text: str
    payload: Any
    reasons: list[dict[str, str]]
    file_name: str | None = None
    row_number: int | None = None
    submitted_by: str | None = None


def declared_commune(payload: Any) -> str | None:
    """The commune code a payload names, if it looks like one (so officers of that area see it)."""
    code = payload.get("commune_code") if isinstance(payload, dict) else None
    code = str(code).strip() if isinstance(code, (str, int)) else ""
    return code if code.isdigit() and len(code) <= 10 else None


def quarantine_rows(conn: Connection, rejected: list[Rejected], defn: FormDefinition = FORM) -> list[int]:
    """Store rejected payloads with their reasons in one statement; return their quarantine ids.

    The same payload rejected again (a phone retrying, a file imported twice)
    is stored once. The text is kept as sent, with two exceptions the privacy
    rules demand: a payload without consent loses its personal fields, and a
    national ID number is replaced by its keyed hash (``hmac:...``) wherever
    it appears.
    """
    rows = []
    for n, r in enumerate(rejected):
        personal_removed = False
        payload_text = r.payload_text
        if isinstance(r.payload, dict) and not consented(r.payload):
            stripped = without_personal_data(r.payload, defn)
            personal_removed = stripped != r.payload
            payload_text = canonical_json(stripped)
        else:
            payload_text = masked_national_id(payload_text, r.payload)
        instance_id = r.payload.get("instance_id") if isinstance(r.payload, dict) else None
        rows.append({
            "n": n, "source": r.source, "file_name": r.file_name, "row_number": r.row_number,
            "instance_id": str(instance_id)[:100] if instance_id is not None else None,
            "payload_text": payload_text,
            "payload_hash": payload_hash(f"{r.source}\n{r.file_name}\n{r.row_number}\n{payload_text}"),
            "reasons": r.reasons, "personal_removed": personal_removed,
            "submitted_by": r.submitted_by, "commune_code": declared_commune(r.payload),
        })
    if not rows:
        return []
    found = conn.execute(
        text(QUARANTINE_SQL), {"rows": json.dumps(rows, ensure_ascii=False)}
    ).all()
    return [qid for _, qid in sorted(found)]


# Rows already quarantined (same hash, still open) are not stored again:
# their existing id is returned.
QUARANTINE_SQL = """
WITH r AS (
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
        n int, source text, file_name text, row_number int, instance_id text, payload_text text,
        payload_hash text, reasons jsonb, personal_removed boolean, submitted_by text, commune_code text)
),
old AS (
    SELECT DISTINCT ON (r.n) r.n, q.id FROM r JOIN submission_quarantine q
    ON q.payload_hash = r.payload_hash AND q.status = 'open' ORDER BY r.n, q.id
),
new AS (
    INSERT INTO submission_quarantine (source, file_name, row_number, instance_id, payload_text, payload_hash,
                                       reasons, personal_removed, submitted_by, commune_code)
    SELECT source, file_name, row_number, instance_id, payload_text, payload_hash, reasons, personal_removed,
           submitted_by, commune_code
    FROM r WHERE r.n NOT IN (SELECT n FROM old) ORDER BY r.n
    RETURNING id, payload_hash
)
SELECT n, id FROM old
UNION ALL
(SELECT DISTINCT ON (r.n) r.n, new.id FROM r JOIN new USING (payload_hash)
 WHERE r.n NOT IN (SELECT n FROM old) ORDER BY r.n, new.id)
"""


def quarantine_payload(
    conn: Connection,
    *,
    source: str,
    payload_text: str,
    payload: Any,
    reasons: list[dict[str, str]],
    file_name: str | None = None,
    row_number: int | None = None,
    defn: FormDefinition = FORM,
    submitted_by: str | None = None,
) -> int:
    """Store one rejected payload (see :func:`quarantine_rows`); return its quarantine id."""
    (qid,) = quarantine_rows(conn, [Rejected(source, payload_text, payload, reasons, file_name, row_number, submitted_by)], defn)
    return qid


# An officer sees the payloads that name a commune of its area (in either
# structure); a payload naming no known commune is seen by officers whose
# area is the whole country. A sender sees what it sent.
QUARANTINE_READER_CONDITION = f"""
    (CAST(:scope_user_id AS uuid) IS NULL
     OR EXISTS (SELECT 1 FROM admin_unit a WHERE a.code = q.commune_code AND a.level = 'commune'
                AND {scope_condition("a.code", "a.structure")})
     OR (NOT EXISTS (SELECT 1 FROM admin_unit a WHERE a.code = q.commune_code AND a.level = 'commune')
         AND {whole_country_condition()}))
    AND (CAST(:own_sender AS text) IS NULL OR q.submitted_by = :own_sender)
"""


def list_quarantine(conn: Connection, status: str, limit: int, offset: int, reader: Reader) -> list[dict[str, Any]]:
    """Quarantined payloads ``reader`` may see, newest first."""
    rows = conn.execute(
        text(
            f"""SELECT id, received_at, source, file_name, row_number, instance_id, payload_text, reasons,
                       personal_removed, status, resolved_instance_id, commune_code, submitted_by
                FROM submission_quarantine q WHERE status = :status AND {QUARANTINE_READER_CONDITION}
                ORDER BY id DESC LIMIT :limit OFFSET :offset"""
        ),
        {"status": status, "limit": limit, "offset": offset, **reader.params()},
    ).mappings()
    return [
        {**r, "received_at": r["received_at"].isoformat(), "resolved_instance_id": str(r["resolved_instance_id"]) if r["resolved_instance_id"] else None}
        for r in rows
    ]


def quarantine_status(conn: Connection, quarantine_id: int, reader: Reader) -> str | None:
    """The status of a quarantined payload, or None if there is no such id (that ``reader`` may see)."""
    return conn.execute(
        text(f"SELECT status FROM submission_quarantine q WHERE id = :id AND {QUARANTINE_READER_CONDITION}"),
        {"id": quarantine_id, **reader.params()},
    ).scalar()


def resolve_quarantine(conn: Connection, quarantine_id: int, instance_id: str) -> None:
    """Mark a quarantined payload as replaced by a stored record."""
    conn.execute(
        text(
            """UPDATE submission_quarantine SET status = 'resubmitted', resolved_instance_id = CAST(:iid AS uuid),
                      resolved_at = now() WHERE id = :id"""
        ),
        {"id": quarantine_id, "iid": instance_id},
    )
