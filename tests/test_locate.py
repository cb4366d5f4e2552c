"""Locate: the units covering a point, in the structure valid on a date."""

import datetime as dt
import itertools

import pytest
from sqlalchemy import text

from geodata.locate import NoStructureOnDate, locate

SAMPLE_SQL = """
SELECT code, parent_code, ST_X(p) AS lon, ST_Y(p) AS lat
FROM (SELECT code, parent_code, ST_PointOnSurface(geom) AS p FROM admin_unit
      WHERE structure = :s AND level = 'commune' AND geom IS NOT NULL ORDER BY md5(code) LIMIT 200) c
"""


@pytest.mark.parametrize(("structure", "date"), [("2025", dt.date(2026, 3, 1)), ("pre2025", dt.date(2024, 6, 30))])
def test_points_inside_communes_are_located_to_them_and_their_ancestors(seeded, structure, date):
    with seeded.connect() as conn:
        sample = conn.execute(text(SAMPLE_SQL), {"s": structure}).all()
        assert len(sample) == 200
        for row in sample:
            loc = locate(conn, row.lon, row.lat, date)
            assert loc.structure == structure
            assert loc.commune.code == row.code
            if structure == "pre2025":
                assert loc.district.code == row.parent_code
                assert loc.province.code == conn.execute(
                    text("SELECT parent_code FROM admin_unit WHERE structure = 'pre2025' AND code = :c"), {"c": row.parent_code}
                ).scalar()
            else:
                assert loc.district is None and loc.province.code == row.parent_code


def test_the_date_chooses_the_structure(seeded):
    # Hoàn Kiếm lake, Hà Nội.
    with seeded.connect() as conn:
        before = locate(conn, 105.8525, 21.0287, dt.date(2025, 6, 30))
        after = locate(conn, 105.8525, 21.0287, dt.date(2025, 7, 1))
    assert (before.structure, before.province.name, before.district.name) == ("pre2025", "Hà Nội", "Hoàn Kiếm")
    assert (after.structure, after.province.name, after.district) == ("2025", "Hà Nội", None)
    assert after.commune.geom_quality == "approximate"
    with seeded.connect() as conn, pytest.raises(NoStructureOnDate, match="2001-01-01"):
        locate(conn, 105.8525, 21.0287, dt.date(2001, 1, 1))


def test_a_point_on_a_shared_border_gets_one_deterministic_answer(seeded):
    with seeded.connect() as conn:
        pairs = conn.execute(
            text(
                """
                SELECT a.code AS a, b.code AS b, ST_X(p) AS lon, ST_Y(p) AS lat FROM (
                    SELECT a.code, b.code AS b_code,
                           ST_LineInterpolatePoint(ST_GeometryN(ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 2), 1), 0.5) AS p
                    FROM admin_unit a JOIN admin_unit b
                      ON b.structure = a.structure AND b.parent_code = a.parent_code AND a.code < b.code
                     AND ST_Intersects(a.geom, b.geom)
                    WHERE a.structure = '2025' AND a.parent_code = '42' AND a.level = 'commune'
                ) x JOIN admin_unit a ON a.structure = '2025' AND a.code = x.code
                    JOIN admin_unit b ON b.structure = '2025' AND b.code = x.b_code
                WHERE p IS NOT NULL AND ST_Covers(a.geom, p) AND ST_Covers(b.geom, p)
                LIMIT 20
                """
            )
        ).all()
        assert len(pairs) >= 5
        for pair in pairs:
            answers = {locate(conn, pair.lon, pair.lat, dt.date(2026, 1, 1)).commune.code for _ in range(3)}
            assert answers == {min(pair.a, pair.b)}


def test_api_locate(client):
    r = client.get("/api/v1/locate", params={"lon": 105.8525, "lat": 21.0287, "date": "2024-01-01"})
    assert r.status_code == 200
    body = r.json()
    assert body["structure"] == "pre2025" and body["district"]["name"] == "Hoàn Kiếm" and body["commune"]["code"]
    # The South China Sea, far from any island.
    r = client.get("/api/v1/locate", params={"lon": 112.0, "lat": 12.0})
    assert r.status_code == 404 and "no administrative unit" in r.json()["detail"]
    for bad in ({"lon": 200, "lat": 21}, {"lon": 105, "lat": -95}, {"lon": "nan", "lat": 21}, {"lon": "abc", "lat": 21}, {"lat": 21}):
        r = client.get("/api/v1/locate", params=bad)
        assert r.status_code == 422, bad
        assert r.json()["detail"][0]["loc"][0] == "query"
    r = client.get("/api/v1/locate", params={"lon": 105.85, "lat": 21.03, "date": "1999-01-01"})
    assert r.status_code == 404 and "no boundary structure" in r.json()["detail"]


def test_no_hole_in_the_national_map_at_quang_ninh(client):
    """Hạ Long and Uông Bí: located in Quảng Ninh in both structures, in an approximate commune."""
    for (lon, lat), date in itertools.product([(107.05, 20.96), (106.79, 21.04)], ("2024-06-30", "2026-03-01")):
        r = client.get("/api/v1/locate", params={"lon": lon, "lat": lat, "date": date})
        assert r.status_code == 200, r.text
        loc = r.json()
        assert loc["province"]["code"] == "22" and loc["province"]["geom_quality"] == "approximate"
        assert loc["commune"] is not None and loc["commune"]["geom_quality"] == "approximate"
