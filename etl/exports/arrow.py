"""Rows as Arrow record batches, the form GDAL (through pyogrio) writes GeoPackages and shapefiles from.

Two ways in: a layer's own Arrow batches (:func:`from_layer`, the layers read by SQL: no Python object per value)
or its chunks of Python values (:func:`from_chunks`, the layers computed in memory). Both give the same columns.
"""

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
    if type_ in ("date", "datetime") and pa.types.is_string(arrow):  # as the Arrow path writes them (iso_text)
        return iso_text(_column(values, type_, arrow_type(type_, True)))
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


def _longest(columns: list[pa.Array], longest: list[int] | None) -> None:
    if longest is not None:
        for i, column in enumerate(columns):
            if pa.types.is_string(column.type):
                longest[i] = max(longest[i], pc.max(pc.binary_length(column)).as_py() or 0)


def _moved(wkb: Any, target: Target) -> pa.Array:
    # WGS 84 leaves as the layer gave it: no parse, no copy of the vertices.
    if not target.crs.is_vn2000:
        return wkb if isinstance(wkb, pa.Array) else pa.array(wkb, type=pa.binary())
    values = wkb.to_numpy(zero_copy_only=False) if isinstance(wkb, pa.Array) else wkb
    return pa.array(shapely.to_wkb(in_crs(values, target.crs)), type=pa.binary())


def from_chunks(chunks: Iterable[Chunk], target: Target, out: pa.Schema, longest: list[int] | None = None) -> Iterator[pa.RecordBatch]:
    """Each chunk as one record batch of ``out``, geometry moved into the target's CRS; ``longest`` (one per field)
    keeps the longest UTF-8 value of each text column seen so far (a shapefile's fields are narrowed to it)."""
    for chunk in chunks:
        columns = [_column(chunk.columns[f.name], f.type, field.type) for f, field in zip(target.fields, out, strict=False)]
        _longest(columns, longest)
        yield pa.RecordBatch.from_arrays([*columns, _moved(chunk.geometry, target)], schema=out)


def iso_text(column: pa.Array) -> pa.Array:
    """Dates and times as ISO 8601 text (UTC, to the millisecond, as ``Z``), for files without those types.

    >>> import datetime as dt
    >>> iso_text(pa.array([dt.datetime(2025, 7, 1, 2, 3, 4, 500000, tzinfo=dt.UTC), None])).to_pylist()
    ['2025-07-01T02:03:04.500Z', None]
    """
    if pa.types.is_date(column.type):
        return pc.strftime(column, format="%Y-%m-%d")
    return pc.binary_join_element_wise(
        pc.strftime(column.cast(pa.timestamp("ms", tz="UTC"), safe=False), format="%Y-%m-%dT%H:%M:%S"), "Z", "")


def _cast(column: pa.Array, to: pa.DataType) -> pa.Array:
    if column.type == to:
        return column
    if pa.types.is_string(to) and (pa.types.is_timestamp(column.type) or pa.types.is_date(column.type)):
        return iso_text(column)
    return column.cast(to, safe=False)  # e.g. microseconds to the milliseconds a GeoPackage keeps


def from_layer(layer_batches: Iterable[pa.RecordBatch], target: Target, out: pa.Schema,
               longest: list[int] | None = None) -> Iterator[pa.RecordBatch]:
    """The layer's own Arrow batches (:attr:`maps.sources.Rows.batches`: the target's fields by name, then
    ``geometry``) as record batches of ``out``, as :func:`from_chunks` makes them."""
    for batch in layer_batches:
        columns = [_cast(batch.column(f.name), field.type) for f, field in zip(target.fields, out, strict=False)]
        _longest(columns, longest)
        yield pa.RecordBatch.from_arrays([*columns, _moved(batch.column(GEOMETRY), target)], schema=out)
