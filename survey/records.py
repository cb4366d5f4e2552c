"""Reading and reviewing stored survey records."""

from __future__ import annotations

from typing import Any, Literal, get_args

from sqlalchemy import Connection, text

from geodata.errors import InvalidInput
from geodata.scopes import Reader, scope_condition

ReviewStatus = Literal["received", "approved", "has_issues", "rejected"]
REVIEW_STATES: tuple[str, ...] = get_args(ReviewStatus)
"""Where a record is in its review by an officer (new records are ``received``)."""


def reader_condition(alias: str) -> str:
    """WHERE condition: the record ``alias`` is one the reader may see (bind :meth:`Reader.params`).

    A record belongs to the area of its declared commune and of the commune
    its GPS point fell in: officers of either see it. A surveyor sees what it sent.
    """
    return f"""
    (CAST(:scope_user_id AS uuid) IS NULL
     OR {scope_condition(f"{alias}.declared_commune_code", f"{alias}.structure")}
     OR {scope_condition(f"{alias}.assigned_commune_code", f"{alias}.structure")})
    AND (CAST(:own_sender AS text) IS NULL OR {alias}.submitted_by = :own_sender)
"""


READER_CONDITION = reader_condition("r")

# Probable duplicates are listed only where the reader may see the other
# record too: a link is itself personal data (this person was surveyed
# there), and listing every link would let a sender probe for any national ID.
RECORD_SQL = f"""
SELECT r.instance_id::text, r.province_code, r.kind, r.form_id, r.form_version, r.collected_at, r.submitted_at,
       r.surveyor, r.source, r.structure, r.declared_commune_code, r.assigned_commune_code,
       ST_Y(r.geom) AS lat, ST_X(r.geom) AS lon, r.gps_accuracy_m, r.accuracy_flag, r.location_mismatch,
       r.mismatch_distance_m, r.mock_location, r.location_missing_reason, r.id_hash IS NOT NULL AS has_national_id, r.full_name, r.birth_year,
       r.sex, r.departure_date, r.market, r.recruiter_licence, r.answers, r.review_status, r.review_comment,
       r.reviewed_by, r.reviewed_at,
       coalesce((SELECT json_agg(json_build_object('instance_id', d.duplicate_of, 'reason', d.reason))
                 FROM probable_duplicate d JOIN survey_record o ON o.instance_id = d.duplicate_of
                 WHERE d.instance_id = r.instance_id AND {reader_condition("o")}), '[]') AS probable_duplicates
FROM survey_record r
"""


def readable_duplicates(conn: Connection, duplicates: list[dict[str, Any]], reader: Reader) -> list[dict[str, Any]]:
    """The probable-duplicate links (``{"instance_id", "reason"}``) whose other record ``reader`` may see."""
    if not duplicates:
        return []
    ids = [str(d["instance_id"]) for d in duplicates]
    seen = set(conn.execute(
        text(f"SELECT r.instance_id::text FROM survey_record r WHERE r.instance_id = ANY(CAST(:ids AS uuid[])) AND {READER_CONDITION}"),
        {"ids": ids, **reader.params()},
    ).scalars())
    return [d for d in duplicates if str(d["instance_id"]) in seen]


def _jsonable(row: Any) -> dict[str, Any]:
    out = dict(row)
    for k, v in out.items():
        if hasattr(v, "isoformat"):
            out[k] = v.isoformat()
    return out


def get_record(conn: Connection, instance_id: str, reader: Reader) -> dict[str, Any] | None:
    """One record with its review state and probable duplicates, if ``reader`` may see it (personal data)."""
    row = conn.execute(
        text(RECORD_SQL + f" WHERE r.instance_id = CAST(:i AS uuid) AND {READER_CONDITION}"), {"i": instance_id, **reader.params()}
    ).mappings().first()
    return _jsonable(row) if row else None


LIST_CONDITION = f"""{READER_CONDITION}
  AND (CAST(:rs AS text) IS NULL OR r.review_status = :rs)
  AND (CAST(:kind AS text) IS NULL OR r.kind = :kind)
  AND (CAST(:c AS text) IS NULL OR r.declared_commune_code = :c OR r.assigned_commune_code = :c)
  AND (NOT :dups OR EXISTS (SELECT 1 FROM probable_duplicate d WHERE d.instance_id = r.instance_id))
  AND (NOT :flagged OR r.accuracy_flag OR r.location_mismatch OR r.mock_location OR r.location_missing_reason IS NOT NULL)"""
"""The records (alias ``r``) a list or an export returns: the reader's and the filters' (:func:`list_params`)."""

LIST_ORDER = "ORDER BY r.submitted_at DESC, r.instance_id"

LIST_SQL = text(RECORD_SQL + f"WHERE {LIST_CONDITION}\n{LIST_ORDER} LIMIT :limit OFFSET :offset")


def list_params(*, review_status: str | None = None, kind: str | None = None, commune: str | None = None,
                duplicates_only: bool = False, flagged_only: bool = False, reader: Reader) -> dict[str, Any]:
    """The bind parameters of :data:`LIST_CONDITION`."""
    return {"rs": review_status or None, "kind": kind or None, "c": commune or None, "dups": duplicates_only,
            "flagged": flagged_only, **reader.params()}


def list_records(
    conn: Connection, *, review_status: str | None = None, kind: str | None = None, commune: str | None = None,
    duplicates_only: bool = False, flagged_only: bool = False, limit: int = 100, offset: int = 0, reader: Reader,
) -> list[dict[str, Any]]:
    """Records ``reader`` may see, newest first, filtered by review state, kind, commune, duplicate links or flags
    (``flagged_only``: a coarse or mock GPS fix, a point outside the declared commune, or no point at all)."""
    params = {**list_params(review_status=review_status, kind=kind, commune=commune, duplicates_only=duplicates_only,
                            flagged_only=flagged_only, reader=reader), "limit": limit, "offset": offset}
    return [_jsonable(r) for r in conn.execute(LIST_SQL, params).mappings()]


def review_record(conn: Connection, instance_id: str, status: str, comment: str | None, reviewer: str,
                  reader: Reader) -> bool:
    """Move a record to a review state with a comment; False if no such record (that ``reader`` may see)."""
    if status not in REVIEW_STATES:
        raise InvalidInput(f"review status must be one of {', '.join(REVIEW_STATES)}", loc=("body", "status"))
    return bool(
        conn.execute(
            text(
                f"""UPDATE survey_record r SET review_status = :s, review_comment = :c, reviewed_by = :by, reviewed_at = now()
                    WHERE r.instance_id = CAST(:i AS uuid) AND {READER_CONDITION}"""
            ),
            {"s": status, "c": comment, "by": reviewer, "i": instance_id, **reader.params()},
        ).rowcount
    )
