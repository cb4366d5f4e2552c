"""Import administrative boundaries from Shapefile, GeoPackage or GeoJSON.

Files are read with pyogrio, reprojected to EPSG:4326 from whatever CRS they
declare (VN-2000 included), repaired where invalid, checked, and loaded into
``admin_unit`` set-based (COPY into a staging table, then one INSERT ... SELECT)
in a single transaction: a file is loaded whole or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from sqlalchemy import Connection, text

from geodata.db import get_engine
from geodata.scopes import refresh_scopes
from geodata.structures import CODE_WIDTH, Level, Structure, parent_level
from geodata.unit_geometry import refresh_unit_geometry
from geodata.vietnam import VIETNAM_BBOX

CHUNK = 500

Progress = Callable[[int, int], None]


class BoundaryImportError(ValueError):
    """A boundary file was refused; the message names file, feature and field."""


@dataclass
class BoundaryImportResult:
    path: str
    structure: str
    level: str
    features: int = 0
    inserted: int = 0
    updated: int = 0
    repaired: int = 0
    source_crs: str = ""
    bbox: tuple[float, float, float, float] | None = None
    units_with_geometry: dict[str, int] = field(default_factory=dict)


@dataclass
class BoundaryFields:
    """Which attribute of the file holds what.

    ``None`` means "the conventional field if the file has it" (``name``,
    ``parent_code``, ``unit_type``); a name given explicitly must exist.
    """

    code: str = "code"
    name: str | None = None
    parent: str | None = None
    unit_type: str | None = None

    def resolve(self, columns: list[str], path: Path) -> dict[str, str | None]:
        """Map role -> column of the file, refusing explicit fields it lacks."""
        conventional = {"code": "code", "name": "name", "parent": "parent_code", "unit_type": "unit_type"}
        out: dict[str, str | None] = {}
        for role, default in conventional.items():
            given = getattr(self, role)
            if given is not None and given not in columns:
                raise BoundaryImportError(
                    f"{path}: no field '{given}' for the unit {role.replace('_', ' ')} "
                    f"(fields in the file: {', '.join(columns)})"
                )
            out[role] = given if given is not None else (default if default in columns else None)
        if out["code"] is None:
            raise BoundaryImportError(f"{path}: no field 'code' (fields in the file: {', '.join(columns)}); name it with --code-field")
        return out


def read_boundary_file(
    path: Path,
    *,
    layer: str | None = None,
    assume_crs: str | None = None,
    progress: Progress | None = None,
) -> tuple[gpd.GeoDataFrame, str]:
    """Read a boundary layer, in chunks so that a progress bar can follow.

    Returns the frame (index: the feature's position, 1-based) and the CRS the
    file declared (or ``assume_crs``). Refuses a file without a CRS unless
    ``assume_crs`` is given.

    Example::

        gdf, crs = read_boundary_file(Path("districts.shp"), assume_crs="EPSG:3405")
    """
    path = Path(path)
    if not path.exists():
        raise BoundaryImportError(f"{path}: no such file")
    try:
        info = pyogrio.read_info(path, layer=layer)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise BoundaryImportError(f"{path}: cannot read as a vector file ({exc})") from exc
    total = int(info["features"]) if info["features"] >= 0 else 0
    frames = []
    done = 0
    while True:
        chunk = pyogrio.read_dataframe(path, layer=layer, skip_features=done, max_features=CHUNK)
        if chunk.empty:
            break
        frames.append(chunk)
        done += len(chunk)
        if progress:
            progress(done, max(total, done))
        if len(chunk) < CHUNK:
            break
    gdf = pd.concat(frames, ignore_index=True) if frames else pyogrio.read_dataframe(path, layer=layer)
    gdf = gpd.GeoDataFrame(gdf, geometry=gdf.geometry.name, crs=info["crs"])
    gdf.index = pd.RangeIndex(1, len(gdf) + 1, name="feature")
    if gdf.crs is None:
        if not assume_crs:
            raise BoundaryImportError(
                f"{path}: the file declares no coordinate reference system "
                "(a Shapefile without .prj?). Pass --assume-crs, e.g. EPSG:4326 or EPSG:3405 (VN-2000 / UTM 48N)."
            )
        gdf = gdf.set_crs(assume_crs)
        return gdf, str(assume_crs)
    return gdf, gdf.crs.to_string()


def normalise_codes(values: pd.Series, level: Level, path: Path, field_name: str) -> pd.Series:
    """Codes as zero-padded text ("1" -> "01" for a province).

    Shapefiles often store codes as numbers and lose the leading zeros.
    """
    width = CODE_WIDTH[level]
    out = []
    for feature, value in values.items():
        if value is None or (isinstance(value, float) and np.isnan(value)):
            raise BoundaryImportError(f"{path}: feature {feature}: field '{field_name}' is empty")
        if isinstance(value, (int, np.integer)) or (isinstance(value, float) and float(value).is_integer()):
            value = str(int(value))
        value = str(value).strip()
        if not value.isdigit():
            raise BoundaryImportError(
                f"{path}: feature {feature}: field '{field_name}' = {value!r} is not a numeric GSO code"
            )
        if len(value) > width:
            raise BoundaryImportError(
                f"{path}: feature {feature}: field '{field_name}' = {value!r} has more than {width} digits, "
                f"too long for a {level.value} code"
            )
        out.append(value.zfill(width))
    return pd.Series(out, index=values.index, dtype=object)


def polygons_only(gdf: gpd.GeoDataFrame, path: Path) -> tuple[np.ndarray, int]:
    """Check and repair geometries; return MultiPolygons and the number repaired.

    Refuses empty and non-polygon geometry, naming the feature.
    """
    geoms = gdf.geometry.values
    codes = gdf["code"]
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        feature = gdf.index[np.argmax(missing)]
        raise BoundaryImportError(
            f"{path}: feature {feature} (code {codes[feature]}): geometry is empty; "
            f"{int(missing.sum())} feature(s) without geometry in all"
        )
    types = shapely.get_type_id(geoms)
    bad = ~np.isin(types, [3, 6])  # Polygon, MultiPolygon
    if bad.any():
        feature = gdf.index[np.argmax(bad)]
        raise BoundaryImportError(
            f"{path}: feature {feature} (code {codes[feature]}): geometry is a "
            f"{geoms[np.argmax(bad)].geom_type}, not a polygon; "
            f"{int(bad.sum())} non-polygon feature(s) in all"
        )
    invalid = ~shapely.is_valid(geoms)
    repaired = geoms.copy()
    if invalid.any():
        fixed = shapely.make_valid(geoms[invalid])
        # make_valid may return a collection with lines or points where the
        # polygon was degenerate: keep only the polygonal part.
        fixed = np.array([_polygonal_part(g) for g in fixed], dtype=object)
        lost = shapely.is_empty(fixed)
        if lost.any():
            feature = gdf.index[invalid][np.argmax(lost)]
            raise BoundaryImportError(
                f"{path}: feature {feature} (code {codes[feature]}): geometry is invalid and "
                "has no area left after repair"
            )
        repaired[invalid] = fixed
    multi = np.array([g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g]) for g in repaired], dtype=object)
    return multi, int(invalid.sum())


def _polygonal_part(geom: shapely.Geometry) -> shapely.Geometry:
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    polys = [q for p in parts for q in shapely.get_parts(p)]
    return shapely.MultiPolygon(polys) if polys else shapely.MultiPolygon()


def prepare_boundaries(
    gdf: gpd.GeoDataFrame,
    *,
    path: Path,
    level: Level,
    fields: BoundaryFields,
) -> tuple[pd.DataFrame, int, tuple[float, float, float, float]]:
    """Turn a read layer into staging rows (code, name, type, parent, WKB).

    Checks fields, codes (present, numeric, unique) and geometry; reprojects to
    EPSG:4326. Returns rows, the number of repaired geometries and the bbox.
    """
    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    cols = fields.resolve(columns, path)
    if len(gdf) == 0:
        raise BoundaryImportError(f"{path}: the layer has no features")
    gdf = gdf.copy()
    gdf["code"] = normalise_codes(gdf[cols["code"]], level, path, cols["code"])
    dup = gdf["code"].duplicated(keep=False)
    if dup.any():
        first = gdf.loc[dup, "code"].iloc[0]
        features = list(gdf.index[gdf["code"] == first])
        raise BoundaryImportError(
            f"{path}: field '{cols['code']}': code {first} appears in features {', '.join(map(str, features))}; "
            f"codes must be unique ({int(gdf.loc[dup, 'code'].nunique())} duplicated code(s) in all)"
        )
    if gdf.crs is not None and not gdf.crs.equals("EPSG:4326"):
        gdf = gdf.to_crs(4326)
    geoms, repaired = polygons_only(gdf, path)
    bounds = shapely.bounds(geoms)
    # Anything reprojected outside Viet Nam's box: the declared CRS is probably wrong.
    minx, miny, maxx, maxy = VIETNAM_BBOX
    outside = (bounds[:, 0] < minx) | (bounds[:, 1] < miny) | (bounds[:, 2] > maxx) | (bounds[:, 3] > maxy)
    if outside.any():
        feature = gdf.index[np.argmax(outside)]
        raise BoundaryImportError(
            f"{path}: feature {feature} (code {gdf.loc[feature, 'code']}): after reprojection to WGS 84 "
            f"the geometry spans {tuple(round(float(b), 3) for b in bounds[np.argmax(outside)])}, outside Vietnam. "
            "Is the declared CRS right? (Use --assume-crs only for files without one.)"
        )

    def text_column(name: str | None) -> pd.Series:
        if name is None or name not in gdf.columns:
            return pd.Series([None] * len(gdf), index=gdf.index, dtype=object)
        return gdf[name].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else " ".join(str(v).split()))

    rows = pd.DataFrame(
        {
            "feature": gdf.index.to_numpy(),
            "code": gdf["code"].to_numpy(),
            "name": text_column(cols["name"]).to_numpy(),
            "unit_type": text_column(cols["unit_type"]).map(lambda v: v.lower() if v else v).to_numpy(),
            "parent_code": text_column(cols["parent"]).to_numpy(),
            "wkb": shapely.to_wkb(geoms, hex=True, output_dimension=2, include_srid=False),
        }
    )
    bbox = (float(bounds[:, 0].min()), float(bounds[:, 1].min()), float(bounds[:, 2].max()), float(bounds[:, 3].max()))
    return rows, repaired, bbox


STAGE_SQL = """
CREATE TEMP TABLE boundary_stage (
    feature integer, code text, name text, unit_type text, parent_code text, wkb text
) ON COMMIT DROP
"""


def load_boundaries(
    conn: Connection,
    rows: pd.DataFrame,
    *,
    path: Path,
    structure: Structure,
    level: Level,
    source: str,
) -> tuple[int, int]:
    """Load staging rows into ``admin_unit`` inside the caller's transaction.

    Checks, in SQL, that every parent exists at the parent level and that new
    units have a name and a type; raises :class:`BoundaryImportError` naming
    the feature otherwise. Returns (inserted, updated).
    """
    conn.execute(text(STAGE_SQL))
    cursor = conn.connection.dbapi_connection.cursor()
    with cursor.copy("COPY boundary_stage (feature, code, name, unit_type, parent_code, wkb) FROM STDIN") as copy:
        for rec in rows.itertuples(index=False):
            copy.write_row(rec)
    params = {"s": structure.value, "lvl": level.value}
    plevel = parent_level(structure, level)
    if plevel is None:
        conn.execute(text("UPDATE boundary_stage SET parent_code = NULL"))
    else:
        # Parent codes lose leading zeros in numeric fields too.
        conn.execute(
            text("UPDATE boundary_stage SET parent_code = lpad(parent_code, :w, '0') WHERE parent_code ~ '^[0-9]+$'"),
            {"w": CODE_WIDTH[plevel]},
        )
        orphan = conn.execute(
            text(
                """
                SELECT b.feature, b.code, coalesce(b.parent_code, u.parent_code) AS parent
                FROM boundary_stage b
                LEFT JOIN admin_unit u ON u.structure = :s AND u.code = b.code AND u.level = :lvl
                WHERE NOT EXISTS (
                    SELECT 1 FROM admin_unit p
                    WHERE p.structure = :s AND p.level = :plvl
                      AND p.code = coalesce(b.parent_code, u.parent_code))
                ORDER BY b.feature LIMIT 1
                """
            ),
            {**params, "plvl": plevel.value},
        ).first()
        if orphan is not None:
            what = f"parent code {orphan.parent}" if orphan.parent else "no parent code"
            raise BoundaryImportError(
                f"{path}: feature {orphan.feature} (code {orphan.code}): {what} does not exist as a "
                f"{plevel.value} of the {structure.value} structure (field for the parent: --parent-field). "
                "Import the parent level first."
            )
    clash = conn.execute(
        text(
            """
            SELECT b.feature, b.code, u.level FROM boundary_stage b
            JOIN admin_unit u ON u.structure = :s AND u.code = b.code AND u.level <> :lvl
            ORDER BY b.feature LIMIT 1
            """
        ),
        params,
    ).first()
    if clash is not None:
        raise BoundaryImportError(
            f"{path}: feature {clash.feature}: code {clash.code} is already a {clash.level} of the "
            f"{structure.value} structure, not a {level.value}"
        )
    incomplete = conn.execute(
        text(
            """
            SELECT b.feature, b.code, b.name IS NULL AS no_name FROM boundary_stage b
            WHERE (b.name IS NULL OR b.unit_type IS NULL)
              AND NOT EXISTS (SELECT 1 FROM admin_unit u WHERE u.structure = :s AND u.code = b.code)
            ORDER BY b.feature LIMIT 1
            """
        ),
        params,
    ).first()
    if incomplete is not None:
        missing = "name (--name-field)" if incomplete.no_name else "unit type (--type-field)"
        raise BoundaryImportError(
            f"{path}: feature {incomplete.feature} (code {incomplete.code}) is a new unit and the file gives "
            f"no {missing} for it"
        )
    counts = conn.execute(
        text(
            """
            WITH up AS (
                INSERT INTO admin_unit AS u (structure, code, name, unit_type, level, parent_code,
                                             valid_from, valid_to, geom, geom_quality, geom_source)
                SELECT :s, b.code, coalesce(b.name, e.name), coalesce(b.unit_type, e.unit_type), :lvl,
                       coalesce(b.parent_code, e.parent_code), s.valid_from, s.valid_to,
                       ST_SetSRID(ST_GeomFromWKB(decode(b.wkb, 'hex')), 4326), 'official', :src
                FROM boundary_stage b
                JOIN boundary_structure s ON s.name = :s
                LEFT JOIN admin_unit e ON e.structure = :s AND e.code = b.code
                ON CONFLICT (structure, code) DO UPDATE SET
                    name = excluded.name, unit_type = excluded.unit_type, parent_code = excluded.parent_code,
                    geom = excluded.geom, geom_quality = 'official', geom_source = excluded.geom_source
                RETURNING (xmax = 0) AS inserted
            )
            SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated FROM up
            """
        ),
        {**params, "src": source},
    ).one()
    refresh_unit_geometry(conn, structure, codes_from="boundary_stage")
    conn.execute(text("DROP TABLE boundary_stage"))
    return int(counts.inserted), int(counts.updated)


def units_with_geometry(conn: Connection, structure: Structure) -> dict[str, int]:
    """Count of units with a polygon per level of ``structure``."""
    rows = conn.execute(
        text("SELECT level, count(*) FROM admin_unit WHERE structure = :s AND geom IS NOT NULL GROUP BY level"),
        {"s": structure.value},
    ).all()
    return dict(rows)


def import_boundaries(
    path: Path,
    *,
    level: Level,
    structure: Structure,
    fields: BoundaryFields | None = None,
    layer: str | None = None,
    assume_crs: str | None = None,
    progress: Progress | None = None,
) -> BoundaryImportResult:
    """Import one boundary file into ``admin_unit``, all or nothing.

    Units whose code is already known are updated (geometry, and name, type
    and parent where the file gives them); new codes are inserted. Importing
    official polygons replaces approximate ones.

    Example::

        import_boundaries(Path("provinces.gpkg"), level=Level.province,
                          structure=Structure.pre2025)
        # BoundaryImportResult(path='provinces.gpkg', structure='pre2025', level='province', features=62, ...)
    """
    path = Path(path)
    fields = fields or BoundaryFields()
    parent_level(structure, level)  # refuses a level the structure lacks
    gdf, crs = read_boundary_file(path, layer=layer, assume_crs=assume_crs, progress=progress)
    rows, repaired, bbox = prepare_boundaries(gdf, path=path, level=level, fields=fields)
    result = BoundaryImportResult(str(path), structure.value, level.value, features=len(rows), repaired=repaired, source_crs=crs, bbox=bbox)
    with get_engine().begin() as conn:
        result.inserted, result.updated = load_boundaries(
            conn, rows, path=path, structure=structure, level=level, source=f"import:{path.name}"
        )
        result.units_with_geometry = units_with_geometry(conn, structure)
        refresh_scopes(conn)  # new units or parents change what each scope covers
    return result
