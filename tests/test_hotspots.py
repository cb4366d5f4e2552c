"""Incidents and hot spots: imports, roles, Gi* on a planted cluster and on a random pattern, the guards.

The incidents are put in Nghệ An (province 40 in both structures), which no
other test writes incidents into, in date ranges of their own.
"""

from __future__ import annotations

import csv
import datetime as dt
import random

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app as cli_app
from geodata.scopes import Reader
from maps.hotspots import HotspotRequest, hotspots, klass_of
from maps.incidents import IncidentFilter

PROVINCE = "40"


@pytest.fixture(scope="module")
def nghe_an(seeded_url):
    """Every 2025 commune of Nghệ An with a point inside it, and the neighbours of one of them."""
    from geodata.db import use_database

    engine = use_database(seeded_url)
    with engine.connect() as conn:
        communes = conn.execute(text("""SELECT code, ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat
                                        FROM admin_unit WHERE structure = '2025' AND parent_code = :p AND geom IS NOT NULL
                                        ORDER BY code"""), {"p": PROVINCE}).all()
        centre = communes[len(communes) // 2].code
        cluster = conn.execute(text("""SELECT b.code FROM admin_unit a JOIN admin_unit b ON b.structure = '2025' AND b.parent_code = :p
                                       AND ST_DWithin(a.geom, b.geom, 0.0005)
                                       WHERE a.structure = '2025' AND a.code = :c ORDER BY b.code"""),
                               {"p": PROVINCE, "c": centre}).scalars().all()
    return {"communes": [dict(r._mapping) for r in communes], "cluster": cluster, "centre": centre}


def write_incidents(path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, ["incident_id", "type", "occurred_on", "lon", "lat", "commune_code", "persons_affected", "status", "source"])
        w.writeheader()
        w.writerows(rows)


def import_file(path) -> str:
    result = CliRunner().invoke(cli_app, ["import", "incidents", str(path)])
    assert result.exit_code == 0, result.output
    return result.output


def incident(tag: str, i: int, place: dict, day: dt.date, **over) -> dict:
    row = {"incident_id": f"{tag}-{i}", "type": "illegal_brokerage", "occurred_on": day.isoformat(), "lon": place["lon"],
           "lat": place["lat"], "commune_code": "", "persons_affected": 2, "status": "reported", "source": "test (synthetic)"}
    return row | over


@pytest.fixture(scope="module")
def planted(nghe_an, tmp_path_factory, seeded_url):
    """January 2026: 12 incidents in each commune of one cluster, none elsewhere but one in every fifth commune."""
    rng = random.Random(7)
    rows, n = [], 0
    for c in nghe_an["communes"]:
        k = 12 if c["code"] in nghe_an["cluster"] else (1 if rng.random() < 0.2 else 0)
        for _ in range(k):
            rows.append(incident("cluster", n, c, dt.date(2026, 1, 1 + n % 28)))
            n += 1
    path = tmp_path_factory.mktemp("incidents") / "cluster.csv"
    write_incidents(path, rows)
    import_file(path)
    return rows


def test_a_planted_cluster_is_hot_at_95_percent_or_more(planted, nghe_an, seeded):
    flt = IncidentFilter(dt.date(2026, 1, 1), dt.date(2026, 1, 31))
    with seeded.connect() as conn:
        layer = hotspots(conn, HotspotRequest("2025", "commune", PROVINCE, flt, permutations=999, seed=1), Reader())
    classes = {r.code: r.klass for r in layer.rows}
    assert len(layer.rows) == len(nghe_an["communes"]) >= 30
    assert classes[nghe_an["centre"]] in ("hot_99", "hot_95")
    hot = {c for c, k in classes.items() if k in ("hot_99", "hot_95")}
    # The core of the cluster is found; hardly anything far from it.
    assert len(hot & set(nghe_an["cluster"])) >= len(nghe_an["cluster"]) // 2
    assert len(hot - set(nghe_an["cluster"])) <= len(nghe_an["cluster"])
    assert "Benjamini-Hochberg" in layer.inference and "999 conditional permutations (seed 1)" in layer.inference
    assert "queen contiguity" in layer.weights and any("approximate" in c for c in layer.caveats)


def test_a_spatially_random_pattern_has_no_significant_unit_after_fdr(nghe_an, seeded, tmp_path):
    """July-December 2025: incidents dropped at random over the province's communes."""
    rng = random.Random(2025)
    rows = [incident("random", i, rng.choice(nghe_an["communes"]), dt.date(2025, 7, 1) + dt.timedelta(days=rng.randrange(180)))
            for i in range(300)]
    write_incidents(tmp_path / "random.csv", rows)
    import_file(tmp_path / "random.csv")
    flt = IncidentFilter(dt.date(2025, 7, 1), dt.date(2025, 12, 31))
    with seeded.connect() as conn:
        layer = hotspots(conn, HotspotRequest("2025", "commune", PROVINCE, flt, permutations=999, seed=3), Reader())
    assert sum(r.incidents for r in layer.rows) == 300
    assert {r.klass for r in layer.rows} == {"not_significant"}
    assert min(r.p for r in layer.rows) < 0.05  # uncorrected, some units look significant by chance: why FDR matters


def test_the_guards_refuse_too_little_data_saying_what_to_widen(client, planted, nghe_an, accounts):
    police = accounts.headers("police_analyst", (PROVINCE,))
    few_units = client.get("/api/v1/layers/hotspots", params={"structure": "2025", "level": "province", "from": "2026-01-01",
                                                              "to": "2026-01-31"}, headers=police)
    assert few_units.status_code == 422 and "at least 30 are needed" in few_units.json()["detail"][0]["msg"]
    assert "parent" in few_units.json()["detail"][0]["msg"]
    few_incidents = client.get("/api/v1/layers/hotspots", params={"level": "commune", "parent": PROVINCE, "from": "2026-01-01",
                                                                  "to": "2026-01-02"}, headers=police)
    assert few_incidents.status_code == 422 and "widen the dates" in few_incidents.json()["detail"][0]["msg"]


def test_police_see_points_and_hot_spots_of_their_area_leaders_only_classes(client, planted, nghe_an, accounts):
    params = {"level": "commune", "parent": PROVINCE, "from": "2026-01-01", "to": "2026-01-31", "seed": 1}
    police = client.get("/api/v1/layers/hotspots", params=params, headers=accounts.headers("police_analyst", (PROVINCE,)))
    assert police.status_code == 200, police.text
    hot = [f for f in police.json()["features"] if f["properties"]["class"].startswith("hot")]
    assert hot and all(f["properties"]["z"] > 0 and f["properties"]["incidents"] >= 0 for f in hot)
    leader = client.get("/api/v1/layers/hotspots", params=params, headers=accounts.headers("leader", (PROVINCE,)))
    assert leader.status_code == 200
    props = [f["properties"] for f in leader.json()["features"]]
    assert all(p["z"] is None and p["p"] is None for p in props)  # z and p would give the counts back
    # A hot-spot map is live: its counts would escape the releases, so leaders get none (incident-counts has them).
    assert all(p["incidents"] is None and p["suppressed"] == ["incidents"] for p in props)
    assert {p["class"] for p in props} == {f["properties"]["class"] for f in police.json()["features"]}
    points = client.get("/api/v1/layers/incidents", params={"from": "2026-01-01", "to": "2026-01-31"},
                        headers=accounts.headers("police_analyst", (PROVINCE,)))
    assert points.status_code == 200 and points.json()["numberReturned"] == len(planted)
    assert {f["geometry"]["type"] for f in points.json()["features"]} == {"Point"}
    elsewhere = client.get("/api/v1/layers/incidents", params={"from": "2026-01-01", "to": "2026-01-31"},
                           headers=accounts.headers("police_analyst", ("42",)))
    assert elsewhere.json()["numberReturned"] == 0
    assert client.get("/api/v1/layers/incidents", headers=accounts.headers("leader", (PROVINCE,))).status_code == 403


def test_incidents_import_updates_by_id_and_refuses_bad_rows(seeded, nghe_an, tmp_path):
    c = nghe_an["communes"][0]
    path = tmp_path / "vu_viec.csv"
    write_incidents(path, [incident("upd", 1, c, dt.date(2024, 5, 1), persons_affected=3)])
    assert "1 new, 0 updated" in import_file(path)
    write_incidents(path, [incident("upd", 1, c, dt.date(2024, 5, 1), persons_affected=4, status="verified")])
    assert "0 new, 1 updated" in import_file(path)
    with seeded.connect() as conn:
        rows = conn.execute(text("SELECT structure, persons_affected, status, province_code FROM incident WHERE incident_id = 'upd-1'")).all()
    assert [tuple(r) for r in rows] == [("pre2025", 4, "verified", PROVINCE)]  # 2024: placed in the old structure
    bad = tmp_path / "bad.csv"
    write_incidents(bad, [incident("bad", 1, c, dt.date(2024, 5, 1), type="smuggling"),
                          incident("bad", 2, {"lon": 18.7, "lat": 105.6}, dt.date(2024, 5, 1)),
                          incident("bad", 3, {"lon": "", "lat": ""}, dt.date(2024, 5, 1), commune_code="99999")])
    result = CliRunner().invoke(cli_app, ["import", "incidents", str(bad)])
    assert result.exit_code == 1 and "nothing was imported" in result.output
    assert "row 2, field type" in result.output
    assert "row 3" in result.output and "swapped" in result.output
    assert "row 4, field commune_code: no commune 99999 in the pre2025 structure" in result.output
    with seeded.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident WHERE incident_id LIKE 'bad-%'")).scalar() == 0


def test_the_class_rule():
    assert [klass_of(z, p) for z, p in [(2, 0.001), (2, 0.04), (2, 0.09), (2, 0.2), (-2, 0.001), (-2, 0.06)]] == [
        "hot_99", "hot_95", "hot_90", "not_significant", "cold_99", "cold_90"]


# -- emerging hot spots: one crafted series per label ----------------------------------------
H, C, N = "hot", "cold", "none"


def series(*steps):
    return [s == H for s in steps], [s == C for s in steps]


@pytest.mark.parametrize(("steps", "trend", "label"), [
    ((N, N, N, N, N, N, H), (0.5, 0.6), "new hot spot"),
    ((N, N, N, N, N, H, H), (1.0, 0.3), "consecutive hot spot"),
    ((H,) * 10, (2.5, 0.01), "intensifying hot spot"),
    ((H,) * 10, (0.4, 0.7), "persistent hot spot"),
    ((H,) * 10, (-2.5, 0.01), "diminishing hot spot"),
    ((N, H, N, H, N, N, H), (0.3, 0.8), "sporadic hot spot"),
    ((C, N, H, N, N, N, H), (0.3, 0.8), "oscillating hot spot"),
    ((H,) * 9 + (N,), (0.0, 1.0), "historical hot spot"),
    ((N, N, N, N, N, N, C), (-0.5, 0.6), "new cold spot"),
    ((N, N, N, N, N, N, N), (0.0, 1.0), "no pattern"),
    ((H, N, N, N, N, N, N), (0.0, 1.0), "no pattern"),
])
def test_every_emerging_label_from_a_crafted_series(steps, trend, label):
    from maps.emerging import emerging_label

    hot, cold = series(*steps)
    assert emerging_label(hot, cold, *trend) == label


def test_mann_kendall_sees_a_trend_and_no_trend():
    from maps.emerging import mann_kendall

    up_z, up_p = mann_kendall([0.1, 0.5, 0.4, 1.2, 1.9, 2.2, 2.8, 3.5, 3.1, 4.0])
    _, flat_p = mann_kendall([1, -1, 1, -1, 1, -1, 1, -1, 1, -1])
    assert up_z > 0 and up_p < 0.01 and flat_p > 0.5


def test_the_emerging_layer_labels_a_cluster_that_appears(client, nghe_an, accounts, tmp_path):
    """Quarterly 2021-2022: random scatter for six quarters, then the cluster in the last two."""
    rng = random.Random(11)
    rows, n = [], 0
    for q in range(8):
        day = dt.date(2021 + q // 4, 3 * (q % 4) + 1, 15)
        for c in nghe_an["communes"]:
            k = 10 if (q >= 6 and c["code"] in nghe_an["cluster"]) else (1 if rng.random() < 0.15 else 0)
            for _ in range(k):
                rows.append(incident("emerging", n, c, day))
                n += 1
    write_incidents(tmp_path / "emerging.csv", rows)
    import_file(tmp_path / "emerging.csv")
    r = client.get("/api/v1/layers/emerging-hotspots", params={"level": "commune", "parent": PROVINCE, "from": "2021-01-01",
                                                               "to": "2022-12-31", "step": "quarter", "permutations": 499, "seed": 5},
                   headers=accounts.headers("police_analyst", (PROVINCE,)))
    assert r.status_code == 200, r.text
    labels = {f["properties"]["code"]: f["properties"]["label"] for f in r.json()["features"]}
    assert labels[nghe_an["centre"]] in ("consecutive hot spot", "new hot spot")
    assert len(r.json()["steps"]) == 8 and "Mann-Kendall" in r.json()["method"]
    assert any("little power below 10" in c for c in r.json()["caveats"])


def test_placed_incidents_agree_with_postgis_and_follow_new_incidents(planted, nghe_an, seeded, tmp_path):
    """The cached columns give what placing each incident in PostGIS gives, in the other structure too, and a new incident counts at once."""
    from maps.placed_incidents import placed_incidents
    from maps.placement import ancestors_sql, commune_in

    flt = IncidentFilter(dt.date(2026, 1, 1), dt.date(2026, 1, 31))
    by_sql = f"""
        SELECT up.unit, count(*) FROM (SELECT {commune_in("'pre2025'", "i.structure", "i.commune_code", "i.geom")} AS commune
                                       FROM incident i WHERE i.occurred_on BETWEEN :start AND :end) placed
        JOIN ({ancestors_sql("'pre2025'")}) up ON up.commune = placed.commune GROUP BY up.unit"""
    with seeded.connect() as conn:
        districts = conn.execute(text("SELECT code FROM admin_unit WHERE structure = 'pre2025' AND parent_code = :p ORDER BY code"),
                                 {"p": PROVINCE}).scalars().all()
        expected = dict(conn.execute(text(by_sql), {"start": flt.start, "end": flt.end}).all())
        counts = placed_incidents(conn, "pre2025").counts(flt, districts)
    assert counts.sum() == len(planted)
    assert counts.tolist() == [expected.get(d, 0) for d in districts]

    write_incidents(tmp_path / "one.csv", [incident("one-more", 0, nghe_an["communes"][0], dt.date(2026, 1, 15))])
    import_file(tmp_path / "one.csv")
    with seeded.connect() as conn:
        assert placed_incidents(conn, "pre2025").counts(flt, districts).sum() == len(planted) + 1
