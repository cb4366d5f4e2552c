"""The set-based statements that store valid submissions, shared by every channel.

Storing is two steps, written once here:

1. :data:`CHECK_SQL` (read-only): per row, the boundary structure in force on
   the collection date, the declared commune, the commune covering the GPS
   point, the mismatch and accuracy flags, the sender's area, the folded
   name, and the reason if the row cannot be stored;
2. :data:`INSERT_SQL`: the payload's fingerprint, insert the checked rows
   (keyed by ``instance_id``, idempotent), link probable duplicates, and
   report each row. A bulk load inserts with :data:`INSERT_UNLINKED_SQL` and
   links its probable duplicates once at the end (:data:`LINK_BULK_SQL`).

An API request runs both as one statement (:func:`store_rows`). A big file
import runs step 1 on a second connection, one chunk ahead, into a work table
(:func:`check_into`), and step 2 in its own transaction (:func:`insert_checked`),
so that two PostgreSQL backends work at the same time while the file stays
all-or-nothing: only step 2 writes records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from geodata.scopes import scope_condition
from geodata.settings import get_settings

ROW_TYPES = """
    n int, instance_id uuid, form_id text, form_version text, kind text, collected_at timestamptz, surveyor text,
    source text, commune_code text, lon float8, lat float8, accuracy real, mock_location boolean, id_hash text,
    full_name text, birth_year smallint, sex text, departure_date date, market text, recruiter_licence text,
    answers jsonb
"""
"""The columns of a row to store, as every channel hands them over."""

ROW_COLUMNS = [c.strip().split()[0] for c in ROW_TYPES.split(",")]

# {source} is a relation aliased ``s`` with the columns of ROW_TYPES: a
# jsonb_to_recordset of the request's rows, or a staging table filled by COPY.
CHECK_SQL = f"""
a AS (
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
    SELECT s.*, st.name AS structure, d.code AS declared, d.geom AS declared_geom,
           -- The distribution column: the 2025 province, also for a record of before 2025.
           CASE WHEN st.name <> '2025' THEN px.new_code WHEN dp.level = 'province' THEN dp.code ELSE dp.parent_code END
               AS province_code,
           -- Without a point (no GPS, and why is said) the record is counted in its declared commune.
           other.structure AS other_structure,
           CASE WHEN s.lon IS NULL OR s.lat IS NULL THEN d.code ELSE a.code END AS assigned,
           ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326) AS pt,
           (s.collected_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS local_date,
           -- A sender with an area scope may store records whose declared or
           -- located commune is in it (a trusted file import has none).
           (CAST(:scope_user_id AS uuid) IS NULL OR {scope_condition("d.code", "st.name", per_row=True)}
            OR {scope_condition("a.code", "st.name", per_row=True)}) AS in_scope
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
    -- Provinces were merged whole in 2025: an old province (the parent of the
    -- declared commune's district) has one successor.
    LEFT JOIN LATERAL (
        SELECT x.new_code FROM unit_crosswalk x
        WHERE st.name <> '2025' AND x.old_structure = st.name AND x.new_structure = '2025' AND x.level = 'province'
          AND x.old_code = CASE dp.level WHEN 'province' THEN dp.code ELSE dp.parent_code END
        ORDER BY x.area_share DESC, x.new_code LIMIT 1
    ) px ON true
    LEFT JOIN a ON a.n = s.n
),
f AS (
    SELECT e.*,
           -- Only a mismatch needs the distance (a geodesic one, in metres).
           CASE WHEN e.assigned IS DISTINCT FROM e.declared AND e.declared_geom IS NOT NULL
                THEN ST_Distance(e.declared_geom::geography, e.pt::geography) END AS distance_m
    FROM e
),
c AS (
    -- What the insert needs, and nothing bulky: the declared commune's
    -- polygon stays here (a work table of a million rows must not copy it).
    SELECT f.n, f.instance_id, f.form_id, f.form_version, f.kind, f.collected_at, f.surveyor, f.source,
           f.structure, f.province_code, f.declared, f.assigned, f.pt, f.accuracy,
           coalesce(f.accuracy > :accuracy_limit, false) AS accuracy_flag,
           f.distance_m IS NOT NULL AS location_mismatch, f.distance_m,
           coalesce(f.mock_location, false) AS mock_location, f.id_hash, f.full_name,
           la_fold(f.full_name) AS name_folded, f.birth_year, f.sex,
           f.departure_date, f.market, f.recruiter_licence, jsonb_strip_nulls(f.answers) AS answers,
           -- as sent, for the fingerprint (:data:`INSERT_SQL`)
           f.commune_code, f.lon, f.lat, f.mock_location AS mock_location_sent,
        CASE
            WHEN f.structure IS NULL THEN 'collected_at'
            WHEN f.declared IS NULL THEN 'commune_code'
            WHEN f.assigned IS NULL AND f.distance_m > :outside_m THEN 'location'
            WHEN NOT f.in_scope THEN 'scope'
            WHEN f.province_code IS NULL THEN 'commune_code'
        END AS error_field,
        CASE
            WHEN f.structure IS NULL THEN 'no boundary structure is valid on ' || f.local_date
            WHEN f.declared IS NULL AND f.other_structure IS NOT NULL THEN
                'commune code ' || f.commune_code || ' belongs to the ' || f.other_structure
                || ' structure, not to the ' || f.structure || ' structure in force on ' || f.local_date
            WHEN f.declared IS NULL THEN 'unknown commune code ' || f.commune_code
            WHEN f.assigned IS NULL AND f.distance_m > :outside_m THEN
                'the GPS point is in no commune of Viet Nam and '
                || round(f.distance_m / 1000) || ' km from the declared commune'
            WHEN NOT f.in_scope THEN
                'commune ' || f.declared || coalesce(' (GPS point in commune ' || f.assigned || ')', '')
                || ' is outside the area of ' || :submitted_by
            WHEN f.province_code IS NULL THEN
                'commune ' || f.declared || ' (' || f.structure || ') has no 2025 province in the crosswalk'
        END AS error_message,
        -- The same errors as codes of the message catalogue (survey.messages) with their values.
        CASE
            WHEN f.structure IS NULL THEN 'no_structure'
            WHEN f.declared IS NULL AND f.other_structure IS NOT NULL THEN 'commune_other_structure'
            WHEN f.declared IS NULL THEN 'unknown_commune'
            WHEN f.assigned IS NULL AND f.distance_m > :outside_m THEN 'far_outside'
            WHEN NOT f.in_scope AND f.assigned IS NOT NULL AND f.assigned <> f.declared THEN 'outside_scope_gps'
            WHEN NOT f.in_scope THEN 'outside_scope'
            WHEN f.province_code IS NULL THEN 'no_province_2025'
        END AS error_code,
        CASE
            WHEN f.structure IS NULL OR f.declared IS NULL THEN
                jsonb_build_object('date', f.local_date, 'code', f.commune_code, 'other', f.other_structure,
                                   'structure', f.structure)
            WHEN f.assigned IS NULL AND f.distance_m > :outside_m THEN jsonb_build_object('km', round(f.distance_m / 1000))
            WHEN NOT f.in_scope THEN jsonb_build_object('code', f.declared, 'assigned', f.assigned, 'user', :submitted_by)
            WHEN f.province_code IS NULL THEN jsonb_build_object('code', f.declared, 'structure', f.structure)
        END AS error_params
    FROM f
)
"""

# {checked} is a relation aliased ``c`` with the columns of CHECK_SQL's ``c``.
CLAIM_AND_INSERT_SQL = """
-- The fingerprint behind "same payload again?" is computed here, where all
-- channels meet, over jsonb's canonical text of the row as sent; keyed, as
-- it covers the ID hash. Here rather than in the check: a file's check runs
-- one chunk ahead on another connection, and this was a third of its work,
-- which the storing connection has time for.
h AS (
    SELECT c.*,
           encode(hmac(jsonb_build_object(
               'instance_id', c.instance_id, 'form_id', c.form_id, 'form_version', c.form_version, 'kind', c.kind,
               'collected_at', c.collected_at AT TIME ZONE 'UTC', 'surveyor', c.surveyor, 'commune_code', c.commune_code,
               'lon', c.lon, 'lat', c.lat, 'accuracy', c.accuracy, 'mock_location', c.mock_location_sent,
               'id_hash', c.id_hash, 'full_name', c.full_name, 'birth_year', c.birth_year, 'sex', c.sex,
               'departure_date', c.departure_date, 'market', c.market, 'recruiter_licence', c.recruiter_licence,
               'answers', c.answers)::text, :secret, 'sha256'), 'hex') AS payload_hash
    FROM {checked}
),
-- Exactly once by instance_id: a unique key must hold the distribution column
-- (the province), so the instance_id is first claimed in survey_record_key
-- (its own key), and only the rows whose claim was taken now are stored. A
-- resubmission naming a commune of another province finds its instance_id
-- claimed and is answered like any resubmission (same payload, or conflict).
claimed AS (
    INSERT INTO survey_record_key (instance_id, province_code)
    SELECT instance_id, province_code FROM h WHERE error_field IS NULL
    ON CONFLICT (instance_id) DO NOTHING
    RETURNING instance_id, province_code
),
ins AS (
    INSERT INTO survey_record (
        province_code, instance_id, form_id, form_version, kind, collected_at, surveyor, source, structure,
        declared_commune_code, assigned_commune_code, geom, gps_accuracy_m, accuracy_flag, location_mismatch,
        mismatch_distance_m, mock_location, consent, id_hash, full_name, name_folded, birth_year, sex,
        departure_date, market, recruiter_licence, answers, payload_hash, submitted_by, location_missing_reason)
    SELECT province_code, instance_id, form_id, form_version, kind, collected_at, surveyor, source, structure,
           declared, assigned, pt, accuracy, accuracy_flag, location_mismatch, distance_m, mock_location, true,
           id_hash, full_name, name_folded, birth_year, sex, departure_date, market, recruiter_licence,
           answers, payload_hash, :submitted_by,
           -- the review flag of a record without a point (validation made sure the reason is given)
           CASE WHEN pt IS NULL THEN coalesce(answers->>'location_missing_reason', 'other') END
    -- (a claim joined on the province too: the same id twice in one statement, in two provinces, is stored once)
    FROM h c JOIN claimed k USING (instance_id, province_code) WHERE c.error_field IS NULL
    ON CONFLICT (province_code, instance_id) DO NOTHING
    RETURNING province_code, instance_id, payload_hash, kind, id_hash, name_folded, birth_year, declared_commune_code, collected_at, submitted_at,
              structure, assigned_commune_code, location_mismatch, mismatch_distance_m, accuracy_flag, mock_location,
              location_missing_reason
)
"""

# Candidate pairs of probable duplicates of the records just inserted (``ins``);
# :data:`LINK_SQL` keeps those in the window. A bulk load finds its pairs in one
# pass at the end instead (:data:`LINK_BULK_SQL`), with the same rules.
DUPLICATE_PAIRS_SQL = """
-- New records that look like an earlier one of the same kind (same ID hash,
-- or same folded name + birth year + declared commune, within the window):
-- linked, never merged. Earlier = stored before this statement (the
-- snapshot holds none of the new rows) or, within it, collected earlier.
-- Index-friendly equi-joins, not one join on an OR.
pairs AS (
    -- Against stored records: index probes (LATERAL ... OFFSET 0 is not
    -- flattened into a hash join, which would read the whole table for
    -- every chunk of a big import). A national ID is looked for in every
    -- province (under Citus: every shard); a name in the declared commune
    -- only, hence in the record's own province (one shard).
    SELECT n.province_code, n.instance_id, o.province_code AS duplicate_province_code, o.instance_id AS duplicate_of,
           'national_id' AS reason, n.collected_at, o.collected_at AS other_collected_at, true AS earlier
    FROM ins n CROSS JOIN LATERAL (
        SELECT o.province_code, o.instance_id, o.collected_at FROM survey_record o
        WHERE n.id_hash IS NOT NULL AND o.kind = n.kind AND o.id_hash = n.id_hash OFFSET 0
    ) o
    UNION ALL
    SELECT n.province_code, n.instance_id, o.province_code, o.instance_id, 'name_birth_year_commune', n.collected_at,
           o.collected_at, true
    FROM ins n CROSS JOIN LATERAL (
        SELECT o.province_code, o.instance_id, o.collected_at FROM survey_record o
        WHERE o.province_code = n.province_code
          AND o.kind = n.kind AND o.name_folded = n.name_folded AND o.birth_year = n.birth_year
          AND o.declared_commune_code = n.declared_commune_code
          AND (o.id_hash IS DISTINCT FROM n.id_hash OR n.id_hash IS NULL) OFFSET 0
    ) o
    UNION ALL
    SELECT n.province_code, n.instance_id, o.province_code, o.instance_id, 'national_id', n.collected_at, o.collected_at,
           (o.collected_at, o.instance_id) < (n.collected_at, n.instance_id)
    FROM ins n JOIN ins o ON o.kind = n.kind AND o.id_hash = n.id_hash
    WHERE n.id_hash IS NOT NULL
    UNION ALL
    SELECT n.province_code, n.instance_id, o.province_code, o.instance_id, 'name_birth_year_commune', n.collected_at,
           o.collected_at, (o.collected_at, o.instance_id) < (n.collected_at, n.instance_id)
    FROM ins n JOIN ins o ON o.province_code = n.province_code AND o.kind = n.kind AND o.name_folded = n.name_folded
         AND o.birth_year = n.birth_year AND o.declared_commune_code = n.declared_commune_code
    WHERE o.id_hash IS DISTINCT FROM n.id_hash OR n.id_hash IS NULL
)
"""

# {pairs} holds candidate pairs: province_code, instance_id, duplicate_province_code,
# duplicate_of, reason, collected_at, other_collected_at, earlier.
LINK_SQL = """
dup AS (
    INSERT INTO probable_duplicate (province_code, instance_id, duplicate_province_code, duplicate_of, reason)
    SELECT DISTINCT ON (p.instance_id, p.duplicate_of) p.province_code, p.instance_id, p.duplicate_province_code,
           p.duplicate_of, p.reason
    FROM pairs p
    WHERE p.earlier AND p.instance_id <> p.duplicate_of
      AND p.other_collected_at BETWEEN p.collected_at - make_interval(days => :window)
                                   AND p.collected_at + make_interval(days => :window)
    ORDER BY p.instance_id, p.duplicate_of, p.reason DESC
    ON CONFLICT DO NOTHING
    RETURNING instance_id, duplicate_of, reason
)
"""

DUPLICATES_BY_RECORD_SQL = """
dup_by_record AS (
    SELECT instance_id, json_agg(json_build_object('instance_id', duplicate_of, 'reason', reason)
                                 ORDER BY duplicate_of) AS probable_duplicates
    FROM dup GROUP BY instance_id
)
"""

REPORT_SQL = """
SELECT c.n, c.instance_id::text AS instance_id, c.error_field, c.error_message, c.error_code, c.error_params,
       i.instance_id IS NOT NULL AS inserted, r.payload_hash AS stored_hash, c.payload_hash,
       -- what the sender is told about a new record
       i.kind, i.structure, i.declared_commune_code, i.assigned_commune_code, i.location_mismatch,
       i.mismatch_distance_m, i.accuracy_flag, i.mock_location, i.location_missing_reason,
       coalesce(dr.probable_duplicates, '[]') AS probable_duplicates
FROM h c
-- (by province and payload too: of one id sent twice in one statement, only the stored row says so)
LEFT JOIN ins i ON i.instance_id = c.instance_id AND i.province_code = c.province_code AND i.payload_hash = c.payload_hash
LEFT JOIN dup_by_record dr ON dr.instance_id = c.instance_id
-- The stored fingerprint, only for rows not inserted now (sent before):
-- found through the key's province (one shard), never a scan of the table.
LEFT JOIN LATERAL (
    SELECT r.payload_hash FROM survey_record_key k
    JOIN survey_record r ON r.province_code = k.province_code AND r.instance_id = k.instance_id
    WHERE i.instance_id IS NULL AND c.error_field IS NULL AND k.instance_id = c.instance_id LIMIT 1
) r ON true
-- A file import is told only of the rows that were not stored now (the
-- others are counted); a request hears of every row.
WHERE :every_row OR i.instance_id IS NULL
ORDER BY c.n
"""

INSERT_SQL = f"{CLAIM_AND_INSERT_SQL}, {DUPLICATE_PAIRS_SQL}, {LINK_SQL}, {DUPLICATES_BY_RECORD_SQL} {REPORT_SQL}"
"""Step 2: claim, insert, link probable duplicates, report."""

INSERT_UNLINKED_SQL = (f"{CLAIM_AND_INSERT_SQL}, dup_by_record AS (SELECT NULL::uuid AS instance_id, "
                       f"NULL::json AS probable_duplicates WHERE false) {REPORT_SQL}")
"""Step 2 of a bulk load: claim, insert, report; probable duplicates are linked once at the end (:data:`LINK_BULK_SQL`)."""

LINK_BULK_SQL = f"""
-- The records of a bulk load are those this transaction wrote (their xmin is
-- its id: the import runs no subtransaction). One pass over the table, hash
-- joins: no index needed, so a bulk load may leave the duplicate indexes out
-- while it inserts. Earlier = stored by anyone else (before the load, or
-- during it when the table is left open) or, within the file, collected
-- earlier (ties broken by instance_id), whatever the chunks.
WITH r AS MATERIALIZED (
    SELECT province_code, instance_id, kind, id_hash, name_folded, birth_year, declared_commune_code, collected_at,
           xmin = pg_current_xact_id()::xid AS new
    FROM survey_record
),
n AS MATERIALIZED (SELECT * FROM r WHERE new),
pairs AS (
    SELECT n.province_code, n.instance_id, o.province_code AS duplicate_province_code, o.instance_id AS duplicate_of,
           'national_id' AS reason, n.collected_at, o.collected_at AS other_collected_at,
           NOT o.new OR (o.collected_at, o.instance_id) < (n.collected_at, n.instance_id) AS earlier
    FROM n JOIN r o ON o.kind = n.kind AND o.id_hash = n.id_hash
    WHERE n.id_hash IS NOT NULL
    UNION ALL
    SELECT n.province_code, n.instance_id, o.province_code, o.instance_id, 'name_birth_year_commune', n.collected_at,
           o.collected_at, NOT o.new OR (o.collected_at, o.instance_id) < (n.collected_at, n.instance_id)
    FROM n JOIN r o ON o.province_code = n.province_code AND o.kind = n.kind AND o.name_folded = n.name_folded
         AND o.birth_year = n.birth_year AND o.declared_commune_code = n.declared_commune_code
    WHERE o.id_hash IS DISTINCT FROM n.id_hash OR n.id_hash IS NULL
),
{LINK_SQL}
SELECT count(*) FROM dup
"""
"""Link the probable duplicates of every record a bulk load inserted, once, after its last chunk."""

STORE_SQL = f"WITH {CHECK_SQL}, {INSERT_SQL.format(checked='c')}"
"""Both steps as one statement; ``{source}`` is left to fill."""

# Parsed once: the statement of every API, web form and ODK submission.
STORE_FROM_JSON = text(STORE_SQL.format(source=f"jsonb_to_recordset(CAST(:rows AS jsonb)) AS s({ROW_TYPES})"))


@dataclass(frozen=True)
class Sender:
    """Who sends submissions: the name stored with each record, and whose area scope limits them.

    ``scope_user_id=None`` (a file imported by an operator) stores anywhere.
    """

    name: str
    scope_user_id: str | None = None


def store_params(sender: Sender | None, *, every_row: bool = True) -> dict[str, Any]:
    """The parameters of the statements: settings, the server secret and the sender."""
    st = get_settings()
    return {"outside_m": st.outside_tolerance_m, "accuracy_limit": st.gps_accuracy_limit_m,
            "secret": st.require_secret("submissions cannot be stored"), "window": st.duplicate_window_days, "every_row": every_row,
            "submitted_by": sender.name if sender else None,
            "scope_user_id": sender.scope_user_id if sender else None}


def store_rows(conn: Connection, rows: list[dict[str, Any]], sender: Sender | None = None) -> list[Any]:
    """Check and store rows (dicts with the columns of :data:`ROW_TYPES`) in one statement.

    Returns one result row per input row, in the order of ``n``.
    """
    params = store_params(sender) | {"rows": json.dumps(rows, ensure_ascii=False, default=str)}
    return conn.execute(STORE_FROM_JSON, params).all()


def check_into(conn: Connection, source_sql: str, table: str) -> None:
    """Step 1 for a file: check the rows of ``source_sql`` into a new unlogged ``table``.

    Unlogged: the table is a hand-over between two connections of one
    import, dropped when the import ends; it is never worth writing to WAL.
    """
    # Autovacuum off: the table is written once, read once and dropped; left
    # on, autovacuum would vacuum and analyse each one (every column of 50,000
    # rows) while the import runs, for nothing.
    sql = (f"CREATE UNLOGGED TABLE {table} WITH (autovacuum_enabled = false) AS "
           f"WITH {CHECK_SQL.format(source=source_sql)} SELECT * FROM c")
    conn.execute(text(sql), store_params(None))
    # How many rows will be inserted: the planner's guess without it is 0.5 %.
    conn.execute(text(f"ANALYZE {table} (error_field)"))


def insert_checked(conn: Connection, table: str, *, unlinked: bool = False) -> list[Any]:
    """Step 2 for a file: store the rows checked into ``table``.

    ``unlinked``: leave probable duplicates to :func:`link_bulk_load`, after the last chunk.

    Returns only the rows not stored now (rejected, sent before, or in
    conflict), in the order of ``n``.
    """
    sql = INSERT_UNLINKED_SQL if unlinked else INSERT_SQL
    return conn.execute(text(f"WITH {sql.format(checked=f'{table} c')}"), store_params(None, every_row=False)).all()


def link_bulk_load(conn: Connection) -> int:
    """Link the probable duplicates of the records this transaction inserted unlinked; returns the links made.

    Hash joins over the whole table, whatever the planner thinks of its
    size: statistics taken while the table was empty (autovacuum after a
    truncate) would otherwise turn them into nested loops, quadratic here.
    One pass for a million records: about 4 s of database CPU.
    """
    # (Merge joins would sort a million rows four times over.)
    joins = ("enable_nestloop", "enable_mergejoin")
    before = conn.execute(text("SELECT current_setting('enable_nestloop'), current_setting('enable_mergejoin')")).one()
    for name in joins:
        conn.execute(text(f"SET LOCAL {name} = off"))
    links = conn.execute(text(LINK_BULK_SQL), {"window": get_settings().duplicate_window_days}).scalar()
    for name, value in zip(joins, before, strict=True):
        conn.execute(text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value})
    return links


COMMUNE_PROBLEMS_SQL = text("""
SELECT c.n, st.name AS structure, o.structure AS other, c.code, c.day,
       CASE WHEN d.code IS NOT NULL THEN NULL
            WHEN o.structure IS NOT NULL THEN
                'commune code ' || c.code || ' belongs to the ' || o.structure
                || ' structure, not to the ' || st.name || ' structure in force on ' || c.day
            ELSE 'unknown commune code ' || c.code END AS problem
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS c(n int, code text, day date)
JOIN boundary_structure st ON st.valid_from <= c.day AND (st.valid_to IS NULL OR c.day < st.valid_to)
LEFT JOIN admin_unit d ON d.structure = st.name AND d.code = c.code AND d.level = 'commune'
LEFT JOIN LATERAL (
    SELECT o.structure FROM admin_unit o WHERE d.code IS NULL AND o.code = c.code AND o.level = 'commune' LIMIT 1
) o ON true
""")


def commune_problems(conn: Connection, declared: list[tuple[int, str, Any]]) -> dict[int, dict[str, Any]]:
    """What is wrong with the declared commune of forms rejected for other reasons, by their key.

    ``declared`` holds ``(key, commune code, local date)``. The store
    statement checks the commune of valid forms; a form refused for another
    field is checked here too, so that one answer names every failing field.
    The wording is the store statement's.

    Example (needs a database)::

        commune_problems(conn, [(0, "99999", dt.date(2026, 1, 5))])
        # {0: {'field': 'commune_code', 'message': 'unknown commune code 99999', 'code': 'unknown_commune', ...}}
    """
    if not declared:
        return {}
    rows = json.dumps([{"n": n, "code": code, "day": str(day)} for n, code, day in declared])
    return {
        r.n: {"field": "commune_code", "message": r.problem,
              "code": "commune_other_structure" if r.other else "unknown_commune",
              "params": {"code": r.code, "other": r.other, "structure": r.structure, "date": str(r.day)}}
        for r in conn.execute(COMMUNE_PROBLEMS_SQL, {"rows": rows}) if r.problem
    }
