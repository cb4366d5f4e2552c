"""Data-subject rights: everything held about one person, and its erasure.

A person is found by the keyed hash of a national ID typed in by an officer.
Erasure and purge anonymise: the personal fields go, the record stays as an
anonymous count (kind, communes, dates, market, recruiter), so that aggregates
by unit and period do not change.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from geodata.errors import InvalidInput
from geodata.scopes import Reader
from survey.definition import FORM, FormDefinition
from survey.identity import national_id_hash
from survey.quarantine import QUARANTINE_READER_CONDITION
from survey.records import READER_CONDITION, get_record


def _personal_answer_keys(defn: FormDefinition) -> list[str]:
    return [f.name for f in defn.fields if f.personal]


# One statement for erasure and purge; {where} selects the records.
ANONYMISE_SQL = """
UPDATE survey_record r SET
    full_name = NULL, name_folded = NULL, id_hash = NULL, birth_year = NULL, sex = NULL,
    geom = NULL, answers = answers - CAST(:personal_keys AS text[]), anonymised_at = now()
WHERE anonymised_at IS NULL AND {where}
RETURNING instance_id::text
"""


def export_person(conn: Connection, national_id: str, reader: Reader) -> dict[str, Any]:
    """Every record and quarantined payload that holds this person's ID (for the person, on request).

    Limited to what ``reader`` may see: an officer exports what its area holds.
    """
    digest = national_id_hash(national_id)
    ids = conn.execute(
        text(f"SELECT r.instance_id::text FROM survey_record r WHERE r.id_hash = :h AND {READER_CONDITION} ORDER BY r.collected_at"),
        {"h": digest, **reader.params()},
    ).scalars().all()
    quarantined = conn.execute(
        text(f"""SELECT id, received_at, source, file_name, row_number, payload_text, reasons FROM submission_quarantine q
                 WHERE strpos(payload_text, :marker) > 0 AND {QUARANTINE_READER_CONDITION} ORDER BY id"""),
        {"marker": f"hmac:{digest}", **reader.params()},
    ).mappings().all()
    return {
        "records": [get_record(conn, i, reader) for i in ids],
        "quarantine": [{**q, "received_at": q["received_at"].isoformat()} for q in quarantined],
    }


def erase_person(conn: Connection, national_id: str, reader: Reader, defn: FormDefinition = FORM) -> dict[str, list[str]]:
    """Anonymise this person's records and blank their quarantined payloads; returns what was touched.

    Limited to what ``reader`` may see: an officer erases what its area holds.
    """
    digest = national_id_hash(national_id)
    records = conn.execute(
        text(ANONYMISE_SQL.format(where=f"r.id_hash = :h AND {READER_CONDITION}")),
        {"h": digest, "personal_keys": _personal_answer_keys(defn), **reader.params()},
    ).scalars().all()
    quarantine = conn.execute(
        text(f"""UPDATE submission_quarantine q SET payload_text = '[erased on request of the person]', personal_removed = true
                 WHERE strpos(payload_text, :marker) > 0 AND {QUARANTINE_READER_CONDITION} RETURNING id"""),
        {"marker": f"hmac:{digest}", **reader.params()},
    ).scalars().all()
    return {"records": list(records), "quarantine": [str(q) for q in quarantine]}


def purge_older_than(conn: Connection, years: int, defn: FormDefinition = FORM) -> list[str]:
    """Anonymise every record collected more than ``years`` years ago; returns their ids."""
    if years < 1:
        raise InvalidInput("--older-than must be at least 1 year", loc=("older_than",))
    return list(
        conn.execute(
            text(ANONYMISE_SQL.format(where="r.collected_at < now() - make_interval(years => :years)")),
            {"years": years, "personal_keys": _personal_answer_keys(defn)},
        ).scalars()
    )
