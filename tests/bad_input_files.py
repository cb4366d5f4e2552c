"""Bad input files the catalogue (tests/bad_inputs/cases.toml, ``make = "..."``) writes at run time.

Files that are several files (a Shapefile), binary (a workbook) or drawn from
the database (a commune's real polygon) are made here rather than stored.
Each maker takes the test's folder, the engine and the ``commune`` fixture,
and returns the path to import.

Boundary files are built from SYNTHETIC polygons around real places, never
real boundaries.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import shapely
from shapely.geometry import Polygon, box
from sqlalchemy import text

from geodata.reference_data import REFERENCE_DIR

SUBSET = REFERENCE_DIR / "vn_2019_seed_subset.gpkg"
Maker = Callable[[Path, object, dict], Path]
MAKERS: dict[str, Maker] = {}


def maker(func: Maker) -> Maker:
    MAKERS[func.__name__] = func
    return func


def provinces() -> gpd.GeoDataFrame:
    """The five bundled pre-2025 provinces (code, name, unit_type, geometry)."""
    return gpd.read_file(SUBSET, layer="provinces")[["code", "name", "unit_type", "geometry"]]


def shapefile(gdf: gpd.GeoDataFrame, path: Path) -> Path:
    gdf.to_file(path, encoding="UTF-8")
    return path


# -- boundary files ---------------------------------------------------------------------------
@maker
def shapefile_without_prj(tmp: Path, engine, commune) -> Path:
    path = shapefile(provinces(), tmp / "tinh.shp")
    path.with_suffix(".prj").unlink()
    return path


@maker
def shapefile_without_dbf(tmp: Path, engine, commune) -> Path:
    path = shapefile(provinces(), tmp / "tinh.shp")
    path.with_suffix(".dbf").unlink()
    return path


@maker
def shapefile_truncated(tmp: Path, engine, commune) -> Path:
    """The .shp cut in the middle of a polygon (a copy interrupted, a mail attachment cut off)."""
    path = shapefile(provinces(), tmp / "tinh.shp")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@maker
def geojson_truncated(tmp: Path, engine, commune) -> Path:
    path = tmp / "tinh.geojson"
    provinces().to_file(path, driver="GeoJSON")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


@maker
def geopackage_truncated(tmp: Path, engine, commune) -> Path:
    path = tmp / "tinh.gpkg"
    provinces().to_file(path, layer="tinh")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


@maker
def self_intersecting_polygon(tmp: Path, engine, commune) -> Path:
    """One province drawn as a ring that folds back on itself and encloses nothing (zero area once repaired)."""
    gdf = provinces()
    x, y = gdf.geometry.iloc[2].representative_point().coords[0]
    gdf.loc[gdf.index[2], "geometry"] = Polygon([(x, y), (x + 0.1, y), (x + 0.2, y), (x + 0.1, y), (x, y)])
    path = tmp / "tu_cat.geojson"
    gdf.to_file(path, driver="GeoJSON")
    return path


@maker
def bowtie_polygon(tmp: Path, engine, commune) -> Path:
    """One province as a bow-tie (a ring crossing itself) well inside its real polygon: repairable, but not its shape."""
    gdf = provinces()
    c = gdf.geometry.iloc[1].representative_point()
    gdf.loc[gdf.index[1], "geometry"] = Polygon([(c.x - 0.05, c.y - 0.05), (c.x + 0.05, c.y + 0.05), (c.x + 0.05, c.y - 0.05),
                                                 (c.x - 0.05, c.y + 0.05)])
    path = tmp / "no.gpkg"
    gdf.to_file(path, layer="tinh")
    return path


@maker
def empty_polygon(tmp: Path, engine, commune) -> Path:
    gdf = provinces()
    gdf.loc[gdf.index[3], "geometry"] = Polygon()
    path = tmp / "rong.gpkg"
    gdf.to_file(path, layer="tinh")
    return path


@maker
def duplicate_codes(tmp: Path, engine, commune) -> Path:
    gdf = provinces()
    gdf.loc[gdf.index[4], "code"] = gdf["code"].iloc[0]
    return shapefile(gdf, tmp / "trung.shp")


@maker
def swapped_coordinates(tmp: Path, engine, commune) -> Path:
    """Latitude written first (y, x), as some GPS exports and hand-made files do."""
    gdf = provinces()
    gdf["geometry"] = gdf.geometry.map(lambda g: shapely.transform(g, lambda c: c[:, ::-1]))
    path = tmp / "dao.geojson"
    gdf.to_file(path, driver="GeoJSON")
    return path


@maker
def sql_in_the_code_field(tmp: Path, engine, commune) -> Path:
    gdf = provinces()
    gdf.loc[gdf.index[0], "code"] = "42'); DROP TABLE admin_unit; --"
    path = tmp / "sql.gpkg"
    gdf.to_file(path, layer="tinh")
    return path


@maker
def sql_in_the_name_field(tmp: Path, engine, commune) -> Path:
    """A name with SQL in it (imported with --dry-run: the name is text, reported beside the official one)."""
    gdf = provinces()
    gdf.loc[gdf.index[0], "name"] = "Hà Giang'; DELETE FROM admin_unit WHERE '1'='1"
    path = tmp / "sql_ten.gpkg"
    gdf.to_file(path, layer="tinh")
    return path


@maker
def polygon_far_from_its_unit(tmp: Path, engine, commune) -> Path:
    """A commune polygon (2025) put in the sea off Hà Tĩnh: outside its province."""
    with engine.connect() as conn:
        name = conn.execute(text("SELECT name FROM admin_unit WHERE structure = '2025' AND code = :c"), {"c": commune["code"]}).scalar()
    gdf = gpd.GeoDataFrame({"code": [commune["code"]], "name": [name], "parent_code": ["42"]},
                           geometry=[box(107.5, 18.0, 107.6, 18.1)], crs=4326)
    path = tmp / "bien.geojson"
    gdf.to_file(path, driver="GeoJSON")
    return path


@maker
def not_a_geodata_file(tmp: Path, engine, commune) -> Path:
    path = tmp / "ranh_gioi.geojson"
    path.write_bytes(b"\xef\xbb\xbfunit_code,name\n42,H\xc3\xa0 T\xc4\xa9nh\n")
    return path


# -- workbooks -----------------------------------------------------------------------------------
def workbook(rows: list[list[object]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    for row in rows:
        wb.active.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


TARGET_HEADER = ["unit_code", "structure", "year", "indicator", "kind", "value", "value_max"]


@maker
def targets_workbook_truncated(tmp: Path, engine, commune) -> Path:
    data = workbook([TARGET_HEADER, ["42", "2025", 2026, "departures", "absolute", 1000, None]])
    path = tmp / "chi_tieu.xlsx"
    path.write_bytes(data[: len(data) // 2])
    return path


@maker
def targets_workbook_formula(tmp: Path, engine, commune) -> Path:
    """A target whose value is a spreadsheet formula (a link, when opened): refused as not a number."""
    data = workbook([TARGET_HEADER, ["42", "2025", 2026, "departures", "absolute", '=HYPERLINK("http://example.invalid/x","1000")', None]])
    path = tmp / "chi_tieu.xlsx"
    path.write_bytes(data)
    return path


@maker
def targets_csv_renamed_workbook(tmp: Path, engine, commune) -> Path:
    """A workbook saved with a .csv name: binary, not text."""
    path = tmp / "chi_tieu.csv"
    path.write_bytes(workbook([TARGET_HEADER, ["42", "2025", 2026, "departures", "absolute", 1000, None]]))
    return path
