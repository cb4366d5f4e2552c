"""Quarantine: every rejected payload, kept verbatim with the reasons.

The one exception to "verbatim": a payload without consent loses its personal
fields before it is stored, because nothing personal may be kept from it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import Connection, text

from survey.definition import FORM, FormDefinition


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
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "có"))


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
) -> int:
    """Store a rejected payload with its reasons; return the quarantine id.

    The same payload rejected again (a phone retrying) is stored once. The
    text is kept as sent, with two exceptions the privacy rules demand: a
    payload without consent loses its personal fields, and a national ID
    number is replaced by its keyed hash (``hmac:...``) wherever it appears.
    """
    personal_removed = False
    if isinstance(payload, dict) and not consented(payload):
        stripped = without_personal_data(payload, defn)
        personal_removed = stripped != payload
        payload_text = canonical_json(stripped)
    else:
        payload_text = masked_national_id(payload_text, payload)
    digest = payload_hash(f"{source}\n{file_name}\n{row_number}\n{payload_text}")
    existing = conn.execute(
        text("SELECT id FROM submission_quarantine WHERE payload_hash = :h AND status = 'open' LIMIT 1"), {"h": digest}
    ).scalar()
    if existing is not None:
        return existing
    instance_id = payload.get("instance_id") if isinstance(payload, dict) else None
    return conn.execute(
        text(
            """
            INSERT INTO submission_quarantine (source, file_name, row_number, instance_id, payload_text, payload_hash,
                                               reasons, personal_removed)
            VALUES (:source, :file, :row, :iid, :text, :hash, CAST(:reasons AS jsonb), :removed)
            RETURNING id
            """
        ),
        {
            "source": source, "file": file_name, "row": row_number,
            "iid": str(instance_id)[:100] if instance_id is not None else None,
            "text": payload_text, "hash": digest, "reasons": json.dumps(reasons, ensure_ascii=False),
            "removed": personal_removed,
        },
    ).scalar_one()


def list_quarantine(conn: Connection, status: str = "open", limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """Quarantined payloads, newest first."""
    rows = conn.execute(
        text(
            """SELECT id, received_at, source, file_name, row_number, instance_id, payload_text, reasons,
                      personal_removed, status, resolved_instance_id
               FROM submission_quarantine WHERE status = :status ORDER BY id DESC LIMIT :limit OFFSET :offset"""
        ),
        {"status": status, "limit": limit, "offset": offset},
    ).mappings()
    return [
        {**r, "received_at": r["received_at"].isoformat(), "resolved_instance_id": str(r["resolved_instance_id"]) if r["resolved_instance_id"] else None}
        for r in rows
    ]


def quarantine_status(conn: Connection, quarantine_id: int) -> str | None:
    """The status of a quarantined payload, or None if there is no such id."""
    return conn.execute(text("SELECT status FROM submission_quarantine WHERE id = :id"), {"id": quarantine_id}).scalar()


def resolve_quarantine(conn: Connection, quarantine_id: int, instance_id: str) -> None:
    """Mark a quarantined payload as replaced by a stored record."""
    conn.execute(
        text(
            """UPDATE submission_quarantine SET status = 'resubmitted', resolved_instance_id = CAST(:iid AS uuid),
                      resolved_at = now() WHERE id = :id"""
        ),
        {"id": quarantine_id, "iid": instance_id},
    )
