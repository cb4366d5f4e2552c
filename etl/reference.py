"""Load the bundled real reference data: code lists, polygons, crosswalk, centres.

``labour-atlas db seed`` runs :func:`seed_reference`. Sources and licences of
every file are in ``geodata/reference/README.md``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd
from sqlalchemy import Connection, text

from etl.boundaries import (
    BoundaryFields,
    Progress,
    load_boundaries,
    prepare_boundaries,
    read_boundary_file,
)
from geodata.crosswalk import refresh_crosswalk_shares
from geodata.db import get_engine
from geodata.reference_data import REFERENCE_DIR
from geodata.scopes import refresh_scopes
from geodata.structures import Level, Structure
from geodata.unit_geometry import refresh_unit_geometry

CODE_LISTS = {
    Structure.pre2025: ("vn_old_units_20250301.csv", {"1": "province", "2": "district", "3": "commune"}),
    Structure.v2025: ("vn_2025_units.csv", {"1": "province", "2": "commune"}),
}
POLYGONS = {
    Level.province: ("vn_2019_provinces.gpkg", "provinces"),
    Level.district: ("vn_2019_districts.gpkg", "districts"),
}


@dataclass
class SeedResult:
    units: dict[str, dict[str, int]] = field(default_factory=dict)
    polygons: dict[str, dict[str, int]] = field(default_factory=dict)
    merged_districts: dict[str, str] = field(default_factory=dict)
    approximate_provinces: list[str] = field(default_factory=list)
    crosswalk_links: int = 0
    centres: int = 0


def _copy_rows(conn: Connection, table_sql: str, copy_sql: str, rows) -> None:
    conn.execute(text(table_sql))
    cursor = conn.connection.dbapi_connection.cursor()
    with cursor.copy(copy_sql) as copy:
        for row in rows:
            copy.write_row(row)


def load_code_lists(conn: Connection) -> dict[str, dict[str, int]]:
    """Insert or update every unit of both structures from the GSO code lists."""
    rows = []
    for structure, (filename, levels) in CODE_LISTS.items():
        with open(REFERENCE_DIR / filename, encoding="utf-8") as f:
            for r in csv.DictReader(f):
                rows.append((structure.value, r["code"], r["name"], r["unit_type"], levels[r["level"]], r["parent_code"] or None))
    _copy_rows(
        conn,
        "CREATE TEMP TABLE code_stage (structure text, code text, name text, unit_type text, level text, parent_code text) ON COMMIT DROP",
        "COPY code_stage FROM STDIN",
        rows,
    )
    conn.execute(
        text(
            """
            INSERT INTO admin_unit AS u (structure, code, name, unit_type, level, parent_code, valid_from, valid_to)
            SELECT c.structure, c.code, c.name, c.unit_type, c.level, c.parent_code, s.valid_from, s.valid_to
            FROM code_stage c JOIN boundary_structure s ON s.name = c.structure
            ON CONFLICT (structure, code) DO UPDATE SET
                name = excluded.name, unit_type = excluded.unit_type,
                level = excluded.level, parent_code = excluded.parent_code
            """
        )
    )
    counts = conn.execute(text("SELECT structure, level, count(*) FROM admin_unit GROUP BY 1, 2")).all()
    out: dict[str, dict[str, int]] = {}
    for s, lvl, n in counts:
        out.setdefault(s, {})[lvl] = n
    return out


def successor_districts(districts: gpd.GeoDataFrame, known_codes: set[str]) -> dict[str, str]:
    """Map district polygons whose code was abolished to the district that took them over.

    The 2019 polygons include 11 districts merged away by 2025-03-01. Their
    communes now belong to another district of the same province; the
    successor is the district owning most of the commune centres that fall
    inside the abolished polygon.
    """
    abolished = districts[~districts["code"].isin(known_codes)]
    if abolished.empty:
        return {}
    centres = pd.read_csv(REFERENCE_DIR / "commune_centres.csv", dtype={"code": str})
    centres = centres[centres["structure"] == "pre2025"]
    codes = pd.read_csv(REFERENCE_DIR / "vn_old_units_20250301.csv", dtype=str)
    communes = codes[codes["level"] == "3"][["code", "parent_code"]].rename(columns={"parent_code": "district"})
    centres = centres.merge(communes, on="code")
    points = gpd.GeoDataFrame(centres, geometry=gpd.points_from_xy(centres["lon"], centres["lat"]), crs=4326)
    hits = gpd.sjoin(points, abolished[["code", "geometry"]].rename(columns={"code": "abolished"}), predicate="within")
    hits = hits[hits["district"].isin(known_codes)]
    return hits.groupby("abolished")["district"].agg(lambda s: s.value_counts().index[0]).to_dict()


def load_reference_polygons(conn: Connection, progress: Progress | None = None) -> dict[str, str]:
    """Load the bundled pre-2025 province and district polygons.

    Names, types and parents come from the code list (already loaded), so only
    the geometry is taken from the polygon files. Returns the abolished
    district codes dissolved into their successors.
    """
    known = {c for (c,) in conn.execute(text("SELECT code FROM admin_unit WHERE structure = 'pre2025' AND level = 'district'"))}
    merged: dict[str, str] = {}
    for level, (filename, layer) in POLYGONS.items():
        path = REFERENCE_DIR / filename
        gdf, _ = read_boundary_file(path, layer=layer, progress=progress)
        if level is Level.district:
            merged = successor_districts(gdf, known)
            gdf = gdf[gdf["code"].isin(known) | gdf["code"].isin(merged)].copy()
            gdf["code"] = gdf["code"].replace(merged)
            gdf = gdf[["code", "geometry"]].dissolve(by="code", as_index=False)
            gdf.index = pd.RangeIndex(1, len(gdf) + 1, name="feature")
        prepared = prepare_boundaries(gdf[["code", "geometry"]], path=path, level=level, fields=BoundaryFields())
        load_boundaries(conn, prepared.rows, path=path, structure=Structure.pre2025, level=level, source=f"reference:{filename}")
    return merged


APPROXIMATE_PROVINCES = {"vn_quang_ninh_approx.gpkg": "Natural Earth 1:10m land (public domain) minus the neighbouring provinces"}


def load_approximate_provinces(conn: Connection) -> list[str]:
    """Give provinces that the polygon source lacks an approximate polygon (Quảng Ninh), marked as such.

    An official polygon imported since is never replaced. Returns the codes given a polygon.
    """
    loaded = []
    for filename, how in APPROXIMATE_PROVINCES.items():
        gdf = gpd.read_file(REFERENCE_DIR / filename).to_crs(4326)
        for row in gdf.itertuples():
            done = conn.execute(text("""
                UPDATE admin_unit SET geom = ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_GeomFromWKB(:wkb, 4326)), 3)),
                       geom_quality = 'approximate', geom_source = :source
                WHERE structure = 'pre2025' AND code = :code AND level = 'province'
                  AND geom_quality IS DISTINCT FROM 'official'
                RETURNING code"""), {"wkb": row.geometry.wkb, "code": row.code, "source": f"approximate: {how} ({filename})"}).scalar()
            if done:
                loaded.append(done)
    if loaded:
        conn.execute(text("CREATE TEMP TABLE approx_province ON COMMIT DROP AS SELECT unnest(CAST(:c AS text[])) AS code"),
                     {"c": loaded})
        refresh_unit_geometry(conn, Structure.pre2025, codes_from="approx_province")
        conn.execute(text("DROP TABLE approx_province"))
    return loaded


def load_crosswalk(conn: Connection) -> int:
    """Load old -> new links of provinces and communes (shares refined later)."""
    rows = []
    with open(REFERENCE_DIR / "vn_2025_mapping_provinces.csv", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            rows.append((r["old_province_code"], r["new_province_code"], "province", "full", 1.0, "whole"))
    with open(REFERENCE_DIR / "vn_2025_mapping_communes.csv", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            n = int(r["old_unit_split_into"])
            level = "commune" if r["old_level"] == "3" else "district"
            rows.append((r["old_code"], r["new_code"], level, r["relation"], 1.0 / n, "whole" if n == 1 else "equal"))
    _copy_rows(
        conn,
        "CREATE TEMP TABLE xw_stage (old_code text, new_code text, level text, relation text, share float8, method text) ON COMMIT DROP",
        "COPY xw_stage FROM STDIN",
        rows,
    )
    conn.execute(text("DELETE FROM unit_crosswalk WHERE old_structure = 'pre2025' AND new_structure = '2025'"))
    return conn.execute(
        text(
            """
            INSERT INTO unit_crosswalk (old_structure, old_code, new_structure, new_code, level, relation, area_share, share_method)
            SELECT 'pre2025', old_code, '2025', new_code, level, relation, share, method FROM xw_stage
            """
        )
    ).rowcount


def union_2025_provinces(conn: Connection) -> int:
    """Give each 2025 province the union of the pre-2025 provinces merged into it."""
    return conn.execute(
        text(
            """
            UPDATE admin_unit n SET geom = u.geom, geom_quality = u.quality,
                   geom_source = 'union of pre2025 provinces ' || u.olds
            FROM (
                SELECT c.new_code, string_agg(o.code, ',' ORDER BY o.code) AS olds,
                       -- approximate if any part is (Quảng Ninh)
                       CASE WHEN bool_or(o.geom_quality = 'approximate') THEN 'approximate' ELSE 'official' END AS quality,
                       ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_Union(o.geom)), 3)) AS geom
                FROM unit_crosswalk c
                JOIN admin_unit o ON o.structure = c.old_structure AND o.code = c.old_code
                WHERE c.old_structure = 'pre2025' AND c.new_structure = '2025' AND c.level = 'province'
                  AND o.geom IS NOT NULL
                GROUP BY c.new_code
            ) u
            WHERE n.structure = '2025' AND n.code = u.new_code
            """
        )
    ).rowcount


def load_centres(conn: Connection) -> int:
    """Store the commune centre points (used for approximate commune polygons)."""
    with open(REFERENCE_DIR / "commune_centres.csv", encoding="utf-8") as f:
        rows = [(r["structure"], r["code"], float(r["lon"]), float(r["lat"])) for r in csv.DictReader(f)]
    _copy_rows(
        conn,
        "CREATE TEMP TABLE centre_stage (structure text, code text, lon float8, lat float8) ON COMMIT DROP",
        "COPY centre_stage FROM STDIN",
        rows,
    )
    return conn.execute(
        text(
            """
            UPDATE admin_unit u SET centre = ST_SetSRID(ST_MakePoint(c.lon, c.lat), 4326)
            FROM centre_stage c WHERE u.structure = c.structure AND u.code = c.code AND u.level = 'commune'
            """
        )
    ).rowcount


def seed_reference(progress: Progress | None = None) -> SeedResult:
    """Load all bundled reference data in one transaction (safe to re-run).

    Example::

        seed_reference().units["2025"]
        # {'province': 34, 'commune': 3321}
    """
    from etl.boundaries import units_with_geometry

    result = SeedResult()
    with get_engine().begin() as conn:
        result.units = load_code_lists(conn)
        result.merged_districts = load_reference_polygons(conn, progress)
        result.approximate_provinces = load_approximate_provinces(conn)
        result.crosswalk_links = load_crosswalk(conn)
        union_2025_provinces(conn)
        refresh_unit_geometry(conn, Structure.v2025)
        result.centres = load_centres(conn)
        refresh_crosswalk_shares(conn)
        for s in Structure:
            result.polygons[s.value] = units_with_geometry(conn, s)
        refresh_scopes(conn)  # units and crosswalk links may have changed
    return result


def reference_is_loaded(conn: Connection) -> bool:
    """Whether the reference data is in the database (2025 communes with polygons).

    Example (needs a database)::

        with get_engine().connect() as conn:
            reference_is_loaded(conn)
        # True
    """
    return bool(conn.execute(
        text("SELECT EXISTS (SELECT 1 FROM admin_unit WHERE level = 'commune' AND geom IS NOT NULL AND structure = '2025')")
    ).scalar())
