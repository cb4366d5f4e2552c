"""Submissions API: idempotency, validation, quarantine, location checks, duplicates, review."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from sqlalchemy import text

from survey.identity import national_id_hash
from tests.payloads import NOW, aspirant


def test_submit_is_idempotent_and_conflicts_on_a_different_payload(client, commune, seeded):
    p = aspirant(commune)
    r1 = client.post("/api/v1/submissions", json=p)
    assert r1.status_code == 201, r1.text
    body = r1.json()
    assert body["status"] == "created" and body["record"]["assigned_commune_code"] == commune["code"]
    assert body["record"]["location_mismatch"] is False and body["record"]["structure"] == "2025"
    r2 = client.post("/api/v1/submissions", content=json.dumps(p, indent=2, sort_keys=True))
    assert r2.status_code == 200 and r2.json()["status"] == "exists"
    changed = dict(p, birth_year=1998)
    r3 = client.post("/api/v1/submissions", json=changed)
    assert r3.status_code == 409 and p["instance_id"] in r3.json()["detail"]
    with seeded.connect() as conn:
        n, name, hashed = conn.execute(
            text("SELECT count(*), min(full_name), min(id_hash) FROM survey_record WHERE instance_id = :i"), {"i": p["instance_id"]}
        ).one()
    assert n == 1 and name == "Nguyễn Thị Hồng Nhung"
    assert hashed == national_id_hash("042199012345") and "012345" not in hashed


def test_national_id_is_only_stored_as_a_keyed_hash(client, commune, seeded):
    p = aspirant(commune, national_id="001099000777")
    assert client.post("/api/v1/submissions", json=p).status_code == 201
    with seeded.connect() as conn:
        dump = conn.execute(text("SELECT row_to_json(r)::text FROM survey_record r WHERE instance_id = :i"), {"i": p["instance_id"]}).scalar()
    assert "001099000777" not in dump and "99000777" not in dump
    assert national_id_hash("001099000777") in dump
    assert national_id_hash("001099000777", secret="another secret") != national_id_hash("001099000777")


def test_every_failing_field_is_listed_and_the_payload_quarantined_verbatim(client, commune, seeded):
    bad = aspirant(
        commune,
        collected_at=(NOW + dt.timedelta(days=3)).isoformat(),
        birth_year=1920,
        markets_wanted=["JP", "XX"],
        sector="astronaut",
        location={"lat": commune["lon"], "lon": commune["lat"]},
    )
    text_sent = json.dumps(bad, ensure_ascii=False, indent=1)
    r = client.post("/api/v1/submissions", content=text_sent.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 422
    body = r.json()
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"collected_at", "birth_year", "markets_wanted", "sector", "location"}
    assert any("swapped" in e["message"] for e in body["errors"] if e["field"] == "location")
    q = client.get("/api/v1/quarantine").json()
    entry = next(e for e in q if e["id"] == body["quarantine_id"])
    # Verbatim, except that the national ID number is kept only as its keyed hash.
    masked = text_sent.replace(bad["national_id"], "hmac:" + national_id_hash(bad["national_id"]))
    assert entry["payload_text"] == masked and entry["reasons"] == body["errors"]
    assert bad["national_id"] not in entry["payload_text"]
    with seeded.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM survey_record WHERE instance_id = :i"), {"i": bad["instance_id"]}).scalar() == 0


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"location": {"lat": 35.68, "lon": 139.69}}, "location", "outside Viet Nam"),
        ({"location": {"lat": float("nan"), "lon": 105.9}}, "location", "finite"),
        ({"collected_at": "2020-01-01T08:00:00+07:00"}, "collected_at", "before this form existed"),
        ({"commune_code": "99999"}, "commune_code", "unknown commune code 99999"),
        ({"kind": "departure"}, "departure_date", "required for a departure record"),
        ({"birth_year": "nineteen"}, "birth_year", "valid integer"),
    ],
)
def test_rejections_name_the_field(client, commune, change, field, words):
    p = aspirant(commune, **change)
    body = json.dumps(p, allow_nan=True)
    r = client.post("/api/v1/submissions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    messages = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert field in messages and words in messages[field], messages


def test_expired_commune_code_is_named(client, commune, seeded):
    with seeded.connect() as conn:
        old_only = conn.execute(
            text("""SELECT code FROM admin_unit o WHERE structure = 'pre2025' AND level = 'commune'
                    AND NOT EXISTS (SELECT 1 FROM admin_unit n WHERE n.structure = '2025' AND n.code = o.code) LIMIT 1""")
        ).scalar()
    r = client.post("/api/v1/submissions", json=aspirant(commune, commune_code=old_only))
    assert r.status_code == 422
    assert "belongs to the pre2025 structure" in r.json()["errors"][0]["message"]


def test_no_consent_rejected_and_nothing_personal_kept(client, commune, seeded):
    p = aspirant(commune, consent=False, full_name="Phạm Bí Mật", national_id="079188000999")
    r = client.post("/api/v1/submissions", json=p)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "consent"
    with seeded.connect() as conn:
        everywhere = conn.execute(
            text("SELECT (SELECT coalesce(string_agg(row_to_json(q)::text, ''), '') FROM submission_quarantine q) || "
                 "(SELECT coalesce(string_agg(row_to_json(r)::text, ''), '') FROM survey_record r)")
        ).scalar()
        entry = conn.execute(text("SELECT personal_removed, payload_text FROM submission_quarantine WHERE id = :i"), {"i": r.json()["quarantine_id"]}).one()
    assert "Bí Mật" not in everywhere and "079188000999" not in everywhere and str(p["location"]["lat"]) not in entry.payload_text
    assert entry.personal_removed and p["instance_id"] in entry.payload_text


def test_resubmit_a_corrected_payload_against_its_quarantine_id(client, commune):
    bad = aspirant(commune, birth_year=1900)
    qid = client.post("/api/v1/submissions", json=bad).json()["quarantine_id"]
    still_bad = client.post(f"/api/v1/quarantine/{qid}/resubmit", json=bad)
    assert still_bad.status_code == 422
    fixed = client.post(f"/api/v1/quarantine/{qid}/resubmit", json=dict(bad, birth_year=1990))
    assert fixed.status_code == 201
    resolved = client.get("/api/v1/quarantine", params={"status": "resubmitted"}).json()
    assert any(e["id"] == qid and e["resolved_instance_id"] == bad["instance_id"] for e in resolved)
    assert client.post(f"/api/v1/quarantine/{qid}/resubmit", json=bad).status_code == 409


def test_location_mismatch_and_accuracy_are_flagged(client, commune):
    other = commune["other"]
    p = aspirant(commune, location={"lat": other["lat"], "lon": other["lon"], "accuracy": 250}, mock_location=True)
    r = client.post("/api/v1/submissions", json=p)
    assert r.status_code == 201
    rec = r.json()["record"]
    assert rec["assigned_commune_code"] == other["code"] and rec["location_mismatch"] is True
    assert rec["mismatch_distance_m"] > 100 and rec["accuracy_flag"] is True and rec["mock_location"] is True


def test_probable_duplicates_are_linked_not_merged(client, commune):
    first = aspirant(commune, national_id="038200004444", full_name="Hoàng Văn Trùng")
    second = aspirant(commune, national_id="038 200 004444", full_name="Hoang Van Trung")
    third = aspirant(commune, national_id=None, full_name="HOÀNG VĂN TRÙNG", birth_year=first["birth_year"])
    for p in (first, second, third):
        assert client.post("/api/v1/submissions", json=p).status_code == 201
    rec2 = client.get(f"/api/v1/submissions/{second['instance_id']}").json()
    assert {"instance_id": first["instance_id"], "reason": "national_id"} in rec2["probable_duplicates"]
    rec3 = client.get(f"/api/v1/submissions/{third['instance_id']}").json()
    assert {d["reason"] for d in rec3["probable_duplicates"]} == {"name_birth_year_commune"}
    listed = {r["instance_id"] for r in client.get("/api/v1/submissions", params={"duplicates_only": True, "limit": 1000}).json()}
    assert {second["instance_id"], third["instance_id"]} <= listed and first["instance_id"] not in listed


def test_duplicates_within_one_batch_are_linked_and_shown_in_the_answer(client, commune):
    import datetime as dt_

    early = aspirant(commune, national_id="038200005555", full_name="Cao Thị Đôi",
                     collected_at=(NOW - dt_.timedelta(hours=3)).isoformat())
    late = aspirant(commune, national_id="038200005555", full_name="Cao Thị Đôi")
    far = aspirant(commune, national_id="038200005555", kind="aspirant", full_name="Cao Thị Đôi",
                   collected_at=(NOW - dt_.timedelta(days=400)).isoformat())  # outside the 365-day window
    r = client.post("/api/v1/submissions/batch", json=[late, early, far])
    results = {x["instance_id"]: x for x in r.json()["results"]}
    assert results[late["instance_id"]]["record"]["probable_duplicates"] == [
        {"instance_id": early["instance_id"], "reason": "national_id"}]
    assert results[early["instance_id"]]["record"]["probable_duplicates"] == []  # 400 days from `far`: outside the window
    assert results[far["instance_id"]]["record"]["probable_duplicates"] == []
    again = client.post("/api/v1/submissions", json=late)
    assert again.status_code == 200 and again.json()["record"]["probable_duplicates"] == [
        {"instance_id": early["instance_id"], "reason": "national_id"}]


def test_review_states_with_comment(client, commune):
    p = aspirant(commune)
    client.post("/api/v1/submissions", json=p)
    r = client.post(f"/api/v1/submissions/{p['instance_id']}/review", json={"status": "has_issues", "comment": "Sai năm sinh?", "reviewer": "cán bộ xã"})
    assert r.status_code == 200 and r.json()["review_status"] == "has_issues" and r.json()["review_comment"] == "Sai năm sinh?"
    assert client.post(f"/api/v1/submissions/{p['instance_id']}/review", json={"status": "lost", "reviewer": "x"}).status_code == 422
    assert client.post(f"/api/v1/submissions/{uuid.uuid4()}/review", json={"status": "approved", "reviewer": "x"}).status_code == 404


def test_batch_reports_each_outcome(client, commune):
    good = [aspirant(commune) for _ in range(3)]
    bad = aspirant(commune, sex="unknown")
    r = client.post("/api/v1/submissions/batch", json=[*good, bad, good[0], dict(good[1], birth_year=1980)])
    assert r.status_code == 200
    body = r.json()
    assert body["counts"] == {"created": 3, "exists": 1, "conflict": 1, "rejected": 1, "forbidden": 0}
    assert [x["status"] for x in body["results"]] == ["created", "created", "created", "rejected", "exists", "conflict"]
    assert client.post("/api/v1/submissions/batch", json=[good[0]] * 1001).status_code == 413
    assert client.post("/api/v1/submissions/batch", json={"not": "a list"}).status_code == 422


def test_garbage_body_is_quarantined_too(client):
    r = client.post("/api/v1/submissions", content=b"{not json", headers={"content-type": "application/json"})
    (error,) = r.json()["errors"]
    assert r.status_code == 422 and error["field"] == "body" and error["message"].startswith("not valid JSON: Expecting property name")
    assert any(e["payload_text"] == "{not json" for e in client.get("/api/v1/quarantine").json())


def test_vietnamese_names_survive(client, commune, seeded):
    names = ["Đặng Thị Ánh Tuyết", "Lò Văn Páo", "Y Ngọc Niê Kdăm", "Nguyễn Ngọc Ẩn"]
    for name in names:
        p = aspirant(commune, full_name=name)
        assert client.post("/api/v1/submissions", json=p).status_code == 201
        assert client.get(f"/api/v1/submissions/{p['instance_id']}").json()["full_name"] == name


def test_a_201_is_only_sent_after_the_record_is_committed(seeded, commune, accounts):
    """If the commit fails, the sender gets an error, not "stored" (its phone keeps the form and retries)."""
    from fastapi.testclient import TestClient
    from sqlalchemy import text

    from api.main import create_app

    with seeded.begin() as conn:
        conn.execute(text("""
            CREATE FUNCTION test_refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.full_name = 'Hỏng Lúc Ghi' THEN RAISE EXCEPTION 'refused at commit'; END IF;
                RETURN NULL;
            END $$;
            CREATE CONSTRAINT TRIGGER test_refuse_at_commit AFTER INSERT ON survey_record
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_refuse_at_commit();
        """))
    try:
        p = aspirant(commune, full_name="Hỏng Lúc Ghi")
        with TestClient(create_app(), headers=accounts.headers("surveyor"), raise_server_exceptions=False) as c:
            r = c.post("/api/v1/submissions", json=p)
            assert r.status_code == 500
            assert c.post("/api/v1/submissions", json=aspirant(commune)).status_code == 201  # the next one is fine
        with seeded.connect() as conn:
            n = conn.execute(text("SELECT count(*) FROM survey_record WHERE instance_id = CAST(:i AS uuid)"),
                             {"i": p["instance_id"]}).scalar()
        assert n == 0
    finally:
        with seeded.begin() as conn:
            conn.execute(text("DROP TRIGGER test_refuse_at_commit ON survey_record; DROP FUNCTION test_refuse_at_commit()"))


def test_a_commune_that_records_declare_cannot_be_deleted_or_rekeyed(client, commune, seeded):
    """What the foreign key used to guarantee, now guarded on the side of the units."""
    p = aspirant(commune)
    assert client.post("/api/v1/submissions", json=p).status_code == 201
    for statement in ("DELETE FROM admin_unit WHERE structure = '2025' AND code = :c",
                      "UPDATE admin_unit SET code = '99998' WHERE structure = '2025' AND code = :c"):
        with pytest.raises(Exception, match="declared commune of survey records"), seeded.begin() as conn:
            conn.execute(text(statement), {"c": commune["code"]})
    with seeded.begin() as conn:  # setting the key to itself (an upsert) is allowed
        conn.execute(text("UPDATE admin_unit SET code = code, name = name WHERE structure = '2025' AND code = :c"), {"c": commune["code"]})


def test_no_gps_with_a_reason_is_stored_in_the_declared_commune_and_flagged(client, commune, seeded):
    p = aspirant(commune, location=None, location_missing_reason="no_fix")
    r = client.post("/api/v1/submissions", json=p)
    assert r.status_code == 201, r.text
    record = r.json()["record"]
    assert record["location_missing_reason"] == "no_fix" and record["assigned_commune_code"] == commune["code"]
    assert record["location_mismatch"] is False and record["accuracy_flag"] is False
    flagged = client.get("/api/v1/submissions", params={"flagged_only": True, "limit": 1000}).json()
    assert p["instance_id"] in {x["instance_id"] for x in flagged}
    assert all(x["instance_id"] != p["instance_id"] for x in client.get(
        "/api/v1/submissions", params={"limit": 1000, "kind": "returnee"}).json())
    with seeded.connect() as conn:
        row = conn.execute(text("SELECT geom IS NULL AS no_point, location_missing_reason, answers FROM survey_record "
                                "WHERE instance_id = :i"), {"i": p["instance_id"]}).one()
    assert row.no_point and row.location_missing_reason == "no_fix"
    # A reason beside a point is not kept: there is nothing to explain.
    q = aspirant(commune, location_missing_reason="indoors")
    assert client.post("/api/v1/submissions", json=q).json()["record"]["location_missing_reason"] is None


def test_no_gps_and_no_reason_is_refused_saying_what_to_give(client, commune):
    r = client.post("/api/v1/submissions", json=aspirant(commune, location=None))
    assert r.status_code == 422
    (error,) = [e for e in r.json()["errors"] if e["field"] == "location"]
    assert error["code"] == "required_or_reason" and "location_missing_reason" in error["message"]
    assert "denied, no_fix, indoors, other" in error["message"]
    bad = client.post("/api/v1/submissions", json=aspirant(commune, location=None, location_missing_reason="lazy"))
    assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == ["location_missing_reason"]


def test_rejections_in_the_language_asked_for(client, commune):
    from survey.messages import MESSAGES

    # Three hours ahead of now, not of when the module was imported: a long run would shrink the gap.
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)
    p = aspirant(commune, collected_at=ahead.isoformat(), full_name=None, commune_code="99999")
    vi = client.post("/api/v1/submissions", json=p, headers={"Accept-Language": "vi-VN,vi;q=0.9,en;q=0.8"}).json()
    by_field = {e["field"]: e for e in vi["errors"]}
    assert by_field["full_name"]["message"] == MESSAGES["required"]["vi"] == "Phải trả lời câu này"
    clock = by_field["collected_at"]
    assert clock["code"] == "future_collected" and "đồng hồ điện thoại có vẻ sai" in clock["message"]
    assert 175 <= clock["params"]["ahead"] <= 181  # how far ahead of the server's clock, in minutes
    assert by_field["commune_code"]["message"] == "Không có xã/phường mã 99999: hãy chọn lại xã/phường"
    en = client.post("/api/v1/submissions", json=p | {"instance_id": str(uuid.uuid4())}).json()
    assert {e["field"]: e["message"] for e in en["errors"]}["full_name"] == "Full name is required"  # English by default
    assert "is in the future" in {e["field"]: e["message"] for e in en["errors"]}["collected_at"]


def test_every_message_of_the_catalogue_exists_in_both_languages_in_nfc():
    import re
    import unicodedata

    from survey.messages import MESSAGES

    for code, texts in MESSAGES.items():
        assert set(texts) == {"vi", "en"}, code
        assert set(re.findall(r"\{(\w+)\}", texts["vi"])) <= set(re.findall(r"\{(\w+)\}", texts["en"])) | {"label", "kind_label"}, code
        assert all(unicodedata.is_normalized("NFC", t) for t in texts.values()), code
