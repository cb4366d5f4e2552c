"""Users, roles and scopes: sign-in, tokens, lockout, admin routes, CLI, scope expansion, server secret."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from types import SimpleNamespace

import jwt
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from api.security import tokens
from api.security.accounts import create_user, disable_user
from api.security.passwords import verify_password
from api.security.signin import failed_login_delay
from api.security.tokens import create_access_token
from cli import serve
from cli.main import app as cli_app
from geodata.roles import Role
from geodata.scopes import (
    scope_condition,
    scope_params,
    scope_units,
)
from geodata.settings import get_settings

PASSWORD = "correct horse battery staple"
PREFIX = "tauth-"  # every user made here; removed after each test


def unique(label: str) -> str:
    return f"{PREFIX}{label}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def users(seeded):
    """Makes users in the seeded database; removes every ``tauth-`` user afterwards."""

    def make(role: str = "officer", scope=("42",), structure: str = "pre2025", password: str = PASSWORD):
        name = unique(role[:4])
        with seeded.begin() as conn:
            uid = create_user(conn, name, password, role, list(scope), structure)
        return SimpleNamespace(id=uid, name=name, password=password)

    yield make
    with seeded.begin() as conn:
        conn.execute(text("DELETE FROM app_user WHERE username LIKE :p"), {"p": PREFIX + "%"})


@pytest.fixture
def client(anonymous_client):
    """These tests sign in themselves."""
    return anonymous_client


@pytest.fixture
def no_delay(monkeypatch):
    """Failed sign-ins answer at once (the delay has its own test)."""
    monkeypatch.setattr(get_settings(), "login_delay_base_seconds", 0.0)
    return get_settings()


def login(client, name: str, password: str = PASSWORD):
    return client.post("/api/v1/auth/token", data={"username": name, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# -- sign-in and tokens ----------------------------------------------------------
def test_password_flow_gives_tokens_and_me(client, users, seeded):
    u = users("officer", scope=("42", "436"))
    r = login(client, u.name.upper())  # usernames are case-insensitive
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 15 * 60
    assert r.headers["cache-control"] == "no-store"
    me = client.get("/api/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["username"] == u.name and me.json()["role"] == "officer"
    assert [(s["structure"], s["code"], s["level"]) for s in me.json()["scope"]] == [("pre2025", "42", "province"), ("pre2025", "436", "district")]
    anonymous = client.get("/api/v1/auth/me")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    with seeded.connect() as conn:
        row = conn.execute(text("SELECT password_hash, last_login_at, failed_logins FROM app_user WHERE id = :id"), {"id": u.id}).one()
    assert row.password_hash.startswith("$argon2id$") and PASSWORD not in row.password_hash
    assert row.last_login_at is not None and row.failed_logins == 0


def test_tokens_carry_no_personal_data(client, users):
    u = users("leader")
    body = login(client, u.name).json()
    header = jwt.get_unverified_header(body["access_token"])
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert header["alg"] == "HS256"
    assert set(claims) == {"sub", "role", "type", "iat", "exp", "jti"}
    assert claims["sub"] == str(u.id) and claims["role"] == "leader" and claims["type"] == "access"
    assert claims["exp"] - claims["iat"] == 15 * 60
    payload = base64.urlsafe_b64decode(body["access_token"].split(".")[1] + "==").decode()
    assert u.name not in payload and "tauth" not in payload
    # the refresh token is opaque: random, not a JWT, stored only as a hash
    assert body["refresh_token"].count(".") == 0 and u.name not in body["refresh_token"]


def test_access_token_lifetime_follows_the_setting(client, users, monkeypatch):
    monkeypatch.setattr(get_settings(), "access_token_minutes", 5)
    body = login(client, users().name).json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert body["expires_in"] == 300 and claims["exp"] - claims["iat"] == 300


def test_refresh_rotates_and_a_used_token_is_refused(client, users, seeded):
    u = users()
    first = login(client, u.name).json()
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    assert client.get("/api/v1/auth/me", headers=bearer(second["access_token"])).status_code == 200
    with seeded.connect() as conn:
        stored = set(conn.execute(text("SELECT token_hash FROM refresh_token WHERE user_id = :id"), {"id": u.id}).scalars())
    assert hashlib.sha256(second["refresh_token"].encode()).hexdigest() in stored
    assert not {first["refresh_token"], second["refresh_token"]} & stored  # never in clear text
    # the new token is used: the old one again is a replay, refused, and the whole family is revoked
    third = client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200
    again = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert again.status_code == 401 and "already used" in again.json()["detail"]
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": third.json()["refresh_token"]}).status_code == 401
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": "not-a-token"}).status_code == 401
    # a new sign-in starts a new family
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": login(client, u.name).json()["refresh_token"]}).status_code == 200


def test_a_lost_refresh_answer_gets_the_same_pair_again_within_the_grace(client, users, seeded):
    """The phone sent its refresh token, the server rotated it, the answer never arrived: the same token again
    gives the same new pair (nothing to type again), and the session goes on."""
    u = users()
    first = login(client, u.name).json()
    lost = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert lost.status_code == 200
    again = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert again.status_code == 200, again.text
    assert again.json() == lost.json()  # the same pair, byte for byte
    assert again.headers["cache-control"] == "no-store"
    with seeded.connect() as conn:
        stored = list(conn.execute(text("SELECT token_hash FROM refresh_token WHERE user_id = :id"), {"id": u.id}).scalars())
    assert lost.json()["refresh_token"] not in stored and len(stored) == 2  # no extra token, none in clear
    assert client.get("/api/v1/auth/me", headers=bearer(again.json()["access_token"])).status_code == 200
    nxt = client.post("/api/v1/auth/refresh", json={"refresh_token": again.json()["refresh_token"]})
    assert nxt.status_code == 200 and nxt.json()["refresh_token"] != again.json()["refresh_token"]


def test_the_grace_ends_with_its_time_or_with_the_new_token_used(client, users, seeded, environment):
    u = users()
    # After the grace: a replay, the family ends.
    first = login(client, u.name).json()
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    with seeded.begin() as conn:
        conn.execute(text("UPDATE refresh_token SET revoked_at = now() - interval '61 seconds' WHERE user_id = :id "
                          "AND replaced_by IS NOT NULL"), {"id": u.id})
    late = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert late.status_code == 401 and "already used" in late.json()["detail"]
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401
    # Within the grace but the new token was already used: a replay too.
    first = login(client, u.name).json()
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    third = client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}).json()
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).status_code == 401
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": third["refresh_token"]}).status_code == 401
    # The grace is a setting: 0 turns it off.
    environment(LABOUR_ATLAS_REFRESH_GRACE_SECONDS="0")
    first = login(client, u.name).json()
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).status_code == 200
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).status_code == 401


def test_expired_refresh_token_is_refused(client, users, seeded):
    u = users()
    token = login(client, u.name).json()["refresh_token"]
    with seeded.begin() as conn:
        conn.execute(text("UPDATE refresh_token SET issued_at = now() - interval '31 days', expires_at = now() - interval '1 day' WHERE user_id = :id"),
                     {"id": u.id})
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": token})
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def forged_tokens(user_id: uuid.UUID) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": str(user_id), "role": "admin", "type": "access", "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex}
    good, _ = create_access_token(user_id, Role.officer)
    head, payload, signature = good.split(".")
    return {
        "tampered payload": f"{head}.{b64({**jwt.decode(good, options={'verify_signature': False}), 'role': 'admin'})}.{signature}",
        "tampered signature": f"{head}.{payload}.{signature[:-4]}AAAA",
        "expired": create_access_token(user_id, Role.officer, now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))[0],
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}.",
        "alg none, signature kept": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}.{signature}",
        "HS512 with a wrong key": jwt.encode(claims, "w" * 64 + "another key entirely", algorithm="HS512"),
        "HS256 with a wrong key": jwt.encode(claims, "x" * 64 + "another key entirely", algorithm="HS256"),
        "HS512 with the right key": jwt.encode(claims, tokens._access_key(), algorithm="HS512"),
        "wrong type": jwt.encode({**claims, "type": "refresh"}, tokens._access_key(), algorithm="HS256"),
        "no type": jwt.encode({k: v for k, v in claims.items() if k != "type"}, tokens._access_key(), algorithm="HS256"),
        "no expiry": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, tokens._access_key(), algorithm="HS256"),
        "subject not an id": jwt.encode({**claims, "sub": "admin"}, tokens._access_key(), algorithm="HS256"),
        "unknown user": jwt.encode({**claims, "sub": str(uuid.uuid4())}, tokens._access_key(), algorithm="HS256"),
        "garbage": "not.a.token",
    }


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_bad_access_tokens_are_refused(client, users):
    u = users("officer")
    ok, _ = create_access_token(u.id, Role.officer)
    assert client.get("/api/v1/auth/me", headers=bearer(ok)).status_code == 200  # the control
    for label, token in forged_tokens(u.id).items():
        r = client.get("/api/v1/auth/me", headers=bearer(token))
        assert r.status_code == 401, label
        assert r.headers["www-authenticate"].startswith("Bearer"), label
        assert client.get("/api/v1/admin/users", headers=bearer(token)).status_code == 401, label


def test_token_signed_with_the_raw_secret_is_refused(client, users):
    """The signing key is derived from the server secret, not the secret itself."""
    u = users("admin", scope=())
    now = int(time.time())
    claims = {"sub": str(u.id), "role": "admin", "type": "access", "iat": now, "exp": now + 600, "jti": "x"}
    token = jwt.encode(claims, get_settings().secret_key.ljust(32, "-"), algorithm="HS256")
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401


# -- failed sign-ins -------------------------------------------------------------
def test_repeated_failures_lock_the_account(client, users, seeded, no_delay):
    u = users()
    for _ in range(4):
        r = login(client, u.name, "wrong password, again")
        assert r.status_code == 401 and r.json()["detail"] == "incorrect username or password"
    with seeded.connect() as conn:
        assert conn.execute(text("SELECT failed_logins FROM app_user WHERE id = :id"), {"id": u.id}).scalar() == 4
    fifth = login(client, u.name, "wrong password, again")
    assert fifth.status_code == 423 and "locked" in fifth.json()["detail"] and "15 min" in fifth.json()["detail"]
    # while locked, even the right password is refused (and not checked)
    assert login(client, u.name).status_code == 423
    with seeded.begin() as conn:
        minutes = conn.execute(text("SELECT extract(epoch FROM locked_until - now()) / 60 FROM app_user WHERE id = :id"), {"id": u.id}).scalar()
        assert 14 < minutes <= 15
        conn.execute(text("UPDATE app_user SET locked_until = now() - interval '1 second' WHERE id = :id"), {"id": u.id})
    # the lock has run out: the count starts again, and a success resets it
    assert login(client, u.name, "wrong password, again").status_code == 401
    with seeded.connect() as conn:
        assert conn.execute(text("SELECT failed_logins FROM app_user WHERE id = :id"), {"id": u.id}).scalar() == 1
    assert login(client, u.name).status_code == 200
    with seeded.connect() as conn:
        row = conn.execute(text("SELECT failed_logins, locked_until FROM app_user WHERE id = :id"), {"id": u.id}).one()
    assert tuple(row) == (0, None)


def test_lockout_thresholds_are_settings(client, users, no_delay, monkeypatch):
    monkeypatch.setattr(get_settings(), "lockout_failures", 2)
    monkeypatch.setattr(get_settings(), "lockout_minutes", 3)
    u = users()
    assert login(client, u.name, "wrong password, again").status_code == 401
    r = login(client, u.name, "wrong password, again")
    assert r.status_code == 423 and "3 min" in r.json()["detail"]


def test_failures_slow_down_the_answer(client, users, monkeypatch):
    settings = get_settings().model_copy(update={"login_delay_after": 3, "login_delay_base_seconds": 1.0, "login_delay_max_seconds": 5.0})
    assert [failed_login_delay(n, settings) for n in range(1, 8)] == [0, 0, 1, 2, 4, 5, 5]
    monkeypatch.setattr(get_settings(), "login_delay_after", 2)
    monkeypatch.setattr(get_settings(), "login_delay_base_seconds", 0.4)
    u = users()
    timings = []
    for _ in range(3):
        start = time.monotonic()
        assert login(client, u.name, "wrong password, again").status_code == 401
        timings.append(time.monotonic() - start)
    # 1st: no delay; 2nd: 0.4 s; 3rd: 0.8 s (plus the time argon2 takes)
    assert timings[1] >= 0.4 and timings[2] >= 0.8


def test_unknown_usernames_answer_like_real_accounts(client, no_delay):
    name = unique("nobody")
    answers = [login(client, name, "wrong password, again") for _ in range(5)]
    assert [a.status_code for a in answers] == [401, 401, 401, 401, 423]
    assert answers[0].json()["detail"] == "incorrect username or password"
    assert "locked" in answers[4].json()["detail"]


def test_disabled_user_is_refused(client, users, seeded):
    u = users()
    tokens = login(client, u.name).json()
    assert client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).status_code == 200
    with seeded.begin() as conn:
        disable_user(conn, u.name)
    r = client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))
    assert r.status_code == 401 and "disabled" in r.json()["detail"]
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401
    refused = login(client, u.name)
    assert refused.status_code == 403 and "disabled" in refused.json()["detail"]
    # a wrong password for a disabled account says nothing about the account
    assert login(client, u.name, "wrong password, again").json()["detail"] == "incorrect username or password"


# -- admin routes ----------------------------------------------------------------
def test_admin_routes_refuse_anonymous_and_non_admins(client, users):
    assert client.get("/api/v1/admin/users").status_code == 401
    assert client.post("/api/v1/admin/users", json={}).status_code == 401
    assert client.post("/api/v1/admin/users/anyone/disable").status_code == 401
    for role in ("surveyor", "officer", "leader", "police_analyst", "planner"):
        u = users(role)
        token = login(client, u.name).json()["access_token"]
        r = client.get("/api/v1/admin/users", headers=bearer(token))
        assert r.status_code == 403 and "admin" in r.json()["detail"], role
        assert client.post("/api/v1/admin/users", headers=bearer(token), json={"username": unique("x"), "password": PASSWORD,
                                                                                 "role": "admin"}).status_code == 403
        assert client.post(f"/api/v1/admin/users/{u.name}/disable", headers=bearer(token)).status_code == 403


def test_admin_creates_lists_and_disables_users(client, users):
    admin = users("admin", scope=())
    h = bearer(login(client, admin.name).json()["access_token"])
    name = unique("api")
    new = {"username": name, "password": PASSWORD, "role": "planner", "scope": ["42", "40"], "structure": "2025"}
    r = client.post("/api/v1/admin/users", headers=h, json=new)
    assert r.status_code == 201, r.text
    assert r.json()["username"] == name and r.json()["role"] == "planner" and not r.json()["disabled"]
    assert [(s["structure"], s["code"]) for s in r.json()["scope"]] == [("2025", "40"), ("2025", "42")]
    assert client.post("/api/v1/admin/users", headers=h, json=new).status_code == 409
    listed = client.get("/api/v1/admin/users", headers=h)
    assert listed.status_code == 200 and name in {u["username"] for u in listed.json()}
    assert "argon2" not in listed.text and "password" not in listed.text
    assert login(client, name).status_code == 200

    unknown = client.post("/api/v1/admin/users", headers=h, json=new | {"username": unique("x"), "scope": ["42", "99999"]})
    assert unknown.status_code == 422 and "99999" in unknown.json()["detail"][0]["msg"]
    weak = client.post("/api/v1/admin/users", headers=h, json=new | {"username": unique("x"), "password": "short-pw-77"})
    assert weak.status_code == 422 and "short-pw-77" not in weak.text
    no_scope = client.post("/api/v1/admin/users", headers=h, json=new | {"username": unique("x"), "scope": []})
    assert no_scope.status_code == 422 and "scope" in no_scope.json()["detail"][0]["msg"]
    bad_role = client.post("/api/v1/admin/users", headers=h, json=new | {"username": unique("x"), "role": "king"})
    assert bad_role.status_code == 422 and PASSWORD not in bad_role.text

    d = client.post(f"/api/v1/admin/users/{name}/disable", headers=h)
    assert d.status_code == 200 and d.json()["disabled"] is True
    assert login(client, name).status_code == 403
    assert client.post(f"/api/v1/admin/users/{unique('ghost')}/disable", headers=h).status_code == 404
    assert client.post(f"/api/v1/admin/users/{admin.name}/disable", headers=h).status_code == 400


# -- command line ----------------------------------------------------------------
def test_cli_user_add_list_disable(seeded):
    runner = CliRunner()
    name = unique("cli")
    try:
        r = runner.invoke(cli_app, ["user", "add", name, "--role", "officer", "--scope", "42,436", "--structure", "pre2025", "--password-stdin"],
                          input=PASSWORD + "\n")
        assert r.exit_code == 0, r.output
        with seeded.connect() as conn:
            row = conn.execute(text("SELECT id, role, password_hash, disabled FROM app_user WHERE username = :n"), {"n": name}).one()
            scope = set(conn.execute(text("SELECT structure, unit_code FROM user_scope WHERE user_id = :id"), {"id": row.id}).all())
        assert row.role == "officer" and not row.disabled and verify_password(row.password_hash, PASSWORD)
        assert scope == {("pre2025", "42"), ("pre2025", "436")}

        listed = runner.invoke(cli_app, ["user", "list"])
        assert listed.exit_code == 0, listed.output
        assert name in listed.output and "Hà Tĩnh" in listed.output and "argon2" not in listed.output

        taken = runner.invoke(cli_app, ["user", "add", name, "--role", "officer", "--scope", "42", "--password-stdin"], input=PASSWORD + "\n")
        assert taken.exit_code == 1 and "already exists" in taken.output
        unknown = runner.invoke(cli_app, ["user", "add", unique("cli"), "--role", "leader", "--scope", "42,99999", "--structure", "2025",
                                          "--password-stdin"], input=PASSWORD + "\n")
        assert unknown.exit_code == 1 and "no unit with code 99999 in the 2025 structure" in unknown.output
        no_scope = runner.invoke(cli_app, ["user", "add", unique("cli"), "--role", "leader", "--password-stdin"], input=PASSWORD + "\n")
        assert no_scope.exit_code == 1 and "needs an area scope" in no_scope.output
        weak = runner.invoke(cli_app, ["user", "add", unique("cli"), "--role", "admin", "--password-stdin"], input="tiny\n")
        assert weak.exit_code == 1 and "at least 12 characters" in weak.output
        bad_role = runner.invoke(cli_app, ["user", "add", unique("cli"), "--role", "king", "--scope", "42", "--password-stdin"], input=PASSWORD + "\n")
        assert bad_role.exit_code == 2

        d = runner.invoke(cli_app, ["user", "disable", name])
        assert d.exit_code == 0, d.output
        with seeded.connect() as conn:
            assert conn.execute(text("SELECT disabled FROM app_user WHERE username = :n"), {"n": name}).scalar() is True
        assert "disabled" in runner.invoke(cli_app, ["user", "list"]).output
        missing = runner.invoke(cli_app, ["user", "disable", unique("ghost")])
        assert missing.exit_code == 1 and "no user named" in missing.output
    finally:
        with seeded.begin() as conn:
            conn.execute(text("DELETE FROM app_user WHERE username LIKE :p"), {"p": PREFIX + "%"})


# -- scope expansion -------------------------------------------------------------
def children(conn, structure: str, parents: set[str]) -> set[str]:
    return set(conn.execute(text("SELECT code FROM admin_unit WHERE structure = :s AND parent_code = ANY(:p)"),
                            {"s": structure, "p": sorted(parents)}).scalars())


def linked(conn, codes: set[str], direction: str) -> set[str]:
    """Crosswalk links (not province links) old -> new or new -> old, from the table."""
    src, dst = ("old_code", "new_code") if direction == "forward" else ("new_code", "old_code")
    return set(conn.execute(text(f"SELECT {dst} FROM unit_crosswalk WHERE level <> 'province' AND {src} = ANY(:c)"),
                            {"c": sorted(codes)}).scalars())


def test_scope_of_an_old_district_in_both_structures(users, seeded):
    with seeded.connect() as conn:
        district = conn.execute(text("SELECT min(code) FROM admin_unit WHERE structure = 'pre2025' AND level = 'district' AND parent_code = '42'")).scalar()
        communes = children(conn, "pre2025", {district})
        u = users("officer", scope=(district,), structure="pre2025")
        assert scope_units(conn, u.id, "pre2025") == {district} | communes
        new = linked(conn, communes, "forward")
        assert new and scope_units(conn, u.id, "2025") == new  # no whole new province comes from one district
        assert {"42"} & scope_units(conn, u.id, "2025") == set()


def test_scope_of_an_old_province_in_both_structures(users, seeded):
    with seeded.connect() as conn:
        u = users("leader", scope=("42",), structure="pre2025")
        districts = children(conn, "pre2025", {"42"})
        communes = children(conn, "pre2025", districts)
        assert scope_units(conn, u.id, "pre2025") == {"42"} | districts | communes
        new_communes = linked(conn, communes, "forward")
        in_2025 = scope_units(conn, u.id, "2025")
        # New Hà Tĩnh (42) is made of old Hà Tĩnh only, so it is inside the scope as a whole.
        assert children(conn, "2025", {"42"}) <= new_communes
        assert in_2025 == new_communes | {"42"}


def test_scope_of_a_merged_province_does_not_reach_its_partner(users, seeded):
    """Old Hải Dương (30) and old Hải Phòng (31) became new Hải Phòng (31)."""
    with seeded.connect() as conn:
        u = users("officer", scope=("30",), structure="pre2025")
        in_2025 = scope_units(conn, u.id, "2025")
        old_communes = children(conn, "pre2025", children(conn, "pre2025", {"30"}))
        assert in_2025 == linked(conn, old_communes, "forward")
        assert "31" not in in_2025 and in_2025 < children(conn, "2025", {"31"})
        # old Hải Phòng: its island district Bạch Long Vĩ (318, no communes) became đặc khu 11948
        v = users("officer", scope=("31",), structure="pre2025")
        assert "11948" in scope_units(conn, v.id, "2025")


def test_scope_of_new_units_reaches_back_to_old_ones(users, seeded):
    with seeded.connect() as conn:
        new_commune = conn.execute(text("SELECT min(new_code) FROM unit_crosswalk WHERE relation = 'partial'")).scalar()
        u = users("officer", scope=(new_commune,), structure="2025")
        assert scope_units(conn, u.id, "2025") == {new_commune}
        olds = linked(conn, {new_commune}, "back")
        assert olds and scope_units(conn, u.id, "pre2025") == olds
        island = users("officer", scope=("11948",), structure="2025")
        assert scope_units(conn, island.id, "pre2025") == {"318"}
        # new Hải Phòng covers old Hải Dương and old Hải Phòng whole, with their districts
        province = users("leader", scope=("31",), structure="2025")
        old = scope_units(conn, province.id, "pre2025")
        assert {"30", "31", "318"} <= old and children(conn, "pre2025", {"30", "31"}) <= old
        assert "01" not in old


def test_scope_condition_runs_inside_a_where_clause(users, seeded):
    with seeded.connect() as conn:
        u = users("officer", scope=("42",), structure="pre2025")
        expected = set(scope_units(conn, u.id, "2025"))
        sql = ("SELECT a.structure, a.code FROM admin_unit a WHERE a.level = 'commune' AND "
               + scope_condition("a.code", "a.structure"))
        pairs = set(conn.execute(text(sql), scope_params(u.id)).all())
        assert {c for s, c in pairs if s == "2025"} == expected - {"42"}
        old = scope_units(conn, u.id, "pre2025")
        assert {c for s, c in pairs if s == "pre2025"} == {c for c in old if len(c) == 5}
        sql = "SELECT a.code FROM admin_unit a WHERE a.structure = '2025' AND a.level = 'commune' AND " + scope_condition("a.code")
        assert set(conn.execute(text(sql), scope_params(u.id, "2025")).scalars()) == expected - {"42"}
        nobody = uuid.uuid4()
        assert scope_units(conn, nobody, "2025") == set()


# -- the server secret -----------------------------------------------------------
@pytest.mark.parametrize("secret", [None, "", "too-short-a-secret", "changeme", "secret", "test-secret-not-for-production", "a" * 40])
def test_serve_refuses_a_missing_short_or_default_secret(secret, environment, seeded):
    environment(LABOUR_ATLAS_SECRET_KEY=secret, LABOUR_ATLAS_DEMO=None)
    environment.patch(serve, "serve_app", lambda *a: pytest.fail("the server must not start"))
    r = CliRunner().invoke(cli_app, ["serve"])
    assert r.exit_code == 1
    assert "refusing to start" in r.output and "LABOUR_ATLAS_SECRET_KEY" in r.output


def test_serve_starts_with_a_strong_secret_or_in_demo_mode(environment, seeded):
    started = []
    environment.patch(serve, "serve_app", lambda host, port: started.append((host, port)))
    environment(LABOUR_ATLAS_SECRET_KEY="Zx8-" + uuid.uuid4().hex, LABOUR_ATLAS_DEMO=None)
    assert CliRunner().invoke(cli_app, ["serve", "--port", "8123"]).exit_code == 0
    environment(LABOUR_ATLAS_SECRET_KEY="changeme", LABOUR_ATLAS_DEMO="1")
    r = CliRunner().invoke(cli_app, ["serve", "--port", "8124"])
    assert r.exit_code == 0 and "warning" in r.output
    assert started == [("127.0.0.1", 8123), ("127.0.0.1", 8124)]


def test_serve_without_secret_exits_in_a_real_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("LABOUR_ATLAS_SECRET_KEY", "LABOUR_ATLAS_DEMO")}
    env["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"  # never reached
    r = subprocess.run([sys.executable, "-m", "cli", "serve", "--port", "1"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "refusing to start: LABOUR_ATLAS_SECRET_KEY is not set" in r.stderr


def test_scope_of_every_old_province_covers_every_new_unit(users, seeded):
    with seeded.connect() as conn:
        u = users("planner", scope=("all",), structure="pre2025")
        everything = set(conn.execute(text("SELECT code FROM admin_unit WHERE structure = '2025'")).scalars())
        assert scope_units(conn, u.id, "2025") == everything
        assert len(scope_units(conn, u.id, "pre2025")) == conn.execute(
            text("SELECT count(*) FROM admin_unit WHERE structure = 'pre2025'")).scalar()
