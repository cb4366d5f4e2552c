"""Reading a boundary file: the right layer, read once, its text as the bytes it holds.

A GeoPackage may hold several layers: without ``layer`` such a file is
refused, listing them. The layer is read once, as an Arrow stream (the
progress bar follows its batches). A Shapefile's DBF is read as ISO-8859-1,
which maps every byte to one character, so that its text comes back as the
exact bytes of the file: its encoding is decided afterwards
(:mod:`etl.boundaries`), from the ``.cpg``, ``--encoding`` or the names
themselves. Reading it that way also sidesteps GDAL's Windows-1258
conversion, which drops the last character of every field name and value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError, FieldError, GeometryError
from pyproj import CRS

from geodata.errors import InvalidInput
from geodata.tm3 import format_dms

Progress = Callable[[int, int], None]

BATCH = 2000
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


class BoundaryImportError(InvalidInput):
    """A boundary file (or an undo) was refused; the message names file, feature and field."""


@dataclass
class BoundaryLayer:
    """One layer of a boundary file, read whole.

    ``attributes`` is indexed by feature number (1-based); when
    ``raw_text`` is true its text columns hold the file's bytes as ISO-8859-1
    characters (``value.encode("latin-1")`` gives them back).
    """

    path: Path
    layer: str | None
    driver: str
    attributes: pd.DataFrame
    geometry: np.ndarray
    crs: CRS | None
    raw_text: bool = False
    cpg: str | None = None
    numeric_fields: set[str] = field(default_factory=set)
    sha256: str = ""


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a Shapefile with its sidecar files (.shx, .dbf, .prj, .cpg) in that order.

    >>> len(file_sha256(Path(__file__)))
    64
    """
    path = Path(path)
    parts = [path]
    if path.suffix.lower() == ".shp":
        parts = [p for ext in SHAPEFILE_PARTS for p in (sibling(path, ext),) if p is not None]
    digest = hashlib.sha256()
    for part in parts:
        with open(part, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def sibling(path: Path, ext: str) -> Path | None:
    """The file next to ``path`` with extension ``ext`` in either case, if it exists.

    >>> sibling(Path(__file__), ".nothing") is None
    True
    """
    for candidate in (path.with_suffix(ext), path.with_suffix(ext.upper())):
        if candidate.exists():
            return candidate
    return None


def refuse_cut_off_shp(path: Path) -> None:
    """Refuse a .shp shorter than its header says (a copy or a download cut off): GDAL would read the missing
    shapes as empty geometries, which sends the reader looking at the wrong features."""
    with path.open("rb") as f:
        header = f.read(100)
    if len(header) < 100 or int.from_bytes(header[0:4], "big") != 9994:
        raise BoundaryImportError(f"{path}: not a Shapefile (no .shp header)")
    declared = int.from_bytes(header[24:28], "big") * 2  # in 16-bit words
    actual = path.stat().st_size
    if actual < declared:
        raise BoundaryImportError(f"{path}: cut off: {actual:,} of the {declared:,} bytes its header declares; copy the file again")


def describe_crs(crs: CRS | None) -> str:
    """A CRS in a few words (its EPSG code when it has one), never its whole WKT.

    >>> describe_crs(CRS.from_epsg(9209))
    'VN-2000 / TM-3 105-30 (EPSG:9209)'
    >>> describe_crs(CRS.from_proj4("+proj=tmerc +lon_0=105.5 +k=0.9999 +x_0=500000 +ellps=WGS84 +units=m"))
    "unknown (Transverse Mercator, central meridian 105°30', not an EPSG CRS)"
    """
    if crs is None:
        return "no CRS"
    code = crs.to_epsg(min_confidence=90)
    if code is not None:
        return f"{CRS.from_epsg(code).name} (EPSG:{code})"
    detail = []
    op = crs.coordinate_operation
    if op is not None:
        detail.append(op.method_name)
        for p in op.params:
            if "longitude of natural origin" in p.name.lower() or "central meridian" in p.name.lower():
                detail.append(f"central meridian {format_dms(p.value)}")
    detail.append("not an EPSG CRS")
    return f"{crs.name} ({', '.join(detail)})"


def list_layers(path: Path) -> list[tuple[str, str, int]]:
    """(name, geometry type, feature count) of every layer of a vector file.

    >>> from geodata.reference_data import REFERENCE_DIR
    >>> list_layers(REFERENCE_DIR / "vn_2019_seed_subset.gpkg")
    [('provinces', 'MultiPolygon', 5), ('districts', 'MultiPolygon', 74)]
    """
    out = []
    for name, geometry_type in pyogrio.list_layers(path):
        info = pyogrio.read_info(path, layer=name, force_feature_count=True)
        out.append((str(name), str(geometry_type or "no geometry"), int(info["features"])))
    return out


def read_layer(path: Path, layer: str | None = None, progress: Progress | None = None) -> BoundaryLayer:
    """Read one layer of a Shapefile, GeoPackage or GeoJSON, once.

    Refuses a file with several layers when ``layer`` is not given (listing
    the layers with their geometry types and feature counts), an unknown
    layer and a layer without geometry.

    Example::

        read_layer(Path("ha_tinh.gpkg"), layer="xa").attributes.columns
        # Index(['ma_xa', 'ten_xa', 'ma_huyen'], dtype='object')
    """
    path = Path(path)
    if not path.exists():
        raise BoundaryImportError(f"{path}: no such file")
    if path.suffix.lower() == ".shp" and sibling(path, ".dbf") is None:
        # GDAL reads a .shp alone as shapes without attributes: the import would then miss every field by name.
        raise BoundaryImportError(
            f"{path}: no {path.with_suffix('.dbf').name} beside it. A Shapefile is several files with one name: the .dbf "
            "holds the codes and names of the features; copy it (and the .shx, .prj and .cpg) next to the .shp")
    if path.suffix.lower() == ".shp":
        refuse_cut_off_shp(path)
    # GDAL parses a whole GeoJSON file each time it opens one, to list its
    # layer or count its features: such a file (one layer by definition) is
    # opened once, to be read.
    single_parse = path.suffix.lower() in (".geojson", ".json") and layer is None
    try:
        layers = [] if single_parse else [(str(n), str(g or "no geometry")) for n, g in pyogrio.list_layers(path)]
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise BoundaryImportError(f"{path}: cannot read as a vector file ({exc})") from exc
    names = [name for name, _ in layers]
    if (layer is None and len(layers) > 1) or (layer is not None and layer not in names):
        listing = "; ".join(f"'{n}' ({g}, {c} features)" for n, g, c in list_layers(path))
        if layer is not None:
            raise BoundaryImportError(f"{path}: no layer '{layer}'; the file has {listing}")
        raise BoundaryImportError(
            f"{path}: the file has {len(layers)} layers: {listing}. Choose one with --layer "
            "(the import does not guess: a layer of districts read as communes corrupts both)."
        )
    chosen = layer if layer is not None else (names[0] if names else None)
    if layers and layers[names.index(chosen)][1] == "no geometry":
        raise BoundaryImportError(f"{path}: layer '{chosen}' has no geometry")
    if single_parse:
        driver, total = "GeoJSON", 0
    else:
        info = pyogrio.read_info(path, layer=chosen)
        driver, total = info["driver"], max(int(info["features"]), 0)
    shapefile = driver == "ESRI Shapefile"
    cpg_path = sibling(path, ".cpg") if shapefile else None
    options = {"encoding": "ISO-8859-1"} if shapefile else {}
    batches = []
    done = 0
    try:
        with pyogrio.raw.open_arrow(path, layer=chosen, use_pyarrow=True, batch_size=BATCH, **options) as (meta, reader):
            for batch in reader:
                batches.append(batch)
                done += batch.num_rows
                if progress:
                    progress(done, max(total, done))
            table = pa.Table.from_batches(batches, schema=reader.schema)
    except (DataSourceError, DataLayerError, FieldError, GeometryError) as exc:
        raise BoundaryImportError(f"{path}: cannot read as a vector file ({exc})") from exc
    geometry_column = meta["geometry_name"] if meta["geometry_name"] in table.column_names else "wkb_geometry"
    if geometry_column not in table.column_names:
        raise BoundaryImportError(f"{path}: layer '{chosen}' has no geometry")
    wkb = table.column(geometry_column).to_numpy(zero_copy_only=False)
    attributes_table = table.drop_columns([geometry_column])
    numeric = {f.name for f in attributes_table.schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
               or pa.types.is_decimal(f.type)}
    attributes = attributes_table.to_pandas()
    attributes.index = pd.RangeIndex(1, len(attributes) + 1, name="feature")
    crs = CRS.from_user_input(meta["crs"]) if meta.get("crs") else None
    return BoundaryLayer(
        path=path, layer=chosen, driver=driver,
        attributes=attributes, geometry=shapely.from_wkb(wkb), crs=crs, raw_text=shapefile,
        cpg=cpg_path.read_text(errors="replace").strip() if cpg_path else None,
        numeric_fields=numeric, sha256=file_sha256(path),
    )
