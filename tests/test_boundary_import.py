"""`labour-atlas import boundaries`: formats, CRS, repairs, refusals (nothing written)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app as cli
from etl.boundaries import BoundaryFields, BoundaryImportError, import_boundaries
from geodata.reference_data import REFERENCE_DIR
from geodata.structures import Level, Structure

SUBSET = REFERENCE_DIR / "vn_2019_seed_subset.gpkg"


def snapshot(engine) -> str:
    """A digest of everything the import could touch."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                """SELECT structure, code, name, unit_type, parent_code, md5(coalesce(ST_AsEWKB(geom), '')),
                          geom_quality FROM admin_unit ORDER BY 1, 2"""
            )
        ).all()
        parts = conn.execute(text("SELECT count(*) FROM admin_unit_part")).scalar()
    return hashlib.sha256(repr((rows, parts)).encode()).hexdigest()


def subset(layer: str) -> gpd.GeoDataFrame:
    return gpd.read_file(SUBSET, layer=layer)


def write(gdf: gpd.GeoDataFrame, path: Path, **kw) -> Path:
    gdf.to_file(path, **kw)
    return path


def test_import_seed_provinces_and_districts(fresh):
    r = import_boundaries(SUBSET, layer="provinces", level=Level.province, structure=Structure.pre2025)
    assert (r.features, r.updated, r.inserted, r.repaired) == (5, 5, 0, 0)
    assert r.units_with_geometry == {"province": 5}
    minx, miny, maxx, maxy = r.bbox
    assert 102 < minx < 106 and 10 < miny < 12 and 107 < maxx < 110 and 21 < maxy < 23
    r = import_boundaries(SUBSET, layer="districts", level=Level.district, structure=Structure.pre2025)
    assert r.features == 74 and r.units_with_geometry == {"province": 5, "district": 74}
    with fresh.connect() as conn:
        row = conn.execute(
            text("SELECT name, unit_type, geom_quality, ST_IsValid(geom), ST_SRID(geom) FROM admin_unit WHERE structure = 'pre2025' AND code = '42'")
        ).one()
        assert tuple(row) == ("Hà Tĩnh", "tỉnh", "official", True, 4326)
        # Re-importing the same file replaces, never duplicates.
        before = snapshot(fresh)
    r = import_boundaries(SUBSET, layer="districts", level=Level.district, structure=Structure.pre2025)
    assert (r.inserted, r.updated) == (0, 74)
    assert snapshot(fresh) == before


def test_reprojects_vn2000_and_keeps_vietnamese_names_in_shapefile(fresh, tmp_path):
    provinces = subset("provinces")[["code", "name", "unit_type", "geometry"]]
    provinces["code"] = provinces["code"].astype(int)  # Shapefiles often lose leading zeros
    provinces["name"] = provinces["name"] + " (tệp)"
    path = write(provinces.to_crs("EPSG:3405"), tmp_path / "tinh_vn2000.shp", encoding="UTF-8")
    assert (tmp_path / "tinh_vn2000.cpg").read_text().strip().upper().replace("-", "") == "UTF8"
    r = import_boundaries(path, level=Level.province, structure=Structure.pre2025)
    assert "3405" in r.source_crs
    with fresh.connect() as conn:
        name, shift = conn.execute(
            text(
                """SELECT u.name, ST_Distance(ST_Centroid(u.geom)::geography, ST_Centroid(ST_GeomFromText(:wkt, 4326))::geography)
                   FROM admin_unit u WHERE structure = 'pre2025' AND code = '01'"""
            ),
            {"wkt": subset("provinces").set_index("code").loc["01", "geometry"].wkt},
        ).one()
    assert name == "Hà Nội (tệp)"
    assert shift < 5  # metres, after a round trip through VN-2000


def test_repairs_invalid_polygons_and_reports_them(fresh, tmp_path):
    provinces = subset("provinces")
    bowtie = Polygon([(105.0, 21.0), (105.2, 21.2), (105.2, 21.0), (105.0, 21.2), (105.0, 21.0)])
    provinces.loc[provinces["code"] == "20", "geometry"] = bowtie
    path = write(provinces, tmp_path / "p.geojson", driver="GeoJSON")
    r = import_boundaries(path, level=Level.province, structure=Structure.pre2025)
    assert r.repaired == 1
    with fresh.connect() as conn:
        valid, kind, area = conn.execute(
            text("SELECT ST_IsValid(geom), GeometryType(geom), ST_Area(geom) FROM admin_unit WHERE structure = 'pre2025' AND code = '20'")
        ).one()
    assert valid and kind == "MULTIPOLYGON" and area == pytest.approx(0.02, rel=1e-6)


def refused(engine, path: Path, match: str, **kw) -> None:
    before = snapshot(engine)
    kw.setdefault("level", Level.province)
    kw.setdefault("structure", Structure.pre2025)
    with pytest.raises(BoundaryImportError, match=match):
        import_boundaries(path, **kw)
    assert snapshot(engine) == before, "a refused import must write nothing"


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
    refused(fresh, path, rf"d\.gpkg: feature 4 \(code {code}\): parent code 99 does not exist as a province", level=Level.district)


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


def test_refuses_missing_fields_and_wrong_crs(fresh, tmp_path):
    provinces = subset("provinces").rename(columns={"code": "ma_tinh"})
    path = write(provinces, tmp_path / "f.gpkg", layer="p")
    refused(fresh, path, r"f\.gpkg: no field 'code'.*ma_tinh")
    refused(fresh, path, r"no field 'ten' for the unit name", fields=BoundaryFields(code="ma_tinh", name="ten"))
    # Lon/lat coordinates declared as VN-2000 metres land far from Vietnam.
    wrong = write(subset("provinces").set_crs("EPSG:3405", allow_override=True), tmp_path / "w.gpkg", layer="p")
    refused(fresh, wrong, r"w\.gpkg: feature 1 .*outside Vietnam.*declared CRS")


def test_cli_prints_summary_and_refusals(fresh, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(cli, ["import", "boundaries", str(SUBSET), "--layer", "provinces", "--level", "province", "--structure", "pre2025"])
    assert ok.exit_code == 0, ok.output
    assert "5 province features" in ok.output and "bounding box" in ok.output and "0 invalid polygons repaired" in ok.output
    provinces = subset("provinces")
    provinces.loc[provinces["code"] == "46", "code"] = "42"
    bad = runner.invoke(cli, ["import", "boundaries", str(write(provinces, tmp_path / "dup.gpkg")), "--level", "province", "--structure", "pre2025"])
    assert bad.exit_code == 1
    assert "code 42 appears in features" in bad.output and "Nothing was imported" in bad.output


def test_official_communes_replace_approximate_ones(seeded):
    """Importing official commune polygons wins over the Voronoi approximation."""
    from etl.boundaries import load_boundaries, prepare_boundaries
    from geodata.approximate import approximate_communes

    with seeded.connect() as conn:
        trans = conn.begin()
        try:
            old = conn.execute(text("SELECT code, geom FROM admin_unit WHERE structure = '2025' AND code = '00070'")).one()
            square = gpd.GeoDataFrame(
                {"code": ["00070"]}, geometry=[shapely.box(105.84, 21.02, 105.86, 21.04)], crs=4326
            )
            square.index = square.index + 1
            rows, _, _ = prepare_boundaries(square, path=Path("official.gpkg"), level=Level.commune, fields=BoundaryFields())
            load_boundaries(conn, rows, path=Path("official.gpkg"), structure=Structure.v2025, level=Level.commune, source="test")
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
            assert old.code == "00070"
        finally:
            trans.rollback()
