"""GeoJSON: a FeatureCollection written feature by feature (nothing held but one chunk).

RFC 7946 GeoJSON is WGS 84 longitude/latitude. In VN-2000 the collection
carries the pre-RFC ``crs`` member naming the EPSG code (GDAL and QGIS read it)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import shapely

from etl.exports.geometry import decimals, in_crs
from etl.exports.stream import Stream
from etl.exports.target import Target, as_date, as_datetime


def _value(value, type_: str):
    if value is None:
        return None
    if type_ == "date":
        return as_date(value).isoformat()
    if type_ == "datetime":
        return as_datetime(value).isoformat()
    return value


def write_geojson(rows: Stream, target: Target) -> Iterator[bytes]:
    head = {"type": "FeatureCollection", "name": target.layer}
    if target.crs.is_vn2000:
        head["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{target.crs.epsg}"}}
    yield json.dumps(head, ensure_ascii=False)[:-1].encode() + b', "features": [\n'
    first = True
    places = decimals(target.crs)
    for chunk in rows.chunks():
        geoms = shapely.set_precision(in_crs(chunk.geometry, target.crs), 10.0 ** -places)
        shapes = shapely.to_geojson(geoms)
        parts = []
        for i, fid in enumerate(chunk.ids):
            properties = {f.name: _value(chunk.columns[f.name][i], f.type) for f in target.fields}
            geometry = shapes[i] if shapes[i] is not None else "null"
            parts.append(f'{{"type": "Feature", "id": {json.dumps(fid)}, "geometry": {geometry}, '
                         f'"properties": {json.dumps(properties, ensure_ascii=False, default=str)}}}')
        if parts:
            yield (("" if first else ",\n") + ",\n".join(parts)).encode()
            first = False
    yield b"\n]}\n"
