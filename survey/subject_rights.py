"""Data-subject rights: everything held about one person, and its erasure.

A person is found by the keyed hash of a national ID typed in by an officer.
Erasure and purge anonymise: the personal fields go, the record stays as an
anonymous count (kind, communes, dates, market, recruiter), so that aggregates
by unit and period do not change.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from survey.definition import FORM, FormDefinition
from survey.identity import national_id_hash
from survey.records import get_record


def _personal_answer_keys(defn: FormDefinition) -> list[str]:
    return [f.name for f in defn.fields if f.personal]


# One statement for erasure and purge; {where} selects the records.
ANONYMISE_SQL = """
UPDATE survey_record SET
    full_name = NULL, name_folded = NULL, id_hash = NULL, birth_year = NULL, sex = NULL,
    geom = NULL, answers = answers - CAST(:personal_keys AS text[]), anonymised_at = now()
WHERE anonymised_at IS NULL AND {where}
RETURNING instance_id::text
"""


def export_person(conn: Connection, national_id: str) -> dict[str, Any]:
    """Every record and quarantined payload that holds this person's ID (for the person, on request)."""
    digest = national_id_hash(national_id)
    ids = conn.execute(text("SELECT instance_id::text FROM survey_record WHERE id_hash = :h ORDER BY collected_at"), {"h": digest}).scalars().all()
    quarantined = conn.execute(
        text("""SELECT id, received_at, source, file_name, row_number, payload_text, reasons FROM submission_quarantine
                WHERE strpos(payload_text, :marker) > 0 ORDER BY id"""),
        {"marker": f"hmac:{digest}"},
    ).mappings().all()
    return {
        "records": [get_record(conn, i) for i in ids],
        "quarantine": [{**q, "received_at": q["received_at"].isoformat()} for q in quarantined],
    }


def erase_person(conn: Connection, national_id: str, defn: FormDefinition = FORM) -> dict[str, list[str]]:
    """Anonymise this person's records and blank their quarantined payloads; returns what was touched."""
    digest = national_id_hash(national_id)
    records = conn.execute(
        text(ANONYMISE_SQL.format(where="id_hash = :h")), {"h": digest, "personal_keys": _personal_answer_keys(defn)}
    ).scalars().all()
    quarantine = conn.execute(
        text("""UPDATE submission_quarantine SET payload_text = '[erased on request of the person]', personal_removed = true
                WHERE strpos(payload_text, :marker) > 0 RETURNING id"""),
        {"marker": f"hmac:{digest}"},
    ).scalars().all()
    return {"records": list(records), "quarantine": [str(q) for q in quarantine]}


def purge_older_than(conn: Connection, years: int, defn: FormDefinition = FORM) -> list[str]:
    """Anonymise every record collected more than ``years`` years ago; returns their ids."""
    if years < 1:
        raise ValueError("--older-than must be at least 1 year")
    return list(
        conn.execute(
            text(ANONYMISE_SQL.format(where="collected_at < now() - make_interval(years => :years)")),
            {"years": years, "personal_keys": _personal_answer_keys(defn)},
        ).scalars()
    )
