"""Idempotent ingest of survey submissions.

One path for every channel (API, batch, OpenRosa, web form): each payload is
validated against the form definition; the survivors go to PostGIS in one
set-based statement that checks the declared commune and the sender's area,
assigns the commune covering the GPS point at the collection date, flags
mismatches, inserts (keyed by the client's ``instance_id``) and links
probable duplicates. Every rejected payload goes to the quarantine with its
reasons.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, text

from geodata.scopes import scope_condition
from geodata.settings import get_settings
from survey.definition import FORM, FormDefinition
from survey.identity import MissingSecret, national_id_hash
from survey.quarantine import Rejected, canonical_json, quarantine_rows
from survey.schemas import FieldError, validate_submission

Status = Literal["created", "exists", "conflict", "rejected", "forbidden"]

# Answers kept in their own columns (used by SQL: duplicates, maps, reports);
# everything else the form asks goes to the ``answers`` JSON column.
COLUMNS = ("full_name", "birth_year", "sex", "departure_date", "market", "recruiter_licence")
NOT_IN_ANSWERS = {"instance_id", "kind", "collected_at", "surveyor", "consent", "commune_code", "location",
                  "mock_location", "national_id", *COLUMNS}


@dataclass
class Incoming:
    """A payload as received: its text (kept verbatim if rejected) and parsed value."""

    text: str
    payload: Any
    row_number: int | None = None


@dataclass
class Outcome:
    status: Status
    instance_id: str | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    quarantine_id: int | None = None
    row_number: int | None = None
    record: dict[str, Any] | None = None  # what the sender is told about a record created now


def parse_payload(body: bytes | str) -> Incoming:
    """Decode a JSON body; an undecodable one is still kept (as text) for quarantine."""
    text_ = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        payload = json.loads(text_)
    except ValueError:
        payload = None
    return Incoming(text_, payload)


def server_secret() -> str:
    secret = get_settings().secret_key
    if not secret:
        raise MissingSecret("LABOUR_ATLAS_SECRET_KEY is not set: submissions cannot be stored")
    return secret


def to_row(clean: dict[str, Any], *, n: int, source: str, defn: FormDefinition) -> dict[str, Any]:
    """The database row of a valid submission (no national ID in clear)."""
    point = clean["location"]
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
        "lon": point.lon,
        "lat": point.lat,
        "accuracy": point.accuracy,
        "mock_location": bool(clean.get("mock_location")),
        "id_hash": national_id_hash(clean["national_id"]) if clean.get("national_id") else None,
        **{c: (clean[c].isoformat() if isinstance(clean.get(c), dt.date) else clean.get(c)) for c in COLUMNS},
        "answers": answers,
    }


ROW_TYPES = """
    n int, instance_id uuid, form_id text, form_version text, kind text, collected_at timestamptz, surveyor text,
    source text, commune_code text, lon float8, lat float8, accuracy real, mock_location boolean, id_hash text,
    full_name text, birth_year smallint, sex text, departure_date date, market text, recruiter_licence text,
    answers jsonb
"""

# {source} is a relation with the columns of ROW_TYPES: a jsonb_to_recordset
# of the request's rows, or a staging table filled by COPY for big files.
STORE_SQL = f"""
WITH a AS (
    -- The commune covering each point, as a join (not a per-row lookup) so that
    -- for a big staged file with a spatial index the planner can drive it from
    -- the polygons; min() picks the lower code on a shared border.
    SELECT s.n, min(p.code) AS code
    FROM {{source}}
    JOIN boundary_structure st
      ON st.valid_from <= (s.collected_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
     AND (st.valid_to IS NULL OR (s.collected_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date < st.valid_to)
    JOIN admin_unit_part p
      ON p.structure = st.name AND p.level = 'commune'
     AND ST_Covers(p.geom, ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326))
    GROUP BY s.n
),
e AS (
    -- The fingerprint behind "same payload again?" is computed here, where all
    -- channels meet, over jsonb's canonical text; keyed, as it covers the ID hash.
    SELECT s.*, st.name AS structure,
           encode(hmac(jsonb_build_object(
               'instance_id', s.instance_id, 'form_id', s.form_id, 'form_version', s.form_version, 'kind', s.kind,
               'collected_at', s.collected_at AT TIME ZONE 'UTC', 'surveyor', s.surveyor, 'commune_code', s.commune_code,
               'lon', s.lon, 'lat', s.lat, 'accuracy', s.accuracy, 'mock_location', s.mock_location,
               'id_hash', s.id_hash, 'full_name', s.full_name, 'birth_year', s.birth_year, 'sex', s.sex,
               'departure_date', s.departure_date, 'market', s.market, 'recruiter_licence', s.recruiter_licence,
               'answers', jsonb_strip_nulls(s.answers))::text, :secret, 'sha256'), 'hex') AS payload_hash, d.code AS declared, d.geom AS declared_geom,
           CASE dp.level WHEN 'province' THEN dp.code ELSE dp.parent_code END AS province_code,
           other.structure AS other_structure, a.code AS assigned,
           ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326) AS pt,
           (s.collected_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS local_date,
           -- A sender with an area scope may store records whose declared or
           -- located commune is in it (a trusted file import has none).
           (CAST(:scope_user_id AS uuid) IS NULL OR {scope_condition("d.code", "st.name")}
            OR {scope_condition("a.code", "st.name")}) AS in_scope
    FROM {{source}}
    LEFT JOIN boundary_structure st
           ON st.valid_from <= (s.collected_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
          AND (st.valid_to IS NULL OR (s.collected_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date < st.valid_to)
    -- Lookups by key, as LATERAL ... LIMIT 1 (not flattened into a join) so
    -- that the planner probes the primary key instead of hashing every
    -- commune: it cannot know that a request holds one row.
    LEFT JOIN LATERAL (
        SELECT d.code, d.geom, d.structure, d.parent_code FROM admin_unit d
        WHERE d.structure = st.name AND d.code = s.commune_code AND d.level = 'commune' LIMIT 1
    ) d ON true
    LEFT JOIN LATERAL (
        SELECT dp.code, dp.level, dp.parent_code FROM admin_unit dp
        WHERE dp.structure = d.structure AND dp.code = d.parent_code LIMIT 1
    ) dp ON true
    LEFT JOIN LATERAL (
        SELECT o.structure FROM admin_unit o
        WHERE d.code IS NULL AND o.code = s.commune_code AND o.level = 'commune' LIMIT 1
    ) other ON true
    LEFT JOIN a ON a.n = s.n
),
c AS (
    SELECT e.*,
        CASE
            WHEN e.structure IS NULL THEN 'collected_at'
            WHEN e.declared IS NULL THEN 'commune_code'
            WHEN e.assigned IS NULL AND e.declared_geom IS NOT NULL
                 AND NOT ST_DWithin(e.declared_geom::geography, e.pt::geography, :outside_m) THEN 'location'
            WHEN NOT e.in_scope THEN 'scope'
        END AS error_field,
        CASE
            WHEN e.structure IS NULL THEN 'no boundary structure is valid on ' || e.local_date
            WHEN e.declared IS NULL AND e.other_structure IS NOT NULL THEN
                'commune code ' || e.commune_code || ' belongs to the ' || e.other_structure
                || ' structure, not to the ' || e.structure || ' structure in force on ' || e.local_date
            WHEN e.declared IS NULL THEN 'unknown commune code ' || e.commune_code
            WHEN e.assigned IS NULL AND e.declared_geom IS NOT NULL
                 AND NOT ST_DWithin(e.declared_geom::geography, e.pt::geography, :outside_m) THEN
                'the GPS point is in no commune of Viet Nam and '
                || round(ST_Distance(e.declared_geom::geography, e.pt::geography) / 1000) || ' km from the declared commune'
            WHEN NOT e.in_scope THEN
                'commune ' || e.declared || coalesce(' (GPS point in commune ' || e.assigned || ')', '')
                || ' is outside the area of ' || :submitted_by
        END AS error_message
    FROM e
),
ins AS (
    INSERT INTO survey_record (
        province_code, instance_id, form_id, form_version, kind, collected_at, surveyor, source, structure,
        declared_commune_code, assigned_commune_code, geom, gps_accuracy_m, accuracy_flag, location_mismatch,
        mismatch_distance_m, mock_location, consent, id_hash, full_name, name_folded, birth_year, sex,
        departure_date, market, recruiter_licence, answers, payload_hash, submitted_by)
    SELECT province_code, instance_id, form_id, form_version, kind, collected_at, surveyor, source, structure,
           declared, assigned, pt, accuracy, coalesce(accuracy > :accuracy_limit, false),
           assigned IS DISTINCT FROM declared AND declared_geom IS NOT NULL,
           CASE WHEN assigned IS DISTINCT FROM declared AND declared_geom IS NOT NULL
                THEN ST_Distance(declared_geom::geography, pt::geography) END,
           coalesce(mock_location, false), true, id_hash, full_name, la_fold(full_name), birth_year, sex,
           departure_date, market, recruiter_licence, jsonb_strip_nulls(answers), payload_hash, :submitted_by
    FROM c WHERE error_field IS NULL
    ON CONFLICT (instance_id) DO NOTHING
    RETURNING instance_id, kind, id_hash, name_folded, birth_year, declared_commune_code, collected_at, submitted_at,
              structure, assigned_commune_code, location_mismatch, mismatch_distance_m, accuracy_flag, mock_location
),
-- New records that look like an earlier one of the same kind (same ID hash,
-- or same folded name + birth year + declared commune, within the window):
-- linked, never merged. Earlier = stored before this statement (the
-- snapshot holds none of the new rows) or, within it, collected earlier.
-- Index-friendly equi-joins, not one join on an OR.
pairs AS (
    -- Against stored records: index probes (LATERAL ... OFFSET 0 is not
    -- flattened into a hash join, which would read the whole table for
    -- every chunk of a big import).
    SELECT n.instance_id, o.instance_id AS duplicate_of, 'national_id' AS reason, n.collected_at,
           o.collected_at AS other_collected_at, true AS earlier
    FROM ins n CROSS JOIN LATERAL (
        SELECT o.instance_id, o.collected_at FROM survey_record o
        WHERE n.id_hash IS NOT NULL AND o.kind = n.kind AND o.id_hash = n.id_hash OFFSET 0
    ) o
    UNION ALL
    SELECT n.instance_id, o.instance_id, 'name_birth_year_commune', n.collected_at, o.collected_at, true
    FROM ins n CROSS JOIN LATERAL (
        SELECT o.instance_id, o.collected_at FROM survey_record o
        WHERE o.kind = n.kind AND o.name_folded = n.name_folded AND o.birth_year = n.birth_year
          AND o.declared_commune_code = n.declared_commune_code
          AND (o.id_hash IS DISTINCT FROM n.id_hash OR n.id_hash IS NULL) OFFSET 0
    ) o
    UNION ALL
    SELECT n.instance_id, o.instance_id, 'national_id', n.collected_at, o.collected_at,
           (o.collected_at, o.instance_id) < (n.collected_at, n.instance_id)
    FROM ins n JOIN ins o ON o.kind = n.kind AND o.id_hash = n.id_hash
    WHERE n.id_hash IS NOT NULL
    UNION ALL
    SELECT n.instance_id, o.instance_id, 'name_birth_year_commune', n.collected_at, o.collected_at,
           (o.collected_at, o.instance_id) < (n.collected_at, n.instance_id)
    FROM ins n JOIN ins o ON o.kind = n.kind AND o.name_folded = n.name_folded
         AND o.birth_year = n.birth_year AND o.declared_commune_code = n.declared_commune_code
    WHERE o.id_hash IS DISTINCT FROM n.id_hash OR n.id_hash IS NULL
),
dup AS (
    INSERT INTO probable_duplicate (instance_id, duplicate_of, reason)
    SELECT DISTINCT ON (p.instance_id, p.duplicate_of) p.instance_id, p.duplicate_of, p.reason
    FROM pairs p
    WHERE p.earlier AND p.instance_id <> p.duplicate_of
      AND p.other_collected_at BETWEEN p.collected_at - make_interval(days => :window)
                                   AND p.collected_at + make_interval(days => :window)
    ORDER BY p.instance_id, p.duplicate_of, p.reason DESC
    ON CONFLICT DO NOTHING
    RETURNING instance_id, duplicate_of, reason
),
dup_by_record AS (
    SELECT instance_id, json_agg(json_build_object('instance_id', duplicate_of, 'reason', reason)
                                 ORDER BY duplicate_of) AS probable_duplicates
    FROM dup GROUP BY instance_id
)
SELECT c.n, c.instance_id::text AS instance_id, c.error_field, c.error_message,
       i.instance_id IS NOT NULL AS inserted, r.payload_hash AS stored_hash, c.payload_hash,
       -- what the sender is told about a new record
       i.kind, i.structure, i.declared_commune_code, i.assigned_commune_code, i.location_mismatch,
       i.mismatch_distance_m, i.accuracy_flag, i.mock_location,
       coalesce(dr.probable_duplicates, '[]') AS probable_duplicates
FROM c
LEFT JOIN ins i ON i.instance_id = c.instance_id
LEFT JOIN dup_by_record dr ON dr.instance_id = c.instance_id
-- The stored fingerprint, only for rows not inserted now (sent before):
-- one index probe each, never a scan of the table.
LEFT JOIN LATERAL (
    SELECT r.payload_hash FROM survey_record r
    WHERE i.instance_id IS NULL AND c.error_field IS NULL AND r.instance_id = c.instance_id LIMIT 1
) r ON true
ORDER BY c.n
"""

RECORD_FIELDS = ("kind", "structure", "declared_commune_code", "assigned_commune_code", "location_mismatch",
                 "mismatch_distance_m", "accuracy_flag", "mock_location", "probable_duplicates")
"""The fields of a stored record that a submission's answer shows (nothing personal)."""

# Parsed once: the statement of every API, web form and ODK submission.
STORE_FROM_JSON = text(STORE_SQL.format(source=f"jsonb_to_recordset(CAST(:rows AS jsonb)) AS s({ROW_TYPES})"))


@dataclass(frozen=True)
class Sender:
    """Who sends submissions: the name stored with each record, and whose area scope limits them.

    ``scope_user_id=None`` (a file imported by an operator) stores anywhere.
    """

    name: str
    scope_user_id: str | None = None


def store_rows(conn: Connection, rows: list[dict[str, Any]], source_sql: str | None = None, sender: Sender | None = None) -> list[Any]:
    """Run the set-based check-and-insert on rows (or on ``source_sql``)."""
    st = get_settings()
    params = {"outside_m": st.survey_outside_tolerance_m, "accuracy_limit": st.gps_accuracy_limit_m, "secret": server_secret(),
              "window": st.duplicate_window_days,
              "submitted_by": sender.name if sender else None, "scope_user_id": sender.scope_user_id if sender else None}
    if source_sql is None:
        params["rows"] = json.dumps(rows, ensure_ascii=False, default=str)
    statement = STORE_FROM_JSON if source_sql is None else text(STORE_SQL.format(source=source_sql))
    return conn.execute(statement, params).all()


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
    for n, item in enumerate(items):
        if not isinstance(item.payload, dict):
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
    for r in store_rows(conn, rows, sender=sender) if rows else []:
        item = items[r.n]
        if r.error_field:
            rejected.append((r.n, [{"field": r.error_field, "message": r.error_message}],
                             "forbidden" if r.error_field == "scope" else "rejected"))
        elif r.inserted:
            record = {k: getattr(r, k) for k in RECORD_FIELDS} | {"review_status": "received"}
            outcomes[r.n] = Outcome("created", r.instance_id, row_number=item.row_number, record=record)
        else:
            stored = r.stored_hash or conn.execute(
                text("SELECT payload_hash FROM survey_record WHERE instance_id = CAST(:i AS uuid)"), {"i": r.instance_id}
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
