"""Chunks as Arrow record batches, the form GDAL (through pyogrio) writes GeoPackages and shapefiles from."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import shapely

from etl.exports.geometry import in_crs
from etl.exports.target import Target, as_date, as_datetime, as_text
from maps.sources import Chunk

GEOMETRY = "geometry"


def arrow_type(type_: str, datetimes: bool) -> pa.DataType:
    """The Arrow type of a field type; without ``datetimes`` (shapefiles) a date and time is text."""
    return {"integer": pa.int64(), "real": pa.float64(), "boolean": pa.bool_(), "date": pa.date32(),
            "datetime": pa.timestamp("ms", tz="UTC") if datetimes else pa.string()}.get(type_, pa.string())


def schema(target: Target, names: dict[str, str] | None = None, datetimes: bool = True) -> pa.Schema:
    """The columns written: every field (renamed by ``names`` where given) and the geometry as WKB."""
    names = names or {}
    return pa.schema([pa.field(names.get(f.name, f.name), arrow_type(f.type, datetimes)) for f in target.fields]
                     + [pa.field(GEOMETRY, pa.binary())])


def _column(values: list[Any], type_: str, arrow: pa.DataType) -> pa.Array:
    if type_ == "text":
        try:  # text columns hold text: Arrow takes the list as it is (a value of another type goes the slow way)
            return pa.array(values, type=arrow)
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            pass
    if pa.types.is_string(arrow):
        values = [as_text(v, type_) for v in values]
    elif type_ == "date":
        values = [as_date(v) for v in values]
    elif type_ == "datetime":
        values = [as_datetime(v) for v in values]
    return pa.array(values, type=arrow)


def batches(chunks: Iterable[Chunk], target: Target, out: pa.Schema, longest: list[int] | None = None) -> Iterator[pa.RecordBatch]:
    """Each chunk as one record batch of ``out``, geometry moved into the target's CRS; ``longest`` (one per field)
    keeps the longest UTF-8 value of each text column seen so far (a shapefile's fields are narrowed to it)."""
    for chunk in chunks:
        columns = [_column(chunk.columns[f.name], f.type, field.type) for f, field in zip(target.fields, out, strict=False)]
        if longest is not None:
            for i, column in enumerate(columns):
                if pa.types.is_string(column.type):
                    longest[i] = max(longest[i], pc.max(pc.binary_length(column)).as_py() or 0)
        # WGS 84 leaves as the layer gave it: no parse, no copy of the vertices.
        geometry = shapely.to_wkb(in_crs(chunk.geometry, target.crs)) if target.crs.is_vn2000 else chunk.geometry
        columns.append(pa.array(geometry, type=pa.binary()))
        yield pa.RecordBatch.from_arrays(columns, schema=out)
