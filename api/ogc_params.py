"""The query parameters of OGC API Features items: ``bbox`` (+ ``bbox-crs``), ``datetime``, ``filter`` (CQL2 text,
+ ``filter-lang``, ``filter-crs``) and ``crs`` (Part 2), read into one :class:`maps.sources.Where` and an output CRS.

Coordinates are in the axis order of their CRS, as Part 2 says: ``CRS84`` is longitude, latitude; EPSG:4326 and
EPSG:4756 (VN-2000) are latitude, longitude; the projected VN-2000 grids are easting, northing. Into VN-2000 every
coordinate goes through the one pinned pipeline of :mod:`geodata.crs`; out of it (a ``bbox-crs`` or ``filter-crs``
in VN-2000), through the same pipeline backwards.

>>> output_crs("http://www.opengis.net/def/crs/EPSG/0/4756").lat_first, output_crs(None).uri
(True, 'http://www.opengis.net/def/crs/OGC/1.3/CRS84')
>>> bbox_geometry("18,105,19,106", "http://www.opengis.net/def/crs/EPSG/0/4326").bounds
(105.0, 18.0, 106.0, 19.0)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
import shapely.geometry
from shapely.geometry.base import BaseGeometry

from geodata import cql2
from geodata.crs import CRS84_URI, FIXED, OutputCrs, parse_crs
from geodata.errors import InvalidInput
from geodata.tm3 import provincial_meridians
from maps.sources import LayerSource, Where

GEOGRAPHIC = (4326, 4756)
"""EPSG's geographic CRSs: latitude first."""


@dataclass(frozen=True)
class OgcCrs:
    """A CRS of the OGC API: the output CRS of :mod:`geodata.crs`, and whether it is written latitude first."""

    crs: OutputCrs
    lat_first: bool

    @property
    def uri(self) -> str:
        return CRS84_URI if self.crs.epsg == 4326 and not self.lat_first else self.crs.uri

    def forward(self, xy: np.ndarray) -> np.ndarray:
        """WGS 84 longitude/latitude to this CRS, in its axis order."""
        out = xy
        if self.crs.is_vn2000:
            x, y = self.crs.transformer().transform(xy[:, 0], xy[:, 1])
            out = np.column_stack([x, y])
        return out[:, ::-1] if self.lat_first else out

    def backward(self, xy: np.ndarray) -> np.ndarray:
        """Coordinates in this CRS (its axis order) to WGS 84 longitude/latitude."""
        xy = xy[:, ::-1] if self.lat_first else xy
        if self.crs.is_vn2000:
            x, y = self.crs.transformer().transform(xy[:, 0], xy[:, 1], direction="INVERSE")
            xy = np.column_stack([x, y])
        return xy


def supported_crs() -> list[str]:
    """The CRSs every collection can be read in: CRS84 first (the storage CRS), then EPSG's (VN-2000 and its grids)."""
    codes = [*FIXED, *sorted({m.epsg for m in provincial_meridians().values()})]
    return [CRS84_URI, *(f"http://www.opengis.net/def/crs/EPSG/0/{c}" for c in codes)]


def output_crs(text: str | None, parameter: str = "crs") -> OgcCrs:
    """The CRS of a ``crs``, ``bbox-crs`` or ``filter-crs`` parameter (CRS84 when absent); 400 naming the choices."""
    if text is None or text.strip() in ("", CRS84_URI, "CRS84", "OGC:CRS84", "[OGC:CRS84]"):
        return OgcCrs(FIXED[4326], lat_first=False)
    value = text.strip().strip("[]")
    try:
        crs = parse_crs(value)
    except InvalidInput:
        raise InvalidInput(f"{parameter}: unknown coordinate system {text!r}; use one of the collection's crs list "
                           f"({CRS84_URI}, http://www.opengis.net/def/crs/EPSG/0/4756 for VN-2000, ...)",
                           loc=("query", parameter)) from None
    return OgcCrs(crs, lat_first=crs.epsg in GEOGRAPHIC)


def _numbers(text: str, parameter: str) -> list[float]:
    try:
        numbers = [float(x) for x in text.split(",")]
    except ValueError:
        raise InvalidInput(f"{parameter}: {text!r} is not 4 (or 6) numbers separated by commas", loc=("query", parameter)) from None
    if len(numbers) not in (4, 6) or not all(np.isfinite(numbers)):
        raise InvalidInput(f"{parameter}: give 4 (or 6) finite numbers, not {len(numbers)}", loc=("query", parameter))
    return numbers


def bbox_geometry(text: str, crs_text: str | None = None) -> BaseGeometry:
    """The ``bbox`` (lower corner, upper corner, in ``bbox-crs``'s axis order) as a WGS 84 polygon."""
    n = _numbers(text, "bbox")
    half = len(n) // 2
    low, high = (n[0], n[1]), (n[half], n[half + 1])
    if low[0] > high[0] or low[1] > high[1]:
        raise InvalidInput("bbox: the lower corner comes first (min, min, max, max)", loc=("query", "bbox"))
    crs = output_crs(crs_text, "bbox-crs")
    corners = np.array([[low[0], low[1]], [high[0], low[1]], [high[0], high[1]], [low[0], high[1]]])
    lonlat = crs.backward(corners)
    if not (np.all(np.abs(lonlat[:, 1]) <= 90) and np.all(np.abs(lonlat[:, 0]) <= 180)):
        raise InvalidInput("bbox: outside the world in its CRS (check the axis order: EPSG:4326 is latitude first)",
                           loc=("query", "bbox"))
    return shapely.box(*lonlat.min(axis=0), *lonlat.max(axis=0))


def queryables(source: LayerSource) -> dict[str, str]:
    """The properties a filter may name, with their types (JSON lists are not compared)."""
    return {f.name: f.type for f in source.fields if f.type != "json"}


def datetime_filter(text: str, source: LayerSource) -> cql2.Filter:
    """The ``datetime`` parameter (an instant, or an interval ``start/end`` with ``..`` or nothing for an open end)
    on the layer's temporal field; ends are included. A date alone on a date-and-time field means that whole day."""
    if source.temporal is None:
        raise InvalidInput(f"datetime: the collection {source.name} has no date to filter on", loc=("query", "datetime"))
    spec = next(f for f in source.fields if f.name == source.temporal)
    name, kind = spec.name, spec.type

    def moment(value: str, end: bool) -> tuple[str, Any]:
        try:
            parsed = cql2.coerce(value, kind, 0, "datetime")
        except InvalidInput:
            raise InvalidInput(f"datetime: {value!r} is not an RFC 3339 date or date-time (e.g. 2025-07-01 or "
                               "2025-07-01T08:00:00Z, or an interval 2025-01-01/2025-06-30 with '..' for an open end)",
                               loc=("query", "datetime")) from None
        if kind == "datetime" and len(value) == 10 and end:
            return "<", parsed + dt.timedelta(days=1)
        return ("<=" if end else ">="), parsed

    if "/" in text:
        start, _, stop = text.partition("/")
        parts = [cql2.compare(name, kind, *moment(v, end)) for v, end in ((start, False), (stop, True))
                 if v.strip() not in ("", "..")]
        if not parts:
            raise InvalidInput("datetime: an interval needs at least one end", loc=("query", "datetime"))
        return cql2.all_of(*parts)  # type: ignore[return-value]
    if kind == "datetime" and len(text.strip()) == 10:
        return cql2.all_of(cql2.compare(name, kind, *moment(text.strip(), False)),
                           cql2.compare(name, kind, *moment(text.strip(), True)))  # type: ignore[return-value]
    return cql2.compare(name, kind, "=", moment(text.strip(), False)[1])


def where(source: LayerSource, *, bbox: str | None, bbox_crs: str | None, datetime: str | None, filter_text: str | None,
          filter_lang: str | None, filter_crs: str | None, ids: tuple[str, ...] | None = None) -> Where | None:
    """Everything that narrows the rows besides the layer's own filters, as one :class:`Where` (None: nothing)."""
    if bbox_crs is not None and bbox is None:
        raise InvalidInput("bbox-crs: given without bbox", loc=("query", "bbox-crs"))
    parts = []
    if bbox is not None:
        parts.append(cql2.intersects(bbox_geometry(bbox, bbox_crs)))
    if datetime is not None:
        parts.append(datetime_filter(datetime, source))
    if filter_text is not None:
        if (filter_lang or "cql2-text") != "cql2-text":
            raise InvalidInput(f"filter-lang: {filter_lang!r} is not supported; use cql2-text", loc=("query", "filter-lang"))
        parsed = cql2.parse(filter_text, queryables(source))
        crs = output_crs(filter_crs, "filter-crs")
        if crs.uri != CRS84_URI:
            parsed = cql2.Filter(_to_wgs84(parsed.root, crs))
        parts.append(parsed)
    combined = cql2.all_of(*parts)
    if combined is None and ids is None:
        return None
    return Where(combined, ids)


def _to_wgs84(node: Any, crs: OgcCrs) -> Any:
    if isinstance(node, BaseGeometry):
        return shapely.transform(node, crs.backward)
    if isinstance(node, cql2.Node):
        return cql2.Node(node.op, tuple(_to_wgs84(a, crs) for a in node.args))
    return node


def reproject(geometry: dict[str, Any] | None, crs: OgcCrs) -> dict[str, Any] | None:
    """A GeoJSON geometry (WGS 84) in ``crs`` (the geometry unchanged for CRS84)."""
    if geometry is None or crs.uri == CRS84_URI:
        return geometry
    moved = shapely.transform(shapely.geometry.shape(geometry), crs.forward)
    return shapely.geometry.mapping(moved)


def json_value(value: Any) -> Any:
    """A property value as JSON has it: dates and times as ISO 8601 text."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value
