"""Units API: listing, diacritics-insensitive search, one unit as a Feature; health; first page."""

import csv

import pytest

from geodata.reference_data import REFERENCE_DIR


@pytest.mark.parametrize("q", ["ha tinh", "HA TINH", "Hà Tĩnh", "hà tinh"])
def test_search_ignores_diacritics_and_case(client, q):
    r = client.get("/api/v1/units", params={"q": q, "structure": "pre2025", "level": "province"})
    assert r.status_code == 200
    names = [f["properties"]["name"] for f in r.json()["features"]]
    assert names == ["Hà Tĩnh"]


def test_search_folds_d_with_stroke(client):
    r = client.get("/api/v1/units", params={"q": "dong nai", "structure": "2025", "level": "province"})
    assert [f["properties"]["name"] for f in r.json()["features"]] == ["Đồng Nai"]


def test_filters_by_level_and_parent_default_structure_is_current(client):
    r = client.get("/api/v1/units", params={"level": "commune", "parent": "42", "limit": 1000})
    body = r.json()
    assert r.status_code == 200 and body["numberMatched"] == body["numberReturned"] > 50
    props = [f["properties"] for f in body["features"]]
    assert {p["structure"] for p in props} == {"2025"} and {p["parent_code"] for p in props} == {"42"}
    assert all(f["geometry"] is None for f in body["features"])
    districts = client.get("/api/v1/units", params={"level": "district", "parent": "42", "structure": "pre2025"}).json()
    with open(REFERENCE_DIR / "vn_old_units_20250301.csv", encoding="utf-8") as f:
        expected = sorted(r["code"] for r in csv.DictReader(f) if r["parent_code"] == "42")
    assert [f["properties"]["code"] for f in districts["features"]] == expected
    assert client.get("/api/v1/units", params={"level": "district", "structure": "2025"}).status_code == 422
    assert client.get("/api/v1/units", params={"level": "village"}).status_code == 422


def test_geometry_on_request(client):
    body = client.get("/api/v1/units", params={"level": "province", "structure": "2025", "geometry": "web", "limit": 50}).json()
    assert body["numberReturned"] == 34
    with_geom = [f for f in body["features"] if f["geometry"]]
    assert len(with_geom) == 34 and with_geom[0]["geometry"]["type"] == "MultiPolygon"  # Quảng Ninh approximate


def test_one_unit_as_feature(client):
    r = client.get("/api/v1/units/42", params={"structure": "pre2025"})
    assert r.status_code == 200
    f = r.json()
    assert f["type"] == "Feature" and f["properties"]["name"] == "Hà Tĩnh" and f["properties"]["unit_type"] == "tỉnh"
    assert f["geometry"]["type"] == "MultiPolygon" and f["properties"]["geom_quality"] == "official"
    commune = client.get("/api/v1/units/00070").json()
    assert commune["properties"]["geom_quality"] == "approximate"
    r = client.get("/api/v1/units/99999")
    assert r.status_code == 404 and "99999" in r.json()["detail"]


def test_health(client):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["postgis"].startswith("3.") and body["admin_units"] == 14161


def test_first_page_shows_the_map(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "/static/leaflet/leaflet.js" in r.text and "/api/v1/units" in r.text
    assert client.get("/static/leaflet/leaflet.js").status_code == 200
