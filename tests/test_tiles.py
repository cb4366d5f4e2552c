"""Vector tiles: they decode, hold the right features, keep hidden counts hidden, and answer 304 to a known ETag."""

from __future__ import annotations

import math

import mapbox_vector_tile
import pytest


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def test_a_unit_tile_decodes_with_the_province_it_covers(anonymous_client):
    x, y = tile_of(105.9, 18.35, 6)  # Hà Tĩnh
    r = anonymous_client.get(f"/tiles/units/6/{x}/{y}.mvt", params={"structure": "2025"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    layers = mapbox_vector_tile.decode(r.content)
    names = {f["properties"]["name"] for f in layers["units"]["features"]}
    assert "Hà Tĩnh" in names and "Nghệ An" in names
    assert {f["properties"]["level"] for f in layers["units"]["features"]} == {"province"}
    assert "public" in r.headers["cache-control"]
    again = anonymous_client.get(f"/tiles/units/6/{x}/{y}.mvt", params={"structure": "2025"},
                                 headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_a_tile_is_the_same_gzipped_or_not_each_encoding_with_its_own_etag(anonymous_client):
    x, y = tile_of(105.9, 18.35, 8)
    url = f"/tiles/units/8/{x}/{y}.mvt"
    zipped = anonymous_client.get(url, headers={"Accept-Encoding": "gzip"})
    plain = anonymous_client.get(url, headers={"Accept-Encoding": "identity"})
    assert zipped.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert zipped.content == plain.content and mapbox_vector_tile.decode(plain.content)["units"]["features"]
    assert zipped.headers["etag"] != plain.headers["etag"] and "Accept-Encoding" in plain.headers["vary"]
    for headers, etag in ((zipped.request.headers, zipped.headers["etag"]), (plain.request.headers, plain.headers["etag"])):
        again = anonymous_client.get(url, headers={"Accept-Encoding": headers["accept-encoding"], "If-None-Match": etag})
        assert again.status_code == 304


def test_zoomed_in_tiles_show_communes_simplified_less(anonymous_client):
    x, y = tile_of(105.9, 18.35, 11)
    r = anonymous_client.get(f"/tiles/units/11/{x}/{y}.mvt", params={"structure": "2025"})
    features = mapbox_vector_tile.decode(r.content)["units"]["features"]
    assert features and {f["properties"]["level"] for f in features} == {"commune"}
    assert {f["properties"]["geom_quality"] for f in features} <= {"approximate", "official"}


@pytest.mark.parametrize("path", ["/tiles/units/19/0/0.mvt", "/tiles/units/3/8/0.mvt"])
def test_tiles_outside_the_grid_are_validation_errors(anonymous_client, path):
    assert anonymous_client.get(path).status_code == 422


def test_a_coverage_tile_for_a_leader_carries_the_leaders_numbers(client, accounts):
    x, y = tile_of(105.9, 18.35, 6)
    leader = accounts.headers("leader", ("42",))
    r = client.get(f"/tiles/coverage/6/{x}/{y}.mvt", params={"year": 2025}, headers=leader)
    assert r.status_code == 200 and "private" in r.headers["cache-control"]
    features = mapbox_vector_tile.decode(r.content)["coverage"]["features"]
    geojson = client.get("/api/v1/layers/coverage", params={"year": 2025, "geometry": "false"}, headers=leader).json()
    expected = {f["properties"]["code"]: f["properties"] for f in geojson["features"]}
    assert features and {f["properties"]["code"] for f in features} <= set(expected)
    for f in features:
        props, same = f["properties"], expected[f["properties"]["code"]]
        assert props["class"] == same["class"]
        assert props.get("actual") == same["actual"]  # absent from the tile where hidden in the GeoJSON


def test_tiles_keep_their_roles(client, accounts):
    x, y = tile_of(105.9, 18.35, 6)
    assert client.get(f"/tiles/coverage/6/{x}/{y}.mvt", params={"year": 2025},
                      headers=accounts.headers("police_analyst", ("42",))).status_code == 403
    assert client.get(f"/tiles/hotspots/6/{x}/{y}.mvt", headers={"Authorization": ""}).status_code == 401
