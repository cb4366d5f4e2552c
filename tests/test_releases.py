"""Frozen releases: what leaders and planners read, through the API, and how releases are made and kept.

Each test works in its own past month (releases are append-only, so a month
once released stays released for the whole session) and in communes of
Quảng Trị (2025 province 44), where no other test puts records.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from geodata.roles import Role
from geodata.scopes import Reader
from geodata.vietnam import VIETNAM_TZ
from maps.periods import Period
from maps.releases import (
    aggregate_view,
    count_table,
    current_release,
    make_release,
    release_cells,
    release_due_at,
    release_rounds,
    releases_of,
    verify_release,
)
from maps.suppression import COMPLEMENTARY, PRIMARY
from maps.survey_counts import MEASURES, SURVEY_COUNTS
from tests.intruder import Intruder, narrow_cells, table_relations, told_small
from tests.payloads import aspirant

PROVINCE = "44"
COUNTS = "/api/v1/aggregates/survey-counts"

ADD_SQL = """
INSERT INTO survey_record (province_code, instance_id, form_id, form_version, kind, collected_at, surveyor, source,
                           structure, declared_commune_code, assigned_commune_code, consent, payload_hash)
SELECT u.parent_code, gen_random_uuid(), 'labour_survey', 'test', :kind, :at, 'Người khảo sát thử', 'test (synthetic)',
       '2025', u.code, u.code, true, md5(random()::text)
FROM admin_unit u CROSS JOIN generate_series(1, :n)
WHERE u.structure = '2025' AND u.code = :code
"""


def add_records(engine, code: str, at: dt.datetime, **kinds: int) -> None:
    """Synthetic anonymous records of ``code`` collected at ``at`` (as stored records: they count like any other)."""
    with engine.begin() as conn:
        for kind, n in kinds.items():
            conn.execute(text(ADD_SQL), {"kind": kind, "at": at, "n": n, "code": code})


def mid(period: str) -> dt.datetime:
    """Noon on the 15th of a month, Viet Nam time."""
    p = Period.parse(period)
    return dt.datetime(p.start.year, p.start.month, 15, 12, tzinfo=VIETNAM_TZ)


@pytest.fixture(scope="module")
def communes(seeded_url) -> list[dict]:
    """The communes of Quảng Trị (2025 structure), with a point inside each."""
    from geodata.db import use_database

    with use_database(seeded_url).connect() as conn:
        rows = conn.execute(text(
            """SELECT code, ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat FROM admin_unit
               WHERE structure = '2025' AND parent_code = :p AND geom IS NOT NULL ORDER BY code"""), {"p": PROVINCE}).all()
    assert len(rows) > 20
    return [r._asdict() for r in rows]


def units_of(response) -> dict:
    assert response.status_code == 200, response.text
    return {u["code"]: u for u in response.json()["units"]}


def counts(client, headers, period: str, **params):
    return client.get(COUNTS, params={"period": period, "structure": "2025", **params}, headers=headers)


# -- what leaders and planners read ------------------------------------------------------------
def test_leaders_read_a_frozen_release_officers_read_live_counts(client, accounts, seeded, communes):
    period = "2025-08"
    c = [x["code"] for x in communes]
    add_records(seeded, c[0], mid(period), aspirant=2)
    add_records(seeded, c[1], mid(period), aspirant=12, returnee=6)
    add_records(seeded, c[2], mid(period), aspirant=30, departure=7)
    leader = accounts.headers("leader", (PROVINCE,))
    first = counts(client, leader, period)
    body = first.json()
    assert body["source"] == "release" and body["suppressed_below"] == 5 and body["period"] == period
    assert body["release"]["revision"] == 1 and body["release"]["made_by"] == "server"
    assert dt.datetime.fromisoformat(body["next_release_due"]) > dt.datetime.now(dt.UTC)
    units = units_of(first)
    assert units[c[0]]["aspirant"] == {"count": None, "suppressed": True}  # 2 < 5
    assert units[c[3]]["aspirant"] == {"count": None, "suppressed": True}  # 0 < 5: hidden too
    assert units[PROVINCE]["aspirant"] == {"count": 44, "suppressed": False}
    shown = [u[m]["count"] for u in units.values() for m in MEASURES if not u[m]["suppressed"]]
    assert shown and all(n >= 5 for n in shown)
    # The same release, the same numbers, for a planner and on asking again; officers count live.
    again = counts(client, accounts.headers("planner", (PROVINCE,)), period)
    assert again.json()["release"] == body["release"] and units_of(again) == units
    officer = units_of(counts(client, accounts.headers("officer", (PROVINCE,)), period))
    assert [officer[x]["aspirant"]["count"] for x in c[:4]] == [2, 12, 30, 0]
    live = counts(client, accounts.headers("officer", (PROVINCE,)), period).json()
    assert live["source"] == "live" and live["release"] is None and live["suppressed_below"] is None


def test_structural_zeros_are_shown(client, accounts, seeded):
    """The old structure's units did not exist after 2025-07-01: their zeros are zero by definition, shown."""
    r = client.get(COUNTS, params={"period": "2025-08", "structure": "pre2025", "parent": "45"},
                   headers=accounts.headers("leader", ("45",), "pre2025"))
    units = units_of(r)
    assert units and all(u[m] == {"count": 0, "suppressed": False} for u in units.values() for m in MEASURES)


def test_zeros_are_not_told_apart_from_small_counts(client, accounts, seeded, communes):
    """A commune with nobody and one with two people look the same to leaders and planners, in every field."""
    period = "2025-10"
    c = [x["code"] for x in communes]
    empty, two, big = c[5], c[6], c[7]
    add_records(seeded, two, mid(period), aspirant=2, departure=1)
    add_records(seeded, big, mid(period), aspirant=40, returnee=25, departure=15)
    for role in ("leader", "planner"):
        r = counts(client, accounts.headers(role, (PROVINCE,)), period, level="commune")
        units = units_of(r)
        for m in MEASURES:
            assert units[empty][m] == units[two][m] == {"count": None, "suppressed": True}, (role, m)
        strip = ("code", "name")  # nothing else about the two communes differs (no reason, no band)
        assert {k: v for k, v in units[empty].items() if k not in strip} == {k: v for k, v in units[two].items() if k not in strip}
        assert set(units[empty]) == {"code", "name", "level", "parent_code", "geom_quality", *MEASURES}
        assert all(u[m]["count"] >= 5 for u in units.values() for m in MEASURES if not u[m]["suppressed"])
        # The raw answer never carries a reason: primary and complementary cells are written alike.
        assert "primary" not in r.text and "complementary" not in r.text


def test_the_same_cells_are_hidden_whatever_the_area(client, accounts, communes):
    period = "2025-08"
    c1 = communes[1]["code"]
    province = units_of(counts(client, accounts.headers("planner", (PROVINCE,)), period, level="commune"))
    one = units_of(counts(client, accounts.headers("planner", (c1,)), period, level="commune"))
    assert set(one) == {c1} and one[c1] == province[c1]


def test_police_get_no_survey_aggregates(client, accounts):
    r = client.get(COUNTS, params={"period": "2025-08"}, headers=accounts.headers("police_analyst", (PROVINCE,)))
    assert r.status_code == 403


def test_open_periods_and_other_lengths_are_refused_with_when_the_release_is_due(client, accounts):
    leader = accounts.headers("leader", (PROVINCE,))
    now = dt.datetime.now(VIETNAM_TZ)
    current = Period.containing(now.date(), "month")
    r = counts(client, leader, current.label)
    assert r.status_code == 404
    assert current.label in r.json()["detail"] and release_due_at(current).date().isoformat() in r.json()["detail"]
    year = counts(client, leader, "2025")
    assert year.status_code == 422 and "2025-10" not in year.text and "month" in year.json()["detail"][0]["msg"]
    officer = counts(client, accounts.headers("officer", (PROVINCE,)), current.label)  # live: any period
    assert officer.status_code == 200 and officer.json()["source"] == "live"
    both = client.get(COUNTS, params={"period": "2025-08", "year": 2025}, headers=leader)
    assert both.status_code == 422


# -- releases never change ----------------------------------------------------------------------
def test_a_released_table_cannot_be_changed_even_in_the_database(seeded, client, accounts):
    counts(client, accounts.headers("leader", (PROVINCE,)), "2025-08")  # released by now
    with seeded.connect() as conn:
        rid = conn.execute(text("SELECT min(id) FROM aggregate_release WHERE period = '2025-08'")).scalar_one()
    for statement in ("UPDATE aggregate_release_cell SET count = count + 1 WHERE release_id = :id",
                      "DELETE FROM aggregate_release_cell WHERE release_id = :id",
                      "UPDATE aggregate_release SET made_by = 'someone' WHERE id = :id",
                      "DELETE FROM aggregate_release WHERE id = :id",
                      "TRUNCATE aggregate_release_cell",
                      "TRUNCATE aggregate_release CASCADE"):
        with seeded.begin() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text(statement), {"id": rid})


def test_a_record_added_after_a_release_changes_nothing_a_leader_sees(client, accounts, seeded, communes, commune):
    period = "2025-09"
    c = [x["code"] for x in communes]
    add_records(seeded, c[8], mid(period), aspirant=9, returnee=3)
    add_records(seeded, c[9], mid(period), aspirant=20, departure=8)
    leader = accounts.headers("leader", (PROVINCE,))
    before = counts(client, leader, period)
    # A surveyor's late record for the released month, sent through the API like any other.
    where = next(x for x in communes if x["code"] == c[8])
    late = aspirant(where, collected_at=mid(period).isoformat(), full_name="Hồ Thị Muộn")
    assert client.post("/api/v1/submissions", json=late).status_code == 201
    add_records(seeded, c[10], mid(period), departure=30)  # and many more, in another commune
    after = counts(client, leader, period)
    assert after.json()["release"] == before.json()["release"]
    assert units_of(after) == units_of(before)
    officer = units_of(counts(client, accounts.headers("officer", (PROVINCE,)), period))
    assert officer[c[8]]["aspirant"]["count"] == 10 and officer[c[10]]["departure"]["count"] == 30


def test_a_late_record_is_published_only_in_a_later_release_audited_with_the_first(client, accounts, seeded, communes):
    period = Period.parse("2026-02")
    c = [x["code"] for x in communes]
    add_records(seeded, c[13], mid(period.label), aspirant=3, returnee=9, departure=1)
    add_records(seeded, c[14], mid(period.label), aspirant=25, returnee=2)
    leader = accounts.headers("leader", (PROVINCE,))
    first = counts(client, leader, period.label).json()
    late = aspirant(communes[13], collected_at=mid(period.label).isoformat(), full_name="Lê Thị Về Muộn")
    assert client.post("/api/v1/submissions", json=late).status_code == 201
    assert counts(client, leader, period.label).json()["release"] == first["release"]  # not before the next round
    # The next release round, as the server meets it: the first reader after it makes the revision.
    _, next_round = release_rounds(dt.datetime.now(VIETNAM_TZ))
    with seeded.begin() as conn:
        revision = current_release(conn, SURVEY_COUNTS, "2025", period, now=next_round + dt.timedelta(hours=1))
    assert revision.revision == first["release"]["revision"] + 1 == 2
    layer = revision.method["layers"]["5"]
    assert layer["audit"]["passed"] and layer["joint_audit"] is not None and layer["joint_audit"]["passed"]
    with seeded.connect() as conn:
        assert all(r.passed for r in verify_release(conn, revision).values())
        like = count_table(conn, SURVEY_COUNTS, "2025", period)
        new_table, new_status = release_cells(conn, revision, 5, like)
        old_table, old_status = release_cells(conn, releases_of(conn, "survey_counts", "2025", period)[0], 5, like)
    assert new_table.values[new_table.cell(c[13], "aspirant")] == 4 and old_table.values[old_table.cell(c[13], "aspirant")] == 3
    # Patterns only grow: nothing the first release hid is shown by the revision.
    assert ((new_status >= PRIMARY) >= (old_status >= PRIMARY)).all()
    # Leaders now read the revision.
    after = counts(client, leader, period.label).json()
    assert after["release"]["id"] == revision.id and after["release"]["revision"] == 2
    # An intruder who holds both releases and knows every record added in between (it sent them): what either
    # release shows is a cell of the first one, and no primary cell of the province is narrowed.
    both = {new_table.key(i): int(old_table.values[i]) if (old_status[i] < PRIMARY or new_status[i] < PRIMARY) else None
            for i in range(new_table.size)}
    parents = {u: (new_table.units[p] if p >= 0 else None) for u, p in zip(new_table.units, new_table.parent, strict=True)}
    relations = table_relations(parents, new_table.measures, new_table.parts_of)
    complementary = [old_table.key(i) for i in range(old_table.size) if old_status[i] == COMPLEMENTARY]
    intruder = Intruder(both, relations, k=5, big=complementary, small=told_small(both, relations, complementary))
    here = {PROVINCE, *c}
    sensitive = [old_table.key(i) for i in range(old_table.size) if old_status[i] == PRIMARY and old_table.key(i)[0] in here]
    assert len(sensitive) > 50 and narrow_cells(intruder, sensitive, 5) == {}


def test_concurrent_readers_make_one_release(seeded, communes):
    period = Period.parse("2025-11")
    add_records(seeded, communes[11]["code"], mid(period.label), aspirant=6, returnee=11)
    made, errors = [], []
    start = threading.Barrier(3)

    def read() -> None:
        try:
            start.wait()
            with seeded.begin() as conn:
                made.append(current_release(conn, SURVEY_COUNTS, "2025", period).id)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with seeded.connect() as conn:
        assert len(releases_of(conn, "survey_counts", "2025", period)) == 1
    assert len(set(made)) == 1


def test_the_release_command_makes_lists_and_verifies_releases(seeded, communes):
    from cli.main import app as cli_app

    add_records(seeded, communes[12]["code"], mid("2025-12"), aspirant=17, departure=4)
    runner = CliRunner()
    made = runner.invoke(cli_app, ["release", "--period", "2025-12", "--structure", "2025"])
    assert made.exit_code == 0, made.output
    assert "survey_counts 2025 2025-12: revision 1 made (first release)" in made.output and "audit passed" in made.output
    again = runner.invoke(cli_app, ["release", "--period", "2025-12", "--structure", "2025"])
    assert again.exit_code == 0 and "revision 1 is current (no record changed since revision 1)" in again.output
    add_records(seeded, communes[12]["code"], mid("2025-12"), aspirant=1)
    revised = runner.invoke(cli_app, ["release", "--period", "2025-12", "--structure", "2025"])
    assert "revision 2 made (records changed since the last release)" in revised.output, revised.output
    listed = runner.invoke(cli_app, ["release", "list", "--period", "2025-12"])
    assert listed.exit_code == 0 and listed.output.count("survey_counts") == 2
    with seeded.connect() as conn:
        rid = releases_of(conn, "survey_counts", "2025", Period.parse("2025-12"))[-1].id
    verified = runner.invoke(cli_app, ["release", "verify", str(rid)])
    assert verified.exit_code == 0 and "audit passed" in verified.output
    open_period = Period.containing(dt.date.today(), "month").label
    refused = runner.invoke(cli_app, ["release", "--period", open_period, "--structure", "2025"])
    assert refused.exit_code == 1 and "not closed yet" in refused.output


def test_releases_of_overlapping_periods_are_refused(seeded, environment):
    with seeded.begin() as conn:
        make_release(conn, SURVEY_COUNTS, "2025", Period.parse("2025-07"), made_by="test")
    environment(LABOUR_ATLAS_RELEASE_PERIOD="year")
    from geodata.errors import Conflict

    with seeded.begin() as conn, pytest.raises(Conflict, match="overlaps 2025-"):
        make_release(conn, SURVEY_COUNTS, "2025", Period.parse("2025"), made_by="test")


def test_every_aggregate_of_a_suppressed_role_comes_from_a_release(seeded):
    """aggregate_view is the one way: a suppressed role never gets live counts, whatever it asks."""
    with seeded.begin() as conn:
        view = aggregate_view(conn, SURVEY_COUNTS, Role.planner, "2025", Period.parse("2025-08"), Reader(), level="province")
        assert view.source == "release" and view.release is not None and view.k == 5
        live = aggregate_view(conn, SURVEY_COUNTS, Role.officer, "2025", Period.parse("2025-08"), Reader(), level="province")
        assert live.source == "live" and live.release is None
        from geodata.errors import PermissionDenied

        with pytest.raises(PermissionDenied):
            aggregate_view(conn, SURVEY_COUNTS, Role.police_analyst, "2025", Period.parse("2025-08"), Reader())


def test_a_table_that_fails_its_audit_is_not_published_and_its_numbers_are_not_told(client, accounts, seeded, communes,
                                                                                      monkeypatch):
    from maps import releases
    from maps.disclosure_audit import AuditFailed, AuditReport, Failure

    leader = accounts.headers("leader", (PROVINCE,))
    secret = communes[15]["code"]

    def refused(*args, **kwargs):
        raise AuditFailed(AuditReport(5, 1, 0, 1, 2, 0.0, (Failure(secret, "aspirant", "plain", 3.0, 3.0, "excludes 0"),)))

    # A first release that fails: nothing is stored, the reader is told why without a number.
    add_records(seeded, secret, mid("2026-03"), aspirant=3)
    monkeypatch.setattr(releases, "protect", refused)
    r = counts(client, leader, "2026-03")
    assert r.status_code == 503 and "could not be made" in r.json()["detail"]
    assert secret not in r.text and "[3" not in r.text and "excludes" not in r.text
    with seeded.connect() as conn:
        assert releases_of(conn, "survey_counts", "2025", Period.parse("2026-03")) == []
    # A revision that fails: the earlier release stays in force.
    monkeypatch.undo()
    first = counts(client, leader, "2026-03").json()["release"]
    add_records(seeded, secret, mid("2026-03"), departure=2)
    monkeypatch.setattr(releases, "protect", refused)
    _, next_round = release_rounds(dt.datetime.now(VIETNAM_TZ))
    with seeded.begin() as conn:
        kept = current_release(conn, SURVEY_COUNTS, "2025", Period.parse("2026-03"), now=next_round + dt.timedelta(hours=2))
    assert kept.id == first["id"] and kept.revision == 1
