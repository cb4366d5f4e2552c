"""OGC API Features (/ogc) as GIS clients use it: GDAL's OAPIF driver and OWSLib against a real uvicorn server
signed in with HTTP Basic, CQL2 filters, CRS by reference (VN-2000), paging by next links, roles and the audit.

The world: a private copy of the seeded database with incidents and survey records in Hà Tĩnh (province 42).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pyogrio
import pytest
from sqlalchemy import text

from geodata import db
from geodata.crs import parse_crs
from survey.ingest import Incoming, ingest
from survey.store import Sender
from tests.helpers import TEST_SECRET
from tests.payloads import aspirant

PASSWORD = "correct horse battery staple"
INCIDENT_TYPES = ("illegal_brokerage", "recruitment_fraud", "trafficking", "irregular_departure")


@contextmanager
def uvicorn_server(database_url: str) -> Iterator[str]:
    """The app served by uvicorn in a process of its own on a free port (GDAL's reads hold this process's
    interpreter, so the server cannot be a thread of it)."""
    from geodata.embedded import free_port

    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "LABOUR_ATLAS_SECRET_KEY": TEST_SECRET}
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port),
                                "--log-level", "warning"], env=env, cwd=Path(__file__).parent.parent)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/health", timeout=2)
                break
            except httpx.HTTPError:
                assert process.poll() is None, "the server stopped"
                assert time.monotonic() < deadline, "the server did not start in 60 s"
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def world(server, seeded_url):
    """A private database with 45 incidents and 23 survey records in province 42, users of each role, a server."""
    from api.security.accounts import create_user

    if db.current_url() == db.normalise_url(seeded_url):
        db.close_database()
    url = server.create_database(template=seeded_url)
    engine = db.use_database(url)
    users = {}
    with engine.begin() as conn:
        for role in ("officer", "police_analyst", "planner", "surveyor"):
            name = f"ogc-{role[:6]}-{secrets.token_hex(3)}"
            create_user(conn, name, PASSWORD, role, ["all"], "2025")
            users[role] = SimpleNamespace(name=name, password=PASSWORD)
        communes = conn.execute(text("""SELECT code, ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat
            FROM admin_unit WHERE structure = '2025' AND parent_code = '42' AND geom IS NOT NULL ORDER BY code LIMIT 5""")).mappings().all()
        conn.execute(text("""
            INSERT INTO incident (province_code, incident_id, type, occurred_on, geom, persons_affected, structure, commune_code,
                                  status, source)
            SELECT '42', 'ogc-' || lpad(n::text, 3, '0'), (ARRAY['illegal_brokerage','recruitment_fraud','trafficking',
                   'irregular_departure'])[1 + n % 4], CURRENT_DATE - n * 5, ST_PointOnSurface(u.geom), n % 7, '2025', u.code,
                   'reported', 'test (synthetic)'
            FROM generate_series(1, 45) n
            JOIN LATERAL (SELECT code, geom FROM admin_unit WHERE structure = '2025' AND parent_code = '42' AND geom IS NOT NULL
                          ORDER BY code OFFSET n % 9 LIMIT 1) u ON TRUE"""))
    names = []
    for i in range(23):
        c = dict(communes[i % len(communes)])
        payload = aspirant(c, full_name=f"Nguyễn Thị Bản Đồ {i} {secrets.token_hex(2)}")
        with engine.begin() as conn:
            (o,) = ingest(conn, [Incoming(json.dumps(payload, ensure_ascii=False), payload)], source="test",
                          sender=Sender(users["surveyor"].name))
        assert o.status == "created", o
        names.append(payload["full_name"])
    with uvicorn_server(url) as base:
        yield SimpleNamespace(base=base, ogc=base + "/ogc", engine=engine, users=users, names=names, communes=communes)
    db.close_database()
    server.drop_database(url)


def basic(user) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user.name}:{user.password}".encode()).decode()}


def get(world, path: str, user=None, **params) -> httpx.Response:
    headers = basic(user) if user else {}
    headers["X-Purpose"] = "OGC API test"
    return httpx.get(world.ogc + path, params=params, headers=headers, timeout=120)


def scalar(world, sql: str, **params):
    with world.engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def walk(world, path: str, user=None, **params) -> tuple[list[dict], list[dict]]:
    """Every feature of a collection by following next links; and each page's answer (without its features)."""
    features, pages = [], []
    url, query = world.ogc + path, params
    headers = {**(basic(user) if user else {}), "X-Purpose": "OGC API test"}
    while url:
        r = httpx.get(url, params=query, headers=headers, timeout=120)
        assert r.status_code == 200, r.text
        answer = r.json()
        features += answer["features"]
        pages.append({k: v for k, v in answer.items() if k != "features"})
        url = next((x["href"] for x in answer["links"] if x["rel"] == "next"), None)
        query = None
    return features, pages


@pytest.fixture
def gdal_basic(world, monkeypatch):
    """GDAL's HTTP settings for Basic sign-in as the officer (as QGIS's authentication manager sends it)."""
    officer = world.users["officer"]
    options = {"GDAL_HTTP_AUTH": "BASIC", "GDAL_HTTP_USERPWD": f"{officer.name}:{officer.password}", "GDAL_HTTP_TIMEOUT": "120"}
    pyogrio.set_gdal_config_options(options)
    yield officer
    pyogrio.set_gdal_config_options(dict.fromkeys(options))


# -- GDAL and OWSLib ---------------------------------------------------------------------------------------------
def test_gdal_reads_collections_and_pages_through_all_items(world, gdal_basic):
    """GDAL's OAPIF driver lists the officer's collections and reads every feature, page after page."""
    layers = {name for name, _ in pyogrio.list_layers(f"OAPIF:{world.ogc}")}
    assert {"units", "incidents", "survey-records", "coverage"} <= layers
    incidents = pyogrio.read_dataframe(f"OAPIF:{world.ogc}", layer="incidents", PAGE_SIZE=10)
    assert len(incidents) == scalar(world, "SELECT count(*) FROM incident WHERE occurred_on BETWEEN CAST(CURRENT_DATE - interval '1 year' AS date) + 1 AND CURRENT_DATE")
    assert set(incidents["type"]) <= set(INCIDENT_TYPES) and incidents.geometry.notna().all()
    records = pyogrio.read_dataframe(f"OAPIF:{world.ogc}", layer="survey-records", PAGE_SIZE=7)
    # The world is a copy of the shared seeded database: other modules' records may be in it besides its 23.
    stored = scalar(world, "SELECT count(*) FROM survey_record")
    assert len(records) == stored >= 23
    assert set(world.names) <= set(records["full_name"])  # Vietnamese intact
    provinces = pyogrio.read_dataframe(f"OAPIF:{world.ogc}", layer="units", PAGE_SIZE=20, where="level = 'province'")
    assert len(provinces) == scalar(world, "SELECT count(*) FROM admin_unit WHERE structure = '2025' AND level = 'province'")
    assert "Hà Tĩnh" in set(provinces["name"])
    # Reading personal records was audited, record by record (GDAL states no purpose: it is marked so).
    audited = scalar(world, """SELECT count(DISTINCT rid) FROM audit_log, unnest(record_ids) rid
                               WHERE actor = :a AND route LIKE '/ogc/%' AND purpose LIKE 'not stated (%GDAL%'""", a=gdal_basic.name)
    assert audited == stored


def test_gdal_sends_attribute_filters_to_the_server_as_cql2(world, gdal_basic):
    """An OGR attribute filter becomes a CQL2 filter on the server: the rows are those the database selects."""
    df = pyogrio.read_dataframe(f"OAPIF:{world.ogc}", layer="incidents", where="type = 'trafficking' AND persons_affected >= 3")
    expected = scalar(world, """SELECT count(*) FROM incident WHERE type = 'trafficking' AND persons_affected >= 3
                                AND occurred_on BETWEEN CAST(CURRENT_DATE - interval '1 year' AS date) + 1 AND CURRENT_DATE""")
    assert len(df) == expected > 0


def test_owslib_lists_collections_and_reads_items(world):
    from owslib.ogcapi.features import Features
    from owslib.util import Authentication

    officer = world.users["officer"]
    client = Features(world.ogc, auth=Authentication(officer.name, officer.password), headers={"X-Purpose": "OWSLib test"})
    ids = {c["id"] for c in client.collections()["collections"]}
    assert {"units", "incidents", "survey-records"} <= ids
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text" in client.conformance()["conformsTo"]
    answer = client.collection_items("incidents", limit=10_000)  # the most a page holds: every incident of the year
    assert answer["numberMatched"] == len(answer["features"]) == scalar(
        world, "SELECT count(*) FROM incident WHERE occurred_on BETWEEN CAST(CURRENT_DATE - interval '1 year' AS date) + 1 AND CURRENT_DATE")
    queryables = client.collection_queryables("incidents")["properties"]
    assert queryables["occurred_on"]["format"] == "date" and queryables["persons_affected"]["type"] == "integer"
    police = world.users["police_analyst"]
    as_police = Features(world.ogc, auth=Authentication(police.name, police.password))
    assert "survey-records" not in {c["id"] for c in as_police.collections()["collections"]}


# -- roles -------------------------------------------------------------------------------------------------------
def test_collections_follow_the_roles(world):
    """A police analyst is not shown survey records and cannot open them; without sign-in only the units are there."""
    police = world.users["police_analyst"]
    listed = {c["id"] for c in get(world, "/collections", police).json()["collections"]}
    assert "survey-records" not in listed and {"incidents", "hotspots", "units"} <= listed
    for path in ("/collections/survey-records", "/collections/survey-records/items", "/collections/survey-records/queryables"):
        r = get(world, path, police)
        assert r.status_code == 404, path
        assert world.names[0] not in r.text
    assert get(world, "/collections/incidents/items", world.users["planner"]).status_code == 404
    anonymous = {c["id"] for c in get(world, "/collections").json()["collections"]}
    assert anonymous == {"units"}
    r = get(world, "/collections/survey-records/items")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    wrong = httpx.get(world.ogc + "/collections", auth=(police.name, "not the password"), timeout=30)
    assert wrong.status_code == 401


def test_every_listed_collection_opens_with_no_parameters(world):
    """What QGIS does when a collection is added: items with no parameter of the layer (QGIS's provider cannot send
    year=, period=). Every collection a role is shown opens, with defaults it states (this year, the last month)."""
    for role in ("officer", "police_analyst", "planner"):
        user = world.users[role]
        listed = [c["id"] for c in get(world, "/collections", user).json()["collections"]]
        assert listed
        for collection in listed:
            r = get(world, f"/collections/{collection}/items", user, limit=1)
            assert r.status_code == 200, (role, collection, r.text[:300])
            assert r.json()["type"] == "FeatureCollection"


def test_every_personal_read_is_audited_with_its_purpose(world):
    """Each record read through /ogc is in the audit log: with the purpose stated, or marked as not stated."""
    officer = world.users["officer"]
    before = scalar(world, "SELECT coalesce(max(id), 0) FROM audit_log")  # other tests of the module read records too
    r = httpx.get(world.ogc + "/collections/survey-records/items", params={"limit": 3}, timeout=30,
                  headers={**basic(officer), "User-Agent": "QGIS/33400"})
    assert r.status_code == 200
    unstated = [f["id"] for f in r.json()["features"]]
    assert scalar(world, """SELECT count(DISTINCT rid) FROM audit_log, unnest(record_ids) rid WHERE rid = ANY(:ids)
                            AND purpose = 'not stated (OGC API Features client: QGIS/33400)'""", ids=unstated) == 3
    one = get(world, "/collections/survey-records/items", officer, limit=1, purpose="kiểm tra hồ sơ").json()["features"][0]
    r = get(world, f"/collections/survey-records/items/{one['id']}", officer)
    assert r.status_code == 200 and r.json()["properties"]["full_name"] == one["properties"]["full_name"]
    assert scalar(world, """SELECT array_agg(purpose ORDER BY id) FROM audit_log WHERE :id = ANY(record_ids) AND id > :before
                            AND route LIKE '/ogc/%' AND purpose IN ('kiểm tra hồ sơ', 'OGC API test')""",
                  id=one["id"], before=before) == \
        ["kiểm tra hồ sơ", "OGC API test"]


# -- paging ------------------------------------------------------------------------------------------------------
def test_next_links_walk_every_item_once(world):
    officer = world.users["officer"]
    features, pages = walk(world, "/collections/incidents/items", officer, limit=7)
    total = scalar(world, "SELECT count(*) FROM incident WHERE occurred_on BETWEEN CAST(CURRENT_DATE - interval '1 year' AS date) + 1 AND CURRENT_DATE")
    ids = [f["id"] for f in features]
    assert len(ids) == len(set(ids)) == total
    assert all(p["numberMatched"] == total for p in pages)
    assert [p["numberReturned"] for p in pages] == [7] * (total // 7) + ([total % 7] if total % 7 else [])
    assert any(x["rel"] == "prev" for x in pages[1]["links"])


def test_limit_is_capped_and_bad_paging_is_400(world):
    officer = world.users["officer"]
    r = get(world, "/collections/units/items", officer, limit=50000, level="province")
    assert r.status_code == 200 and r.json()["numberReturned"] == r.json()["numberMatched"]
    for params in ({"limit": "0"}, {"limit": "ten"}, {"offset": "-1"}):
        r = get(world, "/collections/units/items", officer, **params)
        assert r.status_code == 400 and r.json()["detail"][0]["loc"] == ["query", next(iter(params))]


def test_a_large_page_is_streamed(world):
    """10,000 features leave as a chunked body (no Content-Length): produced chunk by chunk, not held whole."""
    with httpx.stream("GET", world.ogc + "/collections/units/items", params={"limit": 10000, "structure": "2025"},
                      timeout=300) as r:
        assert r.status_code == 200
        assert "content-length" not in r.headers and r.headers.get("transfer-encoding") == "chunked"
        body = b"".join(r.iter_bytes())
    answer = json.loads(body)
    assert answer["numberReturned"] == len(answer["features"]) == min(10000, answer["numberMatched"])


# -- filters -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("cql", "sql"), [
    ("type = 'trafficking'", "type = 'trafficking'"),
    ("type <> 'trafficking' AND persons_affected > 2", "type <> 'trafficking' AND persons_affected > 2"),
    ("persons_affected IN (0, 6) OR NOT persons_affected <= 4", "persons_affected IN (0, 6) OR NOT persons_affected <= 4"),
    ("persons_affected BETWEEN 2 AND 3", "persons_affected BETWEEN 2 AND 3"),
    ("incident_id LIKE 'ogc-01%'", "incident_id LIKE 'ogc-01%'"),
    ("occurred_on >= DATE('2000-01-01') AND commune_name IS NOT NULL", "TRUE"),
    ('"type" = \'recruitment_fraud\' AND occurred_on < TIMESTAMP(\'2999-01-01T00:00:00Z\')', "type = 'recruitment_fraud'"),
])
def test_cql2_filters_select_the_rows_the_database_does(world, cql, sql):
    features, _ = walk(world, "/collections/incidents/items", world.users["police_analyst"], limit=1000, filter=cql,
                       **{"filter-lang": "cql2-text"})
    with world.engine.connect() as conn:
        expected = set(conn.execute(text(f"SELECT incident_id FROM incident WHERE occurred_on BETWEEN CAST(CURRENT_DATE - interval '1 year' AS date) + 1 AND CURRENT_DATE AND ({sql})"))
                       .scalars())
    assert {f["id"] for f in features} == expected and expected


def test_spatial_filters_and_bbox(world):
    police = world.users["police_analyst"]
    with world.engine.connect() as conn:
        x0, y0, x1, y1 = conn.execute(text("""SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e
            FROM admin_unit WHERE structure = '2025' AND code = :c) x"""), {"c": world.communes[0]["code"]}).one()
        inside = set(conn.execute(text("""SELECT incident_id FROM incident WHERE occurred_on BETWEEN CAST(CURRENT_DATE - interval '1 year' AS date) + 1 AND CURRENT_DATE
            AND ST_Intersects(geom, ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326))"""), {"x0": x0, "y0": y0, "x1": x1, "y1": y1}).scalars())
    assert inside
    by_cql = {f["id"] for f in get(world, "/collections/incidents/items", police, limit=1000,
                                   filter=f"S_INTERSECTS(geometry, BBOX({x0}, {y0}, {x1}, {y1}))").json()["features"]}
    polygon = f"POLYGON(({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))"
    by_wkt = {f["id"] for f in get(world, "/collections/incidents/items", police, limit=1000,
                                   filter=f"S_INTERSECTS(geometry, {polygon})").json()["features"]}
    by_bbox = {f["id"] for f in get(world, "/collections/incidents/items", police, limit=1000,
                                    bbox=f"{x0},{y0},{x1},{y1}").json()["features"]}
    lat_first = {f["id"] for f in get(world, "/collections/incidents/items", police, limit=1000, bbox=f"{y0},{x0},{y1},{x1}",
                                      **{"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"}).json()["features"]}
    assert by_cql == by_wkt == by_bbox == lat_first == inside


def test_datetime_instants_and_intervals(world):
    police = world.users["police_analyst"]
    day = scalar(world, "SELECT CURRENT_DATE - 50")
    start, end = day - dt.timedelta(days=30), day

    def ids(value):
        return {f["id"] for f in get(world, "/collections/incidents/items", police, limit=1000, datetime=value).json()["features"]}

    def expected(sql, **p):
        with world.engine.connect() as conn:
            return set(conn.execute(text(f"SELECT incident_id FROM incident WHERE occurred_on BETWEEN CAST(CURRENT_DATE - interval '1 year' AS date) + 1 AND CURRENT_DATE AND {sql}"), p)
                       .scalars())

    assert ids(day.isoformat()) == expected("occurred_on = :d", d=day) != set()
    assert ids(f"{start}/{end}") == expected("occurred_on BETWEEN :a AND :b", a=start, b=end) != set()
    assert ids(f"../{start}") == expected("occurred_on <= :a", a=start)
    assert ids(f"{end}/..") == expected("occurred_on >= :b", b=end)
    r = get(world, "/collections/incidents/items", police, datetime="last week")
    assert r.status_code == 400 and r.json()["detail"][0]["loc"] == ["query", "datetime"]


def test_aggregate_layers_are_filtered_before_paging(world):
    """Incident counts per province (computed in memory) filtered by CQL2: the count and the pages are of the kept rows."""
    police = world.users["police_analyst"]
    everything = get(world, "/collections/incident-counts/items", police, limit=1000).json()
    kept = [f for f in everything["features"] if (f["properties"]["incidents"] or 0) > 0]
    assert 0 < len(kept) < len(everything["features"])
    page = get(world, "/collections/incident-counts/items", police, limit=1, filter="incidents > 0").json()
    assert page["numberMatched"] == len(kept) and page["features"][0]["id"] == kept[0]["id"]
    assert any(x["rel"] == "next" for x in page["links"]) == (len(kept) > 1)


@pytest.mark.parametrize(("cql", "where"), [
    ("population > 5", "character 1: unknown property 'population'"),
    ("type = 'trafficking' AND persons_affected = 'many'", "character 45: 'many' is not a value of type integer"),
    ("type = 'trafficking' AND (", "character 27"),
    ("type == 'x'", "character 7"),
    ("S_INTERSECTS(geometry, POLYGON((1 2, 3)))", "character 24: not a valid WKT geometry"),
    ("type LIKE 5", "character 11: 5 is not a value of type text"),
])
def test_a_bad_filter_is_400_naming_where(world, cql, where):
    r = get(world, "/collections/incidents/items", world.users["police_analyst"], filter=cql)
    assert r.status_code == 400, r.text
    (detail,) = r.json()["detail"]
    assert detail["loc"] == ["query", "filter"] and where in detail["msg"], detail["msg"]


def test_other_bad_parameters_are_400(world):
    police = world.users["police_analyst"]
    for params, loc in (({"bbox": "1,2,3"}, "bbox"), ({"crs": "EPSG:2154"}, "crs"), ({"filter-lang": "cql2-json", "filter": "x = 1"},
                        "filter-lang"), ({"types": "piracy"}, "types"), ({"bbox": "1,2,3,4", "bbox-crs": "EPSG:9999"}, "bbox-crs")):
        r = get(world, "/collections/incidents/items", police, **params)
        assert r.status_code == 400 and r.json()["detail"][0]["loc"][:2] == ["query", loc], (params, r.text)
    assert get(world, "/collections/units/items", police, datetime="2025-01-01").status_code == 400


# -- coordinate systems ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("code", [4756, 3405])
def test_crs_by_reference_uses_the_pinned_vn2000_pipeline(world, code):
    police = world.users["police_analyst"]
    uri = f"http://www.opengis.net/def/crs/EPSG/0/{code}"
    wgs84 = get(world, "/collections/incidents/items", police, limit=1000).json()["features"]
    r = get(world, "/collections/incidents/items", police, limit=1000, crs=uri)
    assert r.status_code == 200 and r.headers["content-crs"] == f"<{uri}>"
    moved = {f["id"]: f["geometry"]["coordinates"] for f in r.json()["features"]}
    lon = np.array([f["geometry"]["coordinates"][0] for f in wgs84])
    lat = np.array([f["geometry"]["coordinates"][1] for f in wgs84])
    x, y = parse_crs(f"EPSG:{code}").transformer().transform(lon, lat)
    got = np.array([moved[f["id"]] for f in wgs84])
    if code == 4756:  # EPSG:4756 is latitude first
        assert np.allclose(got[:, 0], y, atol=1e-9) and np.allclose(got[:, 1], x, atol=1e-9)
        assert np.abs(got[:, 0] - lat).max() < 0.01 and np.abs(got[:, 0] - lat).max() > 1e-6
    else:
        assert np.allclose(got, np.column_stack([x, y]), atol=1e-4) and (got[:, 0] > 100_000).all()
    short = get(world, "/collections/incidents/items", police, limit=1000, crs=f"EPSG:{code}")
    assert short.headers["content-crs"] == f"<{uri}>" and short.json()["features"] == r.json()["features"]
    assert get(world, "/collections/incidents/items", police).headers["content-crs"] == \
        "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"


def test_collection_describes_its_crs_and_queryables(world):
    officer = world.users["officer"]
    c = get(world, "/collections/survey-records", officer).json()
    assert c["storageCrs"] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    assert {"http://www.opengis.net/def/crs/EPSG/0/4756", "http://www.opengis.net/def/crs/EPSG/0/3405"} <= set(c["crs"])
    assert len(c["extent"]["spatial"]["bbox"][0]) == 4 and "temporal" in c["extent"]
    q = get(world, "/collections/survey-records/queryables", officer)
    assert q.headers["content-type"].startswith("application/schema+json")
    props = q.json()["properties"]
    assert props["collected_at"]["format"] == "date-time" and props["geometry"]["format"] == "geometry-point"
    conformance = get(world, "/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conformance
    api = get(world, "/api")
    assert api.status_code == 200 and "/ogc/collections/{collection_id}/items" in api.json()["paths"]
    assert "OgcCollections" in api.json()["components"]["schemas"] and "SurveyRecord" not in api.json()["components"]["schemas"]


# -- HTML ----------------------------------------------------------------------------------------------------------
def test_html_views(world):
    r = httpx.get(world.ogc + "/collections/units/items", params={"level": "province", "limit": 100},
                  headers={"Accept": "text/html,application/xhtml+xml"}, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Hà Tĩnh" in r.text and "<table>" in r.text and "/ogc/collections/units/items/2025:42?f=html" in r.text
    one = get(world, "/collections/units/items/2025:42", f="html")
    assert one.status_code == 200 and "Hà Tĩnh" in one.text
    assert get(world, "/collections/units/items/2025:42").json()["properties"]["name"] == "Hà Tĩnh"
    assert get(world, "/collections/units/items/2025:99999").status_code == 404
    landing = get(world, "", f="html")
    assert landing.status_code == 200 and "/ogc/collections" in landing.text
