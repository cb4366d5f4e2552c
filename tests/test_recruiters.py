"""Recruiters, their events, activity areas and flags, on crafted dates (in Quảng Trị, province 44 after 2025)."""

from __future__ import annotations

import csv
import datetime as dt

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app as cli_app
from geodata.scopes import Reader
from maps.recruiters import recruiter_activity

PROVINCE = "44"
LICENCE = "TEST-123/LĐTBXH-GPHĐ"


def write(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, header)
        w.writeheader()
        w.writerows(rows)
    return path


def run(*args):
    return CliRunner().invoke(cli_app, ["import", *map(str, args)])


@pytest.fixture(scope="module")
def places(seeded_url):
    from geodata.db import use_database

    with use_database(seeded_url).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(
            """SELECT code, ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat FROM admin_unit
               WHERE structure = '2025' AND parent_code = :p AND geom IS NOT NULL ORDER BY code LIMIT 60"""), {"p": PROVINCE})]


@pytest.fixture(scope="module")
def imported(places, tmp_path_factory, seeded_url):
    d = tmp_path_factory.mktemp("recruiters")
    register = write(d / "register.csv", ["licence_number", "name", "status", "valid_from", "valid_to", "markets", "lon", "lat"], [
        {"licence_number": LICENCE, "name": "Công ty Cổ phần Nhân lực Thử Nghiệm", "status": "đang hoạt động",
         "valid_from": "01/03/2026", "valid_to": "31/08/2026", "markets": "JP, KR", "lon": places[0]["lon"], "lat": places[0]["lat"]},
        {"licence_number": "TEST-9/REVOKED", "name": "Công ty Bị Thu Hồi", "status": "thu hồi", "valid_from": "2020-01-01",
         "valid_to": "", "markets": "Đài Loan", "lon": "", "lat": ""},
    ])
    result = run("recruiters", register)
    assert result.exit_code == 0, result.output
    events = [
        # licensed: one before its licence starts, three within it, one after it ends
        {"licence_number": LICENCE, "occurred_on": "2026-02-27", "kind": "hội thảo", "attendees": 40, **pt(places[1])},
        *({"licence_number": LICENCE, "occurred_on": f"2026-0{m}-10", "kind": "tuyển chọn", "attendees": 25, **pt(places[m])}
          for m in (3, 5, 8)),
        {"licence_number": LICENCE, "occurred_on": "2026-09-01", "kind": "tư vấn", "attendees": 10, **pt(places[9])},
        {"licence_number": "TEST-9/REVOKED", "occurred_on": "2026-04-01", "kind": "seminar", "attendees": 12, **pt(places[10])},
        # two unregistered actors in the same commune, one of them twice; a third elsewhere
        {"actor_name": "Anh Tư môi giới", "occurred_on": "2026-04-02", "kind": "counselling", **pt(places[20])},
        {"actor_name": "ANH TƯ MÔI GIỚI", "occurred_on": "2026-04-09", "kind": "counselling", **pt(places[20])},
        {"actor_name": "Chị Hoa", "occurred_on": "2026-05-02", "kind": "other", "commune_code": places[20]["code"]},
        {"actor_name": "Ông Ba", "occurred_on": "2026-05-03", "kind": "other", **pt(places[30])},
        # a free-text name that is the registered enterprise: not an unregistered actor
        {"actor_name": "công ty cổ phần nhân lực thử nghiệm", "occurred_on": "2026-06-01", "kind": "seminar", **pt(places[2])},
    ]
    path = write(d / "events.csv", ["licence_number", "actor_name", "occurred_on", "kind", "attendees", "lon", "lat", "commune_code"],
                 events)
    result = run("recruitment-events", path)
    assert result.exit_code == 0, result.output
    return path


def pt(place):
    return {"lon": place["lon"], "lat": place["lat"]}


def layer(conn):
    return recruiter_activity(conn, structure="2025", start=dt.date(2026, 1, 1), end=dt.date(2026, 12, 31), reader=Reader())


def test_events_on_days_the_licence_was_not_valid_are_flagged(imported, seeded):
    with seeded.connect() as conn:
        result = layer(conn)
    flagged = sorted(f["occurred_on"] for f in result.flags[LICENCE] if f["flag"] == "licence_not_valid")
    assert flagged == ["2026-02-27", "2026-09-01"]  # before the licence, after it; the three inside are not
    revoked = [f["flag"] for f in result.flags["TEST-9/REVOKED"]]
    assert revoked == ["licence_not_valid"]  # revoked with no end date: never valid


def test_unregistered_actors_and_their_communes(imported, seeded, places):
    with seeded.connect() as conn:
        result = layer(conn)
    unregistered = {a.key for a in result.actors if not a.registered}
    assert unregistered == {"name:anh tu moi gioi", "name:chi hoa", "name:ong ba", "name:cong ty co phan nhan luc thu nghiem"}
    flags = {a: [f["flag"] for f in result.flags.get(a, [])] for a in unregistered}
    assert flags["name:anh tu moi gioi"] == ["not_in_register", "not_in_register"]
    assert flags["name:cong ty co phan nhan luc thu nghiem"] == []  # its name is in the register
    assert result.unregistered_clusters == {places[20]["code"]: ["anh tu moi gioi", "chi hoa"]}


def test_activity_area_and_communes(imported, seeded, places):
    with seeded.connect() as conn:
        result = layer(conn)
    assert result.communes[LICENCE] == sorted(places[m]["code"] for m in (1, 3, 5, 8, 9))
    assert result.areas[LICENCE]["type"] in ("Polygon", "MultiPolygon")
    assert result.area_method[LICENCE].startswith("concave hull")
    assert result.areas["name:ong ba"] is None  # one event: no area


def test_reimporting_stores_each_event_once_and_refuses_bad_rows(imported, seeded, tmp_path):
    with seeded.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM recruitment_event")).scalar()
    assert run("recruitment-events", imported).exit_code == 0
    with seeded.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM recruitment_event")).scalar() == before
    bad = write(tmp_path / "bad.csv", ["licence_number", "actor_name", "occurred_on", "kind", "lon", "lat"], [
        {"licence_number": "NOT-IN-REGISTER", "occurred_on": "2026-01-05", "kind": "seminar", "lon": 107.1, "lat": 16.8},
        {"actor_name": "X", "occurred_on": "2026-13-40", "kind": "seminar", "lon": 107.1, "lat": 16.8},
        {"occurred_on": "2026-01-05", "kind": "seminar", "lon": 107.1, "lat": 16.8},
    ])
    result = run("recruitment-events", bad)
    assert result.exit_code == 1 and "nothing was imported" in result.output
    assert "row 2, field licence_number: licence NOT-IN-REGISTER is not in the register" in result.output
    assert "row 3, field occurred_on" in result.output and "row 4" in result.output


def test_the_layers_answer_with_flags_and_clusters(client, imported, accounts, places):
    headers = accounts.headers("police_analyst", (PROVINCE,))
    areas = client.get("/api/v1/layers/recruiter-areas", params={"from": "2026-01-01", "to": "2026-12-31"}, headers=headers)
    assert areas.status_code == 200, areas.text
    body = areas.json()
    assert {"commune": places[20]["code"], "actors": ["anh tu moi gioi", "chi hoa"]} in body["unregistered_clusters"]
    licensed = next(f for f in body["features"] if f["id"] == LICENCE)
    assert licensed["properties"]["events"] == 5 and licensed["properties"]["attendees"] == 125
    register = client.get("/api/v1/layers/recruiters", params={"from": "2026-01-01", "to": "2026-12-31"}, headers=headers)
    entry = next(f for f in register.json()["features"] if f["id"] == LICENCE)
    assert entry["properties"]["flags"] == 2 and entry["properties"]["markets"] == ["JP", "KR"]
    assert entry["geometry"]["type"] == "Point"
