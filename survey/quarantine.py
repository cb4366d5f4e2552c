"""Quarantine: every rejected payload, kept verbatim with the reasons.

The one exception to "verbatim": a payload without consent loses its personal
fields before it is stored, because nothing personal may be kept from it.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from geodata.distribution import UNPLACED_PROVINCE
from geodata.scopes import Reader, scope_condition, whole_country_condition
from geodata.settings import get_settings
from geodata.text import cut, storable
from survey.definition import FORM, YES_WORDS, FormDefinition

# What is kept of a payload once a request has used its quarantine budget.
HEAD_BYTES = 1024


def content_hash(payload: Any, payload_text: str, defn: FormDefinition = FORM) -> str:
    """The fingerprint of a rejected form: its answers (the form's fields only), or its text if it is not an object.

    The same form rejected again — a phone retrying, an export downloaded
    again with other columns, file name and row numbers — has the same
    fingerprint, so it is kept once. Keyed with the server secret, as the
    answers include the national ID.
    """
    if isinstance(payload, dict):
        fields = {f.name for f in defn.fields}
        geo = tuple(f"{f.name}_" for f in defn.fields if f.type == "geopoint")
        basis = canonical_json({k: v for k, v in payload.items() if k in fields or k.startswith(geo)})
    else:
        basis = payload_text
    secret = get_settings().require_secret("rejected forms cannot be fingerprinted").encode()
    return hmac.digest(secret, storable(basis).encode("utf-8"), "sha256").hex()


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
    reasons: list[dict[str, Any]]
    file_name: str | None = None
    row_number: int | None = None
    submitted_by: str | None = None


def declared_commune(payload: Any) -> str | None:
    """The commune code a payload names, if it looks like one (so officers of that area see it)."""
    code = payload.get("commune_code") if isinstance(payload, dict) else None
    code = str(code).strip() if isinstance(code, (str, int)) else ""
    return code if code.isdigit() and len(code) <= 10 else None


def _storable_reason(value: Any) -> Any:
    # A reason's catalogue values keep their types (numbers stay numbers); text is made storable like the rest.
    if isinstance(value, dict):
        return {str(k): _storable_reason(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float):
        return value
    return storable(str(value))


def quarantine_rows(conn: Connection, rejected: list[Rejected], defn: FormDefinition = FORM) -> list[int]:
    """Store rejected payloads with their reasons in one statement; return their quarantine ids.

    The same form rejected again (a phone retrying, a file imported twice, an
    export downloaded again) is stored once (:func:`content_hash`). The text
    is kept as sent, with the exceptions the privacy rules and PostgreSQL
    demand: a payload without consent loses its personal fields; a national
    ID number is replaced by its keyed hash (``hmac:...``) wherever it
    appears; NUL characters and lone surrogates are written as ``\\u`` escapes;
    a payload longer than ``quarantine_payload_max_bytes`` is cut (saying how
    much), and once a request has used ``quarantine_request_max_bytes`` its
    further payloads keep their first kilobyte. The reasons are always kept.
    """
    settings = get_settings()
    spent = 0
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
        limit = settings.quarantine_payload_max_bytes if spent < settings.quarantine_request_max_bytes else HEAD_BYTES
        kept = cut(storable(payload_text), limit)
        spent += len(kept.encode("utf-8"))
        instance_id = r.payload.get("instance_id") if isinstance(r.payload, dict) else None
        rows.append({
            "n": n, "source": storable(r.source), "file_name": storable(r.file_name) if r.file_name else None,
            "row_number": r.row_number,
            "instance_id": storable(str(instance_id))[:100] if instance_id is not None else None,
            "payload_text": kept,
            "payload_hash": content_hash(r.payload, payload_text, defn),
            "reasons": [{k: _storable_reason(v) for k, v in reason.items()} for reason in r.reasons],
            "personal_removed": personal_removed,
            "submitted_by": r.submitted_by, "commune_code": declared_commune(r.payload),
        })
    if not rows:
        return []
    found = conn.execute(
        text(QUARANTINE_SQL), {"rows": json.dumps(rows, ensure_ascii=False)}
    ).all()
    return [qid for _, qid in sorted(found)]


# Forms already quarantined (same fingerprint, whatever became of them) are
# not stored again: their existing id is returned. The province (the
# distribution column) is the 2025 province of the commune the payload names,
# in the structure in force first; a payload naming no known commune has none
# yet and is kept under '00' (geodata.distribution.UNPLACED_PROVINCE). The same
# payload names the same commune, so the look-up for it stays in one province.
QUARANTINE_SQL = f"""
WITH r AS (
    SELECT r.*, coalesce(la_province_2025('2025', r.commune_code), la_province_2025('pre2025', r.commune_code),
                         '{UNPLACED_PROVINCE}') AS province_code
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
        n int, source text, file_name text, row_number int, instance_id text, payload_text text,
        payload_hash text, reasons jsonb, personal_removed boolean, submitted_by text, commune_code text)
),
old AS (
    SELECT DISTINCT ON (r.n) r.n, q.id FROM r JOIN submission_quarantine q
    ON q.province_code = r.province_code AND q.payload_hash = r.payload_hash ORDER BY r.n, q.id
),
new AS (
    INSERT INTO submission_quarantine (province_code, source, file_name, row_number, instance_id, payload_text,
                                       payload_hash, reasons, personal_removed, submitted_by, commune_code)
    SELECT province_code, source, file_name, row_number, instance_id, payload_text, payload_hash, reasons,
           personal_removed, submitted_by, commune_code
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
    reasons: list[dict[str, Any]],
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


@dataclass(frozen=True)
class QuarantinedForm:
    """A quarantine entry as a correction needs it."""

    id: int
    status: str
    instance_id: str | None
    resolved_instance_id: str | None


def quarantined_form(conn: Connection, quarantine_id: int, reader: Reader) -> QuarantinedForm | None:
    """The quarantine entry ``quarantine_id``, or None if there is none (that ``reader`` may see).

    Locked until the transaction ends, so that two corrections of one entry are made one after the other.
    """
    row = conn.execute(
        text(f"""SELECT id, status, instance_id, resolved_instance_id::text FROM submission_quarantine q
                 WHERE id = :id AND {QUARANTINE_READER_CONDITION} FOR UPDATE"""),
        {"id": quarantine_id, **reader.params()},
    ).one_or_none()
    return QuarantinedForm(row.id, row.status, row.instance_id, row.resolved_instance_id) if row else None


def resolve_quarantine(conn: Connection, quarantine_id: int, instance_id: str) -> bool:
    """Mark an open quarantined payload as replaced by the record ``instance_id``, created from its correction.

    Returns False when the entry was not open (it is then left as it was).
    """
    return conn.execute(
        text(
            """UPDATE submission_quarantine SET status = 'resubmitted', resolved_instance_id = CAST(:iid AS uuid),
                      resolved_at = now() WHERE id = :id AND status = 'open'"""
        ),
        {"id": quarantine_id, "iid": instance_id},
    ).rowcount == 1
