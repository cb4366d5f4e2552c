"""Exports: every format in every coordinate system it can carry, read back with GDAL (pyogrio) and compared with
the layer's own rows; the shapefile's names and encoding; who gets which fields; the audit; jobs; bad requests."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import math
import secrets
import sqlite3
import time
import zipfile
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import CRS, Transformer
from sqlalchemy import text

from etl.exports import FORMATS, check_crs, open_export
from etl.exports.fieldnames import DBF_NAME_LENGTH, shapefile_names
from etl.exports.gpkg import write_gpkg
from etl.exports.shapefile import write_shapefile
from etl.exports.stream import Stream
from etl.exports.target import Target
from geodata.crs import parse_crs
from geodata.roles import Role
from maps.sources import FULL_WKB, SOURCES, Chunk, FieldSpec, Rows, Viewer
from survey.ingest import Incoming, ingest
from survey.store import Sender
from tests.payloads import aspirant

CRSES = ["EPSG:4326", "EPSG:4756", "EPSG:3405", "EPSG:3406", "vn2000-tm3:42"]
COMBINATIONS = [(f, c) for f in FORMATS for c in CRSES if not (FORMATS[f].wgs84_only and c != "EPSG:4326")]
HYPERLINK = '=HYPERLINK("http://example.invalid/steal","bấm vào đây")'
# Compared attributes of a survey record (every type the layer has: text, integer, real, boolean, date, datetime).
COMPARED = ("instance_id", "full_name", "kind", "birth_year", "gps_accuracy_m", "accuracy_flag", "collected_at",
            "review_comment", "surveyor", "declared_commune_code")


@pytest.fixture(scope="module")
def records(seeded_url, commune):
    """Five records in commune A with Vietnamese names, one with a formula as its review comment."""
    from geodata.db import use_database

    engine = use_database(seeded_url)
    ids = []
    with engine.begin() as conn:
        for i in range(5):
            payload = aspirant(commune, full_name=f"Nguyễn Thị Xuất Khẩu {i} {secrets.token_hex(2)}",
                               national_id=f"042{secrets.randbelow(10**9):09d}",
                               location={"lat": commune["lat"] + i * 1e-4, "lon": commune["lon"], "accuracy": 8.5})
            (o,) = ingest(conn, [Incoming(json.dumps(payload, ensure_ascii=False), payload)], source="test", sender=Sender("t"))
            assert o.status == "created", o
            ids.append(o.instance_id)
        conn.execute(text("UPDATE survey_record SET review_comment = :c WHERE instance_id = :id"), {"c": HYPERLINK, "id": ids[0]})
    return ids


def layer_rows(engine, layer: str, **filters) -> dict:
    """The layer's own rows (what every export must hold), by id: attributes and WGS 84 geometry."""
    source = SOURCES[layer]
    with engine.connect() as conn:
        rows = source.open(conn, source.parse_filters(filters), Viewer.operator("test", audit=lambda ids: None), FULL_WKB)
        out = {}
        for chunk in rows.chunks(conn):
            for i, fid in enumerate(chunk.ids):
                out[str(fid)] = ({n: v[i] for n, v in chunk.columns.items()}, shapely.from_wkb(chunk.geometry[i]))
    return out


def read_back(content: bytes, fmt: str, tmp_path: Path):
    """The exported file read by GDAL, and the shapefile's full names (short -> full)."""
    path = tmp_path / f"export.{FORMATS[fmt].extension}"
    path.write_bytes(content)
    names = {}
    options = {}
    if fmt == "shp":
        with zipfile.ZipFile(path) as z:
            listing = sorted(z.namelist())
            assert listing == sorted(["survey_records.shp", "survey_records.shx", "survey_records.dbf", "survey_records.prj",
                                      "survey_records.cpg", "fields.csv"]), listing
            assert z.read("survey_records.cpg") == b"UTF-8"
            sidecar = list(csv.DictReader(io.StringIO(z.read("fields.csv").decode("utf-8-sig"))))
            names = {r["shapefile_name"]: r["name"] for r in sidecar}
    if fmt == "csv":
        options = {"GEOM_POSSIBLE_NAMES": "wkt", "KEEP_GEOM_COLUMNS": "NO"}
    frame = pyogrio.read_dataframe(path, **options)
    return frame.rename(columns=names), path


def same_value(got, want, fmt: str, name: str) -> bool:
    if want is None:
        return got is None or (isinstance(got, float) and math.isnan(got)) or got is pd_nat() or got == ""
    if isinstance(want, bool):
        return got in (want, str(want).lower(), int(want)) or str(got).lower() == str(want).lower()
    if isinstance(want, float):
        return abs(float(got) - want) < 1e-9
    if isinstance(want, int):
        return int(got) == want
    if isinstance(want, dt.datetime):
        if isinstance(got, str):
            got = dt.datetime.fromisoformat(got)
        got = got.to_pydatetime() if hasattr(got, "to_pydatetime") else got
        if got.tzinfo is None:
            got = got.replace(tzinfo=dt.UTC)
        return abs((got - want).total_seconds()) < 0.001
    if isinstance(got, str) and fmt == "csv" and got.startswith("'") and not want.startswith("'"):
        got = got[1:]  # a formula neutralised; the CSV test checks that
    return got == want


def pd_nat():
    import pandas as pd

    return pd.NaT


@pytest.mark.parametrize(("fmt", "crs"), COMBINATIONS, ids=[f"{f}-{c}" for f, c in COMBINATIONS])
def test_survey_records_round_trip(client, seeded, records, commune, tmp_path, fmt, crs):
    """Read back by GDAL: the rows of the layer, attributes equal, Vietnamese intact, points within a centimetre."""
    r = client.get("/api/v1/exports/survey-records", params={"format": fmt, "crs": crs, "commune": commune["code"]})
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"].startswith("attachment")
    frame, path = read_back(r.content, fmt, tmp_path)
    want = layer_rows(seeded, "survey-records", commune=commune["code"])
    assert len(frame) == len(want) == int(r.headers["x-feature-count"])
    by_id = {str(row["instance_id"]): row for _, row in frame.iterrows()}
    out = parse_crs(crs)
    move = out.transformer()
    for rid in records:
        got, (props, point) = by_id[rid], want[rid]
        assert got["full_name"].startswith("Nguyễn Thị Xuất Khẩu")
        wrong = [n for n in COMPARED if not same_value(got[n], props[n], fmt, n)]
        assert wrong == [], [(n, got[n], props[n]) for n in wrong]
        x, y = move.transform(point.x, point.y)
        metres = 1 if out.projection else 111_000
        assert math.dist((got.geometry.x, got.geometry.y), (x, y)) * metres < 0.01
    if fmt in ("shp", "gpkg", "geojson"):
        found = pyogrio.read_info(path)["crs"]
        assert CRS(found).to_epsg() == out.epsg


@pytest.mark.parametrize("crs", CRSES)
def test_units_as_shapefile_and_geopackage(client, seeded, tmp_path, crs):
    """Polygons (the 2025 communes of one province): same rings after the way back to WGS 84, names intact."""
    params = {"crs": crs, "structure": "2025", "level": "commune", "parent": "42"}
    want = layer_rows(seeded, "units", structure="2025", level="commune", parent="42")
    back = Transformer.from_pipeline(parse_crs(crs).pipeline()) if crs != "EPSG:4326" else None
    for fmt in ("gpkg", "shp"):
        r = client.get("/api/v1/exports/units", params={**params, "format": fmt})
        assert r.status_code == 200, r.text
        path = tmp_path / f"units.{FORMATS[fmt].extension}"
        path.write_bytes(r.content)
        frame = pyogrio.read_dataframe(path)
        assert len(frame) == len(want) > 10
        for _, row in frame.iterrows():
            props, shape = want[f"2025:{row['code']}"]
            assert row["name"] == props["name"] and row["unit_type"] == props["unit_type"]
            geom = row.geometry
            if back is not None:
                geom = shapely.transform(geom, lambda xy: np.column_stack(back.transform(xy[:, 0], xy[:, 1],
                                                                                         direction="INVERSE")))
            assert shapely.hausdorff_distance(geom, shape) < 1e-6  # degrees: a tenth of a metre


def test_vietnamese_is_utf8_in_the_dbf_and_the_cpg_says_so(client, records, commune, tmp_path):
    r = client.get("/api/v1/exports/survey-records", params={"format": "shp", "commune": commune["code"]})
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        dbf = z.read("survey_records.dbf")
        assert z.read("survey_records.cpg").decode() == "UTF-8"
    assert "Nguyễn Thị Xuất Khẩu".encode() in dbf  # UTF-8 bytes in the DBF itself, NFC
    widths = {dbf[d:d + 11].rstrip(b"\0").decode(): dbf[d + 16] for d in range(32, dbf.index(b"\r"), 32)}
    assert widths["instance_i"] == 36 and widths["kind"] <= len("departure")  # text fields as wide as their data
    frame, _ = read_back(r.content, "shp", tmp_path)
    assert any(n.startswith("Nguyễn Thị Xuất Khẩu") for n in frame["full_name"])


@pytest.mark.parametrize("crs", CRSES)
def test_the_prj_and_the_geopackage_say_the_crs_and_the_pinned_transformation(client, commune, records, tmp_path, crs):
    """pyproj reads the .prj (and the GeoPackage's CRS row) as the CRS asked for; for VN-2000 bound to WGS 84 by
    the pinned seven parameters, so a reader going back to WGS 84 lands where the point was (within a centimetre)."""
    out = parse_crs(crs)
    r = client.get("/api/v1/exports/survey-records", params={"format": "shp", "crs": crs, "commune": commune["code"]})
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        prj = CRS.from_wkt(z.read("survey_records.prj").decode())
    r = client.get("/api/v1/exports/survey-records", params={"format": "gpkg", "crs": crs, "commune": commune["code"]})
    (tmp_path / "a.gpkg").write_bytes(r.content)
    with sqlite3.connect(tmp_path / "a.gpkg") as db:
        ((org, code, definition),) = db.execute("""SELECT s.organization, s.organization_coordsys_id, s.definition
            FROM gpkg_spatial_ref_sys s JOIN gpkg_contents c USING (srs_id)""").fetchall()
    assert (org.upper(), code) == ("EPSG", out.epsg)
    for found in (prj, CRS.from_wkt(definition)):
        if not out.is_vn2000:
            assert found.to_epsg() == 4326
            continue
        assert found.is_bound and found.source_crs.to_epsg() == out.epsg
        lon, lat = commune["lon"], commune["lat"]
        x, y = out.transformer().transform(lon, lat)
        back = Transformer.from_crs(found, "EPSG:4326", always_xy=True).transform(x, y)
        assert math.dist(back, (lon, lat)) * 111_000 < 0.01


# Control points: WGS 84 longitude/latitude and their coordinates in each CRS.
# The reference values are NOT from a published survey control network (none was reachable from here): they are
# EPSG's own operation "VN-2000 to WGS 84 (2)" (EPSG dataset, the parameters of Decision 05/2007/QĐ-BTNMT,
# coordinate frame) followed by EPSG's projection of each CRS, computed independently of geodata.crs with
# pyproj 3.7.2 / PROJ 9.5.1 (TransformerGroup("EPSG:4326", "EPSG:<code>"), the operation of that name) and written
# down here, so a change of PROJ's database or of the pinned pipeline shows. The WGS 84 row is the identity.
CONTROL = {
    "EPSG:4326": ((105.90, 18.35), (105.90, 18.35)),
    "EPSG:4756": ((105.90, 18.35), (105.8981487684967, 18.350996775574213)),
    "EPSG:3405": ((105.90, 18.35), (594893.6356637683, 2029253.3457138785)),
    "EPSG:3406": ((108.22, 16.05), (202344.48178308393, 1776578.398822773)),
    "vn2000-tm3:42": ((105.90, 18.35), (542077.7945409609, 2029674.1475949308)),
    "vn2000-tm3:01": ((105.85, 21.03), (588154.4766270644, 2326509.0539379925)),
}


@pytest.mark.parametrize("crs", list(CONTROL))
def test_a_control_point_per_crs_in_the_written_files(tmp_path, crs):
    """The point goes through the real writers (GeoPackage and shapefile) and comes back at its reference coordinates."""
    (lon, lat), (x, y) = CONTROL[crs]
    out = parse_crs(crs)
    target = Target("control", "Control", (FieldSpec("name", "text", "name"),), "Point", out)
    chunk = Chunk(["p"], {"name": ["Điểm kiểm tra"]}, [shapely.to_wkb(shapely.Point(lon, lat))])
    tolerance = 1e-8 if out.projection is None else 0.001  # degrees (1 mm), metres
    for write, name in ((write_gpkg, "c.gpkg"), (write_shapefile, "c.zip")):
        rows = Stream(Rows({}, 1, lambda conn: iter([chunk])), conn=None)  # a layer computed in memory
        (tmp_path / name).write_bytes(b"".join(write(rows, target)))
        frame = pyogrio.read_dataframe(tmp_path / name)
        assert frame["name"][0] == "Điểm kiểm tra"
        assert math.dist((frame.geometry[0].x, frame.geometry[0].y), (x, y)) < tolerance, (name, frame.geometry[0])


def test_shapefile_names_are_short_unique_and_documented():
    long = ["location_missing_reason", "location_mismatch", "location_m", "Location_M", "mismatch_distance_m",
            "reviewed_at", "reviewed_by", "review_status", "review_comment"] + [f"household_member_{i}" for i in range(15)]
    with pytest.raises(ValueError, match="only by case"):
        shapefile_names(long)
    names = [n for n in long if n != "Location_M"]
    short = shapefile_names(names)
    assert all(len(s) <= DBF_NAME_LENGTH for s in short.values())
    assert len({s.lower() for s in short.values()}) == len(names)
    assert short["location_m"] == "location_m"  # a name that fits keeps it, even after a long one cut to it
    assert short["location_missing_reason"] == "location_2" and short["location_mismatch"] == "location_3"
    for source in SOURCES.values():
        made = shapefile_names([f.name for f in source.fields])
        assert len({s.lower() for s in made.values()}) == len(source.fields), source.name


def test_csv_has_a_bom_and_no_formula(client, records, commune):
    r = client.get("/api/v1/exports/survey-records", params={"format": "csv", "commune": commune["code"]})
    assert r.status_code == 200 and r.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    (row,) = [x for x in rows if x["instance_id"] == records[0]]
    assert row["review_comment"] == "'" + HYPERLINK
    assert not any(v.startswith(("=", "+", "@")) for x in rows for v in x.values() if v)
    assert row["full_name"].startswith("Nguyễn Thị Xuất Khẩu") and row["wkt"].startswith("POINT (")


def test_a_survey_records_export_is_audited(client, seeded, records, commune, accounts):
    before = time.time()
    r = client.get("/api/v1/exports/survey-records", params={"format": "geojson", "commune": commune["code"],
                                                             "purpose": "báo cáo xuất khẩu"})
    assert r.status_code == 200
    with seeded.connect() as conn:
        rows = conn.execute(text("""SELECT actor, role, route, purpose, record_ids FROM audit_log
                                    WHERE route = '/api/v1/exports/survey-records' AND at >= to_timestamp(:t) - interval '5 seconds'
                                      AND purpose = 'báo cáo xuất khẩu'"""), {"t": before}).all()
    assert rows and {x.actor for x in rows} == {accounts.user("officer").name} and {x.role for x in rows} == {"officer"}
    audited = {i for x in rows for i in x.record_ids}
    assert set(records) <= audited
    assert audited == {f["id"] for f in r.json()["features"]}
    # No purpose, no export.
    no_purpose = client.get("/api/v1/exports/survey-records", params={"format": "csv"}, headers={"X-Purpose": ""})
    assert no_purpose.status_code == 422 and no_purpose.json()["detail"][0]["loc"] == ["header", "X-Purpose"]


PERSONAL = {f.name for s in SOURCES.values() for f in s.fields if f.personal} | {"full_name", "birth_year", "sex", "phone"}


def test_police_exports_hold_no_personal_field(client, seeded, accounts, records, commune, tmp_path):
    police = accounts.headers("police_analyst")
    r = client.get("/api/v1/exports/survey-records", params={"format": "csv"}, headers=police)
    assert r.status_code == 403
    for layer in ("incidents", "recruiters", "recruiter-areas"):
        for fmt in ("csv", "gpkg"):
            r = client.get(f"/api/v1/exports/{layer}", params={"format": fmt}, headers=police)
            assert r.status_code == 200, (layer, r.text)
            (tmp_path / f"p.{fmt}").write_bytes(r.content)
            columns = set(pyogrio.read_info(tmp_path / f"p.{fmt}")["fields"])
            assert not columns & PERSONAL, (layer, columns & PERSONAL)
            assert "Xuất Khẩu" not in r.content.decode("utf-8", "replace")
    # The second lock: were a layer with personal fields ever opened to the police, its export would still drop them.
    with seeded.connect() as conn:
        source = SOURCES["survey-records"]
        police_viewer = Viewer(Role.police_analyst, Viewer.operator("x").reader, "police", audit=lambda ids: None)
        export = open_export(conn, dataclasses.replace(source, readers=(Role.officer, Role.police_analyst)),
                             source.parse_filters({"commune": commune["code"]}), police_viewer, FORMATS["csv"],
                             check_crs(FORMATS["csv"], None))
        header = next(iter(export.write(conn))).decode("utf-8-sig").splitlines()[0].split(",")
    assert header and not set(header) & PERSONAL and "instance_id" in header


def test_an_export_job_end_to_end(client, accounts, environment, records, commune, tmp_path):
    """Above the row limit GET says to POST; the job runs, reports progress, and only its owner gets the file."""
    environment(LABOUR_ATLAS_EXPORT_JOB_ROWS="2", LABOUR_ATLAS_EXPORT_DIR=str(tmp_path / "jobs"))
    params = {"format": "gpkg", "crs": "vn2000-tm3:42", "commune": commune["code"]}
    big = client.get("/api/v1/exports/survey-records", params=params)
    assert big.status_code == 413 and "POST" in big.json()["detail"]
    made = client.post("/api/v1/exports/survey-records", params=params)
    assert made.status_code == 202, made.text
    job = made.json()
    assert made.headers["location"] == job["status_url"] and job["state"] in ("queued", "running", "done")
    deadline = time.monotonic() + 60
    while job["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = client.get(job["status_url"]).json()
    assert job["state"] == "done", job
    assert job["rows_done"] == job["rows_total"] >= len(records) and job["crs"] == "vn2000-tm3:42"
    r = client.get(job["file_url"])
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment")
    (tmp_path / "job.gpkg").write_bytes(r.content)
    frame = pyogrio.read_dataframe(tmp_path / "job.gpkg")
    assert len(frame) == job["rows_total"] and set(records) <= set(frame["instance_id"])
    assert pyogrio.read_info(tmp_path / "job.gpkg")["crs"] == "EPSG:9209"
    assert not list((tmp_path / "jobs").glob("*.part"))
    other = accounts.headers("officer", ("42",))
    assert client.get(job["status_url"], headers=other).status_code == 404
    assert client.get(job["file_url"], headers=other).status_code == 404
    assert client.get("/api/v1/export-jobs/not-a-uuid").status_code == 404


@pytest.mark.parametrize(("params", "where"), [
    ({"format": "xlsx"}, "format"),
    ({"format": "gpkg", "crs": "EPSG:3857"}, "crs"),
    ({"format": "kml", "crs": "EPSG:3405"}, "crs"),
    ({"format": "gpkg", "crs": "vn2000-tm3:99"}, "crs"),
    ({"format": "gpkg", "level": "district", "structure": "2025"}, "level"),
    ({"format": "gpkg", "parent": "4x"}, "parent"),
])
def test_bad_requests_name_the_parameter(anonymous_client, params, where):
    r = anonymous_client.get("/api/v1/exports/units", params=params)
    assert r.status_code == 422 and r.headers["content-type"] == "application/json", r.text
    assert r.json()["detail"][0]["loc"] == ["query", where]


def test_public_units_need_no_sign_in_but_jobs_do(anonymous_client):
    r = anonymous_client.get("/api/v1/exports/units", params={"format": "geojson", "parent": "42", "level": "province",
                                                              "structure": "2025"})
    assert r.status_code == 200 and [f["properties"]["code"] for f in r.json()["features"]] == ["42"]
    assert anonymous_client.post("/api/v1/exports/units", params={"format": "geojson"}).status_code == 401
    assert anonymous_client.get("/api/v1/exports/survey-records").status_code == 401


def test_the_command_line_exports_with_filters_and_audits(seeded, records, commune, tmp_path):
    from typer.testing import CliRunner

    from cli.main import app as cli_app

    runner = CliRunner()
    out = tmp_path / "hà-tĩnh.zip"
    r = runner.invoke(cli_app, ["export", "units", "--format", "shp", "--crs", "vn2000-tm3:42", "--out", str(out),
                                "--param", "structure=2025", "--param", "level=commune", "--param", "parent=42"])
    assert r.exit_code == 0, r.output
    frame = pyogrio.read_dataframe(out)
    assert len(frame) == len(layer_rows(seeded, "units", structure="2025", level="commune", parent="42"))
    assert frame.crs.to_epsg() == 9209 and not list(tmp_path.glob("*.part"))
    # Survey records: a purpose, or nothing; with one, audited as the command line.
    refused = runner.invoke(cli_app, ["export", "survey-records", "--out", str(tmp_path / "r.gpkg")])
    assert refused.exit_code == 1 and not (tmp_path / "r.gpkg").exists()
    r = runner.invoke(cli_app, ["export", "survey-records", "--out", str(tmp_path / "r.gpkg"), "--format", "gpkg",
                                "--param", f"commune={commune['code']}", "--purpose", "kiểm tra dòng lệnh"])
    assert r.exit_code == 0, r.output
    assert set(records) <= set(pyogrio.read_dataframe(tmp_path / "r.gpkg")["instance_id"])
    with seeded.connect() as conn:
        audited = conn.execute(text("SELECT record_ids FROM audit_log WHERE purpose = 'kiểm tra dòng lệnh' AND actor LIKE 'cli:%'")
                               ).scalars().all()
    assert set(records) <= {i for ids in audited for i in ids}
    # Bad input says which option or filter.
    bad = runner.invoke(cli_app, ["export", "units", "--param", "level=parish"])
    assert bad.exit_code == 1 and "--param level" in bad.output
    bad = runner.invoke(cli_app, ["export", "units", "--format", "kml", "--crs", "EPSG:3405"])
    assert bad.exit_code == 1 and "--crs" in bad.output


def test_rows_leave_in_chunks_never_all_at_once(seeded, records, commune, monkeypatch):
    """Memory stays flat only if the layer hands rows on in chunks of CHUNK_ROWS (here 2), never all in one."""
    import maps.sources.base as layer  # the chunk size of every SQL layer (sql_chunks)

    monkeypatch.setattr(layer, "CHUNK_ROWS", 2)
    source = SOURCES["survey-records"]
    audited = []
    with seeded.connect() as conn:
        rows = source.open(conn, source.parse_filters({"commune": commune["code"]}), Viewer.operator("t", audited.append), FULL_WKB)
        sizes = [len(c) for c in rows.chunks(conn)]
    assert sum(sizes) == rows.count >= 5 and max(sizes) == 2
    assert [len(a) for a in audited] == sizes  # each chunk audited before it is handed on


def test_reading_ahead_keeps_order_raises_the_readers_error_and_stops_with_the_writer():
    from etl.exports.prefetch import ahead

    closed = []

    def rows(fail_at: int | None = None):
        try:
            for i in range(100):
                if i == fail_at:
                    raise ValueError("the database went away")
                yield i
        finally:
            closed.append(True)

    assert list(ahead(rows())) == list(range(100))
    with pytest.raises(ValueError, match="went away"):
        list(ahead(rows(fail_at=7)))
    stream = ahead(rows())
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()  # a download broken off: the reader stops and closes its cursor
    assert closed == [True, True, True]


def test_jobs_of_a_stopped_server_are_failed_and_a_living_ones_are_left(seeded, accounts):
    from etl.exports.jobs import fail_unfinished, this_worker

    owner = accounts.user("officer")
    with seeded.begin() as conn:
        ids = conn.execute(text("""
            INSERT INTO export_job (owner_id, owner, role, layer, format, crs, worker, state, expires_at)
            VALUES (:o, 'x', 'officer', 'units', 'gpkg', 'EPSG:4326', :gone, 'running', now() + interval '1 hour'),
                   (:o, 'x', 'officer', 'units', 'gpkg', 'EPSG:4326', :alive, 'queued', now() + interval '1 hour')
            RETURNING id::text"""), {"o": owner.id, "gone": this_worker().rsplit(":", 1)[0] + ":999999999",
                                     "alive": this_worker()}).scalars().all()
    assert fail_unfinished(seeded) >= 1
    with seeded.connect() as conn:
        states = dict(conn.execute(text("SELECT id::text, state FROM export_job WHERE id = ANY(CAST(:ids AS uuid[]))"),
                                   {"ids": ids}).all())
    assert states == {ids[0]: "failed", ids[1]: "queued"}
    with seeded.begin() as conn:
        conn.execute(text("DELETE FROM export_job WHERE id = ANY(CAST(:ids AS uuid[]))"), {"ids": ids})


def test_an_expired_job_has_no_file(client, seeded, environment, tmp_path):
    environment(LABOUR_ATLAS_EXPORT_DIR=str(tmp_path / "jobs"))
    made = client.post("/api/v1/exports/units", params={"format": "csv", "parent": "42", "level": "province", "structure": "2025"})
    job = made.json()
    deadline = time.monotonic() + 60
    while job["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = client.get(job["status_url"]).json()
    assert job["state"] == "done" and client.get(job["file_url"]).status_code == 200
    with seeded.begin() as conn:
        conn.execute(text("UPDATE export_job SET expires_at = now() - interval '1 second' WHERE id = :id"), {"id": job["id"]})
    assert client.get(job["file_url"]).status_code == 404
    assert client.get(job["status_url"]).json()["state"] == "expired"
    assert not list((tmp_path / "jobs").iterdir())  # the file is gone from the disk


TRICKY_TEXT = ["", None, "NA", "N/A", "null", "nan", 'a,"b"\nc', "Hà Tĩnh", "\\x41", " leading space ", "=1+1"]


def test_arrow_rows_are_the_same_rows_as_python_rows(seeded, monkeypatch):
    """The Arrow path (COPY parsed as CSV) reads every type as the row path does: NULL apart from the empty text,
    "NA" as text, quotes and newlines inside a value, diacritics, times with their zone, WKB geometry."""
    import maps.sources.arrow_rows as arrow_rows
    from maps.sources.base import sql_chunks

    monkeypatch.setattr(arrow_rows, "BLOCK_BYTES", 200)  # several blocks, so rows are cut into batches
    fields = (FieldSpec("t", "text", ""), FieldSpec("i", "integer", ""), FieldSpec("r", "real", ""),
              FieldSpec("b", "boolean", ""), FieldSpec("d", "date", ""), FieldSpec("ts", "datetime", ""),
              FieldSpec("j", "json", ""))
    sql = text("""
        SELECT v.t, v.i, v.r, v.b, v.d, v.ts, v.j, ST_AsBinary(v.g) AS geometry
        FROM unnest(CAST(:texts AS text[])) WITH ORDINALITY AS x(t, n)
        CROSS JOIN LATERAL (SELECT x.t, CASE WHEN x.n % 3 = 0 THEN NULL ELSE x.n * 4611686018427387 END AS i,
                                   CASE WHEN x.n % 4 = 0 THEN NULL ELSE x.n / 7.0 END::float8 AS r,
                                   CASE x.n % 3 WHEN 0 THEN NULL WHEN 1 THEN true ELSE false END AS b,
                                   date '2025-07-01' + x.n::int AS d,
                                   timestamptz '2025-07-01 09:30:15.123456+07' + make_interval(hours => x.n::int) AS ts,
                                   jsonb_build_object('tên', x.t, 'n', x.n) AS j,
                                   CASE WHEN x.n % 5 = 0 THEN NULL
                                        ELSE ST_Buffer(ST_Point(105 + x.n / 100.0, 18), 0.01, 2) END AS g) v
        ORDER BY x.n""")
    params = {"texts": TRICKY_TEXT}
    with seeded.connect() as conn:
        want = [dict(zip([f.name for f in fields], row, strict=False)) | {"geometry": g}
                for chunk in sql_chunks(conn, sql, params, fields)
                for *row, g in zip(*chunk.columns.values(), chunk.geometry, strict=True)]
        batches = list(arrow_rows.sql_batches(conn, sql, params, fields))
    assert len(batches) > 1
    got = [row for batch in batches for row in batch.to_pylist()]
    assert len(got) == len(want) == len(TRICKY_TEXT)
    for g, w in zip(got, want, strict=True):
        assert json.loads(g.pop("j")) == w.pop("j")
        assert g == w


def test_a_copy_broken_off_is_cancelled_and_its_connection_serves_again(seeded, records, commune):
    """A download broken off after its first batch stops the COPY in the database; the connection is usable after."""
    import maps.sources.arrow_rows as arrow_rows

    source = SOURCES["survey-records"]
    with seeded.connect() as conn:
        rows = source.open(conn, source.parse_filters({}), Viewer.operator("t", audit=lambda ids: None), FULL_WKB)
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        arrow_rows.BLOCK_BYTES, saved = 100, arrow_rows.BLOCK_BYTES
        try:
            batches = rows.batches(conn, [f.name for f in source.fields])
            assert next(batches).num_rows >= 1
            batches.close()
        finally:
            arrow_rows.BLOCK_BYTES = saved
        conn.rollback()
        assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
        with seeded.connect() as other:
            state = other.execute(text("SELECT state, query FROM pg_stat_activity WHERE pid = :p"), {"p": pid}).one()
        assert "COPY" not in state.query or state.state != "active"
