"""Mapbox vector tiles of the layers, made by PostGIS (``ST_AsMVT``).

The geometry of a tile is simplified for its zoom (a tolerance of a quarter
of a tile pixel, on the web geometry below zoom 10) and clipped to the tile
with a buffer. Unit tiles come straight from ``admin_unit``; the coverage and
hot-spot tiles join the rows of the same layer functions that the GeoJSON
routes answer with (:mod:`maps.coverage`, :mod:`maps.hotspots`), so a hidden
count is hidden in a tile too. Tiles are cached in memory per layer,
parameters, tile and data version.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from geodata.errors import InvalidInput
from geodata.settings import get_settings

EXTENT = 4096
BUFFER = 64
WORLD_M = 40_075_016.686
MAX_ZOOM = 18


@dataclass(frozen=True)
class Tile:
    z: int
    x: int
    y: int

    def check(self) -> Tile:
        if not 0 <= self.z <= MAX_ZOOM or not (0 <= self.x < 2**self.z and 0 <= self.y < 2**self.z):
            raise InvalidInput(f"no tile {self.z}/{self.x}/{self.y}: zoom 0-{MAX_ZOOM}, x and y from 0 to 2^z - 1",
                               loc=("path", "z"))
        return self

    @property
    def tolerance_m(self) -> float:
        """A quarter of a pixel of this zoom's tile grid, in metres (EPSG:3857)."""
        return WORLD_M / 2**self.z / EXTENT / 4


def level_for_zoom(structure: str, z: int) -> str:
    """The unit level a tile shows by default: provinces when zoomed out, communes when in.

    >>> level_for_zoom("pre2025", 5), level_for_zoom("pre2025", 8), level_for_zoom("2025", 8), level_for_zoom("2025", 10)
    ('province', 'district', 'province', 'commune')
    """
    if z < 7:
        return "province"
    if z < 9:
        return "district" if structure == "pre2025" else "province"
    return "commune"


def _geometry(tile: Tile) -> str:
    column = "u.geom_web" if tile.z < 10 else "u.geom"
    return f"""ST_AsMVTGeom(ST_SimplifyPreserveTopology(ST_Transform({column}, 3857), :tolerance),
                            ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true)"""


UNITS_TILE_SQL = """
WITH t AS (
    SELECT u.code, u.name, u.level, u.parent_code, u.structure, u.geom_quality, {geometry} AS geom
    FROM admin_unit u
    WHERE u.structure = :structure AND u.level = :level AND u.geom IS NOT NULL
      AND u.geom && ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => :margin), 4326)
)
SELECT ST_AsMVT(t, 'units', {extent}, 'geom') FROM t WHERE geom IS NOT NULL
"""

ROWS_TILE_SQL = """
WITH r AS (SELECT key AS code, value AS props FROM jsonb_each(CAST(:rows AS jsonb))),
t AS (
    SELECT r.code, {columns}, {geometry} AS geom
    FROM r JOIN admin_unit u ON u.structure = :structure AND u.code = r.code
    WHERE u.geom IS NOT NULL AND u.geom && ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => :margin), 4326)
)
SELECT ST_AsMVT(t, :layer, {extent}, 'geom') FROM t WHERE geom IS NOT NULL
"""

FEATURES_TILE_SQL = """
WITH r AS (SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(id text, geometry jsonb, props jsonb)),
g AS (SELECT r.*, ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(r.geometry), 4326), 3857) AS g FROM r WHERE r.geometry IS NOT NULL),
t AS (
    SELECT g.id, {columns}, ST_AsMVTGeom(ST_SimplifyPreserveTopology(g.g, :tolerance), ST_TileEnvelope(:z, :x, :y),
                                          {extent}, {buffer}, true) AS geom
    FROM g WHERE g.g && ST_TileEnvelope(:z, :x, :y, margin => :margin)
)
SELECT ST_AsMVT(t, :layer, {extent}, 'geom') FROM t WHERE geom IS NOT NULL
"""


def _params(tile: Tile) -> dict[str, Any]:
    return {"z": tile.z, "x": tile.x, "y": tile.y, "tolerance": tile.tolerance_m, "margin": BUFFER / EXTENT}


def units_tile(conn: Connection, tile: Tile, structure: str, level: str) -> bytes:
    """The tile of the units of ``structure`` at ``level`` (public boundaries)."""
    sql = UNITS_TILE_SQL.format(geometry=_geometry(tile), extent=EXTENT)
    return bytes(conn.execute(text(sql), {**_params(tile), "structure": structure, "level": level}).scalar() or b"")


def rows_tile(conn: Connection, tile: Tile, structure: str, layer: str, rows: dict[str, dict[str, Any]],
              types: dict[str, str]) -> bytes:
    """A tile of unit polygons carrying the given properties (``rows``: code -> properties; ``types``: name -> SQL type).

    The properties are those a layer function gave the caller: a value
    hidden there (None) is absent from the tile's feature too.
    """
    columns = ", ".join(f"(r.props ->> '{name}')::{sql_type} AS \"{name}\"" for name, sql_type in types.items())
    sql = ROWS_TILE_SQL.format(columns=columns, geometry=_geometry(tile), extent=EXTENT)
    return bytes(conn.execute(text(sql), {**_params(tile), "structure": structure, "layer": layer,
                                         "rows": json.dumps(rows, ensure_ascii=False)}).scalar() or b"")


def features_tile(conn: Connection, tile: Tile, layer: str, features: list[dict[str, Any]], types: dict[str, str]) -> bytes:
    """A tile of GeoJSON features (``{"id", "geometry", "props"}``, WGS 84) with the given properties."""
    columns = ", ".join(f"(g.props ->> '{name}')::{sql_type} AS \"{name}\"" for name, sql_type in types.items())
    sql = FEATURES_TILE_SQL.format(columns=columns, extent=EXTENT, buffer=BUFFER)
    return bytes(conn.execute(text(sql), {**_params(tile), "layer": layer,
                                         "rows": json.dumps(features, ensure_ascii=False)}).scalar() or b"")


@dataclass(frozen=True)
class CachedTile:
    """A tile as sent: its bytes, the same gzipped (compressed once, not on every request), its ETag."""

    data: bytes
    gzipped: bytes
    etag: str


class TileCache:
    """Tiles kept in memory, least recently used dropped first; keyed by everything that makes a tile differ."""

    def __init__(self, size: int | None = None) -> None:
        self._size = size
        self.lock = threading.Lock()
        self.tiles: OrderedDict[tuple, CachedTile] = OrderedDict()

    def get(self, key: tuple) -> CachedTile | None:
        with self.lock:
            found = self.tiles.get(key)
            if found is not None:
                self.tiles.move_to_end(key)
            return found

    def put(self, key: tuple, data: bytes) -> CachedTile:
        etag = '"' + hashlib.sha256(repr(key).encode() + data).hexdigest()[:32] + '"'
        tile = CachedTile(data, gzip.compress(data, compresslevel=6, mtime=0), etag)
        size = get_settings().tile_cache_tiles if self._size is None else self._size
        with self.lock:
            self.tiles[key] = tile
            while len(self.tiles) > size:
                self.tiles.popitem(last=False)
        return tile


cache = TileCache()
