"""Audit log: every personal read states a purpose and is logged; the log is append-only."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from api.main import create_app
from api.security.accounts import create_user
from tests.payloads import aspirant

PASSWORD = "correct horse battery staple"


@pytest.fixture
def people(seeded):
    suffix = uuid.uuid4().hex[:8]
    names = {"officer": f"officer_{suffix}", "admin": f"admin_{suffix}"}
    with seeded.begin() as conn:
        create_user(conn, names["officer"], PASSWORD, "officer", ["42"])
        create_user(conn, names["admin"], PASSWORD, "admin", [])
    return names


def token(client, username):
    r = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_personal_routes_require_a_purpose(seeded, commune, accounts):
    with TestClient(create_app(), headers=accounts.headers("officer")) as bare:
        p = aspirant(commune)
        assert bare.post("/api/v1/submissions", json=p).status_code == 201  # sending is not reading
        for url in (f"/api/v1/submissions/{p['instance_id']}", "/api/v1/submissions", "/api/v1/quarantine"):
            r = bare.get(url)
            assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["header", "X-Purpose"], url
            assert bare.get(url, headers={"X-Purpose": "  "}).status_code == 422


def test_each_personal_read_writes_who_when_route_purpose_and_ids(client, seeded, commune, people):
    p = aspirant(commune)
    client.post("/api/v1/submissions", json=p)
    headers = token(client, people["officer"]) | {"X-Purpose": quote("kiểm tra phiếu trùng")}
    assert client.get(f"/api/v1/submissions/{p['instance_id']}", headers=headers).status_code == 200
    # Vietnamese text can also come as a parameter.
    listed = client.get("/api/v1/submissions", params={"limit": 5, "purpose": "kiểm tra phiếu trùng"}, headers=headers).json()
    with seeded.connect() as conn:
        rows = conn.execute(
            text("SELECT actor, role, method, route, purpose, record_ids FROM audit_log WHERE actor = :a ORDER BY id"),
            {"a": people["officer"]},
        ).all()
    assert [(r.method, r.route, r.purpose, r.role) for r in rows] == [
        ("GET", f"/api/v1/submissions/{p['instance_id']}", "kiểm tra phiếu trùng", "officer"),
        ("GET", "/api/v1/submissions", "kiểm tra phiếu trùng", "officer"),
    ]
    assert rows[0].record_ids == [p["instance_id"]]
    assert rows[1].record_ids == [r["instance_id"] for r in listed]


def test_the_audit_log_is_append_only(seeded, client, commune):
    p = aspirant(commune)
    client.post("/api/v1/submissions", json=p)
    client.get(f"/api/v1/submissions/{p['instance_id']}")
    for statement in ("UPDATE audit_log SET purpose = 'nothing to see'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with seeded.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text(statement))
    with seeded.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE purpose = 'automated test'")).scalar() > 0


def test_admins_query_the_log_others_cannot(client, anonymous_client, commune, people, accounts):
    p = aspirant(commune)
    client.post("/api/v1/submissions", json=p)
    client.get(f"/api/v1/submissions/{p['instance_id']}")
    admin = token(client, people["admin"])
    rows = client.get("/api/v1/admin/audit", params={"record_id": p["instance_id"]}, headers=admin).json()
    officer = accounts.user("officer")
    assert len(rows) == 1 and rows[0]["actor"] == officer.name and rows[0]["purpose"] == "automated test"
    assert client.get("/api/v1/admin/audit", headers=token(client, people["officer"])).status_code == 403
    assert anonymous_client.get("/api/v1/admin/audit").status_code == 401


def test_break_glass_reads_one_record_with_a_reason_and_stands_out_in_the_log(client, seeded, commune, people):
    p = aspirant(commune)
    client.post("/api/v1/submissions", json=p)
    admin = token(client, people["admin"])
    url = f"/api/v1/admin/break-glass/submissions/{p['instance_id']}"
    assert client.post(url, json={"reason": "because"}, headers=admin).status_code == 422  # a real reason is required
    assert client.post(url, json={"reason": "court order 17/2026/QĐ-TA of the Hà Tĩnh court"}).status_code == 403  # officers
    r = client.post(url, json={"reason": "court order 17/2026/QĐ-TA of the Hà Tĩnh court"}, headers=admin)
    assert r.status_code == 200 and r.json()["full_name"] == p["full_name"]
    # Admins have no other way to personal records.
    assert client.get(f"/api/v1/submissions/{p['instance_id']}", headers=admin).status_code == 403
    with seeded.connect() as conn:
        row = conn.execute(text("SELECT actor, role, purpose, record_ids FROM audit_log WHERE actor = :a"),
                           {"a": people["admin"]}).one()
    assert row.role == "admin" and row.purpose == "BREAK-GLASS: court order 17/2026/QĐ-TA of the Hà Tĩnh court"
    assert row.record_ids == [p["instance_id"]]
