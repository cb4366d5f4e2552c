"""Ready for distributed PostgreSQL: the catalog holds the distribution column where Citus needs it, and
every submission is still stored exactly once by its instance_id."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid

import pytest
from sqlalchemy import text

from geodata import migrate
from geodata.distribution import COORDINATOR, DISTRIBUTED, REFERENCE, UNPLACED_PROVINCE, citus_statements, schema_problems
from survey.definition import FORM
from survey.ingest import Incoming, ingest, to_row
from survey.schemas import validate_submission
from survey.store import store_rows
from tests.helpers import using
from tests.payloads import aspirant

BEFORE_2025 = dt.datetime(2025, 3, 10, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))

# A commune of before 2025 whose province was merged into one with another code, with a point inside it.
OLD_COMMUNE_SQL = """
SELECT c.code, ST_X(ST_PointOnSurface(c.geom)) AS lon, ST_Y(ST_PointOnSurface(c.geom)) AS lat,
       p.code AS old_province, x.new_code AS province
FROM admin_unit c
JOIN admin_unit d ON d.structure = c.structure AND d.code = c.parent_code
JOIN admin_unit p ON p.structure = d.structure AND p.code = d.parent_code AND p.level = 'province'
JOIN unit_crosswalk x ON x.old_structure = 'pre2025' AND x.old_code = p.code AND x.new_structure = '2025' AND x.level = 'province'
WHERE c.structure = 'pre2025' AND c.level = 'commune' AND c.geom IS NOT NULL AND x.new_code <> p.code
  AND NOT EXISTS (SELECT 1 FROM admin_unit n WHERE n.structure = '2025' AND n.code = c.code)
ORDER BY c.code LIMIT 1
"""

# A 2025 commune with a point, in another province than the given one.
OTHER_PROVINCE_SQL = """
SELECT code, parent_code AS province, ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat
FROM admin_unit WHERE structure = '2025' AND level = 'commune' AND geom IS NOT NULL AND parent_code <> :p
ORDER BY code LIMIT 1
"""


def stored(conn, instance_id: str) -> list[tuple[str, str]]:
    """(province, commune) of every record of this instance_id."""
    return [tuple(r) for r in conn.execute(
        text("SELECT province_code, declared_commune_code FROM survey_record WHERE instance_id = :i"), {"i": instance_id})]


# --- the catalog ----------------------------------------------------------------------------------

def test_the_migrated_schema_is_ready_for_distribution(seeded):
    with seeded.connect() as conn:
        assert schema_problems(conn) == []
        # the large tables are where the plan says, with their column in the primary key
        keys = dict(conn.execute(text("""
            SELECT t.relname, array_agg(a.attname::text ORDER BY a.attname)
            FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
            WHERE c.contype = 'p' AND t.relname = ANY (:t) GROUP BY t.relname"""), {"t": list(DISTRIBUTED)}).all())
    assert set(keys) == set(DISTRIBUTED)
    assert all(column in keys[table] for table, column in DISTRIBUTED.items())


def test_the_check_finds_what_citus_would_refuse(seeded):
    with seeded.connect() as conn, conn.begin() as tx:
        conn.execute(text("""
            CREATE UNIQUE INDEX survey_record_one_id ON survey_record (instance_id);
            ALTER TABLE submission_quarantine ADD CONSTRAINT quarantine_one_hash UNIQUE (id, payload_hash);
            ALTER TABLE probable_duplicate ADD CONSTRAINT probable_duplicate_other_fkey
                FOREIGN KEY (duplicate_province_code, duplicate_of) REFERENCES survey_record (province_code, instance_id);
            ALTER TABLE incident DROP CONSTRAINT incident_pkey;
            ALTER TABLE incident ALTER COLUMN province_code DROP NOT NULL;
            ALTER TABLE target ADD COLUMN event_province text, ADD COLUMN event_key text,
                ADD CONSTRAINT target_event_fkey FOREIGN KEY (event_province, event_key)
                    REFERENCES recruitment_event (province_code, event_key);
            CREATE TABLE survey_photo (instance_id uuid PRIMARY KEY)"""))
        problems = schema_problems(conn)
        tx.rollback()
    expected = [
        "survey_record: unique index survey_record_one_id (instance_id) lacks the distribution column province_code",
        "submission_quarantine: unique index quarantine_one_hash (id, payload_hash) lacks the distribution column province_code",
        ("probable_duplicate: foreign key probable_duplicate_other_fkey (duplicate_province_code, duplicate_of) -> survey_record "
        "(province_code, instance_id) lacks the distribution column (province_code -> province_code)"),
        "incident: distribution column province_code may be NULL",
        ("target: foreign key target_event_fkey (event_province, event_key) -> recruitment_event (province_code, event_key) "
        "points at a distributed table from one that is not"),
        "survey_photo: not placed (add it to geodata.distribution: distributed, reference or coordinator)",
    ]
    assert sorted(problems) == sorted(expected)
    with seeded.connect() as conn:
        assert schema_problems(conn) == []


def test_the_deployment_statements_place_every_table_once_references_first():
    statements = citus_statements()
    tables = [s.split("'")[1] for s in statements]
    # Every table once; of the coordinator's tables, those Citus must know (alembic_version it need not).
    assert len(tables) == len(set(tables)) == len(REFERENCE) + len(DISTRIBUTED) + len(set(COORDINATOR) - {"alembic_version"})
    first_distributed = min(i for i, s in enumerate(statements) if "create_distributed_table" in s)
    assert all("create_reference_table" in s for s in statements[:len(REFERENCE)])
    assert tables[first_distributed] == "survey_record" and {"audit_log", "export_job"} <= set(tables[:first_distributed])


# --- the province of a record ----------------------------------------------------------------------

def test_a_record_of_before_2025_is_kept_under_its_2025_province(client, seeded):
    with seeded.connect() as conn:
        old = conn.execute(text(OLD_COMMUNE_SQL)).one()
    p = aspirant({"code": old.code, "lon": old.lon, "lat": old.lat}, collected_at=BEFORE_2025.isoformat(),
                 national_id=None)
    r = client.post("/api/v1/submissions", json=p)
    assert r.status_code == 201, r.text
    assert r.json()["record"]["structure"] == "pre2025"
    with seeded.connect() as conn:
        assert stored(conn, p["instance_id"]) == [(old.province, old.code)]
        key = conn.execute(text("SELECT province_code FROM survey_record_key WHERE instance_id = :i"), {"i": p["instance_id"]}).scalar()
    assert key == old.province != old.old_province
    assert client.get(f"/api/v1/submissions/{p['instance_id']}").json()["province_code"] == old.province


def test_a_province_without_a_2025_successor_keeps_the_form_in_quarantine(seeded_copy):
    with seeded_copy.begin() as conn:
        old = conn.execute(text(OLD_COMMUNE_SQL)).one()
        conn.execute(text("DELETE FROM unit_crosswalk WHERE old_code = :p AND level = 'province'"), {"p": old.old_province})
    p = aspirant({"code": old.code, "lon": old.lon, "lat": old.lat}, collected_at=BEFORE_2025.isoformat())
    with seeded_copy.begin() as conn:
        (outcome,) = ingest(conn, [Incoming(json.dumps(p), p)], source="api")
    assert outcome.status == "rejected"
    (reason,) = outcome.errors
    assert reason["code"] == "no_province_2025" and reason["field"] == "commune_code" and old.code in reason["message"]
    with seeded_copy.connect() as conn:
        assert stored(conn, p["instance_id"]) == []
        kept = conn.execute(text("SELECT province_code, instance_id FROM submission_quarantine WHERE id = :q"),
                            {"q": outcome.quarantine_id}).one()
    # Nothing names its 2025 province yet: kept unplaced, and resubmitted once the crosswalk is back.
    assert tuple(kept) == (UNPLACED_PROVINCE, p["instance_id"])


def test_an_event_whose_province_has_no_2025_successor_is_refused_naming_row_and_field(seeded_copy, tmp_path):
    from etl.recruiters import import_events
    from etl.tables import TableImportError

    with seeded_copy.begin() as conn:
        old = conn.execute(text(OLD_COMMUNE_SQL)).one()
        # events are placed through the commune's links (incidents too): neither the commune nor its province has one
        conn.execute(text("DELETE FROM unit_crosswalk WHERE old_structure = 'pre2025' AND old_code IN (:c, :p)"),
                     {"c": old.code, "p": old.old_province})
    path = tmp_path / "su_kien.csv"
    path.write_text(f"occurred_on,actor_name,kind,commune_code\n2025-03-10,Nguyễn Văn Môi Giới,seminar,{old.code}\n",
                    encoding="utf-8")
    with seeded_copy.begin() as conn, pytest.raises(TableImportError) as refused:
        import_events(conn, path)
    assert f"row 2, field commune_code: commune {old.code} (pre2025) has no 2025 province" in str(refused.value)
    with seeded_copy.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM recruitment_event WHERE commune_code = :c"), {"c": old.code}).scalar() == 0


def test_quarantined_payloads_are_kept_under_the_province_of_the_commune_they_name(client, commune, seeded):
    unknown = aspirant(commune, commune_code="99999")
    too_old = aspirant(commune, birth_year=1900)
    ids = [client.post("/api/v1/submissions", json=p).json()["quarantine_id"] for p in (unknown, too_old)]
    with seeded.connect() as conn:
        provinces = [conn.execute(text("SELECT province_code FROM submission_quarantine WHERE id = :q"), {"q": q}).scalar()
                     for q in ids]
        expected = conn.execute(text("SELECT parent_code FROM admin_unit WHERE structure = '2025' AND code = :c"),
                                {"c": commune["code"]}).scalar()
    assert provinces == [UNPLACED_PROVINCE, expected]
    # The same form rejected again is still kept once (the look-up is within its province).
    assert client.post("/api/v1/submissions", json=too_old).json()["quarantine_id"] == ids[1]


# --- exactly once ---------------------------------------------------------------------------------

def test_a_resubmission_naming_another_province_is_not_stored_twice(client, commune, seeded):
    p = aspirant(commune)
    assert client.post("/api/v1/submissions", json=p).status_code == 201
    with seeded.connect() as conn:
        elsewhere = conn.execute(text(OTHER_PROVINCE_SQL), {"p": "42"}).one()
        first = stored(conn, p["instance_id"])
    moved = dict(p, commune_code=elsewhere.code, location={"lat": elsewhere.lat, "lon": elsewhere.lon, "accuracy": 5})
    r = client.post("/api/v1/submissions", json=moved)
    assert r.status_code == 409 and p["instance_id"] in r.json()["detail"]
    assert client.post("/api/v1/submissions", json=p).json()["status"] == "exists"
    with seeded.connect() as conn:
        assert stored(conn, p["instance_id"]) == first == [("42", commune["code"])]


def test_one_statement_naming_an_id_twice_in_two_provinces_stores_it_once(seeded, commune):
    # The channels drop an id repeated within one request or file before the statement; the statement holds too.
    with seeded.connect() as conn:
        elsewhere = conn.execute(text(OTHER_PROVINCE_SQL), {"p": "42"}).one()
    p = aspirant(commune)
    moved = dict(p, commune_code=elsewhere.code, location={"lat": elsewhere.lat, "lon": elsewhere.lon, "accuracy": 5})
    rows = []
    for n, payload in enumerate((p, moved)):
        clean, errors = validate_submission(payload, FORM, None)
        assert not errors
        rows.append(to_row(clean, n=n, source="api", defn=FORM))
    with seeded.connect() as conn, conn.begin() as tx:
        results = store_rows(conn, rows)
        assert sum(r.inserted for r in results) == 1 and not any(r.error_field for r in results)
        (kept,) = stored(conn, p["instance_id"])
        assert kept in {("42", commune["code"]), (elsewhere.province, elsewhere.code)}
        assert conn.execute(text("SELECT province_code FROM survey_record_key WHERE instance_id = :i"),
                            {"i": p["instance_id"]}).scalar() == kept[0]
        tx.rollback()


def waiting(engine) -> int:
    """How many sessions of this database wait for a lock (seen from a connection of its own)."""
    with engine.connect() as conn:
        return conn.execute(text("""SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                                    AND wait_event_type = 'Lock'""")).scalar()


def test_concurrent_submissions_of_one_id_in_two_provinces_store_it_once(seeded_copy, commune):
    with seeded_copy.connect() as conn:
        elsewhere = conn.execute(text(OTHER_PROVINCE_SQL), {"p": "42"}).one()
    p = aspirant(commune)
    moved = dict(p, commune_code=elsewhere.code, location={"lat": elsewhere.lat, "lon": elsewhere.lon, "accuracy": 5})
    second: list = []

    def submit_moved() -> None:
        with seeded_copy.begin() as conn:
            second.extend(ingest(conn, [Incoming(json.dumps(moved), moved)], source="api"))

    with seeded_copy.connect() as first:
        with first.begin():
            (created,) = ingest(first, [Incoming(json.dumps(p), p)], source="api")
            other = threading.Thread(target=submit_moved)
            other.start()
            # The second one waits for the first's claim on the instance_id (the key's unique index).
            deadline = time.monotonic() + 30
            while not waiting(seeded_copy):
                assert time.monotonic() < deadline and other.is_alive(), "the second submission did not wait"
                time.sleep(0.05)
        other.join(30)
    assert created.status == "created" and [o.status for o in second] == ["conflict"]
    with seeded_copy.connect() as conn:
        assert stored(conn, p["instance_id"]) == [("42", commune["code"])]
        assert conn.execute(text("SELECT count(*) FROM survey_record_key WHERE instance_id = :i"), {"i": p["instance_id"]}).scalar() == 1


def test_probable_duplicates_across_provinces_are_linked_with_both_provinces(client, commune, seeded):
    with seeded.connect() as conn:
        elsewhere = conn.execute(text(OTHER_PROVINCE_SQL), {"p": "42"}).one()
    national_id = f"0{uuid.uuid4().int % 10**11:011d}"
    # A name of its own: records other tests left in these communes must not be linked by name.
    name = f"Trần Thị Xuyên Tỉnh {uuid.uuid4().hex[:8]}"
    first = aspirant(commune, national_id=national_id, full_name=name)
    later = aspirant({"code": elsewhere.code, "lon": elsewhere.lon, "lat": elsewhere.lat}, national_id=national_id,
                     full_name=name)
    assert client.post("/api/v1/submissions", json=first).status_code == 201
    r = client.post("/api/v1/submissions", json=later)
    assert r.status_code == 201
    assert [d["instance_id"] for d in r.json()["record"]["probable_duplicates"]] == [first["instance_id"]]
    with seeded.connect() as conn:
        link = conn.execute(text("SELECT province_code, duplicate_province_code FROM probable_duplicate WHERE instance_id = :i"),
                            {"i": later["instance_id"]}).one()
    assert tuple(link) == (elsewhere.province, "42")
    listed = client.get(f"/api/v1/submissions/{later['instance_id']}").json()["probable_duplicates"]
    assert [d["instance_id"] for d in listed] == [first["instance_id"]]


# --- the migration on existing data ---------------------------------------------------------------

RECORD_0015_SQL = """
INSERT INTO survey_record (province_code, instance_id, form_id, form_version, kind, collected_at, surveyor, source,
                           structure, declared_commune_code, consent, payload_hash)
VALUES (:province, :i, 'labour_survey', '1', 'aspirant', :at, 'Người khảo sát thử', 'test (synthetic)', :s, :c, true, 'x')
"""


@pytest.fixture
def before_0017(server):
    from etl.reference import load_code_lists, load_crosswalk

    url = server.create_database()
    with using(url) as engine:
        migrate.upgrade("0016")  # the revision before 0017
        with engine.begin() as conn:
            load_code_lists(conn)
            load_crosswalk(conn)
        yield engine
    server.drop_database(url)


def test_the_migration_moves_existing_rows_to_their_2025_province_and_back(before_0017):
    old_id, new_id = str(uuid.uuid4()), str(uuid.uuid4())
    with before_0017.begin() as conn:
        old = conn.execute(text(OLD_COMMUNE_SQL.replace("c.geom IS NOT NULL AND", ""))).one()
        new = conn.execute(text("SELECT code, parent_code FROM admin_unit WHERE structure = '2025' AND level = 'commune' "
                                "AND parent_code = :p ORDER BY code LIMIT 1"), {"p": old.province}).one()
        conn.execute(text(RECORD_0015_SQL), {"province": old.old_province, "i": old_id, "at": BEFORE_2025, "s": "pre2025", "c": old.code})
        conn.execute(text(RECORD_0015_SQL), {"province": new.parent_code, "i": new_id, "at": BEFORE_2025 + dt.timedelta(days=200),
                                             "s": "2025", "c": new.code})
        conn.execute(text("INSERT INTO probable_duplicate (instance_id, duplicate_of, reason) VALUES (:n, :o, 'national_id')"),
                     {"n": new_id, "o": old_id})
        conn.execute(text("""INSERT INTO submission_quarantine (source, payload_text, payload_hash, reasons, commune_code)
                             VALUES ('api', '{}', 'a', '[]', :c), ('api', '{}', 'b', '[]', NULL)"""), {"c": old.code})
    with before_0017.connect() as conn:  # what 0017 is for, as the check sees it
        before = schema_problems(conn)
    assert sorted(before) == sorted([
        "survey_record_key: in the plan but not in the database",
        "survey_record: unique index survey_record_instance (instance_id) lacks the distribution column province_code",
        "submission_quarantine: no distribution column province_code",
        "probable_duplicate: no distribution column province_code",
        "submission_quarantine: primary key submission_quarantine_pkey (id) lacks the distribution column province_code",
        ("probable_duplicate: primary key probable_duplicate_pkey (instance_id, duplicate_of) lacks the distribution column "
        "province_code"),
        ("probable_duplicate: foreign key probable_duplicate_instance_id_fkey (instance_id) -> survey_record (instance_id) "
        "lacks the distribution column (province_code -> province_code)"),
        ("probable_duplicate: foreign key probable_duplicate_duplicate_of_fkey (duplicate_of) -> survey_record (instance_id) "
        "lacks the distribution column (province_code -> province_code)"),
    ])
    migrate.upgrade()
    with before_0017.connect() as conn:
        assert schema_problems(conn) == []
        assert stored(conn, old_id) == [(old.province, old.code)]
        assert stored(conn, new_id) == [(new.parent_code, new.code)]
        assert dict(conn.execute(text("SELECT instance_id::text, province_code FROM survey_record_key")).all()) == {
            old_id: old.province, new_id: new.parent_code}
        assert conn.execute(text("SELECT province_code, duplicate_province_code FROM probable_duplicate")).all() == [
            (new.parent_code, old.province)]
        assert conn.execute(text("SELECT province_code FROM submission_quarantine ORDER BY id")).scalars().all() == [
            old.province, UNPLACED_PROVINCE]
    migrate.downgrade("0016")
    with before_0017.connect() as conn:
        assert stored(conn, old_id) == [(old.old_province, old.code)]
        assert stored(conn, new_id) == [(new.parent_code, new.code)]
        assert conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'survey_record_instance'")).scalar().startswith(
            "CREATE UNIQUE INDEX")
        assert conn.execute(text("SELECT instance_id::text, duplicate_of::text FROM probable_duplicate")).all() == [(new_id, old_id)]
    with before_0017.begin() as conn:  # the foreign keys are back: deleting the older record removes the link
        conn.execute(text("DELETE FROM survey_record WHERE instance_id = :o"), {"o": old_id})
        assert conn.execute(text("SELECT count(*) FROM probable_duplicate")).scalar() == 0
