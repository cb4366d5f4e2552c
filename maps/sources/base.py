"""What a layer source is: who may read it, its filters, its fields, and its rows chunk by chunk.

A :class:`LayerSource` is opened for one reader (:class:`Viewer`) with its
validated filters; :meth:`LayerSource.open` checks the filters and computes
what must be computed before the first byte can be sent (an aggregate layer
computes all its rows there, so that a bad filter or too little data is an
error answer, never a broken download). :attr:`Rows.chunks` then yields the
rows in :class:`Chunk`s of at most :data:`CHUNK_ROWS`, on the connection it is
given: the GeoJSON route passes its own, a streamed export a connection of its
own, a job its worker's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, text

from geodata.errors import InvalidInput, PermissionDenied
from geodata.roles import Role
from geodata.scopes import Reader
from geodata.structures import LEVELS, Level, Structure

CHUNK_ROWS = 5000
"""Rows per chunk: a few megabytes of Python objects, and few enough round trips."""

FieldType = Literal["text", "integer", "real", "boolean", "date", "datetime", "json"]
GeometryType = Literal["Point", "MultiPolygon"]
Limit = Literal["none", "area"]


class Filters(BaseModel):
    """The filters of a layer, as its route and its export take them (query parameters; unknown ones are not these)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")


@dataclass(frozen=True)
class FieldSpec:
    """One attribute of a layer: its name, type (for DBF, GeoPackage and OGC queryables) and meaning."""

    name: str
    type: FieldType
    description: str
    personal: bool = False


@dataclass(frozen=True)
class Shape:
    """How geometry leaves a source: GeoJSON objects or WKB, the web (simplified) or full polygons, or none."""

    encoding: Literal["geojson", "wkb"] = "geojson"
    detail: Literal["web", "full"] = "web"
    include: bool = True


WEB = Shape()
FULL_WKB = Shape("wkb", "full")


@dataclass(frozen=True)
class Page:
    """A slice of a layer's rows in its order: ``limit`` rows (None: all) after the first ``offset``."""

    limit: int | None = None
    offset: int = 0

    def params(self) -> dict[str, int | None]:
        return {"limit": self.limit, "offset": self.offset}


ALL = Page()


@dataclass(frozen=True)
class Viewer:
    """Who reads: the role (what is hidden from it), the area limit, a name for the audit log, and how a
    personal read is audited (``audit(record_ids)``, written and committed before the rows are handed on).

    The command line reads as an officer of the whole country (``Viewer.operator``).
    """

    role: Role | None  # None: not signed in (public layers only)
    reader: Reader
    actor: str
    audit: Callable[[list[str]], None] | None = None

    @staticmethod
    def operator(actor: str, audit: Callable[[list[str]], None] | None = None) -> Viewer:
        return Viewer(Role.officer, Reader(), actor, audit)


@dataclass
class Chunk:
    """Rows as columns (one list per field, in the layer's field order), with their ids and geometries."""

    ids: list[Any]
    columns: dict[str, list[Any]]
    geometry: list[Any]

    def __len__(self) -> int:
        return len(self.ids)

    def features(self) -> Iterator[dict[str, Any]]:
        """The rows as GeoJSON Feature objects."""
        names = list(self.columns)
        for i, fid in enumerate(self.ids):
            yield {"type": "Feature", "id": fid, "geometry": self.geometry[i],
                   "properties": {n: self.columns[n][i] for n in names}}

    @staticmethod
    def from_rows(fields: Sequence[FieldSpec], ids: list[Any], properties: list[dict[str, Any]], geometry: list[Any]) -> Chunk:
        return Chunk(ids, {f.name: [p.get(f.name) for p in properties] for f in fields}, geometry)


@dataclass
class Rows:
    """A layer opened for one reader: what its answer says about itself (``members``), how many rows
    (``count``, exact), and the rows, chunk by chunk, on a connection (``chunks(conn)``)."""

    members: dict[str, Any]
    count: int
    chunks: Callable[[Connection], Iterator[Chunk]]


@dataclass(frozen=True)
class LayerSource:
    """One layer: the one place its rows are defined, whatever reads them.

    ``readers`` are the roles that may read it (None: anyone, signed in or
    not); ``limit`` says whether rows are limited to the reader's area;
    ``filters`` is the model of its filters (the query parameters of its
    route and of its export); ``fields`` its attributes, in order;
    ``personal`` layers hold personal data, and every read of them is audited.
    """

    name: str
    title: str
    description: str
    readers: tuple[Role, ...] | None
    limit: Limit
    filters: type[Filters]
    fields: tuple[FieldSpec, ...]
    geometry_type: GeometryType
    opener: Callable[[Connection, Any, Viewer, Shape, Page], Rows]
    personal: bool = False
    temporal: str | None = None  # the field that dates a row, where there is one
    extra: dict[str, Any] = field(default_factory=dict)

    def may_read(self, role: Role | None) -> bool:
        return self.readers is None or role in self.readers

    def parse_filters(self, values: dict[str, Any]) -> Filters:
        """Filters from ``{parameter: value}`` (values as text, lists for repeated ones), as the route reads them."""
        return self.filters.model_validate(values)

    def open(self, conn: Connection, filters: Filters, viewer: Viewer, shape: Shape = WEB, page: Page = ALL) -> Rows:
        """The rows ``viewer`` may read with ``filters`` (``page`` of them; ``count`` is of all that match);
        raises :class:`InvalidInput` naming a wrong filter, :class:`PermissionDenied` for a role that may not read it."""
        if not self.may_read(viewer.role):
            raise PermissionDenied(f"the {self.name} layer is for the role {' or '.join(r.value for r in self.readers or ())}; "
                                   f"yours is {viewer.role.value if viewer.role else 'none (not signed in)'}")
        if self.personal and viewer.audit is None:
            raise RuntimeError(f"the {self.name} layer holds personal data: it is read only with an audit of the read")
        return self.opener(conn, filters, viewer, shape, page)


# -- helpers the layers share ----------------------------------------------------------------
def check_level(structure: Structure, level: Level) -> None:
    """Refuse a level the structure does not have (422 naming ``level``)."""
    if level not in LEVELS[structure]:
        raise InvalidInput(f"the {structure.value} structure has no {level.value} level "
                           f"(levels: {', '.join(x.value for x in LEVELS[structure])})", loc=("query", "level"))


def in_chunks(fields: Sequence[FieldSpec], items: list[tuple[Any, dict[str, Any], Any]], page: Page = ALL,
              geometry: Callable[[Connection, list[Any]], list[Any]] | None = None,
              size: int = CHUNK_ROWS) -> Callable[[Connection], Iterator[Chunk]]:
    """Chunks of rows computed in memory (``(id, properties, geometry)``), the ``page`` of them; ``geometry(conn, ids)``
    fetches the geometries of a chunk where they were not computed with the rows."""
    items = items[page.offset:None if page.limit is None else page.offset + page.limit]

    def chunks(conn: Connection) -> Iterator[Chunk]:
        for at in range(0, len(items), size):
            part = items[at:at + size]
            ids = [i for i, _, _ in part]
            shapes = geometry(conn, ids) if geometry else [g for _, _, g in part]
            yield Chunk.from_rows(fields, ids, [p for _, p, _ in part], shapes)

    return chunks


def unit_shapes(conn: Connection, structure: str, codes: list[str], shape: Shape) -> dict[str, Any]:
    """Polygons of units by code: GeoJSON of the web copy (5 decimals, as the map layers answer), or WKB of the
    full polygon as a MultiPolygon (what a file needs). Empty when ``shape`` asks for no geometry."""
    if not shape.include or not codes:
        return {}
    if shape.encoding == "geojson":
        column = "ST_AsGeoJSON(geom_web, 5)" if shape.detail == "web" else "ST_AsGeoJSON(geom, 7)"
    else:
        column = "ST_AsBinary(ST_Multi(geom_web))" if shape.detail == "web" else "ST_AsBinary(ST_Multi(geom))"
    rows = conn.execute(text(f"SELECT code, {column} FROM admin_unit WHERE structure = :s AND code = ANY(:c)"),
                        {"s": structure, "c": codes}).all()
    if shape.encoding == "geojson":
        import json

        return {code: json.loads(g) for code, g in rows if g}
    return {code: bytes(g) for code, g in rows if g}


def geometry_sql(column: str, shape: Shape, precision: int = 6, multi: bool = False) -> str:
    """The SQL that selects ``column`` as ``shape`` asks (NULL when no geometry is wanted)."""
    if not shape.include:
        return "NULL"
    if shape.encoding == "geojson":
        return f"ST_AsGeoJSON({column}, {precision})"
    return f"ST_AsBinary(ST_Multi({column}))" if multi else f"ST_AsBinary({column})"


def iso(value: Any) -> Any:
    """Dates and times as ISO 8601 text (what the GeoJSON routes answer), everything else as is."""
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value
