"""Small counts: primary and complementary suppression, on crafted tables and through the aggregates route."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import secrets

import pytest
from sqlalchemy import text

from geodata.roles import Role
from geodata.settings import Settings
from maps.suppression import suppressed_cells, suppression_k
from survey.ingest import Incoming, ingest
from tests.payloads import aspirant


def recoverable(counts, relations, hidden) -> set:
    """Hidden cells an attacker can compute exactly: the only hidden member of a relation."""
    found = set()
    for total, parts in relations:
        members = [total, *parts]
        unknown = [m for m in members if m in hidden]
        if len(unknown) == 1:
            found.add(unknown[0])
    return found


def test_counts_below_k_are_hidden_and_zeros_shown():
    counts = {"d": 30, "a": 9, "b": 10, "c": 11, "z": 0}
    relations = [("d", ["a", "b", "c", "z"])]
    hidden = suppressed_cells(counts, relations, 10)
    assert "a" in hidden and "z" not in hidden and "c" not in hidden
    assert suppressed_cells({"x": 2}, [], 3) == {"x"} and suppressed_cells({"x": 3}, [], 3) == set()


def test_a_lone_hidden_cell_takes_its_smallest_sibling_with_it():
    # District 40 = 3 + 12 + 25: without a second hidden cell, 40 - 12 - 25 = 3.
    counts = {"d": 40, "a": 3, "b": 12, "c": 25}
    relations = [("d", ["a", "b", "c"])]
    hidden = suppressed_cells(counts, relations, 5)
    assert hidden == {"a", "b"}
    assert recoverable(counts, relations, hidden) == set()


def test_a_hidden_cell_whose_siblings_are_zero_hides_the_total():
    counts = {"d": 4, "a": 4, "b": 0, "c": 0, "p": 50, "e": 46}
    relations = [("d", ["a", "b", "c"]), ("p", ["d", "e"])]
    hidden = suppressed_cells(counts, relations, 5)
    # d is hidden (4 < 5 anyway); e goes with it, or p - e = d = a.
    assert {"a", "d"} <= hidden and recoverable(counts, relations, hidden) == set()


def test_complementary_suppression_runs_across_levels_and_kinds():
    """Crafted two-level, two-kind table: nothing hidden can be computed from what is shown."""
    counts, relations = {}, []
    communes = {"d1": ["c1", "c2", "c3"], "d2": ["c4", "c5"]}
    values = {("c1", "a"): 2, ("c1", "r"): 30, ("c2", "a"): 40, ("c2", "r"): 1, ("c3", "a"): 15, ("c3", "r"): 0,
              ("c4", "a"): 7, ("c4", "r"): 8, ("c5", "a"): 50, ("c5", "r"): 60}
    for (c, kind), n in values.items():
        counts[c, kind] = n
    for d, cs in communes.items():
        for kind in ("a", "r"):
            counts[d, kind] = sum(counts[c, kind] for c in cs)
            relations.append(((d, kind), [(c, kind) for c in cs]))
    for kind in ("a", "r"):
        counts["p", kind] = counts["d1", kind] + counts["d2", kind]
        relations.append((("p", kind), [("d1", kind), ("d2", kind)]))
    for unit in [*itertools.chain(*communes.values()), *communes, "p"]:
        counts[unit, "all"] = counts[unit, "a"] + counts[unit, "r"]
        relations.append(((unit, "all"), [(unit, "a"), (unit, "r")]))
    for d, cs in communes.items():
        relations.append(((d, "all"), [(c, "all") for c in cs]))
    relations.append((("p", "all"), [("d1", "all"), ("d2", "all")]))
    for k in (3, 5, 10):
        hidden = suppressed_cells(counts, relations, k)
        assert {c for c, n in counts.items() if 0 < n < k} <= hidden
        assert recoverable(counts, relations, hidden) == set(), k
    hidden = suppressed_cells(counts, relations, 10)
    assert ("c1", "a") in hidden and ("c2", "r") in hidden and ("c4", "a") in hidden and ("c4", "r") in hidden
    # Totals stay visible: the cells of a two-commune district go in pairs instead.
    assert not {("p", "a"), ("p", "r"), ("p", "all"), ("d1", "all"), ("d2", "all")} & hidden


def test_k_is_a_setting_per_role_and_never_below_three(monkeypatch):
    assert suppression_k(Role.police_analyst) == 10
    assert suppression_k(Role.leader) == 5 and suppression_k(Role.planner) == 5
    assert suppression_k(Role.officer) is None
    monkeypatch.setenv("LABOUR_ATLAS_SUPPRESS_BELOW_LEADER", "2")
    with pytest.raises(ValueError, match="greater than or equal to 3"):
        Settings()
    with pytest.raises(ValueError, match="k must be at least 3"):
        suppressed_cells({"a": 1}, [], 2)


# -- through the route -------------------------------------------------------------------
@pytest.fixture(scope="module")
def counted(seeded_url):
    """A future year (so no other test's records count) with crafted records in three communes of province 42."""
    from geodata.db import use_database

    engine = use_database(seeded_url)
    year = dt.date.today().year + 50
    with engine.connect() as conn:
        cs = conn.execute(text(
            """SELECT code, ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat FROM admin_unit
               WHERE structure = '2025' AND parent_code = '42' AND geom IS NOT NULL ORDER BY code LIMIT 3""")).all()
    plan = {cs[0].code: 2, cs[1].code: 12, cs[2].code: 30}  # aspirants per commune
    with engine.begin() as conn:
        # Validation refuses future dates: store now, then move the records to the year.
        for c in cs:
            for _ in range(plan[c.code]):
                p = aspirant({"code": c.code, "lon": c.lon, "lat": c.lat}, full_name=f"Vương Thị Đếm {secrets.token_hex(3)}")
                (o,) = ingest(conn, [Incoming(json.dumps(p, ensure_ascii=False), p)], source="test")
                assert o.status == "created", o
                conn.execute(text(
                    "UPDATE survey_record SET collected_at = make_timestamptz(:y, 6, 1, 12, 0, 0, 'Asia/Ho_Chi_Minh') "
                    "WHERE instance_id = CAST(:i AS uuid)"), {"y": year, "i": o.instance_id})
    return {"year": year, "communes": [c.code for c in cs], "plan": plan}


def cells(body) -> dict:
    return {u["code"]: u for u in body["units"]}


def test_leaders_get_small_counts_hidden_officers_do_not(client, accounts, counted):
    c0, c1, c2 = counted["communes"]
    params = {"year": counted["year"], "structure": "2025"}
    leader = client.get("/api/v1/aggregates/survey-counts", params=params, headers=accounts.headers("leader", ("42",)))
    assert leader.status_code == 200
    body = leader.json()
    assert body["suppressed_below"] == 5
    units = cells(body)
    assert units[c0]["aspirant"] == {"count": None, "suppressed": True}  # 2 < 5
    # 2 is alone among non-zero communes of province 42 except 12 and 30: the 12 goes with it.
    assert units[c1]["aspirant"] == {"count": None, "suppressed": True}
    assert units[c2]["aspirant"] == {"count": 30, "suppressed": False}
    assert units["42"]["aspirant"] == {"count": 44, "suppressed": False}
    assert units[c2]["returnee"] == {"count": 0, "suppressed": False}
    # c0's all-kinds count equals its aspirant count: hidden as well.
    assert units[c0]["all"]["suppressed"] and units[c0]["all"]["count"] is None
    officer = client.get("/api/v1/aggregates/survey-counts", params=params, headers=accounts.headers("officer", ("42",)))
    o = cells(officer.json())
    assert officer.json()["suppressed_below"] is None
    assert [o[c]["aspirant"]["count"] for c in (c0, c1, c2)] == [2, 12, 30]


def test_the_same_cells_are_hidden_whatever_the_area(client, accounts, counted):
    """Users with different areas cannot combine their views: the pattern comes from the whole country."""
    _, c1, _ = counted["communes"]
    params = {"year": counted["year"], "structure": "2025", "level": "commune"}
    province = cells(client.get("/api/v1/aggregates/survey-counts", params=params,
                                headers=accounts.headers("planner", ("42",))).json())
    one = cells(client.get("/api/v1/aggregates/survey-counts", params=params,
                           headers=accounts.headers("planner", (c1,))).json())
    assert set(one) == {c1}
    assert one[c1] == province[c1] and one[c1]["aspirant"]["suppressed"]


def test_police_get_no_survey_aggregates(client, accounts, counted):
    r = client.get("/api/v1/aggregates/survey-counts", params={"year": counted["year"]},
                   headers=accounts.headers("police_analyst", ("42",)))
    assert r.status_code == 403
