"""`labour-atlas import boundaries`: formats, CRS, encodings, parents, placement, dry run and undo.

Files are written here the way they come from a land department: Shapefiles
in a VN-2000 TM-3 zone with or without .prj, DBF text in Windows-1258, TCVN3
or VNI without .cpg, GeoPackages with several layers. Commune polygons are
SYNTHETIC (Voronoi cells tiling a real district polygon), never real
boundaries; province and district polygons are the bundled real ones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import unicodedata
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import CRS
from shapely.geometry import LineString, Point, Polygon
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app as cli
from etl.boundaries import BoundaryFields, BoundaryImportError, import_boundaries
from etl.boundary_history import undo_import
from etl.vietnamese_encodings import encode
from geodata.locate import locate
from geodata.reference_data import REFERENCE_DIR
from geodata.structures import Level, Structure

SUBSET = REFERENCE_DIR / "vn_2019_seed_subset.gpkg"
BEFORE_2025 = dt.date(2024, 6, 30)


def snapshot(engine) -> str:
    """A digest of everything an import could touch, the record of imports included."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                """SELECT structure, code, name, unit_type, parent_code, md5(coalesce(ST_AsEWKB(geom), '')),
                          geom_quality, name_in_file FROM admin_unit ORDER BY 1, 2"""
            )
        ).all()
        parts = conn.execute(text("SELECT count(*), md5(string_agg(ST_AsEWKB(geom)::text, ',' ORDER BY code, ST_AsEWKB(geom)::text)) "
                                  "FROM admin_unit_part")).one()
        imports = conn.execute(text("SELECT count(*) FROM boundary_import WHERE undone_at IS NULL")).scalar()
    return hashlib.sha256(repr((rows, tuple(parts), imports)).encode()).hexdigest()


def units(engine) -> str:
    """A digest of the units alone (a re-import is recorded, but changes no unit)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT structure, code, name, unit_type, parent_code, md5(coalesce(ST_AsEWKB(geom), '')), geom_quality FROM admin_unit ORDER BY 1, 2")
        ).all()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def subset(layer: str) -> gpd.GeoDataFrame:
    return gpd.read_file(SUBSET, layer=layer)


def write(gdf: gpd.GeoDataFrame, path: Path, **kw) -> Path:
    gdf.to_file(path, **kw)
    return path


def refused(engine, path: Path, match: str, **kw) -> str:
    """Import ``path``, expect a refusal matching ``match`` and nothing written; return the message."""
    before = snapshot(engine)
    kw.setdefault("level", Level.province)
    kw.setdefault("structure", Structure.pre2025)
    with pytest.raises(BoundaryImportError, match=match) as err:
        import_boundaries(path, **kw)
    assert snapshot(engine) == before, "a refused import must write nothing"
    return str(err.value)


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def refused_cli(engine, args: list, *expected: str) -> str:
    """Run the command line, expect exit status 1, every ``expected`` text in its output, and nothing written."""
    before = snapshot(engine)
    r = run(*args)
    assert r.exit_code == 1, r.output
    for e in expected:
        assert e in r.output, r.output
    assert "Nothing was imported" in r.output
    assert snapshot(engine) == before, "a refused import must write nothing"
    return r.output


def district_polygon(conn, code: str) -> shapely.Geometry:
    return shapely.from_wkb(bytes(conn.execute(
        text("SELECT ST_AsBinary(geom) FROM admin_unit WHERE structure = 'pre2025' AND code = :c"), {"c": code}).scalar()))


def synthetic_communes(engine, district: str, seed: int = 0) -> gpd.GeoDataFrame:
    """SYNTHETIC commune polygons of a real district (not real boundaries).

    Voronoi cells of points drawn near each commune's approximate cell,
    clipped to the district's real polygon: they tile it exactly, and differ
    from the approximate cells. Columns as a land department names them:
    MA_XA, TEN_XA (with the unit-type prefix), LOAI, MA_HUYEN.
    """
    rng = np.random.default_rng(seed)
    with engine.connect() as conn:
        outline = district_polygon(conn, district)
        rows = conn.execute(
            text(
                """SELECT code, name, unit_type, parent_code, ST_X(ST_PointOnSurface(geom)) AS x, ST_Y(ST_PointOnSurface(geom)) AS y
                   FROM admin_unit WHERE structure = 'pre2025' AND parent_code = :d AND geom IS NOT NULL ORDER BY code"""
            ),
            {"d": district},
        ).all()
    points = []
    for r in rows:
        p = Point(r.x, r.y)
        for _ in range(20):
            q = Point(r.x + rng.uniform(-0.004, 0.004), r.y + rng.uniform(-0.004, 0.004))
            if outline.contains(q):
                p = q
                break
        points.append(p)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.MultiPoint(points), extend_to=outline, ordered=True))
    return gpd.GeoDataFrame(
        {
            "MA_XA": [r.code for r in rows],
            "TEN_XA": [f"{r.unit_type.capitalize()} {r.name}" for r in rows],
            "LOAI": [r.unit_type for r in rows],
            "MA_HUYEN": [r.parent_code for r in rows],
        },
        geometry=[shapely.intersection(c, outline) for c in cells],
        crs=4326,
    )


COMMUNE_FIELDS = ["--level", "commune", "--structure", "pre2025", "--code-field", "MA_XA", "--name-field", "TEN_XA",
                  "--type-field", "LOAI", "--parent-field", "MA_HUYEN"]
FIELDS = BoundaryFields(code="MA_XA", name="TEN_XA", unit_type="LOAI", parent="MA_HUYEN")


def commune_import(path: Path, **kw):
    return import_boundaries(path, level=Level.commune, structure=Structure.pre2025, fields=FIELDS, **kw)


def write_legacy_dbf(gdf: gpd.GeoDataFrame, path: Path, encoding: str, cpg: str | None = None) -> Path:
    """A Shapefile whose DBF text is in ``encoding`` (bytes as old software wrote them), with a .cpg only if given."""
    raw = gdf.copy()
    for column in ("TEN_XA", "LOAI"):
        raw[column] = raw[column].map(lambda v: encode(v, encoding).decode("latin-1"))
    raw.to_file(path, encoding="ISO-8859-1")  # writes each character as its one byte
    path.with_suffix(".cpg").unlink()
    if cpg is not None:
        path.with_suffix(".cpg").write_text(cpg)
    return path


def unit(conn, code: str):
    return conn.execute(
        text("SELECT name, unit_type, parent_code, geom_quality, name_in_file FROM admin_unit WHERE structure = 'pre2025' AND code = :c"),
        {"c": code},
    ).one()


# -- formats, CRS, repairs, basic refusals (on the code lists alone) --------------------

def test_import_seed_provinces_and_districts(fresh):
    r = import_boundaries(SUBSET, layer="provinces", level=Level.province, structure=Structure.pre2025)
    assert (r.features, r.updated, r.inserted, r.repaired) == (5, 5, 0, [])
    assert r.units_with_geometry == {"province": 5}
    minx, miny, maxx, maxy = r.bbox
    assert 102 < minx < 106 and 10 < miny < 12 and 107 < maxx < 110 and 21 < maxy < 23
    # The 2019 districts include two abolished before 2025-03 (448 Lộc Hà, 483 Nam Đông): not in the code
    # list, so refused unless new units are allowed explicitly.
    message = refused(fresh, SUBSET, r"448 \(Lộc Hà\) is not a district of the pre2025 code list.*--allow-new-units",
                      layer="districts", level=Level.district)
    assert "483 (Nam Đông)" in message
    r = import_boundaries(SUBSET, layer="districts", level=Level.district, structure=Structure.pre2025, allow_new_units=True)
    assert r.features == 74 and (r.inserted, r.updated) == (2, 72) and r.units_with_geometry == {"province": 5, "district": 74}
    assert {c.code for c in r.new_units} == {"448", "483"}
    with fresh.connect() as conn:
        row = conn.execute(
            text("SELECT name, unit_type, geom_quality, ST_IsValid(geom), ST_SRID(geom) FROM admin_unit WHERE structure = 'pre2025' AND code = '42'")
        ).one()
        assert tuple(row) == ("Hà Tĩnh", "tỉnh", "official", True, 4326)
    before = units(fresh)
    # Re-importing the same file replaces, never duplicates.
    r = import_boundaries(SUBSET, layer="districts", level=Level.district, structure=Structure.pre2025, allow_new_units=True)
    assert (r.inserted, r.updated) == (0, 74)
    assert units(fresh) == before


def test_reprojects_vn2000_and_keeps_official_names_beside_the_files(fresh, tmp_path):
    provinces = subset("provinces")[["code", "name", "unit_type", "geometry"]]
    provinces["code"] = provinces["code"].astype(int)  # Shapefiles often lose leading zeros
    provinces["name"] = provinces["name"] + " (tệp)"
    path = write(provinces.to_crs("EPSG:3405"), tmp_path / "tinh_vn2000.shp", encoding="UTF-8")
    assert (tmp_path / "tinh_vn2000.cpg").read_text().strip().upper().replace("-", "") == "UTF8"
    r = import_boundaries(path, level=Level.province, structure=Structure.pre2025)
    assert "EPSG:3405" in r.source_crs and r.encoding == "utf-8"
    with fresh.connect() as conn:
        name, in_file, shift = conn.execute(
            text(
                """SELECT u.name, u.name_in_file,
                          ST_Distance(ST_Centroid(u.geom)::geography, ST_Centroid(ST_GeomFromText(:wkt, 4326))::geography)
                   FROM admin_unit u WHERE structure = 'pre2025' AND code = '01'"""
            ),
            {"wkt": subset("provinces").set_index("code").loc["01", "geometry"].wkt},
        ).one()
    # The official GSO name stays; the file's is kept beside it and reported.
    assert (name, in_file) == ("Hà Nội", "Hà Nội (tệp)")
    assert any(c.code == "01" and "'Hà Nội (tệp)'" in c.detail and "a different name" in c.detail for c in r.renamed)
    assert shift < 5  # metres, after a round trip through VN-2000


def test_repairs_invalid_polygons_and_names_them(fresh, tmp_path):
    provinces = subset("provinces")
    bowtie = Polygon([(105.0, 21.0), (105.2, 21.2), (105.2, 21.0), (105.0, 21.2), (105.0, 21.0)])
    provinces.loc[provinces["code"] == "20", "geometry"] = bowtie
    path = write(provinces, tmp_path / "p.geojson", driver="GeoJSON")
    r = import_boundaries(path, level=Level.province, structure=Structure.pre2025)
    feature = int(provinces.index[provinces["code"] == "20"][0]) + 1
    assert [str(c) for c in r.repaired] == [f"feature {feature} (code 20): repaired: Self-intersection[105.1 21.1]"]
    with fresh.connect() as conn:
        valid, kind, area = conn.execute(
            text("SELECT ST_IsValid(geom), GeometryType(geom), ST_Area(geom) FROM admin_unit WHERE structure = 'pre2025' AND code = '20'")
        ).one()
    assert valid and kind == "MULTIPOLYGON" and area == pytest.approx(0.02, rel=1e-6)


def test_refuses_file_without_crs_unless_assumed(fresh, tmp_path):
    path = write(subset("provinces")[["code", "name", "unit_type", "geometry"]], tmp_path / "noprj.shp", encoding="UTF-8")
    (tmp_path / "noprj.prj").unlink()
    refused(fresh, path, r"noprj\.shp: the file declares no coordinate reference system.*--assume-crs")
    r = import_boundaries(path, level=Level.province, structure=Structure.pre2025, assume_crs="EPSG:4326")
    assert r.updated == 5


def test_refuses_duplicate_codes_naming_features(fresh, tmp_path):
    provinces = subset("provinces")
    provinces.loc[provinces["code"] == "46", "code"] = "42"
    path = write(provinces, tmp_path / "dup.gpkg", layer="p")
    features = [i + 1 for i in provinces.index[provinces["code"] == "42"]]
    refused(fresh, path, rf"dup\.gpkg: field 'code': code 42 appears in features {features[0]}, {features[1]}")


def test_refuses_unknown_parent(fresh, tmp_path):
    districts = subset("districts")
    districts.loc[districts.index[3], "parent_code"] = "99"
    path = write(districts, tmp_path / "d.gpkg", layer="d")
    code = districts.loc[districts.index[3], "code"]
    refused(fresh, path, rf"d\.gpkg: feature 4 \(code {code}\): parent code 99 does not exist as a province", level=Level.district,
            allow_new_units=True)


def test_refuses_empty_and_non_polygon_geometry(fresh, tmp_path):
    provinces = subset("provinces")
    empty = provinces.copy()
    empty.loc[empty.index[2], "geometry"] = None
    refused(fresh, write(empty, tmp_path / "e.geojson", driver="GeoJSON"), r"e\.geojson: feature 3 \(code \d+\): geometry is empty")
    mixed = provinces.copy()
    mixed.loc[mixed.index[1], "geometry"] = LineString([(105, 21), (106, 21)])
    refused(fresh, write(mixed, tmp_path / "m.geojson", driver="GeoJSON"), r"m\.geojson: feature 2 \(code \d+\): geometry is a LineString, not a polygon")
    points = provinces.copy()
    points["geometry"] = [Point(105, 21)] * len(points)
    refused(fresh, write(points, tmp_path / "pts.gpkg", layer="x"), r"pts\.gpkg: feature 1 .*Point, not a polygon")


def test_refuses_missing_fields_wrong_crs_and_swapped_coordinates(fresh, tmp_path):
    provinces = subset("provinces").rename(columns={"code": "ma_tinh"})
    path = write(provinces, tmp_path / "f.gpkg", layer="p")
    refused(fresh, path, r"f\.gpkg: no field 'code'.*ma_tinh")
    refused(fresh, path, r"no field 'ten' for the unit name", fields=BoundaryFields(code="ma_tinh", name="ten"))
    # Lon/lat coordinates declared as VN-2000 metres land far from Vietnam.
    wrong = write(subset("provinces").set_crs("EPSG:3405", allow_override=True), tmp_path / "w.gpkg", layer="p")
    refused(fresh, wrong, r"w\.gpkg: feature 1 .*outside Vietnam.*declared CRS right\? Override it with --assume-crs")
    # Latitude written first: the refusal says so.
    swapped = subset("provinces")
    swapped["geometry"] = swapped.geometry.map(lambda g: shapely.transform(g, lambda c: c[:, ::-1]))
    refused(fresh, write(swapped, tmp_path / "s.geojson", driver="GeoJSON"), r"s\.geojson: feature 1 .*outside Vietnam.*look swapped")


def test_cli_prints_summary_and_refusals_without_whole_wkt(fresh, tmp_path):
    ok = run("import", "boundaries", SUBSET, "--layer", "provinces", "--level", "province", "--structure", "pre2025")
    assert ok.exit_code == 0, ok.output
    assert "5 province features" in ok.output and "bounding box" in ok.output and "0 invalid polygons repaired" in ok.output
    assert "to undo: labour-atlas boundaries undo" in ok.output
    provinces = subset("provinces")
    provinces.loc[provinces["code"] == "46", "code"] = "42"
    refused_cli(fresh, ["import", "boundaries", write(provinces, tmp_path / "dup.gpkg"), "--level", "province", "--structure", "pre2025"],
                "code 42 appears in features")
    # A .prj without an EPSG code (a TM-3 grid written by other software): named in a few words, not its whole WKT.
    custom = CRS.from_proj4("+proj=tmerc +lon_0=105.5 +k=0.9999 +x_0=500000 +ellps=WGS84 "
                            "+towgs84=-191.90441429,-39.30318279,-111.45032835,-0.00928836,0.01975479,-0.00427372,0.252906278 +units=m")
    path = write(subset("provinces")[["code", "geometry"]].to_crs(custom), tmp_path / "tm3.shp")
    r = run("import", "boundaries", path, "--level", "province", "--structure", "pre2025")
    assert r.exit_code == 0, r.output
    assert "Transverse Mercator, central meridian 105°30'" in r.output
    assert "PROJCS" not in r.output and "PARAMETER" not in r.output and "+towgs84" not in r.output


def test_official_communes_replace_approximate_ones(seeded):
    """Importing official commune polygons wins over the Voronoi approximation."""
    from etl.boundaries import load_boundaries, prepare_boundaries
    from geodata.approximate import approximate_communes

    with seeded.connect() as conn:
        trans = conn.begin()
        try:
            square = gpd.GeoDataFrame(
                {"code": ["00070"]}, geometry=[shapely.box(105.84, 21.02, 105.86, 21.04)], crs=4326
            )
            square.index = square.index + 1
            prepared = prepare_boundaries(square, path=Path("official.gpkg"), level=Level.commune, fields=BoundaryFields())
            load_boundaries(conn, prepared.rows, path=Path("official.gpkg"), structure=Structure.v2025, level=Level.commune, source="test")
            r = approximate_communes(conn, Structure.v2025)
            assert r.official_kept == 1
            quality, area = conn.execute(
                text("SELECT geom_quality, ST_Area(geom) FROM admin_unit WHERE structure = '2025' AND code = '00070'")
            ).one()
            assert quality == "official" and area == pytest.approx(0.0004)
            overlap = conn.execute(
                text(
                    """SELECT coalesce(sum(ST_Area(ST_Intersection(a.geom, o.geom))), 0) FROM admin_unit a, admin_unit o
                       WHERE a.structure = '2025' AND a.geom_quality = 'approximate' AND o.structure = '2025' AND o.code = '00070'
                         AND ST_Intersects(a.geom, o.geom)"""
                )
            ).scalar()
            assert overlap < 1e-9  # neighbours were cut around the official polygon
        finally:
            trans.rollback()


# -- defect 1: the right layer, codes of the right level --------------------------------------

def test_a_geopackage_with_several_layers_needs_a_layer_and_codes_must_fit_the_level(seeded_copy, tmp_path):
    with seeded_copy.connect() as conn:
        districts = gpd.GeoDataFrame.from_postgis(
            "SELECT code, name, unit_type, parent_code, geom FROM admin_unit WHERE structure = 'pre2025' AND parent_code = '42' ORDER BY code",
            conn, geom_col="geom")
    communes = synthetic_communes(seeded_copy, "436")
    communes["MA_HUYEN"] = communes["MA_HUYEN"].astype(float)  # a float parent code, 436.0, as Excel-made files have
    path = tmp_path / "ha_tinh.gpkg"
    districts.to_file(path, layer="huyen")  # the first layer holds the districts
    communes.to_file(path, layer="xa")
    refused_cli(seeded_copy, ["import", "boundaries", path, *COMMUNE_FIELDS],
                "the file has 2 layers: 'huyen' (MultiPolygon, 12 features); 'xa' (", "27 features). Choose one with --layer")
    # The districts read as communes: "436" is a district code, not commune 00436.
    refused_cli(seeded_copy, ["import", "boundaries", path, "--layer", "huyen", "--level", "commune", "--structure", "pre2025"],
                "feature 1: field 'code' = '436' has 3 digits: a commune code has 5 (a district code has 3)")
    ok = run("import", "boundaries", path, "--layer", "xa", *COMMUNE_FIELDS)
    assert ok.exit_code == 0, ok.output
    assert "layer 'xa', 27 commune features" in ok.output
    with seeded_copy.connect() as conn:
        for _, c in communes.iloc[::5].iterrows():
            p = c.geometry.representative_point()
            found = locate(conn, p.x, p.y, BEFORE_2025)
            assert (found.commune.code, found.commune.geom_quality, found.district.code, found.province.name) == \
                (c.MA_XA, "official", "436", "Hà Tĩnh")


# -- defect 2: a wrong CRS or zone that still lands in Viet Nam ------------------------------------

def shift(message: str) -> float:
    """The distance, in km, a refusal says the file lies from its parents."""
    return float(message.split("the file lies about ")[1].split(" km")[0])


def test_a_wrong_crs_or_tm3_zone_is_refused_with_the_provincial_zone(seeded_copy, tmp_path):
    communes = synthetic_communes(seeded_copy, "436")
    noprj = write(communes.to_crs(9209), tmp_path / "xa_tm3.shp", encoding="UTF-8")  # VN-2000 / TM-3 105°30', Hà Tĩnh's zone
    noprj.with_suffix(".prj").unlink()
    # UTM 48N instead of the TM-3 zone: still in Viet Nam, tens of km off.
    message = refused_cli(seeded_copy, ["import", "boundaries", noprj, *COMMUNE_FIELDS, "--assume-crs", "EPSG:3405"],
                          "27 of 27 units lie outside their parents", "VN-2000 / UTM zone 48N (EPSG:3405)",
                          "The VN-2000 TM-3 zone of Hà Tĩnh is 105°30' (EPSG:9209)", "--assume-crs EPSG:9209")
    assert 50 < shift(message) < 56 and "km to the west of them" in message
    # A .prj of the wrong TM-3 zone (105°45' instead of 105°30'): 26 km east.
    wrong_zone = write(communes.to_crs(9209).set_crs(9210, allow_override=True), tmp_path / "xa_zone.shp", encoding="UTF-8")
    message = refused_cli(seeded_copy, ["import", "boundaries", wrong_zone, *COMMUNE_FIELDS],
                          "lie outside their parents", "VN-2000 / TM-3 105-45 (EPSG:9210)", "--assume-crs EPSG:9209")
    assert 25 < shift(message) < 28 and "km to the east of them" in message
    r = commune_import(noprj, assume_crs="EPSG:9209")
    assert r.updated == 27 and "EPSG:9209" in r.source_crs and not r.outside


# -- defect 3: a wrong but existing parent ---------------------------------------------------

def test_a_parent_change_needs_the_option_and_a_polygon_in_the_new_parent(seeded_copy, tmp_path):
    communes = synthetic_communes(seeded_copy, "436")
    moved = communes.copy()
    moved.loc[moved["MA_XA"] == "18082", "MA_HUYEN"] = "437"  # Đại Nài said to be in Hồng Lĩnh
    path = write(moved, tmp_path / "xa.gpkg")
    feature = int(moved.index[moved["MA_XA"] == "18082"][0]) + 1
    refused_cli(seeded_copy, ["import", "boundaries", path, *COMMUNE_FIELDS],
                f"feature {feature} (code 18082 Đại Nài): the file gives parent 437 (Hồng Lĩnh) but the unit belongs to 436 (Hà Tĩnh); "
                "0 % of its polygon lies in 437 and 100 % in 436", "--allow-parent-change")
    # The option alone is not enough: the polygon must lie in the new parent.
    refused_cli(seeded_copy, ["import", "boundaries", path, *COMMUNE_FIELDS, "--allow-parent-change"],
                f"feature {feature} (code 18082 Đại Nài):", "lie outside its parent district 437 Hồng Lĩnh")
    # A genuine move: a polygon inside Hồng Lĩnh (synthetic), with the option. Reported, and points there locate to it.
    with seeded_copy.connect() as conn:
        inside = district_polygon(conn, "437").representative_point().buffer(0.004)
    one = gpd.GeoDataFrame({"MA_XA": ["18082"], "TEN_XA": ["Phường Đại Nài"], "LOAI": ["phường"], "MA_HUYEN": ["437"]},
                           geometry=[inside], crs=4326)
    r = commune_import(write(one, tmp_path / "move.gpkg"), allow_parent_change=True)
    assert [c.code for c in r.reparented] == ["18082"] and "436 (Hà Tĩnh) -> 437 (Hồng Lĩnh)" in r.reparented[0].detail
    with seeded_copy.connect() as conn:
        assert unit(conn, "18082").parent_code == "437"
        found = locate(conn, inside.centroid.x, inside.centroid.y, BEFORE_2025)
        assert (found.commune.code, found.district.code) == ("18082", "437")


# -- defect 4: encodings and names -------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["cp1258", "tcvn3", "vni"])
def test_dbf_in_a_legacy_encoding_without_cpg_is_detected_and_names_stay_official(seeded_copy, tmp_path, encoding):
    communes = synthetic_communes(seeded_copy, "436").to_crs(9209)
    communes["MA_HUYEN"] = communes["MA_HUYEN"].astype(int)  # a numeric field: 436
    path = write_legacy_dbf(communes, tmp_path / "xa.shp", encoding)
    r = commune_import(path)
    assert r.encoding == encoding and r.encoding_note.startswith(f"detected: the names read as {encoding} match the official names")
    dai_nai = next(c for c in r.renamed if c.code == "18082")
    assert "the file says 'Phường Đại Nài': the same name but for a type prefix or spelling; the official name is kept" in dai_nai.detail
    with seeded_copy.connect() as conn:
        assert tuple(unit(conn, "18082")) == ("Đại Nài", "phường", "436", "official", "Phường Đại Nài")
        found = conn.execute(text("SELECT code FROM admin_unit WHERE structure = 'pre2025' AND name_folded = 'dai nai'")).scalars().all()
    assert found == ["18082"]  # search by name still finds it


def test_a_cpg_of_1258_keeps_field_names_and_last_characters(seeded_copy, tmp_path):
    communes = synthetic_communes(seeded_copy, "436").to_crs(9209)
    path = write_legacy_dbf(communes, tmp_path / "xa.shp", "cp1258", cpg="1258")
    r = commune_import(path)  # the fields are named TEN_XA and LOAI: their last letters are there
    assert (r.encoding, r.encoding_note) == ("cp1258", "the .cpg says 1258")
    with seeded_copy.connect() as conn:
        assert unit(conn, "18082").name_in_file == "Phường Đại Nài"
        assert unit(conn, "18571").name_in_file == "Xã Thạch Hải"


def test_an_encoding_that_cannot_be_told_is_refused_until_chosen(seeded_copy, tmp_path):
    communes = synthetic_communes(seeded_copy, "436").to_crs(9209)
    communes["TEN_XA"] = [f"Khu phố cũ số {i}" for i in range(len(communes))]  # names no official list has
    path = write_legacy_dbf(communes, tmp_path / "xa.shp", "tcvn3")
    message = refused_cli(seeded_copy, ["import", "boundaries", path, *COMMUNE_FIELDS], "is not UTF-8 and the encoding cannot be told",
                          "no encoding gives names matching the official ones", "--encoding cp1258|tcvn3|vni")
    assert "tcvn3: 'Khu phố cũ số 0'" in message and "cp1258: 'Khu ph" in message and "vni: " in message
    r = commune_import(path, encoding="tcvn3")
    assert r.encoding_note == "given with --encoding"
    assert any(c.code == "18082" and "'Khu phố cũ số" in c.detail and "a different name" in c.detail for c in r.renamed)
    with seeded_copy.connect() as conn:
        assert unit(conn, "18082").name == "Đại Nài"


def test_names_from_utf8_files_are_stored_in_nfc(seeded_copy, tmp_path):
    communes = synthetic_communes(seeded_copy, "436")
    communes["TEN_XA"] = communes["TEN_XA"].map(lambda n: unicodedata.normalize("NFD", n))
    commune_import(write(communes, tmp_path / "nfd.geojson", driver="GeoJSON"))
    with seeded_copy.connect() as conn:
        stored = unit(conn, "18082").name_in_file
    assert stored == "Phường Đại Nài" and unicodedata.is_normalized("NFC", stored)


# -- defect 5: overlaps, gaps, spill-over, partial imports -------------------------------------------

def test_overlaps_gaps_and_spill_over_are_refused_beyond_tolerance_and_reported_within(seeded_copy, tmp_path):
    communes = synthetic_communes(seeded_copy, "436")
    with seeded_copy.connect() as conn:
        outline = district_polygon(conn, "436")
    largest = int(communes.to_crs(9209).area.idxmax())
    neighbour = max((i for i in communes.index if i != largest),
                    key=lambda i: communes.geometry[i].intersection(communes.geometry[largest]).length)
    a, b = communes.MA_XA[largest], communes.MA_XA[neighbour]

    def variant(name: str, **geoms) -> Path:
        g = communes.copy()
        for index, geom in geoms.items():
            g.loc[int(index[1:]), "geometry"] = geom
        return write(g, tmp_path / f"{name}.gpkg")

    # Overlap: the largest commune takes a strip of its neighbour.
    grown = communes.geometry[largest].union(communes.geometry[neighbour].intersection(communes.geometry[largest].buffer(0.004)))
    refused_cli(seeded_copy, ["import", "boundaries", variant("overlap", **{f"i{largest}": grown}), *COMMUNE_FIELDS],
                f"feature {largest + 1} (code {a} ", f"feature {neighbour + 1} (code {b} ", " overlaps ", "LABOUR_ATLAS_BOUNDARY_MAX_OVERLAP")
    # Gap: a hole in the largest commune that no other commune fills.
    circle = shapely.maximum_inscribed_circle(communes.geometry[largest])
    hole = shapely.get_point(circle, 0).buffer(0.9 * circle.length)
    output = refused_cli(seeded_copy, ["import", "boundaries", variant("gap", **{f"i{largest}": communes.geometry[largest].difference(hole)}),
                                       *COMMUNE_FIELDS], "parent 436 Hà Tĩnh: ", "left uncovered by its communes", "LABOUR_ATLAS_BOUNDARY_MAX_GAP")
    assert float(output.split("parent 436 Hà Tĩnh: ")[1].split(" km²")[0]) > 0.5
    # Spill-over: a border commune reaching 1 km into the neighbouring district.
    border = next(i for i in communes.index if communes.geometry[i].boundary.intersection(outline.boundary).length > 0.005)
    spilled = communes.geometry[border].union(communes.geometry[border].buffer(0.01).difference(outline))
    refused_cli(seeded_copy, ["import", "boundaries", variant("spill", **{f"i{border}": spilled}), *COMMUNE_FIELDS],
                f"feature {border + 1} (code {communes.MA_XA[border]} ", "lie outside its parent district 436 Hà Tĩnh",
                "LABOUR_ATLAS_BOUNDARY_MAX_OUTSIDE_PARENT")
    # Within tolerance: 5 m of overlap and 5 m of spill-over are imported, and reported with their areas.
    small = variant("small", **{
        f"i{largest}": communes.geometry[largest].union(communes.geometry[neighbour].intersection(communes.geometry[largest].buffer(0.00005))),
        f"i{border}": communes.geometry[border].buffer(0.00005).difference(communes.drop(index=[border, largest]).union_all())})
    r = commune_import(small)
    assert r.updated == 27
    assert any({c.code, c.detail.split("(code ")[1].split()[0]} == {a, b} for c in r.overlaps)
    assert all(0 < c.value < 0.05 for c in r.overlaps)
    assert any(c.code == communes.MA_XA[border] and "lie outside its parent district 436" in c.detail and 0 < c.value < 0.05
               for c in r.outside)


def test_a_partial_import_redraws_the_approximate_communes_around_it(seeded_copy, tmp_path):
    communes = synthetic_communes(seeded_copy, "445", seed=3)  # Thạch Hà: 23 communes, 22 with a centre
    part = communes.iloc[:12].copy()
    # A hole of about 0.15 km² inside the first commune, enclosing no other commune: reported, within tolerance.
    first = part.geometry.iloc[0]
    part.loc[part.index[0], "geometry"] = first.difference(first.representative_point().buffer(0.002))
    r = commune_import(write(part, tmp_path / "thach_ha_12.gpkg"))
    assert r.updated == 12
    assert [c.code for c in r.gaps] == ["445"]
    assert "in holes enclosed by its official communes" in r.gaps[0].detail and 0.1 < r.gaps[0].value < 0.2
    with seeded_copy.connect() as conn:
        overlap = conn.execute(
            text(
                """SELECT coalesce(sum(ST_Area(ST_Intersection(a.geom, o.geom)::geography)), 0) FROM admin_unit a
                   JOIN admin_unit o ON a.geom && o.geom AND ST_Intersects(a.geom, o.geom)
                   WHERE a.structure = 'pre2025' AND o.structure = 'pre2025' AND a.level = 'commune' AND o.level = 'commune'
                     AND a.geom_quality = 'approximate' AND o.geom_quality = 'official'"""
            )
        ).scalar()
        assert overlap < 1.0  # m²: official and approximate communes never overlap
        # Every point of an official commune locates to it, never to an approximate cell.
        rng = np.random.default_rng(1)
        for _, c in part.iterrows():
            minx, miny, maxx, maxy = c.geometry.bounds
            hits = [Point(x, y) for x, y in zip(rng.uniform(minx, maxx, 60), rng.uniform(miny, maxy, 60), strict=True)]
            for p in [p for p in hits if c.geometry.buffer(-0.0002).contains(p)][:8]:
                assert locate(conn, p.x, p.y, BEFORE_2025).commune.code == c.MA_XA
        # The rest of the district is still covered by the approximate communes of the others.
        cover = conn.execute(
            text(
                """SELECT ST_Area(ST_Difference(d.geom, ST_Union(c.geom))::geography) / ST_Area(d.geom::geography),
                          count(*) FILTER (WHERE c.geom_quality = 'approximate')
                   FROM admin_unit d JOIN admin_unit c ON c.structure = d.structure AND c.parent_code = d.code AND c.geom IS NOT NULL
                   WHERE d.structure = 'pre2025' AND d.code = '445' GROUP BY d.geom"""
            )
        ).one()
        assert cover[0] < 1e-6 and cover[1] == 10
    assert r.approximate_redrawn >= 10 and "445" in r.regions_redrawn


# -- defect 6: dry run, record, undo -------------------------------------------------------------

def test_dry_run_import_list_and_undo_round_trip(seeded_copy, tmp_path):
    communes = synthetic_communes(seeded_copy, "445")
    first = write(communes.iloc[:12], tmp_path / "thach_ha_a.gpkg")
    original = snapshot(seeded_copy)
    dry = run("import", "boundaries", first, *COMMUNE_FIELDS, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "dry run, nothing was written; the import would make: 0 new, 12 updated" in dry.output
    assert "names differing from the official names (the official names are kept): 12" in dry.output
    assert "approximate communes redrawn" in dry.output and "to undo" not in dry.output
    assert snapshot(seeded_copy) == original
    done = run("import", "boundaries", first, *COMMUNE_FIELDS)
    assert done.exit_code == 0, done.output
    first_id = int(done.output.split("to undo: labour-atlas boundaries undo ")[1].split()[0])
    after_first = snapshot(seeded_copy)
    assert after_first != original
    with seeded_copy.connect() as conn:
        record = conn.execute(text("SELECT imported_by, file_name, file_sha256, counts FROM boundary_import WHERE id = :i"),
                              {"i": first_id}).one()
    assert record.imported_by.startswith("cli:") and record.file_name == "thach_ha_a.gpkg"
    assert record.file_sha256 == hashlib.sha256(first.read_bytes()).hexdigest() and record.counts["updated"] == 12
    listed = run("boundaries", "list")
    assert listed.exit_code == 0 and "thach_ha_a.gpkg" in listed.output
    # A second import changes some of the same units: the first cannot be undone before it.
    second = commune_import(write(communes.iloc[8:16], tmp_path / "thach_ha_b.gpkg"))
    blocked = run("boundaries", "undo", first_id)
    assert blocked.exit_code == 1 and f"later imports changed the same units since: import {second.import_id}" in blocked.output
    assert run("boundaries", "undo", second.import_id).exit_code == 0
    assert snapshot(seeded_copy) == after_first
    undone = run("boundaries", "undo", first_id)
    assert undone.exit_code == 0 and f"import {first_id} (thach_ha_a.gpkg) undone: 12 units restored" in undone.output
    assert snapshot(seeded_copy) == original
    again = run("boundaries", "undo", first_id)
    assert again.exit_code == 1 and "already undone" in again.output


def test_undo_removes_the_units_an_import_created(seeded_copy, tmp_path):
    with seeded_copy.connect() as conn:
        inside = district_polygon(conn, "436").representative_point().buffer(0.002)
    new = gpd.GeoDataFrame({"MA_XA": ["18999"], "TEN_XA": ["Xã Thử Nghiệm"], "LOAI": ["xã"], "MA_HUYEN": ["436"]}, geometry=[inside], crs=4326)
    path = write(new, tmp_path / "new.gpkg")
    original = snapshot(seeded_copy)
    refused(seeded_copy, path, r"code 18999 \(Xã Thử Nghiệm\) is not a commune of the pre2025 code list", level=Level.commune, fields=FIELDS)
    r = commune_import(path, allow_new_units=True)
    assert r.inserted == 1
    with seeded_copy.connect() as conn:
        assert unit(conn, "18999").name == "Xã Thử Nghiệm"
    # While a survey record declares the new commune, the import cannot be undone.
    record = """INSERT INTO survey_record (province_code, instance_id, form_id, form_version, kind, collected_at, surveyor, source,
                                           structure, declared_commune_code, consent, payload_hash)
                VALUES ('42', gen_random_uuid(), 'labour_survey', '1', 'aspirant', now(), 'test', 'test', 'pre2025', '18999', true, 'x')"""
    with seeded_copy.begin() as conn:
        conn.execute(text(record))
    with pytest.raises(BoundaryImportError, match=r"cannot be undone: a unit it created is now used .*18999"):
        undo_import(r.import_id)
    with seeded_copy.begin() as conn:
        conn.execute(text("DELETE FROM survey_record WHERE declared_commune_code = '18999'"))
    undo_import(r.import_id)
    assert snapshot(seeded_copy) == original
