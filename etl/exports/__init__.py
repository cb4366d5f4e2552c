"""Exports: any layer of :mod:`maps.sources`, in any of five formats and five kinds of coordinate system.

One entry, :func:`export`: the layer is opened for the reader (role, area,
small-count protection, audit of personal reads: all the layer's own), and
its rows pass chunk by chunk through one writer module per format:

========  ==========================================  =====================================
format    module                                      notes
========  ==========================================  =====================================
gpkg      :mod:`etl.exports.gpkg`                     full names and types, CRS as used
shp       :mod:`etl.exports.shapefile`                zip; 10-character names, fields.csv
geojson   :mod:`etl.exports.geojson`                  streamed; ``crs`` member in VN-2000
csv       :mod:`etl.exports.csv_table`                streamed; BOM, safe cells, WKT
kml       :mod:`etl.exports.kml`                      streamed; WGS 84 only
========  ==========================================  =====================================

Every writer yields bytes, so the same export is a streamed HTTP answer, a
job's file or the command line's ``--out``. Geometry is moved by
:mod:`etl.exports.geometry` with the one pinned pipeline of :mod:`geodata.crs`.

>>> check_format("xlsx")
Traceback (most recent call last):
geodata.errors.InvalidInput: unknown export format 'xlsx': use one of shp, gpkg, geojson, csv, kml
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import Connection

from etl.exports.csv_table import write_csv
from etl.exports.geojson import write_geojson
from etl.exports.gpkg import write_gpkg
from etl.exports.kml import write_kml
from etl.exports.shapefile import write_shapefile
from etl.exports.stream import Stream
from etl.exports.target import Target
from geodata.crs import OutputCrs, parse_crs
from geodata.errors import InvalidInput
from maps.sources import FULL_WKB, Filters, LayerSource, Rows, Viewer


@dataclass(frozen=True)
class Format:
    name: str
    extension: str
    media_type: str
    write: Callable[[Stream, Target], Iterator[bytes]]
    wgs84_only: bool = False


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("shp", "zip", "application/zip", write_shapefile),
    Format("gpkg", "gpkg", "application/geopackage+sqlite3", write_gpkg),
    Format("geojson", "geojson", "application/geo+json", write_geojson),
    Format("csv", "csv", "text/csv; charset=utf-8", write_csv),
    Format("kml", "kml", "application/vnd.google-earth.kml+xml", write_kml, wgs84_only=True),
)}


def check_format(name: str | None, loc: tuple[str, ...] = ("query", "format")) -> Format:
    """The format called ``name``; :class:`InvalidInput` naming the choices otherwise."""
    if name not in FORMATS:
        raise InvalidInput(f"unknown export format {name!r}: use one of {', '.join(FORMATS)}", loc=loc)
    return FORMATS[name]


def check_crs(fmt: Format, crs_text: str | None, loc: tuple[str, ...] = ("query", "crs")) -> OutputCrs:
    """The CRS asked for, if ``fmt`` can carry it (KML is WGS 84 only)."""
    try:
        crs = parse_crs(crs_text)
    except InvalidInput as exc:
        raise InvalidInput(str(exc), loc=loc) from None
    if fmt.wgs84_only and crs.is_vn2000:
        raise InvalidInput(f"{fmt.name} is WGS 84 (EPSG:4326) by definition: ask for crs=EPSG:4326 or another format "
                           f"for {crs.label}", loc=loc)
    return crs


@dataclass
class Export:
    """An export opened for one reader: its rows (``rows.count`` known), what it writes and how."""

    source: LayerSource
    rows: Rows
    target: Target
    format: Format

    @property
    def filename(self) -> str:
        tag = self.target.crs.key.replace(":", "-").lower()
        return f"{self.source.name}-{tag}.{self.format.extension}"

    def write(self, conn: Connection, progress: Callable[[int, int], None] | None = None) -> Iterator[bytes]:
        """The file's bytes, in pieces; reads the rows on ``conn`` piece by piece; ``progress(done, total)`` after each."""
        return self.format.write(Stream(self.rows, conn, progress), self.target)


def open_export(conn: Connection, source: LayerSource, filters: Filters, viewer: Viewer, fmt: Format,
                crs: OutputCrs) -> Export:
    """Open ``source`` for ``viewer`` with ``filters`` (errors now, before a byte is written) as an export."""
    rows = source.open(conn, filters, viewer, FULL_WKB)
    return Export(source, rows, Target.of(source, viewer, crs), fmt)


__all__ = ["FORMATS", "Export", "Format", "check_crs", "check_format", "open_export"]
