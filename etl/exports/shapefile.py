"""Shapefile: a .zip of .shp, .shx, .dbf, .prj, .cpg (UTF-8) and fields.csv (the full field names).

- Field names are cut to 10 characters by the rule of :mod:`etl.exports.fieldnames`;
  ``fields.csv`` gives each short name its full name, type and meaning.
- The .dbf is UTF-8 (Vietnamese intact) and the .cpg says so.
- A DBF has no date-and-time or JSON type: both are text (ISO 8601, JSON).
- Each text field is as wide as its longest value, up to 254 bytes (DBF's limit:
  a longer text, e.g. a long review comment, is cut there; GeoPackage keeps it
  whole), so the file is no wider than its data. The longest values are known
  only after the last row: the rows go first to a scratch Arrow file (while their
  lengths are counted), then from it to GDAL with the widths set, in one pass
  over a .dbf of the right width (GDAL's own ``RESIZE`` rewrites the file row by
  row; its default 80-byte fields make a million-record .dbf pass 2 GB).
- The .prj is written here, not by GDAL: GDAL writes ESRI's WKT dialect, which has
  no place for the datum shift, so a program reading it would pick its own
  transformation from VN-2000 to WGS 84 (PROJ may take EPSG's "(1)", ArcGIS picks
  by name). The .prj is :meth:`geodata.crs.OutputCrs.wkt` instead: WKT 1 as GDAL,
  QGIS and PROJ read it, with EPSG's codes and, for VN-2000, the ``TOWGS84`` of the
  one pinned transformation the points were moved with.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa

from etl.exports.arrow import GEOMETRY, schema
from etl.exports.fieldnames import shapefile_names
from etl.exports.files import blocks, scratch
from etl.exports.stream import Stream
from etl.exports.target import Target
from geodata.text import safe_cell

DBF_TEXT_MAX = 254
WIDTH = "GDAL:OGR:width"
PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


def fields_csv(target: Target, names: dict[str, str]) -> str:
    """The sidecar naming every field: short name, full name, type, meaning."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["shapefile_name", "name", "type", "description"])
    for f in target.fields:
        # Through safe_cell like every cell the app writes (the sidecar opens in Excel beside the layer).
        w.writerow([safe_cell(v) for v in (names[f.name], f.name, "text" if f.type in ("json", "datetime") else f.type, f.description)])
    return out.getvalue()


def _spilled(batches: Iterable[pa.RecordBatch], out: pa.Schema, path: Path) -> None:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, out) as writer:
        for batch in batches:
            writer.write_batch(batch)


def _sized(out: pa.Schema, longest: list[int]) -> pa.Schema:
    """``out`` with each text field as wide as its longest value (GDAL reads the width from the field's metadata)."""
    fields = [f.with_metadata({WIDTH: str(max(1, min(DBF_TEXT_MAX, n)))}) if pa.types.is_string(f.type) else f
              for f, n in zip(out, longest, strict=False)]
    return pa.schema([*fields, out.field(GEOMETRY)])


def write_shapefile(rows: Stream, target: Target) -> Iterator[bytes]:
    """The layer as a zipped shapefile, in blocks."""
    import pyogrio  # see etl.exports.gpkg

    names = shapefile_names([f.name for f in target.fields])
    with scratch() as tmp:
        stem = target.layer.replace("-", "_")
        out = schema(target, names, datetimes=False)
        longest = [0] * len(target.fields)
        spill = tmp / f"{stem}.arrows"
        _spilled(rows.batches(target, out, longest), out, spill)  # first pass: the rows, and their longest texts
        sized = _sized(out, longest)
        with pa.OSFile(str(spill), "rb") as source:  # read, not mapped: memory holds one batch at a time
            stream = pa.ipc.open_stream(source)
            reader = pa.RecordBatchReader.from_batches(sized, (b.cast(sized) for b in stream))
            pyogrio.write_arrow(reader, tmp / f"{stem}.shp", driver="ESRI Shapefile", geometry_name=GEOMETRY,
                                geometry_type=target.geometry_type, crs=target.crs.wkt(), encoding="UTF-8")
        spill.unlink()
        (tmp / f"{stem}.prj").write_text(target.crs.wkt(), encoding="ascii")
        (tmp / f"{stem}.cpg").write_text("UTF-8", encoding="ascii")
        archive = tmp / f"{stem}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            for ext in PARTS:
                z.write(tmp / f"{stem}{ext}", f"{stem}{ext}")
                (tmp / f"{stem}{ext}").unlink()  # the disk holds one copy at a time
            z.writestr("fields.csv", "\ufeff" + fields_csv(target, names))
        yield from blocks(archive)
