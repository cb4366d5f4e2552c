"""CSV: UTF-8 with a byte order mark (Excel then reads Vietnamese right), one row per feature, the geometry as WKT.

Every cell goes through :func:`geodata.text.safe_cell`, so a value such as
``=HYPERLINK(...)`` reaches the spreadsheet as text, never as a formula. JSON
fields are JSON text, dates ISO 8601. The last column, ``wkt``, is the geometry
in the CRS asked for (GDAL reads it with ``GEOM_POSSIBLE_NAMES=wkt``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import shapely

from etl.exports.geometry import decimals, in_crs
from etl.exports.stream import Stream
from etl.exports.target import Target, as_text
from geodata.text import safe_cell

BOM = "\ufeff"
WKT = "wkt"


def write_csv(rows: Stream, target: Target) -> Iterator[bytes]:
    buffer = io.StringIO()
    w = csv.writer(buffer, lineterminator="\r\n")
    w.writerow([safe_cell(f.name) for f in target.fields] + [WKT])
    yield (BOM + buffer.getvalue()).encode("utf-8")
    places = decimals(target.crs)
    for chunk in rows.chunks():
        buffer.seek(0)
        buffer.truncate()
        wkt = shapely.to_wkt(in_crs(chunk.geometry, target.crs), rounding_precision=places, trim=True)
        columns = [[safe_cell(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else safe_cell(as_text(v, f.type))
                    for v in chunk.columns[f.name]] for f in target.fields]
        w.writerows(zip(*columns, wkt, strict=True))
        yield buffer.getvalue().encode("utf-8")
