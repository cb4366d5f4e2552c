"""KML 2.2: a Placemark per feature, its attributes as ExtendedData, written chunk by chunk.

KML is WGS 84 longitude/latitude by definition (OGC 07-147r2, §6.2), so it
is written only in EPSG:4326; asked for in VN-2000 it is refused naming ``crs``.
"""

from __future__ import annotations

from collections.abc import Iterator
from xml.sax.saxutils import escape, quoteattr

import shapely

from etl.exports.stream import Stream
from etl.exports.target import Target, as_text

NAME_FIELDS = ("name", "full_name", "incident_id", "licence", "code", "instance_id")


def _ring(coords) -> str:
    return " ".join(f"{x:.7f},{y:.7f}" for x, y in coords)


def _polygon(p) -> str:
    inner = "".join(f"<innerBoundaryIs><LinearRing><coordinates>{_ring(r.coords)}</coordinates></LinearRing></innerBoundaryIs>"
                    for r in p.interiors)
    return (f"<Polygon><outerBoundaryIs><LinearRing><coordinates>{_ring(p.exterior.coords)}</coordinates></LinearRing>"
            f"</outerBoundaryIs>{inner}</Polygon>")


def kml_geometry(g) -> str:
    """A shapely Point, Polygon or MultiPolygon as KML.

    >>> kml_geometry(shapely.Point(105.9, 18.35))
    '<Point><coordinates>105.9000000,18.3500000</coordinates></Point>'
    """
    if g is None or g.is_empty:
        return ""
    if g.geom_type == "Point":
        return f"<Point><coordinates>{g.x:.7f},{g.y:.7f}</coordinates></Point>"
    if g.geom_type == "Polygon":
        return _polygon(g)
    return "<MultiGeometry>" + "".join(kml_geometry(part) for part in g.geoms) + "</MultiGeometry>"


def write_kml(rows: Stream, target: Target) -> Iterator[bytes]:
    names = [f.name for f in target.fields]
    label = next((n for n in NAME_FIELDS if n in names), None)
    schema = "".join(f'<SimpleField name={quoteattr(f.name)} type="string"><displayName>{escape(f.description)}'
                     f"</displayName></SimpleField>" for f in target.fields)
    yield (f'<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
           f"<name>{escape(target.title)}</name><Schema name={quoteattr(target.layer)} id={quoteattr(target.layer)}>"
           f"{schema}</Schema>\n").encode()
    for chunk in rows.chunks():
        geoms = shapely.from_wkb(chunk.geometry)
        parts = []
        for i in range(len(chunk)):
            values = {f.name: as_text(chunk.columns[f.name][i], f.type) for f in target.fields}
            data = "".join(f"<SimpleData name={quoteattr(n)}>{escape(v)}</SimpleData>" for n, v in values.items() if v is not None)
            title = f"<name>{escape(values[label] or '')}</name>" if label else ""
            parts.append(f"<Placemark>{title}<ExtendedData><SchemaData schemaUrl={quoteattr('#' + target.layer)}>"
                         f"{data}</SchemaData></ExtendedData>{kml_geometry(geoms[i])}</Placemark>\n")
        yield "".join(parts).encode()
    yield b"</Document></kml>\n"
