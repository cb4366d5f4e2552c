"""The layers read by leaders and planners come from releases: coverage actuals, incident counts, hot spots without counts.

The records and incidents are put in Đắk Lắk (2025 province 66), which no
other test writes into, in months of 2023 that no other test releases.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from geodata.vietnam import VIETNAM_TZ

PROVINCE = "66"
MONTH = dt.date(2023, 2, 10)

ADD_DEPARTURES_SQL = """
INSERT INTO survey_record (province_code, instance_id, form_id, form_version, kind, collected_at, surveyor, source,
                           structure, declared_commune_code, assigned_commune_code, consent, payload_hash, departure_date)
SELECT u.parent_code, gen_random_uuid(), 'labour_survey', 'test', 'departure', :at, 'Người khảo sát thử', 'test (synthetic)',
       '2025', u.code, u.code, true, md5(random()::text), :day
FROM admin_unit u CROSS JOIN generate_series(1, :n)
WHERE u.structure = '2025' AND u.code = :code
"""

ADD_INCIDENTS_SQL = """
INSERT INTO incident (province_code, incident_id, type, occurred_on, structure, commune_code, persons_affected, status, source)
SELECT u.parent_code, 'layer-releases-' || :tag || '-' || g, 'illegal_brokerage', :day, '2025', u.code, 2, 'reported',
       'test (synthetic)'
FROM admin_unit u CROSS JOIN generate_series(1, :n) AS g
WHERE u.structure = '2025' AND u.code = :code
"""


@pytest.fixture(scope="module")
def commune(seeded_url) -> str:
    from geodata.db import use_database

    with use_database(seeded_url).connect() as conn:
        return conn.execute(text("SELECT min(code) FROM admin_unit WHERE structure = '2025' AND parent_code = :p"),
                            {"p": PROVINCE}).scalar_one()


def add_departures(engine, code: str, day: dt.date, n: int) -> None:
    with engine.begin() as conn:
        conn.execute(text(ADD_DEPARTURES_SQL), {"code": code, "day": day, "n": n,
                                                "at": dt.datetime.combine(day, dt.time(12), VIETNAM_TZ)})


def actual(response, code: str = PROVINCE):
    assert response.status_code == 200, response.text
    (f,) = [f for f in response.json()["features"] if f["properties"]["code"] == code]
    return f["properties"]["actual"]


def test_a_leaders_coverage_is_summed_from_releases_and_a_later_record_changes_nothing(client, accounts, seeded, commune):
    add_departures(seeded, commune, MONTH, 12)
    params = {"structure": "2025", "level": "province", "half": "2023-H1", "geometry": "false"}
    leader = accounts.headers("leader", (PROVINCE,))
    officer = accounts.headers("officer", (PROVINCE,))
    first = client.get("/api/v1/layers/coverage", params=params, headers=leader)
    body = first.json()
    assert body["source"] == "releases" and body["released_periods"] == [f"2023-0{m}" for m in range(1, 7)]
    assert len(body["releases"]) == 6 and all(r["revision"] >= 1 for r in body["releases"])
    assert actual(first) == actual(client.get("/api/v1/layers/coverage", params=params, headers=officer)) == 12
    assert any("released months" in c for c in body["caveats"])

    add_departures(seeded, commune, MONTH, 1)  # a late record: live at once, in a release only at the next round
    assert actual(client.get("/api/v1/layers/coverage", params=params, headers=officer)) == 13
    again = client.get("/api/v1/layers/coverage", params=params, headers=leader)
    assert actual(again) == 12 and again.json()["releases"] == body["releases"]


def test_a_province_hidden_in_any_released_month_is_hidden_in_the_leaders_sum(client, accounts, seeded, commune):
    """Two departures in August (below k): hidden that month, so the half-year is hidden too, whatever the officer sees."""
    add_departures(seeded, commune, dt.date(2023, 8, 3), 2)
    add_departures(seeded, commune, dt.date(2023, 9, 3), 20)
    params = {"structure": "2025", "level": "province", "half": "2023-H2", "geometry": "false"}
    officer = client.get("/api/v1/layers/coverage", params=params, headers=accounts.headers("officer", (PROVINCE,)))
    assert actual(officer) == 22
    leader = client.get("/api/v1/layers/coverage", params=params, headers=accounts.headers("leader", (PROVINCE,)))
    (f,) = [f for f in leader.json()["features"] if f["properties"]["code"] == PROVINCE]
    assert f["properties"]["actual"] is None and f["properties"]["ratio"] is None
    assert {"actual", "ratio"} <= set(f["properties"]["suppressed"])


def test_below_the_province_a_leader_gets_no_departures(client, accounts):
    params = {"structure": "2025", "level": "commune", "parent": PROVINCE, "half": "2023-H1", "geometry": "false"}
    body = client.get("/api/v1/layers/coverage", params=params, headers=accounts.headers("leader", (PROVINCE,))).json()
    assert body["features"] and all(f["properties"]["actual"] is None for f in body["features"])
    assert any("per province only" in c for c in body["caveats"])


def test_leaders_read_incident_counts_of_a_release_police_read_them_live(client, accounts, seeded, commune):
    with seeded.begin() as conn:
        conn.execute(text(ADD_INCIDENTS_SQL), {"tag": "a", "day": dt.date(2023, 3, 9), "n": 9, "code": commune})
    leader = accounts.headers("leader", (PROVINCE,))
    police = accounts.headers("police_analyst", (PROVINCE,))
    url = "/api/v1/layers/incident-counts"
    refused = client.get(url, params={"from": "2023-03-01", "to": "2023-03-31"}, headers=leader)
    assert refused.status_code == 422 and "period" in refused.text
    communes = client.get(url, params={"period": "2023-03", "level": "commune"}, headers=leader)
    assert communes.status_code == 422 and "per province" in communes.text
    params = {"period": "2023-03", "level": "province", "geometry": "false"}
    first = client.get(url, params=params, headers=leader)
    assert first.status_code == 200, first.text
    assert first.json()["source"] == "release" and first.json()["release"]["revision"] >= 1
    (f,) = first.json()["features"]
    assert f["properties"]["incidents"] == 9 and f["properties"]["persons_affected"] == 18

    with seeded.begin() as conn:
        conn.execute(text(ADD_INCIDENTS_SQL), {"tag": "b", "day": dt.date(2023, 3, 10), "n": 1, "code": commune})
    live = client.get(url, params={"from": "2023-03-01", "to": "2023-03-31", "level": "province", "geometry": "false"},
                      headers=police)
    assert live.json()["source"] == "live" and live.json()["features"][0]["properties"]["incidents"] == 10
    assert client.get(url, params=params, headers=leader).json()["features"][0]["properties"]["incidents"] == 9
