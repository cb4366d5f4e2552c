"""Authorization matrix: every route of the app x every role x inside / outside the caller's area.

The routes come from the app's own route table (:func:`api.access.app_route_rules`).
Each must declare exactly one access rule and have a case below saying how
to call it from inside and outside an area; a new route without both makes
``test_every_route_has_a_rule_and_a_case`` fail.

The world: commune A of Hà Tĩnh (2025 province 42) holds a survey record, a
quarantined payload and a person with a national ID; "inside" users have
province 42 as their area, "outside" users another province.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.access import PUBLIC, Allow, AllowBasic, app_route_rules
from api.main import create_app
from geodata.roles import Role
from maps.releases import last_closed_period
from survey.ingest import Incoming, ingest
from survey.store import Sender
from tests.payloads import answers, aspirant, instance_xml

ROUTES = app_route_rules(create_app())
# Served by FastAPI or Starlette themselves, not API routes: public by nature.
NOT_API_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/static"}
# The last month released (leaders and planners read releases of closed months only).
YEAR = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).year
RELEASED = last_closed_period(dt.datetime.now(dt.timezone(dt.timedelta(hours=7)))).label
# The half-year of that month: a report for leaders and planners sums its released months.
RELEASED_HALF = f"{RELEASED[:4]}-H{1 if int(RELEASED[5:7]) <= 6 else 2}"


@dataclass
class World:
    client: TestClient
    engine: object
    commune: dict
    other_province: str
    users: dict[tuple[str, str], SimpleNamespace]  # (role, "in" | "out") -> user
    record: dict  # the record in commune A
    record_id: str
    quarantine_id: int
    national_id: str
    incident_id: str = ""
    job_id: str = ""
    made: list[str] = field(default_factory=list)

    def store(self, payload: dict, sender: str) -> str:
        with self.engine.begin() as conn:
            (o,) = ingest(conn, [Incoming(json.dumps(payload, ensure_ascii=False), payload)], source="test",
                          sender=Sender(sender))
        assert o.status in ("created", "exists"), o
        return o.instance_id

    def quarantined(self, sender: str) -> int:
        """A fresh quarantined payload of commune A, sent by ``sender``."""
        bad = aspirant(self.commune, sex="unknown", full_name=f"Quách Thị Cách {secrets.token_hex(3)}")
        with self.engine.begin() as conn:
            (o,) = ingest(conn, [Incoming(json.dumps(bad, ensure_ascii=False), bad)], source="test", sender=Sender(sender))
        assert o.status == "rejected"
        return o.quarantine_id

    def incidents(self) -> str:
        """Forty incidents in province 42 (enough for a hot-spot map), one of them in commune A; returns its id."""
        tag = secrets.token_hex(3)
        with self.engine.begin() as conn:
            conn.execute(text("""
                INSERT INTO incident (province_code, incident_id, type, occurred_on, geom, structure, commune_code, status, source)
                SELECT '42', :tag || '-' || row_number() OVER (ORDER BY code), 'illegal_brokerage', CURRENT_DATE - 3,
                       ST_Centroid(geom), '2025', code, 'reported', 'matrix (synthetic)'
                FROM admin_unit WHERE structure = '2025' AND parent_code = '42' AND geom IS NOT NULL
                ORDER BY code <> :a, code LIMIT 40"""), {"tag": tag, "a": self.commune["code"]})
        return f"{tag}-1"

    def fresh_person(self) -> str:
        """A new record in commune A with a new national ID; returns the ID."""
        nid = f"042{secrets.randbelow(10**9):09d}"
        self.store(aspirant(self.commune, national_id=nid, full_name="Đinh Văn Xoá"), self.users["surveyor", "in"].name)
        return nid


def bearer(user) -> dict[str, str]:
    from api.security.tokens import create_access_token

    token, _ = create_access_token(user.id, user.role, minutes=60)
    return {"Authorization": f"Bearer {token}", "X-Purpose": "authorization matrix"}


def basic(user) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user.name}:{user.password}".encode()).decode(),
            "X-OpenRosa-Version": "1.0"}


@pytest.fixture(scope="module")
def world(seeded_url, accounts, commune) -> World:
    from geodata.db import use_database

    engine = use_database(seeded_url)
    with engine.connect() as conn:
        other = conn.execute(text(
            "SELECT code FROM admin_unit WHERE structure = '2025' AND level = 'province' AND code <> '42' ORDER BY code LIMIT 1"
        )).scalar()
    users = {}
    for role in Role:
        if role is Role.admin:
            users[role.value, "in"] = users[role.value, "out"] = accounts.user("admin", ())
        else:
            users[role.value, "in"] = accounts.user(role.value, ("42",))
            users[role.value, "out"] = accounts.user(role.value, (other,))
    nid = f"042{secrets.randbelow(10**9):09d}"
    record = aspirant(commune, national_id=nid, full_name=f"Nguyễn Thị Ma Trận {secrets.token_hex(3)}")
    with TestClient(create_app()) as client:
        w = World(client, engine, commune, other, users, record, "", 0, nid)
        w.record_id = w.store(record, users["surveyor", "in"].name)
        w.quarantine_id = w.quarantined(users["surveyor", "in"].name)
        w.incident_id = w.incidents()
        yield w


# -- how to call each route ------------------------------------------------------------
Call = Callable[[World, SimpleNamespace], httpx.Response]


@dataclass(frozen=True)
class Case:
    """A route's call, and what a permitted caller gets inside and outside its area.

    ``inside`` / ``outside`` take the response and say whether it is right;
    for routes not limited by area both are "succeeds".
    """

    call: Call
    inside: Callable[[httpx.Response, World], bool]
    outside: Callable[[httpx.Response, World], bool]


def ok(r, w) -> bool:
    return r.status_code < 300


def same(call: Call) -> Case:
    return Case(call, ok, ok)


def get(path: str, **params) -> Call:
    return lambda w, u: w.client.get(path.format(w=w), params=params, headers=bearer(u) if u else {})


def listed(key: str) -> Callable[[httpx.Response, World], bool]:
    return lambda r, w: r.status_code == 200 and str(getattr(w, key)) in r.text


def not_listed(key: str) -> Callable[[httpx.Response, World], bool]:
    return lambda r, w: r.status_code == 200 and str(getattr(w, key)) not in r.text


def new_payload(w: World) -> dict:
    return aspirant(w.commune, full_name=f"Tạ Thị Mới {secrets.token_hex(3)}")


def post_submission(w, u):
    return w.client.post("/api/v1/submissions", json=new_payload(w), headers=bearer(u) if u else {})


def post_batch(w, u):
    return w.client.post("/api/v1/submissions/batch", json=[new_payload(w)], headers=bearer(u) if u else {})


def post_review(w, u):
    return w.client.post(f"/api/v1/submissions/{w.record_id}/review", json={"status": "approved"}, headers=bearer(u) if u else {})


def post_resubmit(w, u):
    qid = w.quarantined(w.users["surveyor", "in"].name)
    return w.client.post(f"/api/v1/quarantine/{qid}/resubmit", json=new_payload(w), headers=bearer(u) if u else {})


def post_export(w, u):
    return w.client.post("/api/v1/subjects/export", json={"national_id": w.national_id}, headers=bearer(u) if u else {})


def post_erase(w, u):
    nid = w.fresh_person()
    r = w.client.post("/api/v1/subjects/erase", json={"national_id": nid, "confirm": True}, headers=bearer(u) if u else {})
    r.erased_here = r.status_code == 200 and len(r.json()["erased_records"]) == 1  # type: ignore[attr-defined]
    return r


def post_break_glass(w, u):
    return w.client.post(f"/api/v1/admin/break-glass/submissions/{w.record_id}",
                         json={"reason": "court order 12/2026 on record of the matrix test"}, headers=bearer(u) if u else {})


def post_user(w, u):
    body = {"username": f"t-made-{secrets.token_hex(4)}", "password": "a long enough passphrase", "role": "planner",
            "scope": ["42"]}
    return w.client.post("/api/v1/admin/users", json=body, headers=bearer(u) if u else {})


def post_disable(w, u):
    name = f"t-gone-{secrets.token_hex(4)}"
    from api.security.accounts import create_user

    with w.engine.begin() as conn:
        create_user(conn, name, "a long enough passphrase", "planner", ["42"])
    return w.client.post(f"/api/v1/admin/users/{name}/disable", headers=bearer(u) if u else {})


def odk_post(w, u):
    xml = instance_xml(answers(w.commune, full_name=f"Hứa Văn Ô {secrets.token_hex(3)}"))
    return w.client.post("/openrosa/submission", files=[("xml_submission_file", ("submission.xml", xml, "text/xml"))],
                         headers=basic(u) if u else {"X-OpenRosa-Version": "1.0"})


def odk_head(w, u):
    return w.client.head("/openrosa/submission", headers=basic(u) if u else {"X-OpenRosa-Version": "1.0"})


def counts_have_commune(r, w) -> bool:
    return r.status_code == 200 and any(x["code"] == w.commune["code"] for x in r.json()["units"])


def counts_lack_commune(r, w) -> bool:
    return r.status_code == 200 and not any(x["code"] == w.commune["code"] for x in r.json()["units"])


def put_target(w, u):
    body = [{"unit_code": "42", "structure": "2025", "year": YEAR, "indicator": "departures", "kind": "minimum", "value": 100}]
    return w.client.put("/api/v1/targets", json=body, headers=bearer(u) if u else {})


def features_have_commune(r, w) -> bool:
    return r.status_code == 200 and any(f["properties"]["code"] == w.commune["code"] for f in r.json()["features"])


def features_lack_commune(r, w) -> bool:
    return r.status_code == 200 and not any(f["properties"]["code"] == w.commune["code"] for f in r.json()["features"])


def post_incident(w, u):
    # Near the surveyed person's point, not on it (the police test looks for that point in every answer).
    body = {"type": "recruitment_fraud", "occurred_on": dt.date.today().isoformat(), "lon": w.commune["lon"] + 0.0003,
            "lat": w.commune["lat"] + 0.0003, "persons_affected": 3, "source": "matrix (synthetic)"}
    return w.client.post("/api/v1/incidents", json=body, headers=bearer(u) if u else {})


def released_reader(u) -> bool:
    return u is not None and str(getattr(u.role, "value", u.role)) in ("leader", "planner")


def get_incident_counts(w, u):
    # Leaders and planners read released months per province; officers and police live dates per commune.
    params = {"level": "commune", "geometry": "false"}
    if released_reader(u):
        params = {"level": "province", "geometry": "false", "period": RELEASED}
    r = w.client.get("/api/v1/layers/incident-counts", params=params, headers=bearer(u) if u else {})
    r.released = released_reader(u)
    return r


def counts_have_area(r, w) -> bool:
    if getattr(r, "released", False):
        return r.status_code == 200 and [f["properties"]["code"] for f in r.json()["features"]] == ["42"]
    return features_have_commune(r, w)


def counts_lack_area(r, w) -> bool:
    if getattr(r, "released", False):
        return r.status_code == 200 and [f["properties"]["code"] for f in r.json()["features"]] == [w.other_province]
    return features_lack_commune(r, w)


def hotspots_have_commune(r, w) -> bool:
    return features_have_commune(r, w) and any(f["properties"]["class"] for f in r.json()["features"])


def hotspots_lack_commune(r, w) -> bool:
    too_few = r.status_code == 422 and "at least 30" in r.text
    return too_few or features_lack_commune(r, w)


def export(layer: str, method: str = "GET", **params) -> Call:
    """An export of ``layer`` (GeoJSON, to be read back), or with POST a job of it."""
    def call(w, u):
        query = {"format": "geojson", **params}
        headers = bearer(u) if u else {}
        if method == "POST":
            return w.client.post(f"/api/v1/exports/{layer}", params=query, headers=headers)
        return w.client.get(f"/api/v1/exports/{layer}", params=query, headers=headers)

    return call


def get_incident_count_export(w, u, method: str = "GET"):
    params = {"level": "province", "period": RELEASED} if released_reader(u) else {"level": "commune"}
    r = export("incident-counts", method, **params)(w, u)
    r.released = released_reader(u)
    return r


def job_accepted(r, w) -> bool:
    return r.status_code == 202 and r.json()["state"] in ("queued", "running", "done")


def job_accepted_or_too_few(r, w) -> bool:
    return job_accepted(r, w) or (r.status_code == 422 and "at least 30" in r.text)


def a_job_of(owner: str) -> Call:
    """Make a small job as the officer of province 42 ("in"), then call its status (or file) as ``u``: others get 404."""
    def call(w, u):
        maker = w.users["officer", "in"]
        if owner not in w.made:
            made = w.client.post("/api/v1/exports/units", params={"format": "csv", "parent": "42", "level": "province",
                                                                  "structure": "2025"}, headers=bearer(maker))
            w.made.append(owner)
            w.job_id = made.json()["id"]
            deadline = time.monotonic() + 60
            while w.client.get(f"/api/v1/export-jobs/{w.job_id}", headers=bearer(maker)).json()["state"] != "done":
                assert time.monotonic() < deadline
                time.sleep(0.1)
        suffix = "/file" if owner == "file" else ""
        r = w.client.get(f"/api/v1/export-jobs/{w.job_id}{suffix}", headers=bearer(u) if u else {})
        r.mine = u is not None and u.name == maker.name
        return r

    return call


def own_job(r, w) -> bool:
    return r.status_code == 200 if r.mine else r.status_code == 404


def sign_in(w, u):
    return w.client.post("/api/v1/auth/token", data={"username": f"nobody-{secrets.token_hex(4)}", "password": "not a password"})


CASES: dict[tuple[str, str], Case] = {
    ("GET", "/"): same(get("/")),
    ("GET", "/health"): same(get("/health")),
    ("GET", "/survey"): same(get("/survey")),
    ("GET", "/survey/form.json"): same(get("/survey/form.json")),
    ("GET", "/survey/sw.js"): same(get("/survey/sw.js")),
    ("GET", "/api/v1/units"): same(get("/api/v1/units", parent="42")),
    ("GET", "/api/v1/units/{code}"): same(get("/api/v1/units/42")),
    ("GET", "/api/v1/locate"): same(get("/api/v1/locate", lon=105.9, lat=18.33)),
    ("GET", "/openrosa/formList"): same(get("/openrosa/formList")),
    ("GET", "/openrosa/forms/{form_id}.xml"): same(get("/openrosa/forms/labour_survey.xml")),
    ("GET", "/openrosa/forms/{form_id}.xlsx"): same(get("/openrosa/forms/labour_survey.xlsx")),
    ("POST", "/api/v1/auth/token"): Case(sign_in, lambda r, w: r.status_code == 401, lambda r, w: r.status_code == 401),
    ("POST", "/api/v1/auth/refresh"): Case(
        lambda w, u: w.client.post("/api/v1/auth/refresh", json={"refresh_token": "not-a-token"}),
        lambda r, w: r.status_code == 401, lambda r, w: r.status_code == 401),
    ("GET", "/api/v1/auth/me"): same(get("/api/v1/auth/me")),
    ("GET", "/api/v1/auth/me/units"): same(get("/api/v1/auth/me/units")),
    ("GET", "/favicon.ico"): same(get("/favicon.ico")),
    ("GET", "/api/v1/admin/users"): same(get("/api/v1/admin/users")),
    ("POST", "/api/v1/admin/users"): same(post_user),
    ("POST", "/api/v1/admin/users/{username}/disable"): same(post_disable),
    ("GET", "/api/v1/admin/audit"): same(get("/api/v1/admin/audit")),
    ("POST", "/api/v1/admin/break-glass/submissions/{instance_id}"): Case(post_break_glass, listed("record_id"), listed("record_id")),
    ("GET", "/api/v1/aggregates/survey-counts"): Case(get("/api/v1/aggregates/survey-counts", period=RELEASED, level="commune"),
                                                      counts_have_commune, counts_lack_commune),
    ("GET", "/api/v1/submissions"): Case(get("/api/v1/submissions", limit=1000), listed("record_id"), not_listed("record_id")),
    ("POST", "/api/v1/submissions"): Case(post_submission, lambda r, w: r.status_code == 201,
                                          lambda r, w: r.status_code == 403 and r.json()["quarantine_id"] > 0),
    ("POST", "/api/v1/submissions/batch"): Case(post_batch, lambda r, w: r.status_code == 200 and r.json()["counts"]["created"] == 1,
                                                lambda r, w: r.status_code == 200 and r.json()["counts"]["forbidden"] == 1),
    ("GET", "/api/v1/submissions/{instance_id}"): Case(get("/api/v1/submissions/{w.record_id}"), listed("record_id"),
                                                       lambda r, w: r.status_code == 404),
    ("POST", "/api/v1/submissions/{instance_id}/review"): Case(post_review, listed("record_id"), lambda r, w: r.status_code == 404),
    ("GET", "/api/v1/quarantine"): Case(get("/api/v1/quarantine", limit=1000), listed("quarantine_id"), not_listed("quarantine_id")),
    ("POST", "/api/v1/quarantine/{quarantine_id}/resubmit"): Case(post_resubmit, lambda r, w: r.status_code == 201,
                                                                  lambda r, w: r.status_code == 404),
    ("POST", "/api/v1/subjects/export"): Case(post_export, listed("record_id"), not_listed("record_id")),
    ("POST", "/api/v1/subjects/erase"): Case(post_erase, lambda r, w: r.erased_here,
                                             lambda r, w: r.status_code == 200 and r.json()["erased_records"] == []),
    ("GET", "/api/v1/targets"): Case(get("/api/v1/targets", structure="2025", unit="42"), ok, lambda r, w: r.json() == []),
    ("PUT", "/api/v1/targets"): Case(put_target, ok, lambda r, w: r.status_code == 403),
    ("GET", "/api/v1/layers/coverage"): Case(get("/api/v1/layers/coverage", structure="2025", level="commune", year=YEAR,
                                                 geometry="false"), features_have_commune, features_lack_commune),
    ("POST", "/api/v1/incidents"): Case(post_incident, lambda r, w: r.status_code == 201, lambda r, w: r.status_code == 403),
    ("GET", "/api/v1/layers/incidents"): Case(get("/api/v1/layers/incidents", limit=50000), listed("incident_id"),
                                              not_listed("incident_id")),
    ("GET", "/api/v1/layers/incident-counts"): Case(get_incident_counts, counts_have_area, counts_lack_area),
    ("GET", "/api/v1/layers/hotspots"): Case(get("/api/v1/layers/hotspots", level="commune", geometry="false", permutations=99),
                                             hotspots_have_commune, hotspots_lack_commune),
    ("GET", "/api/v1/layers/emerging-hotspots"): Case(get("/api/v1/layers/emerging-hotspots", level="commune", geometry="false",
                                                          permutations=99), features_have_commune, hotspots_lack_commune),
    ("GET", "/api/v1/reports/{unit_code}"): Case(get("/api/v1/reports/42", period=RELEASED_HALF, format="html"),
                                                  lambda r, w: r.status_code == 200 and "Hà Tĩnh" in r.text,
                                                  lambda r, w: r.status_code == 403 and "outside your area" in r.text),
    ("GET", "/api/v1/layers/recruiters"): same(get("/api/v1/layers/recruiters")),
    ("GET", "/api/v1/layers/recruiter-areas"): same(get("/api/v1/layers/recruiter-areas")),
    ("GET", "/tiles/units/{z}/{x}/{y}.mvt"): same(get("/tiles/units/6/50/28.mvt")),
    ("GET", "/tiles/coverage/{z}/{x}/{y}.mvt"): same(get("/tiles/coverage/6/50/28.mvt", year=YEAR)),
    ("GET", "/tiles/hotspots/{z}/{x}/{y}.mvt"): Case(get("/tiles/hotspots/6/50/28.mvt", permutations=99), ok,
                                                     lambda r, w: r.status_code in (200, 422)),
    ("GET", "/tiles/recruiters/{z}/{x}/{y}.mvt"): same(get("/tiles/recruiters/6/50/28.mvt")),
    ("GET", "/api/v1/dashboard"): same(get("/api/v1/dashboard")),
    ("GET", "/maps/coverage"): same(get("/maps/coverage")),
    ("GET", "/maps/hotspots"): same(get("/maps/hotspots")),
    ("GET", "/maps/recruiters"): same(get("/maps/recruiters")),
    ("GET", "/maps/coverage/frame"): same(get("/maps/coverage/frame", year=YEAR)),
    ("GET", "/maps/hotspots/frame"): Case(get("/maps/hotspots/frame", level="commune", permutations=99), ok,
                                          lambda r, w: r.status_code in (200, 422)),
    ("GET", "/maps/recruiters/frame"): same(get("/maps/recruiters/frame")),
    ("GET", "/api/v1/exports/units"): same(export("units", structure="2025", level="province", parent="42")),
    ("POST", "/api/v1/exports/units"): same(export("units", "POST", structure="2025", level="province", parent="42")),
    ("GET", "/api/v1/exports/coverage"): Case(export("coverage", structure="2025", level="commune", year=YEAR),
                                              features_have_commune, features_lack_commune),
    ("POST", "/api/v1/exports/coverage"): Case(export("coverage", "POST", structure="2025", level="commune", year=YEAR),
                                               job_accepted, job_accepted),
    ("GET", "/api/v1/exports/incidents"): Case(export("incidents"), listed("incident_id"), not_listed("incident_id")),
    ("POST", "/api/v1/exports/incidents"): Case(export("incidents", "POST"), job_accepted, job_accepted),
    ("GET", "/api/v1/exports/incident-counts"): Case(get_incident_count_export, counts_have_area, counts_lack_area),
    ("POST", "/api/v1/exports/incident-counts"): Case(lambda w, u: get_incident_count_export(w, u, "POST"),
                                                      job_accepted, job_accepted),
    ("GET", "/api/v1/exports/hotspots"): Case(export("hotspots", level="commune", permutations=99), hotspots_have_commune,
                                              hotspots_lack_commune),
    ("POST", "/api/v1/exports/hotspots"): Case(export("hotspots", "POST", level="commune", permutations=99), job_accepted,
                                               job_accepted_or_too_few),
    ("GET", "/api/v1/exports/emerging-hotspots"): Case(export("emerging-hotspots", level="commune", permutations=99),
                                                       features_have_commune, hotspots_lack_commune),
    ("POST", "/api/v1/exports/emerging-hotspots"): Case(export("emerging-hotspots", "POST", level="commune", permutations=99),
                                                        job_accepted, job_accepted_or_too_few),
    ("GET", "/api/v1/exports/recruiters"): same(export("recruiters")),
    ("POST", "/api/v1/exports/recruiters"): Case(export("recruiters", "POST"), job_accepted, job_accepted),
    ("GET", "/api/v1/exports/recruiter-areas"): same(export("recruiter-areas")),
    ("POST", "/api/v1/exports/recruiter-areas"): Case(export("recruiter-areas", "POST"), job_accepted, job_accepted),
    ("GET", "/api/v1/exports/survey-records"): Case(export("survey-records", format="csv"), listed("record_id"),
                                                    not_listed("record_id")),
    ("POST", "/api/v1/exports/survey-records"): Case(export("survey-records", "POST", format="csv"), job_accepted, job_accepted),
    ("GET", "/api/v1/export-jobs/{job_id}"): Case(a_job_of("status"), own_job, own_job),
    ("GET", "/api/v1/export-jobs/{job_id}/file"): Case(a_job_of("file"), own_job, own_job),
    ("HEAD", "/openrosa/submission"): same(odk_head),
    ("POST", "/openrosa/submission"): Case(odk_post, lambda r, w: r.status_code == 201, lambda r, w: r.status_code == 403),
}


def test_every_route_has_a_rule_and_a_case():
    """A new route fails here until it declares who may call it and the matrix knows how to call it."""
    problems = []
    for route in ROUTES:
        if len(route.rules) != 1:
            problems.append(f"{route.method} {route.path}: {len(route.rules)} access rules {route.rules} (need exactly one)")
        if (route.method, route.path) not in CASES:
            problems.append(f"{route.method} {route.path}: no case in tests/test_authorization.py CASES")
    assert problems == []
    assert set(CASES) == {(r.method, r.path) for r in ROUTES}, "cases for routes that no longer exist"
    others = {getattr(r, "path", None) for r in create_app().routes} - {None}
    assert {p for p in others if not p.startswith(("/api/", "/openrosa", "/survey", "/health"))} - {"/"} <= NOT_API_ROUTES


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.path}" for r in ROUTES])
def test_route_matrix(world, route):
    (rule,) = route.rules
    case = CASES[route.method, route.path]
    anonymous = case.call(world, None)
    failures = []
    if rule is PUBLIC:
        for role in Role:
            r = case.call(world, world.users[role.value, "in"])
            if r.status_code != anonymous.status_code:
                failures.append(f"{role.value}: {r.status_code}, anonymous: {anonymous.status_code}")
        assert failures == [], route
        return
    assert isinstance(rule, Allow)
    assert anonymous.status_code == 401, f"anonymous: {anonymous.status_code}"
    challenge = "Basic" if isinstance(rule, AllowBasic) else "Bearer"
    assert anonymous.headers["www-authenticate"].startswith(challenge)
    for role in Role:
        for side in ("in", "out"):
            r = case.call(world, world.users[role.value, side])
            if role not in rule.roles:
                right = r.status_code == 403
            elif side == "in":
                right = case.inside(r, world)
            else:
                right = case.outside(r, world)
            if not right:
                failures.append(f"{role.value} ({side}side): {r.status_code} {r.text[:200]}")
    assert failures == []


def test_a_surveyor_reads_only_what_it_sent(world, accounts):
    """Another surveyor of the same area does not see a colleague's records."""
    colleague = accounts.user("surveyor", ("42", world.commune["code"]))  # same area, another account
    headers = bearer(colleague)
    assert world.client.get(f"/api/v1/submissions/{world.record_id}", headers=headers).status_code == 404
    assert world.record_id not in world.client.get("/api/v1/submissions", headers=headers).text
    mine = new_payload(world)
    assert world.client.post("/api/v1/submissions", json=mine, headers=headers).status_code == 201
    assert world.client.get(f"/api/v1/submissions/{mine['instance_id']}", headers=headers).status_code == 200


def test_officers_of_either_structure_see_the_record(world, accounts, seeded):
    """An officer whose area is given in the old structure sees records of the new one (through the crosswalk)."""
    with seeded.connect() as conn:
        old_commune = conn.execute(text(
            """SELECT old_code FROM unit_crosswalk WHERE new_structure = '2025' AND new_code = :c AND level = 'commune'
               ORDER BY area_share DESC NULLS LAST LIMIT 1"""), {"c": world.commune["code"]}).scalar()
    old_officer = accounts.user("officer", (old_commune,), "pre2025")
    r = world.client.get(f"/api/v1/submissions/{world.record_id}", headers=bearer(old_officer))
    assert r.status_code == 200 and r.json()["instance_id"] == world.record_id


# -- the police analyst, from the attacker's side ----------------------------------------
PERSONAL_KEYS = {"full_name", "national_id", "id_hash", "birth_year", "sex", "ethnicity", "phone", "household_status",
                 "lat", "lon", "answers", "name_folded", "has_national_id"}


def json_keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in json_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in json_keys(v)}
    return set()


def test_police_never_receive_a_personal_field(world):
    """A police token calls every route (inside its area, with the area's ids) and every format they answer in.

    No answer holds a personal key, the test person's name, ID or point.
    (The blank form — /survey/form.json, the XForm, the XLSForm — names its
    questions, such as ``full_name``, as values; no answer of any route has
    a personal field as a key.)
    """
    police = world.users["police_analyst", "in"]
    point = (f"{world.commune['lat']:.6f}"[:-1], f"{world.commune['lon']:.6f}"[:-1])
    secrets_ = [world.record["full_name"], world.national_id, *point]
    seen = 0
    for route in ROUTES:
        r = CASES[route.method, route.path].call(world, police)
        body = r.content.decode("utf-8", "replace")
        for s in secrets_:
            assert s not in body, f"{route.method} {route.path} leaks {s!r}"
        if r.headers.get("content-type", "").startswith("application/json") and r.content:
            leaked = json_keys(r.json()) & PERSONAL_KEYS
            assert not leaked, f"{route.method} {route.path} answers personal fields {leaked}"
        seen += 1
        if route.path.startswith(("/api/v1/submissions", "/api/v1/quarantine", "/api/v1/subjects", "/api/v1/admin")):
            assert r.status_code == 403, f"{route.method} {route.path}: {r.status_code}"
    assert seen == len(ROUTES)
    # Also with a purpose stated and the record id in every parameter it could go.
    for path in (f"/api/v1/submissions/{world.record_id}", "/api/v1/submissions", "/api/v1/quarantine"):
        r = world.client.get(path, params={"purpose": "investigation", "commune": world.commune["code"]}, headers=bearer(police))
        assert r.status_code == 403 and world.record["full_name"] not in r.text


def test_a_rejected_form_naming_no_known_commune_goes_to_officers_of_the_whole_country(world, accounts):
    bad = aspirant(world.commune, commune_code="99999", full_name=f"Mã Thị Lạc {secrets.token_hex(3)}")
    with world.engine.begin() as conn:
        (o,) = ingest(conn, [Incoming(json.dumps(bad, ensure_ascii=False), bad)], source="test",
                      sender=Sender(world.users["surveyor", "in"].name))
    assert o.status == "rejected"
    ids = {}
    for who, headers in (("country", bearer(accounts.user("officer"))), ("province", bearer(world.users["officer", "in"])),
                         ("sender", bearer(world.users["surveyor", "in"]))):
        r = world.client.get("/api/v1/quarantine", params={"limit": 1000}, headers=headers)
        ids[who] = r.status_code, o.quarantine_id in {q["id"] for q in r.json()} if r.status_code == 200 else None
    # The surveyor who sent it reads it too, to correct it (as ODK users expect).
    assert ids == {"country": (200, True), "province": (200, False), "sender": (200, True)}


def test_duplicate_links_show_only_records_the_reader_may_see(world, accounts):
    """A sender cannot probe for a national ID: links to records it may not read are not listed."""
    colleague = accounts.user("surveyor", ("42", world.commune["code"]))  # same area, did not send the first record
    same_person = aspirant(world.commune, national_id=world.national_id, full_name="Người Khác Gửi")
    r = world.client.post("/api/v1/submissions", json=same_person, headers=bearer(colleague))
    assert r.status_code == 201 and r.json()["record"]["probable_duplicates"] == []
    own = world.client.get(f"/api/v1/submissions/{same_person['instance_id']}", headers=bearer(colleague))
    assert own.status_code == 200 and own.json()["probable_duplicates"] == []
    # The officer of the area sees the link; the first sender sees it for a record it sends itself.
    officer = world.client.get(f"/api/v1/submissions/{same_person['instance_id']}", headers=bearer(world.users["officer", "in"]))
    assert {"instance_id": world.record_id, "reason": "national_id"} in officer.json()["probable_duplicates"]
    again = aspirant(world.commune, national_id=world.national_id, full_name="Người Gửi Lại")
    mine = world.client.post("/api/v1/submissions", json=again, headers=bearer(world.users["surveyor", "in"]))
    assert {"instance_id": world.record_id, "reason": "national_id"} in mine.json()["record"]["probable_duplicates"]
    assert same_person["instance_id"] not in mine.text
