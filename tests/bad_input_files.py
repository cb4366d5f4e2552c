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


def write(gdf: gpd.GeoDataFrame, path: Path) -> Path:
    """Write as the file's ending says: a Shapefile (UTF-8), GeoJSON, or a GeoPackage (layer ``tinh``)."""
    if path.suffix == ".shp":
        gdf.to_file(path, encoding="UTF-8")
    elif path.suffix == ".geojson":
        gdf.to_file(path, driver="GeoJSON")
    else:
        gdf.to_file(path, layer="tinh")
    return path


Change = Callable[[gpd.GeoDataFrame], None]
Damage = Callable[[Path], None]


def province_file(name: str, file_name: str, change: Change | None = None, damage: Damage | None = None,
                  doc: str | None = None) -> None:
    """Register the maker ``name``: the bundled provinces, edited by ``change``, written as ``file_name``, then ``damage``d.

    Most bad boundary files differ from good ones by one edit of the frame or one cut in the written file: one
    builder, and each case says only its edit.
    """

    def make(tmp: Path, engine, commune) -> Path:
        gdf = provinces()
        if change is not None:
            change(gdf)
        path = write(gdf, tmp / file_name)
        if damage is not None:
            damage(path)
        return path

    make.__name__, make.__doc__ = name, doc
    maker(make)


def set_cell(row: int, column: str, value: object) -> Change:
    """Put ``value`` (or, given a function, what it says of the frame) in one cell of the ``row``-th province."""
    def change(gdf: gpd.GeoDataFrame) -> None:
        gdf.loc[gdf.index[row], column] = value(gdf) if callable(value) else value
    return change


def drop(suffix: str) -> Damage:
    """Remove one of a Shapefile's files."""
    return lambda path: path.with_suffix(suffix).unlink()


def cut(numerator: int, denominator: int) -> Damage:
    """Keep the first numerator/denominator of the file's bytes."""
    def damage(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) * numerator // denominator])
    return damage


def folded_ring(gdf: gpd.GeoDataFrame) -> None:
    x, y = gdf.geometry.iloc[2].representative_point().coords[0]
    gdf.loc[gdf.index[2], "geometry"] = Polygon([(x, y), (x + 0.1, y), (x + 0.2, y), (x + 0.1, y), (x, y)])


def bowtie(gdf: gpd.GeoDataFrame) -> None:
    c = gdf.geometry.iloc[1].representative_point()
    gdf.loc[gdf.index[1], "geometry"] = Polygon([(c.x - 0.05, c.y - 0.05), (c.x + 0.05, c.y + 0.05), (c.x + 0.05, c.y - 0.05),
                                                 (c.x - 0.05, c.y + 0.05)])


def swap_coordinates(gdf: gpd.GeoDataFrame) -> None:
    gdf["geometry"] = gdf.geometry.map(lambda g: shapely.transform(g, lambda c: c[:, ::-1]))


# -- boundary files ---------------------------------------------------------------------------
province_file("shapefile_without_prj", "tinh.shp", damage=drop(".prj"))
province_file("shapefile_without_dbf", "tinh.shp", damage=drop(".dbf"))
province_file("shapefile_truncated", "tinh.shp", damage=cut(1, 2),
              doc="The .shp cut in the middle of a polygon (a copy interrupted, a mail attachment cut off).")
province_file("geojson_truncated", "tinh.geojson", damage=cut(2, 3))
province_file("geopackage_truncated", "tinh.gpkg", damage=cut(1, 3))
province_file("self_intersecting_polygon", "tu_cat.geojson", folded_ring,
              doc="One province drawn as a ring that folds back on itself and encloses nothing (zero area once repaired).")
province_file("bowtie_polygon", "no.gpkg", bowtie,
              doc="One province as a bow-tie (a ring crossing itself) well inside its real polygon: repairable, but not its shape.")
province_file("empty_polygon", "rong.gpkg", set_cell(3, "geometry", Polygon()))
province_file("duplicate_codes", "trung.shp", set_cell(4, "code", lambda gdf: gdf["code"].iloc[0]))
province_file("swapped_coordinates", "dao.geojson", swap_coordinates,
              doc="Latitude written first (y, x), as some GPS exports and hand-made files do.")
province_file("sql_in_the_code_field", "sql.gpkg", set_cell(0, "code", "42'); DROP TABLE admin_unit; --"))
province_file("sql_in_the_name_field", "sql_ten.gpkg", set_cell(0, "name", "Hà Giang'; DELETE FROM admin_unit WHERE '1'='1"),
              doc="A name with SQL in it (imported with --dry-run: the name is text, reported beside the official one).")


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


def targets_workbook(name: str, file_name: str, value: object = 1000, keep: float = 1, doc: str | None = None) -> None:
    """Register the maker ``name``: a workbook of one target of ``value``, saved as ``file_name``, its first ``keep`` kept."""

    def make(tmp: Path, engine, commune) -> Path:
        data = workbook([TARGET_HEADER, ["42", "2025", 2026, "departures", "absolute", value, None]])
        path = tmp / file_name
        path.write_bytes(data[: int(len(data) * keep)])
        return path

    make.__name__, make.__doc__ = name, doc
    maker(make)


targets_workbook("targets_workbook_truncated", "chi_tieu.xlsx", keep=0.5)
targets_workbook("targets_workbook_formula", "chi_tieu.xlsx", '=HYPERLINK("http://example.invalid/x","1000")',
                 doc="A target whose value is a spreadsheet formula (a link, when opened): refused as not a number.")
targets_workbook("targets_csv_renamed_workbook", "chi_tieu.csv", doc="A workbook saved with a .csv name: binary, not text.")
