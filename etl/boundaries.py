"""Import administrative boundaries from Shapefile, GeoPackage or GeoJSON: the right layer, the
right encoding, the right place, or nothing.

A file goes through, in order:

1. reading (:mod:`etl.boundary_files`): one layer, named when the file has
   several, read once;
2. codes: zero-padded only where leading zeros were lost (a numeric field, or
   text too long to be a code of the level above); duplicates refused;
3. text: UTF-8, or what the ``.cpg`` or ``--encoding`` says, or - for a DBF
   that is not UTF-8 - the one of Windows-1258, TCVN3 and VNI whose names
   match the official names of the units; Unicode NFC;
4. geometry: polygons only, reprojected to WGS 84 from the declared CRS (or
   ``--assume-crs``), invalid polygons repaired and named;
5. one transaction: codes, parents and parent changes checked; the import and
   the previous state of every unit it changes recorded; polygons stored
   (official names and types are kept, the file's stored beside them); every
   unit checked against its parent's polygon (area outside), its neighbours
   (overlaps) and, where a parent's children are all official, the parent
   (gaps); the approximate communes of the parents touched redrawn around
   the official ones.

Any refusal rolls the whole file back and names file, feature and field. A
dry run goes through all of it and rolls back, so it reports exactly what
the import would do. :mod:`etl.boundary_history` lists and undoes imports.
"""

from __future__ import annotations

import getpass
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from sqlalchemy import Connection, text

from etl.boundary_files import BoundaryImportError, Progress, describe_crs, read_layer
from etl.vietnamese_encodings import LEGACY, canonical_encoding, decode
from geodata.approximate import approximate_communes
from geodata.crosswalk import refresh_crosswalk_shares
from geodata.db import get_engine
from geodata.scopes import refresh_scopes
from geodata.settings import get_settings
from geodata.structures import CODE_WIDTH, Level, Structure, parent_level
from geodata.tm3 import meridians_of
from geodata.unit_geometry import refresh_unit_geometry, web_geometry_sql, web_tolerances
from geodata.units import fold
from geodata.vietnam import VIETNAM_BBOX

__all__ = [
    "BoundaryFields", "BoundaryImportError", "BoundaryImportResult", "Progress", "UnitChange", "import_boundaries",
    "load_boundaries", "prepare_boundaries", "read_boundary_file",
]

# A text code shorter than the level's width is padded only when it is too
# long to be a code of the level above: "42" is a province, not district 042;
# "436" is a district, not commune 00436.
TEXT_CODE_MIN_DIGITS = {Level.province: 1, Level.district: 3, Level.commune: 4}
# Detection of a legacy encoding: the share of names (with non-ASCII bytes
# and an official counterpart) that must match the official names.
ENCODING_MATCH = 0.8
# Features converted at a time for reprojection and for COPY.
COPY_CHUNK = 1000
# Units of the file sampled when trying other CRSs for a misplaced file.
CRS_SAMPLE = 200
# How many items a refusal lists before "... and N more".
LISTED = 10
UNIT_PREFIXES = ("thành phố ", "thị trấn ", "thị xã ", "đặc khu ", "tỉnh ", "huyện ", "quận ", "phường ", "xã ",
                 "tp. ", "tp.", "tx. ", "tx.", "tt. ", "tt.", "p. ", "q. ", "h. ")


@dataclass
class UnitChange:
    """One line of an import's report: a unit (by feature and code) and what happened to it."""

    feature: int | None
    code: str
    name: str | None
    detail: str
    value: float | None = None

    def __str__(self) -> str:
        unit = f"code {self.code}{' ' + self.name if self.name else ''}"
        return f"feature {self.feature} ({unit}): {self.detail}" if self.feature is not None else f"{unit}: {self.detail}"


@dataclass
class BoundaryImportResult:
    """What an import did (or, for a dry run, would do)."""

    path: str
    structure: str
    level: str
    layer: str | None = None
    features: int = 0
    import_id: int | None = None
    dry_run: bool = False
    sha256: str = ""
    source_crs: str = ""
    crs_note: str = ""
    encoding: str | None = None
    encoding_note: str = ""
    inserted: int = 0
    updated: int = 0
    new_units: list[UnitChange] = field(default_factory=list)
    reparented: list[UnitChange] = field(default_factory=list)
    renamed: list[UnitChange] = field(default_factory=list)
    retyped: list[UnitChange] = field(default_factory=list)
    repaired: list[UnitChange] = field(default_factory=list)
    outside: list[UnitChange] = field(default_factory=list)
    overlaps: list[UnitChange] = field(default_factory=list)
    gaps: list[UnitChange] = field(default_factory=list)
    unchecked: list[UnitChange] = field(default_factory=list)
    approximate_redrawn: int = 0
    regions_redrawn: list[str] = field(default_factory=list)
    bbox: tuple[float, float, float, float] | None = None
    units_with_geometry: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """The numbers recorded with the import."""
        return {
            "features": self.features, "new": self.inserted, "updated": self.updated, "reparented": len(self.reparented),
            "names_differing": len(self.renamed), "types_differing": len(self.retyped), "repaired": len(self.repaired),
            "outside_reported": len(self.outside), "overlaps_reported": len(self.overlaps), "gaps_reported": len(self.gaps),
            "approximate_redrawn": self.approximate_redrawn,
        }


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
        """Map role -> column of the file, refusing explicit fields it lacks.

        >>> BoundaryFields(name="TEN").resolve(["code", "TEN", "parent_code"], Path("x.shp"))
        {'code': 'code', 'name': 'TEN', 'parent': 'parent_code', 'unit_type': None}
        """
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


# -- codes and names ---------------------------------------------------------------

def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip())


def normalise_codes(values: pd.Series, level: Level, path: Path, field_name: str, *, numeric: bool,
                    optional: bool = False) -> pd.Series:
    """GSO codes as zero-padded text, padded only where leading zeros were certainly lost.

    A numeric field (or text such as ``"436.0"`` that went through a number)
    lost its zeros: ``1`` is province ``01``. Text keeps them, so text shorter
    than the level's width is refused when it could be a code of the level
    above (``"436"`` is a district, not commune ``00436``).

    >>> s = pd.Series(["18073", "1234.0", "436"], index=[1, 2, 3])
    >>> normalise_codes(s[:2], Level.commune, Path("x.gpkg"), "ma", numeric=False).tolist()
    ['18073', '01234']
    >>> normalise_codes(s, Level.commune, Path("x.gpkg"), "ma", numeric=False)
    Traceback (most recent call last):
    ...
    etl.boundary_files.BoundaryImportError: x.gpkg: feature 3: field 'ma' = '436' has 3 digits: a commune code has 5 (a district code has 3). Is this the layer and the field of communes (--layer, --code-field)?
    """
    width = CODE_WIDTH[level]
    out: list[str | None] = []
    for feature, value in values.items():
        if _is_missing(value):
            if optional:
                out.append(None)
                continue
            raise BoundaryImportError(f"{path}: feature {feature}: field '{field_name}' is empty")
        lost_zeros = numeric or isinstance(value, (int, float, np.integer, np.floating))
        if isinstance(value, (float, np.floating)) or (isinstance(value, str) and re.fullmatch(r"\s*\d+\.0*\s*", value)):
            number = float(value)
            if not number.is_integer():
                raise BoundaryImportError(f"{path}: feature {feature}: field '{field_name}' = {value!r} is not a whole number, not a GSO code")
            value, lost_zeros = str(int(number)), True
        elif isinstance(value, (int, np.integer)):
            value = str(int(value))
        value = str(value).strip()
        if not value.isdigit():
            raise BoundaryImportError(f"{path}: feature {feature}: field '{field_name}' = {value!r} is not a numeric GSO code")
        if len(value) > width:
            raise BoundaryImportError(
                f"{path}: feature {feature}: field '{field_name}' = {value!r} has more than {width} digits, "
                f"too long for a {level.value} code"
            )
        if len(value) < width and not lost_zeros and len(value) < TEXT_CODE_MIN_DIGITS[level]:
            shorter = next((lv for lv, w in CODE_WIDTH.items() if w == len(value)), None)
            what = f" (a {shorter.value} code has {len(value)})" if shorter else ""
            raise BoundaryImportError(
                f"{path}: feature {feature}: field '{field_name}' = {value!r} has {len(value)} digits: a {level.value} code "
                f"has {width}{what}. Is this the layer and the field of {level.value}s (--layer, --code-field)?"
            )
        out.append(value.zfill(width))
    return pd.Series(out, index=values.index, dtype=object)


def clean_text(value: object) -> str | None:
    """Whitespace collapsed, Unicode NFC; None for empty.

    >>> clean_text("  Phu\u031bo\u031b\u0300ng   Đại Nài ")
    'Phường Đại Nài'
    """
    if _is_missing(value):
        return None
    return unicodedata.normalize("NFC", " ".join(str(value).split()))


def name_key(value: str) -> str:
    """A name reduced for comparison: no unit-type prefix, no diacritics, no case, no leading zeros.

    >>> name_key("Phường Đại Nài") == name_key("Đại Nài"), name_key("Phường 01"), name_key("Thị xã Kỳ Anh")
    (True, '1', 'ky anh')
    """
    low = unicodedata.normalize("NFC", " ".join(value.split())).lower()
    for prefix in UNIT_PREFIXES:
        if low.startswith(prefix) and len(low) > len(prefix):
            low = low[len(prefix):].strip()
            break
    folded = fold(low)
    if folded.isdigit():  # "Phường 01" is ward "1"
        return folded.lstrip("0") or "0"
    return folded


# -- encodings -------------------------------------------------------------------

@dataclass
class TextField:
    """A text field of the file with its raw bytes per feature and the official values to compare with."""

    name: str
    raw: pd.Series
    official: pd.Series


def choose_encoding(fields: list[TextField], *, cpg: str | None, given: str | None, path: Path) -> tuple[str, str]:
    """Decide the encoding of a DBF's text; returns (encoding, how it was decided).

    ``--encoding`` wins; then a ``.cpg`` saying UTF-8 or Windows-1258; then
    valid UTF-8 is UTF-8; otherwise exactly one of Windows-1258, TCVN3 and
    VNI must give names matching the official names of the units, else the
    file is refused with a few names decoded each way.

    >>> from etl.vietnamese_encodings import encode
    >>> official = pd.Series(["Đại Nài", "Thạch Hà", "Cẩm Xuyên"], index=[1, 2, 3])
    >>> raw = official.map(lambda n: encode(n, "tcvn3"))
    >>> choose_encoding([TextField("ten", raw, official)], cpg=None, given=None, path=Path("xa.shp"))
    ('tcvn3', 'detected: the names read as tcvn3 match the official names (3 of 3)')
    """
    if given:
        try:
            return canonical_encoding(given), "given with --encoding"
        except ValueError as exc:
            raise BoundaryImportError(f"--encoding: {exc}") from None
    declared = None
    if cpg:
        try:
            declared = canonical_encoding(cpg)
        except ValueError:
            declared = None
    if declared in ("utf-8", "cp1258"):
        return declared, f"the .cpg says {cpg}"
    values = [b for f in fields for b in f.raw if b]
    cpg_note = f" (the .cpg says {cpg}, which is not a Vietnamese encoding)" if cpg else ""
    if all(b.isascii() for b in values):
        return "utf-8", "ASCII only" + cpg_note
    try:
        for b in values:
            b.decode("utf-8")
        return "utf-8", "valid UTF-8" + cpg_note
    except UnicodeDecodeError:
        pass
    pairs = [(f, feature, b) for f in fields for feature, b in f.raw.items() if b and not b.isascii()]
    compared = [(f, feature, b) for f, feature, b in pairs if isinstance(f.official.get(feature), str)]
    decoded: dict[str, list[str] | None] = {}
    score: dict[str, int] = {}
    for enc in LEGACY:
        try:
            decoded[enc] = [decode(b, enc) for _, _, b in pairs]
        except UnicodeDecodeError:
            decoded[enc] = None
            continue
        score[enc] = sum(name_key(decode(b, enc)) == name_key(f.official[feature]) for f, feature, b in compared)
    matching = [enc for enc in score if compared and score[enc] >= ENCODING_MATCH * len(compared)]
    if matching and len({tuple(decoded[enc]) for enc in matching}) == 1:
        enc = matching[0]
        return enc, f"detected: the names read as {enc} match the official names ({score[enc]} of {len(compared)})" + cpg_note
    field_names = ", ".join(f"'{f.name}'" for f in fields)
    samples = pairs[:3]
    shown = "; ".join(
        f"{enc}: " + (", ".join(repr(decode(b, enc)) for _, _, b in samples) if decoded[enc] is not None else "(not valid)")
        + (f" - {score[enc]} of {len(compared)} names match" if enc in score and compared else "")
        for enc in LEGACY
    )
    reason = ("no official names to compare them with (new units?)" if not compared
              else "several encodings give names matching the official ones" if matching
              else "no encoding gives names matching the official ones")
    raise BoundaryImportError(
        f"{path}: the text of {field_names} is not UTF-8 and the encoding cannot be told ({reason}){cpg_note}. "
        f"Features {', '.join(str(feature) for _, feature, _ in samples)} read each way: {shown}. "
        f"Choose with --encoding {'|'.join(LEGACY)} (or utf-8)."
    )


def decode_column(raw: pd.Series, encoding: str, path: Path, field_name: str) -> pd.Series:
    """Decode raw bytes per feature, refusing (naming feature and field) what is not valid in ``encoding``.

    >>> decode_column(pd.Series([b"\\xa7\\xb9i N\\xb5i", None], index=[1, 2]), "tcvn3", Path("xa.shp"), "TEN").tolist()
    ['Đại Nài', None]
    """
    out = {}
    for feature, b in raw.items():
        if b is None:
            out[feature] = None
            continue
        try:
            out[feature] = decode(b, encoding)
        except UnicodeDecodeError as exc:
            raise BoundaryImportError(
                f"{path}: feature {feature}: field '{field_name}' is not valid {encoding} text "
                f"(byte 0x{b[exc.start]:02X} at position {exc.start + 1}); choose another with --encoding"
            ) from None
    return pd.Series(out, index=raw.index, dtype=object)


def _raw_bytes(series: pd.Series) -> pd.Series:
    return series.map(lambda v: None if _is_missing(v) else str(v).encode("latin-1"))


def _field_name(raw_name: str, cpg: str | None) -> str:
    # DBF field names come back byte for byte too; they are nearly always ASCII.
    b = raw_name.encode("latin-1", errors="replace")
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return decode(b, canonical_encoding(cpg)) if cpg else raw_name
        except ValueError:
            return raw_name


# -- geometry ----------------------------------------------------------------------

def polygons_only(geoms: np.ndarray, features: pd.Index, codes: pd.Series, path: Path) -> tuple[np.ndarray, list[UnitChange]]:
    """Check and repair geometries; return MultiPolygons and the features repaired.

    Refuses empty and non-polygon geometry, naming the feature.

    >>> bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)])
    >>> geoms, repaired = polygons_only(np.array([bowtie]), pd.Index([1]), pd.Series(["01"]), Path("p.shp"))
    >>> geoms[0].geom_type, [str(c) for c in repaired]
    ('MultiPolygon', ['feature 1 (code 01): repaired: Self-intersection[0.5 0.5]'])
    """
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        i = int(np.argmax(missing))
        raise BoundaryImportError(
            f"{path}: feature {features[i]} (code {codes.iloc[i]}): geometry is empty; "
            f"{int(missing.sum())} feature(s) without geometry in all"
        )
    bad = ~np.isin(shapely.get_type_id(geoms), [3, 6])  # Polygon, MultiPolygon
    if bad.any():
        i = int(np.argmax(bad))
        raise BoundaryImportError(
            f"{path}: feature {features[i]} (code {codes.iloc[i]}): geometry is a "
            f"{geoms[i].geom_type}, not a polygon; {int(bad.sum())} non-polygon feature(s) in all"
        )
    invalid = ~shapely.is_valid(geoms)
    repaired = geoms.copy()
    changes: list[UnitChange] = []
    for i in np.flatnonzero(invalid):
        reason = shapely.is_valid_reason(geoms[i])
        # make_valid may return a collection with lines or points where the
        # polygon was degenerate: keep only the polygonal part.
        fixed = _polygonal_part(shapely.make_valid(geoms[i]))
        if fixed.is_empty:
            raise BoundaryImportError(
                f"{path}: feature {features[i]} (code {codes.iloc[i]}): geometry is invalid ({reason}) and "
                "has no area left after repair"
            )
        repaired[i] = fixed
        changes.append(UnitChange(int(features[i]), str(codes.iloc[i]), None, f"repaired: {reason}"))
    single = shapely.get_type_id(repaired) == 3
    if single.any():
        repaired[single] = shapely.multipolygons(repaired[single].reshape(-1, 1))
    return repaired, changes


def _polygonal_part(geom: shapely.Geometry) -> shapely.Geometry:
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    polys = [q for p in parts for q in shapely.get_parts(p)]
    return shapely.MultiPolygon(polys) if polys else shapely.MultiPolygon()


def _outside_vietnam(bounds: np.ndarray) -> np.ndarray:
    minx, miny, maxx, maxy = VIETNAM_BBOX
    return (bounds[:, 0] < minx) | (bounds[:, 1] < miny) | (bounds[:, 2] > maxx) | (bounds[:, 3] > maxy)


def to_wgs84(geoms: np.ndarray, crs: CRS) -> np.ndarray:
    """Reproject an array of geometries from ``crs`` to EPSG:4326 (longitude, latitude).

    On its central meridian, a VN-2000 TM-3 point is at 105°30' E of VN-2000,
    which is 105.5018 E in WGS 84 (the datum shift):

    >>> round(to_wgs84(np.array([shapely.Point(500000, 2000000)]), CRS.from_epsg(9209))[0].x, 4)
    105.5018

    In chunks: the coordinate arrays of a whole province's file, copied three
    times over by the transformation, were a third of an import's memory.
    """
    if crs.equals("EPSG:4326"):
        return geoms
    transformer = Transformer.from_crs(crs, 4326, always_xy=True)
    out = np.empty(len(geoms), dtype=object)
    for start in range(0, len(geoms), COPY_CHUNK):
        out[start:start + COPY_CHUNK] = shapely.transform(geoms[start:start + COPY_CHUNK],
                                                          lambda c: np.column_stack(transformer.transform(c[:, 0], c[:, 1])))
    return out


def _swap_xy(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda c: c[:, ::-1])


@dataclass
class PreparedBoundaries:
    """A layer turned into staging rows (feature, code, name, type, parent, MultiPolygon in EPSG:4326), with what was found on the way."""

    rows: pd.DataFrame
    repaired: list[UnitChange]
    bbox: tuple[float, float, float, float]
    source_crs: CRS | None = None
    source_geometry: np.ndarray | None = None


def prepare_boundaries(
    gdf: gpd.GeoDataFrame,
    *,
    path: Path,
    level: Level,
    fields: BoundaryFields,
    parents_at: Level | None = None,
    numeric_fields: set[str] | None = None,
) -> PreparedBoundaries:
    """Turn a read layer into staging rows (feature, code, name, unit_type, parent_code, geom: MultiPolygons in EPSG:4326).

    Checks fields, codes (present, numeric, unique, of the level) and
    geometry; reprojects to EPSG:4326 from the frame's CRS. Parent codes are
    read (and padded) as codes of level ``parents_at``; without it the file's
    parents are ignored. ``numeric_fields`` names the fields the file stores
    as numbers (their codes lost leading zeros); by default the frame's
    numeric columns. Text is expected decoded (see :func:`choose_encoding`).

    Example::

        prepared = prepare_boundaries(gdf, path=Path("xa.gpkg"), level=Level.commune, fields=BoundaryFields())
        prepared.rows.columns.tolist()
        # ['feature', 'code', 'name', 'unit_type', 'parent_code', 'geom']
    """
    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    cols = fields.resolve(columns, path)
    if len(gdf) == 0:
        raise BoundaryImportError(f"{path}: the layer has no features")
    if numeric_fields is None:
        numeric_fields = {c for c in columns if pd.api.types.is_numeric_dtype(gdf[c])}
    codes = normalise_codes(gdf[cols["code"]], level, path, cols["code"], numeric=cols["code"] in numeric_fields)
    dup = codes.duplicated(keep=False)
    if dup.any():
        first = codes[dup].iloc[0]
        features = list(codes.index[codes == first])
        raise BoundaryImportError(
            f"{path}: field '{cols['code']}': code {first} appears in features {', '.join(map(str, features))}; "
            f"codes must be unique ({int(codes[dup].nunique())} duplicated code(s) in all)"
        )
    parents: pd.Series = pd.Series([None] * len(gdf), index=gdf.index, dtype=object)
    if cols["parent"] is not None and parents_at is not None:
        parents = normalise_codes(gdf[cols["parent"]], parents_at, path, cols["parent"],
                                  numeric=cols["parent"] in numeric_fields, optional=True)

    def text_column(role: str) -> pd.Series:
        name = cols[role]
        if name is None:
            return pd.Series([None] * len(gdf), index=gdf.index, dtype=object)
        return gdf[name].map(clean_text)

    source = np.asarray(gdf.geometry.values, dtype=object)
    geoms = source
    if gdf.crs is not None and not gdf.crs.equals("EPSG:4326"):
        geoms = to_wgs84(source, gdf.crs)
    geoms = np.asarray(geoms, dtype=object)
    geoms, repaired = polygons_only(geoms, gdf.index, codes, path)
    bounds = shapely.bounds(geoms)
    outside = _outside_vietnam(bounds)
    if outside.any():
        i = int(np.argmax(outside))
        swapped = _swap_xy(source[i])
        if gdf.crs is not None and not gdf.crs.equals("EPSG:4326"):
            swapped = to_wgs84(np.array([swapped], dtype=object), gdf.crs)[0]
        hint = ("The coordinates look swapped: with x and y exchanged the feature lies in Vietnam "
                "(latitude or northing written first?). Swap them in the file."
                if not swapped.is_empty and not _outside_vietnam(shapely.bounds(np.array([swapped])))[0]
                else "Is the declared CRS right? Override it with --assume-crs (e.g. a VN-2000 TM-3 zone, EPSG:9205-9218).")
        raise BoundaryImportError(
            f"{path}: feature {gdf.index[i]} (code {codes.iloc[i]}): after reprojection to WGS 84 from "
            f"{describe_crs(gdf.crs)} the geometry spans {tuple(round(float(b), 3) for b in bounds[i])}, outside Vietnam "
            f"({int(outside.sum())} of {len(gdf)} features). {hint}"
        )
    rows = pd.DataFrame(
        {
            "feature": gdf.index.to_numpy(),
            "code": codes.to_numpy(),
            "name": text_column("name").to_numpy(),
            "unit_type": text_column("unit_type").map(lambda v: v.lower() if v else v).to_numpy(),
            "parent_code": parents.to_numpy(),
            "geom": geoms,
        }
    )
    bbox = (float(bounds[:, 0].min()), float(bounds[:, 1].min()), float(bounds[:, 2].max()), float(bounds[:, 3].max()))
    return PreparedBoundaries(rows, repaired, bbox, gdf.crs, source)


def read_boundary_file(path: Path, *, layer: str | None = None, assume_crs: str | None = None,
                       progress: Progress | None = None) -> tuple[gpd.GeoDataFrame, str]:
    """Read a UTF-8 boundary layer (GeoPackage, GeoJSON) into a frame indexed by feature number.

    Returns the frame and the CRS it declares (or ``assume_crs``). For the
    bundled reference files; imports go through :func:`import_boundaries`.

    Example::

        gdf, crs = read_boundary_file(REFERENCE_DIR / "vn_2019_provinces.gpkg", layer="provinces")
    """
    src = read_layer(Path(path), layer, progress)
    crs = CRS.from_user_input(assume_crs) if assume_crs else src.crs
    if crs is None:
        raise BoundaryImportError(f"{path}: the file declares no coordinate reference system; pass --assume-crs")
    gdf = gpd.GeoDataFrame(src.attributes, geometry=src.geometry, crs=crs)
    return gdf, crs.to_string()


# -- the transaction -------------------------------------------------------------------

STAGE_SQL = """
CREATE TEMP TABLE boundary_stage (
    feature integer PRIMARY KEY, code text NOT NULL UNIQUE, name text, unit_type text, parent_code text,
    geom geometry(MultiPolygon, 4326) NOT NULL
) ON COMMIT DROP
"""

PLAN_SQL = """
CREATE TEMP TABLE boundary_plan ON COMMIT DROP AS
SELECT b.feature, b.code, b.name AS file_name, b.unit_type AS file_type, b.parent_code AS file_parent,
       u.code IS NOT NULL AS existed, u.level AS old_level, u.name AS official_name, u.unit_type AS official_type,
       u.parent_code AS old_parent, coalesce(b.parent_code, u.parent_code) AS new_parent
FROM boundary_stage b LEFT JOIN admin_unit u ON u.structure = :s AND u.code = b.code
"""

# A parent change, with where the polygon lies: in the file's parent and in
# the unit's own (the first few; they are for the message).
PARENT_CHANGES_SQL = """
SELECT p.feature, p.code, p.official_name, p.old_parent, op.name AS old_parent_name, p.file_parent, np.name AS new_parent_name,
       CASE WHEN np.geom IS NULL THEN NULL ELSE ST_Area(ST_Intersection(b.geom, np.geom)) / nullif(ST_Area(b.geom), 0) END AS in_new,
       CASE WHEN op.geom IS NULL THEN NULL ELSE ST_Area(ST_Intersection(b.geom, op.geom)) / nullif(ST_Area(b.geom), 0) END AS in_old
FROM boundary_plan p
JOIN boundary_stage b USING (feature)
LEFT JOIN admin_unit op ON op.structure = :s AND op.code = p.old_parent
LEFT JOIN admin_unit np ON np.structure = :s AND np.code = p.file_parent
WHERE p.existed AND p.file_parent IS NOT NULL AND p.file_parent IS DISTINCT FROM p.old_parent
  AND np.level = :plvl  -- an unknown parent is refused as such
ORDER BY p.feature
"""

RECORD_SQL = """
INSERT INTO boundary_import_unit (import_id, structure, code, existed, name, unit_type, parent_code, geom, geom_quality,
                                  geom_source, name_in_file, unit_type_in_file, boundary_import_id)
SELECT :id, :s, b.code, u.code IS NOT NULL, u.name, u.unit_type, u.parent_code, u.geom, u.geom_quality,
       u.geom_source, u.name_in_file, u.unit_type_in_file, u.boundary_import_id
FROM boundary_stage b LEFT JOIN admin_unit u ON u.structure = :s AND u.code = b.code
"""

# Official names and types stay; the file's go beside them. A new unit (only
# with --allow-new-units) takes the file's. The web copy is made here, in the
# same write.
APPLY_SQL = f"""
WITH up AS (
    INSERT INTO admin_unit AS u (structure, code, name, unit_type, level, parent_code, valid_from, valid_to, geom, geom_web,
                                 geom_quality, geom_source, name_in_file, unit_type_in_file, boundary_import_id)
    SELECT :s, b.code, coalesce(e.name, b.name), coalesce(e.unit_type, b.unit_type), :lvl,
           coalesce(b.parent_code, e.parent_code), s.valid_from, s.valid_to, b.geom, {web_geometry_sql("b.geom", ":lvl")}, 'official', :src,
           b.name, b.unit_type, :id
    FROM boundary_stage b
    JOIN boundary_structure s ON s.name = :s
    LEFT JOIN admin_unit e ON e.structure = :s AND e.code = b.code
    ON CONFLICT (structure, code) DO UPDATE SET
        parent_code = excluded.parent_code, geom = excluded.geom, geom_web = excluded.geom_web, geom_quality = 'official',
        geom_source = excluded.geom_source,
        name_in_file = excluded.name_in_file, unit_type_in_file = excluded.unit_type_in_file,
        boundary_import_id = excluded.boundary_import_id
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated FROM up
"""



def m2(geom: str) -> str:
    """SQL for the area in m² of a lon/lat polygon expression, from its planar area in square degrees.

    The square degree is scaled by the WGS 84 radii of curvature at the
    polygon's middle latitude: within 0.01 % of ``ST_Area(geography)`` for a
    commune or a district, and ten times faster (that was a tenth of an
    import of 11,000 communes).

    >>> m2("b.geom").startswith("ST_Area(b.geom) * 1.230874e10 * cos(radians((ST_YMin(b.geom) + ST_YMax(b.geom)) / 2))")
    True
    """
    phi = f"radians((ST_YMin({geom}) + ST_YMax({geom})) / 2)"
    # (pi/180)^2 * a^2 * (1 - e^2) = 1.230874e10 m² per square degree at the equator
    return f"ST_Area({geom}) * 1.230874e10 * cos({phi}) / power(1 - 0.00669437999014 * power(sin({phi}), 2), 2)"


# Digitising noise: neighbouring polygons that do not share vertices overlap
# or miss each other along their borders by millimetres. A unit inside its
# parent's polygon widened by this much (in degrees, about 0.1 m) lies
# inside it, and two units whose polygons narrowed by this much do not meet
# do not overlap. Only what passes those tests is measured, with overlays
# that cost milliseconds per polygon.
NOISE = 1e-6

# Each unit against its parent's polygon, or the grandparent's where the
# parent has none (a district split off after the polygons were drawn).
FIT_SQL = f"""
CREATE TEMP TABLE boundary_fit ON COMMIT DROP AS
SELECT b.feature, b.code, u.name, coalesce(p.code, g.code) AS against, coalesce(p.level, g.level) AS against_level,
       coalesce(p.name, g.name) AS against_name, {m2("b.geom")} AS area_m2, 0::float8 AS outside_m2
FROM boundary_stage b
JOIN admin_unit u ON u.structure = :s AND u.code = b.code
LEFT JOIN admin_unit pp ON pp.structure = :s AND pp.code = u.parent_code
LEFT JOIN admin_unit p ON p.structure = :s AND p.code = u.parent_code AND p.geom IS NOT NULL
LEFT JOIN admin_unit g ON p.code IS NULL AND g.structure = :s AND g.code = pp.parent_code AND g.geom IS NOT NULL
"""

# Parent by parent, so that each parent's prepared polygon serves all its
# children in turn, whatever the order of the file.
OUTSIDE_SQL = f"""
CREATE TEMP TABLE boundary_shell ON COMMIT DROP AS
SELECT a.code, a.geom, ST_Buffer(a.geom, {NOISE}, 'quad_segs=1') AS shell
FROM admin_unit a WHERE a.structure = :s AND a.code IN (SELECT against FROM boundary_fit);
CREATE INDEX ON boundary_fit (against);
CREATE TEMP TABLE boundary_outside ON COMMIT DROP AS
SELECT x.feature, x.m2 FROM boundary_shell sh
CROSS JOIN LATERAL (
    SELECT f.feature, {m2("ST_Difference(b.geom, sh.geom)")} AS m2
    FROM boundary_fit f JOIN boundary_stage b ON b.feature = f.feature
    WHERE f.against = sh.code AND NOT ST_CoveredBy(b.geom, sh.shell)
) x;
UPDATE boundary_fit f SET outside_m2 = o.m2 FROM boundary_outside o WHERE o.feature = f.feature
"""

# How far and which way a misplaced file lies from its parents: centre of
# its units to centre of their parents' polygons (area-weighted). For a file
# covering its parents this is the shift a wrong CRS or zone produces.
MISPLACED_SQL = """
SELECT ST_Distance(pc::geography, fc::geography) AS shift_m, degrees(ST_Azimuth(pc, fc)) AS azimuth
FROM (SELECT ST_Centroid(ST_Collect(geom)) AS fc FROM boundary_stage) f,
     (SELECT ST_Centroid(ST_Collect(a.geom)) AS pc FROM admin_unit a
      WHERE a.structure = :s AND a.code IN (SELECT DISTINCT against FROM boundary_fit WHERE against IS NOT NULL)) p
"""

# The official units of the file's level that an overlap could involve: the
# file's own and those already stored around them, each with its core.
CORES_SQL = f"""
CREATE TEMP TABLE boundary_core ON COMMIT DROP AS
SELECT u.code, u.name, coalesce(u.parent_code, '') AS parent, b.feature, u.geom,
       ST_Buffer(u.geom, -{NOISE}, 'quad_segs=1') AS core, {m2("u.geom")} AS area_m2
FROM admin_unit u LEFT JOIN boundary_stage b ON b.code = u.code
WHERE u.structure = :s AND u.level = :lvl AND u.geom_quality = 'official'
  AND (b.code IS NOT NULL OR EXISTS (SELECT 1 FROM boundary_stage x WHERE x.geom && u.geom));
CREATE INDEX ON boundary_core USING gist (core);
ANALYZE boundary_core
"""

OVERLAP_PAIRS_SQL = f"""
CREATE TEMP TABLE boundary_overlap ON COMMIT DROP AS
SELECT a.code AS a, a.name AS a_name, a.feature AS a_feature, a.parent AS a_parent,
       b.code AS b, b.name AS b_name, b.feature AS b_feature, b.parent AS b_parent,
       {m2("ST_Intersection(a.geom, b.geom)")} AS m2, least(a.area_m2, b.area_m2) AS smaller_m2
FROM boundary_core a JOIN boundary_core b ON a.core && b.core AND a.code < b.code
WHERE (a.feature IS NOT NULL OR b.feature IS NOT NULL) AND ST_Intersects(a.core, b.core)
"""

# Children of the parents the file touched, at the file's level.
GROUPS_SQL = """
CREATE TEMP TABLE boundary_group ON COMMIT DROP AS
SELECT coalesce(c.parent_code, '') AS parent, count(*) AS children,
       count(*) FILTER (WHERE c.geom_quality = 'official') AS official
FROM admin_unit c
WHERE c.structure = :s AND c.level = :lvl
  AND coalesce(c.parent_code, '') IN (SELECT DISTINCT coalesce(u.parent_code, '') FROM admin_unit u
                                       JOIN boundary_stage b ON u.structure = :s AND u.code = b.code)
GROUP BY 1
"""

# Where every child of a parent is official, the gap is the parent's area
# less what its children cover of it: their areas inside it, less their
# overlaps (an overlap covers the same ground twice). No union of the
# children is needed, which on 11,000 communes took a minute.
GAPS_SQL = f"""
WITH inside AS (
    SELECT parent, sum(m2) AS m2 FROM (
        -- the file's units were measured already
        SELECT f.against AS parent, f.area_m2 - f.outside_m2 AS m2 FROM boundary_fit f
        JOIN admin_unit u ON u.structure = :s AND u.code = f.code AND u.parent_code = f.against
        UNION ALL
        SELECT c.parent_code, {m2("c.geom")} - CASE WHEN ST_CoveredBy(c.geom, sh.shell) THEN 0
                                                    ELSE {m2("ST_Difference(c.geom, sh.geom)")} END
        FROM admin_unit c JOIN boundary_shell sh ON sh.code = c.parent_code
        WHERE c.structure = :s AND c.level = :lvl AND c.geom_quality = 'official'
          AND c.code NOT IN (SELECT code FROM boundary_stage)
    ) x
    WHERE parent IN (SELECT parent FROM boundary_group WHERE children = official)
    GROUP BY parent
),
twice AS (
    SELECT a_parent AS parent, sum(m2) AS m2 FROM boundary_overlap WHERE a_parent = b_parent GROUP BY 1
)
SELECT i.parent, p.name, {m2("p.geom")} AS parent_m2,
       greatest({m2("p.geom")} - i.m2 + coalesce(t.m2, 0), 0) AS gap_m2, true AS complete
FROM inside i JOIN admin_unit p ON p.structure = :s AND p.code = i.parent LEFT JOIN twice t USING (parent)
UNION ALL
-- Where only some children are official: holes enclosed by them that hold
-- no centre of another child (an enclave commune is not a gap).
SELECT g.parent, p.name, {m2("p.geom")}, sum({m2("h.geom")}), false
FROM boundary_group g
JOIN admin_unit p ON p.structure = :s AND p.code = g.parent
CROSS JOIN LATERAL (SELECT ST_Union(c.geom) AS geom FROM admin_unit c
                    WHERE c.structure = :s AND c.level = :lvl AND c.parent_code = g.parent AND c.geom_quality = 'official') u
CROSS JOIN LATERAL ST_Dump(u.geom) AS part
CROSS JOIN LATERAL ST_DumpRings(part.geom) AS h
WHERE g.children > g.official AND g.official > 0 AND h.path[1] > 0
  AND NOT EXISTS (SELECT 1 FROM admin_unit o WHERE o.structure = :s AND o.level = :lvl AND o.parent_code = g.parent
                    AND o.geom_quality IS DISTINCT FROM 'official' AND o.centre IS NOT NULL AND ST_Covers(h.geom, o.centre))
GROUP BY g.parent, p.name, p.geom
"""

# The clip regions of approximate communes an import touches: those whose
# cells overlap an imported polygon (merely touching along the border does
# not count), the imported districts and provinces (they are regions), and
# the parents, old and new, of imported units.
REGIONS_SQL = """
SELECT DISTINCT r FROM (
    SELECT split_part(a.geom_source, ' ', -1) AS r FROM admin_unit a JOIN boundary_stage b ON a.geom && b.geom
    WHERE a.structure = :s AND a.level = 'commune' AND a.geom_quality = 'approximate' AND ST_Relate(a.geom, b.geom, 'T********')
    UNION ALL SELECT b.code FROM boundary_stage b JOIN admin_unit u ON u.structure = :s AND u.code = b.code AND u.level <> 'commune'
    UNION ALL SELECT u.parent_code FROM admin_unit u JOIN boundary_stage b ON u.structure = :s AND u.code = b.code
    UNION ALL SELECT parent_code FROM boundary_import_unit WHERE import_id = :id
) x WHERE r IS NOT NULL AND r <> ''
"""


def stage_boundaries(conn: Connection, rows: pd.DataFrame) -> None:
    """COPY staging rows into the temporary table ``boundary_stage`` (dropped at commit).

    Example::

        stage_boundaries(conn, prepare_boundaries(gdf, path=path, level=Level.commune, fields=BoundaryFields()).rows)
    """
    conn.execute(text(STAGE_SQL))
    cursor = conn.connection.dbapi_connection.cursor()
    with cursor.copy("COPY boundary_stage (feature, code, name, unit_type, parent_code, geom) FROM STDIN") as copy:
        # Hex EWKB is COPY's text form of a geometry(MultiPolygon, 4326) value; made a chunk at a
        # time, since for a province's file it is twice the size of the polygons themselves.
        for start in range(0, len(rows), COPY_CHUNK):
            chunk = rows.iloc[start:start + COPY_CHUNK]
            ewkb = shapely.to_wkb(shapely.set_srid(chunk["geom"].to_numpy(), 4326), hex=True, include_srid=True, output_dimension=2)
            for rec in zip(chunk["feature"].tolist(), chunk["code"], chunk["name"], chunk["unit_type"], chunk["parent_code"], ewkb,
                           strict=True):
                copy.write_row(rec)
    conn.execute(text("CREATE INDEX ON boundary_stage USING gist (geom)"))
    conn.execute(text("ANALYZE boundary_stage"))


def _listing(lines: list[str]) -> str:
    more = f"; ... and {len(lines) - LISTED} more" if len(lines) > LISTED else ""
    return "; ".join(lines[:LISTED]) + more


def _km2(m2: float) -> str:
    return f"{m2 / 1e6:.2f} km²"


def _pct(share: float | None) -> str:
    return "?" if share is None else f"{100 * share:.0f} %" if share >= 0.01 or share == 0 else f"{100 * share:.2f} %"


def check_units(conn: Connection, *, path: Path, structure: Structure, level: Level, allow_new_units: bool,
                allow_parent_change: bool, result: BoundaryImportResult) -> None:
    """Check the staged units against the units known: level, new codes, parents, parent changes.

    Fills ``result`` with what would change (new units, parent changes,
    names and types that differ); raises :class:`BoundaryImportError`
    listing every refusal. Runs after :func:`stage_boundaries`. Example::

        check_units(conn, path=path, structure=Structure.pre2025, level=Level.commune, allow_new_units=False,
                    allow_parent_change=False, result=result)
    """
    params = {"s": structure.value, "lvl": level.value}
    conn.execute(text(PLAN_SQL), params)
    problems: list[tuple[int, str]] = []
    hints: list[str] = []
    clash = conn.execute(text("SELECT feature, code, old_level FROM boundary_plan WHERE existed AND old_level <> :lvl ORDER BY feature"),
                         params).all()
    problems += [(r.feature, (f"feature {r.feature}: code {r.code} is already a {r.old_level} of the {structure.value} structure, "
                              f"not a {level.value}")) for r in clash]
    new = conn.execute(text("SELECT feature, code, file_name, file_type FROM boundary_plan WHERE NOT existed ORDER BY feature")).all()
    if new and not allow_new_units:
        problems += [(r.feature, (f"feature {r.feature}: code {r.code}{' (' + r.file_name + ')' if r.file_name else ''} is not a "
                                 f"{level.value} of the {structure.value} code list")) for r in new]
        hints.append("Codes outside the GSO code list are refused: is the level, the structure or the code field wrong? "
                     "Add genuinely new units with --allow-new-units.")
    elif new:
        missing = [r for r in new if r.file_name is None or r.file_type is None]
        problems += [(r.feature, (f"feature {r.feature} (code {r.code}) is a new unit and the file gives no "
                                 f"{'name (--name-field)' if r.file_name is None else 'unit type (--type-field)'} for it"))
                     for r in missing]
    result.new_units = [UnitChange(r.feature, r.code, r.file_name, "new unit") for r in new]
    plevel = parent_level(structure, level)
    if plevel is not None:
        orphans = conn.execute(
            text(
                """SELECT p.feature, p.code, p.new_parent FROM boundary_plan p
                   WHERE NOT EXISTS (SELECT 1 FROM admin_unit x WHERE x.structure = :s AND x.level = :plvl AND x.code = p.new_parent)
                   ORDER BY p.feature"""
            ),
            {**params, "plvl": plevel.value},
        ).all()
        problems += [(r.feature, f"feature {r.feature} (code {r.code}): parent code {r.new_parent} does not exist as a "
                                 f"{plevel.value} of the {structure.value} structure" if r.new_parent else
                                 f"feature {r.feature} (code {r.code}) is a new unit and the file gives no parent code for it")
                     for r in orphans]
        if orphans:
            hints.append("The field for the parent is chosen with --parent-field; import the parent level first.")
    changes = conn.execute(text(PARENT_CHANGES_SQL), {**params, "plvl": plevel.value}).all() if plevel is not None else []
    result.reparented = [
        UnitChange(r.feature, r.code, r.official_name,
                   f"parent {r.old_parent} ({r.old_parent_name}) -> {r.file_parent} ({r.new_parent_name}); "
                   f"{_pct(r.in_new)} of the polygon lies in {r.file_parent}, {_pct(r.in_old)} in {r.old_parent}")
        for r in changes
    ]
    if changes and not allow_parent_change:
        problems += [(r.feature, (f"feature {r.feature} (code {r.code} {r.official_name}): the file gives parent {r.file_parent} "
                                 f"({r.new_parent_name}) but the unit belongs to {r.old_parent} ({r.old_parent_name}); {_pct(r.in_new)} "
                                 f"of its polygon lies in {r.file_parent} and {_pct(r.in_old)} in {r.old_parent}")) for r in changes]
        hints.append("A parent is changed only with --allow-parent-change, and only when the polygon lies in the new parent.")
    if problems:
        raise BoundaryImportError(f"{path}: {_listing([line for _, line in sorted(problems)])}. {' '.join(hints)}".strip())
    differing = conn.execute(
        text(
            """SELECT feature, code, official_name, file_name, official_type, file_type FROM boundary_plan
               WHERE existed AND ((file_name IS NOT NULL AND file_name <> official_name)
                                  OR (file_type IS NOT NULL AND file_type <> official_type))
               ORDER BY feature"""
        )
    ).all()
    for r in differing:
        if r.file_name is not None and r.file_name != r.official_name:
            kind = "the same name but for a type prefix or spelling" if name_key(r.file_name) == name_key(r.official_name) \
                else "a different name"
            result.renamed.append(UnitChange(r.feature, r.code, r.official_name, f"the file says {r.file_name!r}: {kind}; "
                                             "the official name is kept"))
        if r.file_type is not None and r.file_type != r.official_type:
            result.retyped.append(UnitChange(r.feature, r.code, r.official_name, f"the file says {r.file_type!r}, the code list "
                                             f"{r.official_type!r}; the official type is kept"))


def _compass(azimuth: float | None) -> str:
    if azimuth is None:
        return ""
    names = ["north", "north-east", "east", "south-east", "south", "south-west", "west", "north-west"]
    return names[round(azimuth / 45) % 8]


def suggest_crs(conn: Connection, prepared: PreparedBoundaries, structure: Structure, level: Level) -> str:
    """For a file that lies outside its parents: the TM-3 zone of the province, and which CRS would put it in place.

    Reprojects a sample of the file's own coordinates from each candidate
    (the provincial TM-3 zones, VN-2000 UTM 48N and 49N) and measures how
    much of it then lies inside the parents. Runs after the placement check
    measured the file (``boundary_fit``). Example::

        suggest_crs(conn, prepared, Structure.pre2025, Level.commune)
        # " The VN-2000 TM-3 zone of Hà Tĩnh is 105°30' (EPSG:9209). With ..."
    """
    crs = prepared.source_crs
    provinces = conn.execute(
        text(
            """SELECT DISTINCT CASE WHEN a.level = 'province' THEN a.code ELSE a.parent_code END
               FROM boundary_fit f JOIN admin_unit a ON a.structure = :s AND a.code = f.against"""
            if level is not Level.province else "SELECT code FROM boundary_stage"
        ),
        {"s": structure.value},
    ).scalars().all()
    zones = {m.epsg: m for p in sorted(p for p in provinces if p) for m in meridians_of(p, structure)}
    if len(zones) == 1:
        m = next(iter(zones.values()))
        advice = f" The VN-2000 TM-3 zone of {m.province_name} is {m.dms} (EPSG:{m.epsg})."
    elif zones:
        advice = " The VN-2000 TM-3 zones here: " + "; ".join(f"{m.province_name} {m.dms} (EPSG:{m.epsg})" for m in zones.values()) + "."
    else:
        advice = ""
    if crs is None or prepared.source_geometry is None or not crs.is_projected:
        return advice
    sample = conn.execute(
        text(
            """SELECT f.feature, ST_AsBinary(a.geom) AS parent FROM boundary_fit f JOIN admin_unit a ON a.structure = :s AND a.code = f.against
               ORDER BY f.feature LIMIT :n"""
        ),
        {"s": structure.value, "n": CRS_SAMPLE},
    ).all()
    if not sample:
        return advice
    position = {int(f): i for i, f in enumerate(prepared.rows["feature"])}
    source = np.array([prepared.source_geometry[position[r.feature]] for r in sample], dtype=object)
    parents = shapely.from_wkb(np.array([bytes(r.parent) for r in sample], dtype=object))
    own = crs.to_epsg(min_confidence=90)
    candidates = [*zones, 3405, 3406]
    best: tuple[float, int] | None = None
    for code in dict.fromkeys(candidates):
        if code == own:
            continue
        try:
            moved = to_wgs84(source, CRS.from_epsg(code))
            inside = shapely.area(shapely.intersection(moved, parents)).sum() / shapely.area(moved).sum()
        except Exception:  # a zone far from the data can produce invalid shapes; it is not the answer then
            continue
        if best is None or inside > best[0]:
            best = (inside, code)
    if best is not None and best[0] >= 1 - get_settings().boundary_max_outside_parent:
        zone = zones.get(best[1])
        why = f", the zone of {zone.province_name}" if zone else ""
        return (f"{advice} With {describe_crs(CRS.from_epsg(best[1]))}{why}, {_pct(best[0])} of the file's area would lie inside "
                f"the parents: if that is the file's CRS, import it with --assume-crs EPSG:{best[1]}.")
    return advice


def check_placement(conn: Connection, *, path: Path, structure: Structure, level: Level, prepared: PreparedBoundaries,
                    result: BoundaryImportResult) -> None:
    """Check the stored polygons against parents and neighbours; raise listing what is beyond tolerance.

    Within tolerance (and above the sliver size) everything is reported in
    ``result``: area outside the parent, overlaps, gaps; units whose parent
    has no polygon are listed as not checked. Runs after the polygons are
    stored, in the same transaction. Example::

        check_placement(conn, path=path, structure=Structure.pre2025, level=Level.commune, prepared=prepared, result=result)
        [str(c) for c in result.overlaps]
        # ['feature 3 (code 18079 Tân Giang): overlaps feature 4 (code 18082 Đại Nài) by 0.01 km² (0.30 % of the smaller)']
    """
    st = get_settings()
    params = {"s": structure.value, "lvl": level.value, "sliver": st.boundary_sliver_m2, "share": st.boundary_max_outside_parent}
    conn.execute(text(FIT_SQL), params)
    for statement in OUTSIDE_SQL.split(";"):
        conn.execute(text(statement), params)
    fit = conn.execute(text("SELECT * FROM boundary_fit ORDER BY feature")).all()
    result.unchecked = [UnitChange(r.feature, r.code, r.name, "not checked against a parent: no polygon for its parent")
                        for r in fit if r.against is None and level is not Level.province]
    checked = [r for r in fit if r.against is not None]
    refused = [r for r in checked if r.outside_m2 > st.boundary_sliver_m2 and r.outside_m2 > st.boundary_max_outside_parent * r.area_m2]
    tolerance = (f"the tolerance is {_pct(st.boundary_max_outside_parent)} of a unit's area "
                 "(LABOUR_ATLAS_BOUNDARY_MAX_OUTSIDE_PARENT)")
    if refused:
        outside = sum(r.outside_m2 for r in checked)
        area = sum(r.area_m2 for r in checked)
        if area and outside > 0.5 * area:
            off = conn.execute(text(MISPLACED_SQL), params).one()
            direction = f" to the {_compass(off.azimuth)}" if off.azimuth is not None else ""
            raise BoundaryImportError(
                f"{path}: {len(refused)} of {len(checked)} units lie outside their parents ({_pct(outside / area)} of the file's area); "
                f"the file lies about {off.shift_m / 1000:.1f} km{direction} of them (centre to centre). The file's coordinates do not match the "
                f"CRS they were read in ({describe_crs(prepared.source_crs)}): a wrong CRS or TM-3 zone.{suggest_crs(conn, prepared, structure, level)} "
                f"First: {_listing([_outside_line(r) for r in refused][:3])}."
            )
        raise BoundaryImportError(f"{path}: {_listing([_outside_line(r) for r in refused])}; {tolerance}.")
    result.outside = [UnitChange(r.feature, r.code, r.name, _outside_detail(r), r.outside_m2 / 1e6)
                      for r in checked if r.outside_m2 > st.boundary_sliver_m2]
    for statement in CORES_SQL.split(";"):
        conn.execute(text(statement), params)
    conn.execute(text(OVERLAP_PAIRS_SQL), params)
    pairs = conn.execute(text("SELECT * FROM boundary_overlap WHERE m2 > :sliver ORDER BY m2 DESC"), params).all()
    too_much = [p for p in pairs if p.m2 > st.boundary_max_overlap * p.smaller_m2]
    if too_much:
        raise BoundaryImportError(
            f"{path}: {_listing([_overlap_line(p) for p in too_much])}; the tolerance is {_pct(st.boundary_max_overlap)} "
            "of the smaller unit (LABOUR_ATLAS_BOUNDARY_MAX_OVERLAP)."
        )
    result.overlaps = [_overlap_change(p) for p in pairs]
    conn.execute(text(GROUPS_SQL), params)
    gaps = [g for g in conn.execute(text(GAPS_SQL), params).all() if g.gap_m2 and g.gap_m2 > st.boundary_sliver_m2]
    wide = [g for g in gaps if g.gap_m2 > st.boundary_max_gap * g.parent_m2]
    if wide:
        raise BoundaryImportError(
            f"{path}: {_listing([_gap_line(g, level) for g in wide])}; the tolerance is {_pct(st.boundary_max_gap)} of the "
            "parent's area (LABOUR_ATLAS_BOUNDARY_MAX_GAP)."
        )
    result.gaps = [UnitChange(None, g.parent, g.name, _gap_line(g, level, short=True), g.gap_m2 / 1e6) for g in gaps]


def _outside_detail(r) -> str:
    return (f"{_km2(r.outside_m2)} ({_pct(r.outside_m2 / r.area_m2)}) of its {_km2(r.area_m2)} lie outside its parent "
            f"{r.against_level} {r.against} {r.against_name}")


def _outside_line(r) -> str:
    return f"feature {r.feature} (code {r.code} {r.name}): {_outside_detail(r)}"


def _unit_ref(feature: int | None, code: str, name: str | None) -> str:
    return f"feature {feature} (code {code} {name})" if feature is not None else f"code {code} {name} (already official)"


def _overlap_line(p) -> str:
    return (f"{_unit_ref(p.a_feature, p.a, p.a_name)} overlaps {_unit_ref(p.b_feature, p.b, p.b_name)} by {_km2(p.m2)} "
            f"({_pct(p.m2 / p.smaller_m2)} of the smaller)")


def _overlap_change(p) -> UnitChange:
    """An overlap reported on the file's unit of the pair (the first, when both are the file's)."""
    mine, other = ((p.a_feature, p.a, p.a_name), (p.b_feature, p.b, p.b_name))
    if mine[0] is None:
        mine, other = other, mine
    return UnitChange(mine[0], mine[1], mine[2], f"overlaps {_unit_ref(*other)} by {_km2(p.m2)} ({_pct(p.m2 / p.smaller_m2)} of the smaller)",
                      p.m2 / 1e6)


def _gap_line(g, level: Level, short: bool = False) -> str:
    where = "left uncovered by its" if g.complete else "in holes enclosed by its official"
    what = f"{_km2(g.gap_m2)} ({_pct(g.gap_m2 / g.parent_m2)}) of the parent {where} {level.value}s"
    return what if short else f"parent {g.parent} {g.name}: {what}"


def redraw_approximations(conn: Connection, structure: Structure, import_id: int | None) -> tuple[int, list[str]]:
    """Redraw the approximate communes of the clip regions the staged units touch; returns (communes redrawn, regions).

    Example::

        redraw_approximations(conn, Structure.pre2025, import_id)
        # (43, ['436', '437', '445'])
    """
    regions = conn.execute(text(REGIONS_SQL), {"s": structure.value, "id": import_id}).scalars().all()
    if not regions:
        refresh_crosswalk_shares(conn)
        return 0, []
    r = approximate_communes(conn, structure, regions=regions)
    return r.redrawn, r.regions


def units_with_geometry(conn: Connection, structure: Structure) -> dict[str, int]:
    """Count of units with a polygon per level of ``structure``.

    Example::

        units_with_geometry(conn, Structure.pre2025)
        # {'province': 62, 'district': 681, 'commune': 9864}
    """
    rows = conn.execute(
        text("SELECT level, count(*) FROM admin_unit WHERE structure = :s AND geom IS NOT NULL GROUP BY level"),
        {"s": structure.value},
    ).all()
    return dict(rows)


def load_boundaries(
    conn: Connection,
    rows: pd.DataFrame,
    *,
    path: Path,
    structure: Structure,
    level: Level,
    source: str,
) -> tuple[int, int]:
    """Store staging rows in ``admin_unit`` inside the caller's transaction, for the bundled reference data.

    Checks levels, parents and new units (as an import does, with new units
    allowed) but neither records an import nor checks placement: the
    reference polygons are the parents others are checked against. Returns
    (inserted, updated).

    Example::

        with get_engine().begin() as conn:
            load_boundaries(conn, prepared.rows, path=path, structure=Structure.pre2025, level=Level.district,
                            source="reference:vn_2019_districts.gpkg")
    """
    stage_boundaries(conn, rows)
    check_units(conn, path=path, structure=structure, level=level, allow_new_units=True, allow_parent_change=True,
                result=BoundaryImportResult(str(path), structure.value, level.value))
    counts = conn.execute(text(APPLY_SQL), {"s": structure.value, "lvl": level.value, "src": source, "id": None, **web_tolerances()}).one()
    refresh_unit_geometry(conn, structure, codes_from="boundary_stage", web=False)
    conn.execute(text("DROP TABLE boundary_plan"))
    conn.execute(text("DROP TABLE boundary_stage"))
    return int(counts.inserted), int(counts.updated)


def _official(conn: Connection, structure: Structure, codes: pd.Series) -> pd.DataFrame:
    rows = conn.execute(
        text("SELECT code, name, unit_type FROM admin_unit WHERE structure = :s AND code = ANY(:codes)"),
        {"s": structure.value, "codes": list(codes)},
    ).all()
    known = pd.DataFrame(rows, columns=["code", "name", "unit_type"]).set_index("code")
    return known.reindex(codes.to_numpy()).set_axis(codes.index)


def import_boundaries(
    path: Path,
    *,
    level: Level,
    structure: Structure,
    fields: BoundaryFields | None = None,
    layer: str | None = None,
    assume_crs: str | None = None,
    encoding: str | None = None,
    allow_parent_change: bool = False,
    allow_new_units: bool = False,
    dry_run: bool = False,
    actor: str | None = None,
    progress: Progress | None = None,
) -> BoundaryImportResult:
    """Import one boundary file into ``admin_unit``, all or nothing; see the module's description.

    Parameters
    ----------
    path:
        Shapefile, GeoPackage or GeoJSON.
    level, structure:
        What the file's units are.
    fields:
        Which fields hold code, name, parent code and unit type.
    layer:
        The layer of a file with several (required then).
    assume_crs:
        The CRS of the coordinates, for a file that declares none or declares a wrong one.
    encoding:
        The encoding of a DBF's text (utf-8, cp1258, tcvn3, vni), when it cannot be told.
    allow_parent_change:
        Let the file move units to another parent (their polygon must lie in it).
    allow_new_units:
        Let the file add units that are not in the GSO code list.
    dry_run:
        Do everything, report, and write nothing.
    actor:
        Who imports (recorded); by default the operating-system user.

    Example::

        r = import_boundaries(Path("xa_ha_tinh.shp"), level=Level.commune, structure=Structure.pre2025,
                              fields=BoundaryFields(code="MA_XA", name="TEN_XA", parent="MA_HUYEN"), dry_run=True)
        r.inserted, r.updated, [str(c) for c in r.renamed]
        # (0, 262, ['feature 12 (code 18082 Đại Nài): the file says 'Phường Đại Nài': ...'])
    """
    path = Path(path)
    fields = fields or BoundaryFields()
    try:
        plevel = parent_level(structure, level)
    except ValueError as exc:
        raise BoundaryImportError(str(exc)) from None
    src = read_layer(path, layer, progress)
    attributes = src.attributes.rename(columns={c: _field_name(c, src.cpg) for c in src.attributes.columns}) if src.raw_text \
        else src.attributes
    numeric = {_field_name(c, src.cpg) if src.raw_text else c for c in src.numeric_fields}
    crs_note = ""
    crs = src.crs
    if assume_crs:
        try:
            assumed = CRS.from_user_input(assume_crs)
        except Exception as exc:  # pyproj's CRSError and friends
            raise BoundaryImportError(f"--assume-crs {assume_crs}: not a CRS pyproj knows ({exc})") from None
        if crs is not None and not crs.equals(assumed):
            crs_note = f"the file declares {describe_crs(crs)}; --assume-crs {describe_crs(assumed)} used instead"
        crs = assumed
    if crs is None:
        raise BoundaryImportError(
            f"{path}: the file declares no coordinate reference system (a Shapefile without .prj?). Pass --assume-crs, "
            "e.g. EPSG:4326, or the VN-2000 TM-3 zone of the province (EPSG:9205-9218, 5897-5899)."
        )
    if encoding and not src.raw_text:
        raise BoundaryImportError(f"{path}: --encoding applies to the DBF of a Shapefile; the text of a {src.driver} file is UTF-8")
    cols = fields.resolve(list(attributes.columns), path)
    codes = normalise_codes(attributes[cols["code"]], level, path, cols["code"], numeric=cols["code"] in numeric)
    text_columns: dict[str, pd.Series] = {}
    encoding_used, encoding_note = None, ""
    if src.raw_text:
        with get_engine().connect() as conn:
            official = _official(conn, structure, codes)
        text_fields = [TextField(cols[role], _raw_bytes(attributes[cols[role]]), official[column])
                       for role, column in (("name", "name"), ("unit_type", "unit_type")) if cols[role] is not None]
        if text_fields:
            encoding_used, encoding_note = choose_encoding(text_fields, cpg=src.cpg, given=encoding, path=path)
            for f in text_fields:
                text_columns[f.name] = decode_column(f.raw, encoding_used, path, f.name)
    gdf = gpd.GeoDataFrame(attributes.assign(**text_columns), geometry=src.geometry, crs=crs)
    prepared = prepare_boundaries(gdf, path=path, level=level, fields=fields, parents_at=plevel, numeric_fields=numeric)
    result = BoundaryImportResult(
        str(path), structure.value, level.value, layer=src.layer, features=len(prepared.rows), dry_run=dry_run, sha256=src.sha256,
        source_crs=describe_crs(crs), crs_note=crs_note, encoding=encoding_used, encoding_note=encoding_note,
        repaired=prepared.repaired, bbox=prepared.bbox,
    )
    rows = prepared.rows
    options = {"path": str(path.resolve()), "fields": {k: v for k, v in cols.items() if v}, "assume_crs": assume_crs,
               "encoding": encoding, "allow_parent_change": allow_parent_change, "allow_new_units": allow_new_units}
    engine = get_engine()
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            stage_boundaries(conn, rows)
            check_units(conn, path=path, structure=structure, level=level, allow_new_units=allow_new_units,
                        allow_parent_change=allow_parent_change, result=result)
            import_id = conn.execute(
                text(
                    """INSERT INTO boundary_import (imported_by, file_name, file_sha256, layer, structure, level, source_crs,
                                                    encoding, options)
                       VALUES (:by, :file, :sha, :layer, :s, :lvl, :crs, :enc, CAST(:options AS jsonb)) RETURNING id"""
                ),
                {"by": actor or f"cli:{getpass.getuser()}", "file": path.name, "sha": src.sha256, "layer": src.layer,
                 "s": structure.value, "lvl": level.value, "crs": result.source_crs, "enc": encoding_used,
                 "options": _json(options)},
            ).scalar_one()
            conn.execute(text(RECORD_SQL), {"id": import_id, "s": structure.value})
            counts = conn.execute(text(APPLY_SQL), {"s": structure.value, "lvl": level.value, "src": f"import {import_id}: {path.name}",
                                                    "id": import_id, **web_tolerances()}).one()
            result.inserted, result.updated = int(counts.inserted), int(counts.updated)
            check_placement(conn, path=path, structure=structure, level=level, prepared=prepared, result=result)
            refresh_unit_geometry(conn, structure, codes_from="boundary_stage", web=False)
            result.approximate_redrawn, result.regions_redrawn = redraw_approximations(conn, structure, import_id)
            conn.execute(
                text("UPDATE boundary_import SET counts = CAST(:counts AS jsonb), regions = :regions WHERE id = :id"),
                {"counts": _json(result.counts()), "regions": result.regions_redrawn, "id": import_id},
            )
            refresh_scopes(conn)  # new units or parents change what each scope covers
            result.units_with_geometry = units_with_geometry(conn, structure)
            if dry_run:
                trans.rollback()
            else:
                trans.commit()
                result.import_id = import_id
        except BaseException:
            trans.rollback()
            raise
    return result


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
