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
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, text

from geodata.cql2 import Filter
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
class Where:
    """A condition on a layer's rows beside its filters: a CQL2 ``filter`` (with the OGC API's ``bbox`` and
    ``datetime`` folded in) and/or only the rows with these ``ids``.

    Layers read by SQL (``LayerSource.sql_where``) apply it in their SQL (:func:`where_sql`): their select
    is wrapped as ``x``, which has the fields by name, ``x._id`` the row's id and ``x._geom`` its geometry
    (WGS 84). Layers computed in memory (aggregates) are filtered by :meth:`test` after they are computed and
    before they are paged (:meth:`LayerSource.open`), on the geometry they are opened with (the shape asked for).
    """

    filter: Filter | None = None
    ids: tuple[str, ...] | None = None

    def sql(self, alias: str = "x") -> tuple[str, dict[str, Any]]:
        parts, params = [], {}
        if self.filter is not None:
            condition, params = self.filter.sql(lambda name: f'{alias}."{name}"', f"{alias}._geom")
            parts.append(condition)
        if self.ids is not None:
            parts.append(f"{alias}._id = ANY(CAST(:where_ids AS text[]))")
            params["where_ids"] = list(self.ids)
        return " AND ".join(parts) or "TRUE", params

    def test(self, fid: Any, properties: dict[str, Any], geometry: Any) -> bool:
        if self.ids is not None and str(fid) not in self.ids:
            return False
        if self.filter is None:
            return True
        shape = None
        if geometry is not None and self.filter.spatial:
            import shapely
            import shapely.geometry

            shape = shapely.from_wkb(geometry) if isinstance(geometry, bytes) else shapely.geometry.shape(geometry)
        return self.filter.test(properties, shape)


def where_sql(select: str, fields: Sequence[FieldSpec], where: Where, order: str) -> tuple[str, str, dict[str, Any]]:
    """The count and the rows of a layer's ``select`` (its fields by name, ``geometry``, ``_id`` and ``_geom``)
    that pass ``where``, the rows in ``order`` (over ``x``) and paged by ``:limit`` / ``:offset``; and the
    parameters of the condition."""
    condition, params = where.sql("x")
    columns = ", ".join(f'x."{f.name}"' for f in fields)
    return (f"SELECT count(*) FROM ({select}) x WHERE {condition}",
            f"SELECT {columns}, x.geometry FROM ({select}) x WHERE {condition} {order} LIMIT :limit OFFSET :offset", params)


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
    (``count``, exact), and the rows, chunk by chunk, on a connection (``chunks(conn)``).

    Layers read by SQL also give the same rows as Arrow record batches (``batches(conn, names)``: the fields
    ``names``, in order, and ``geometry`` as WKB; :mod:`maps.sources.arrow_rows`), which files of a million
    rows are written from; a personal layer audits each batch as it audits each chunk.
    """

    members: dict[str, Any]
    count: int
    chunks: Callable[[Connection], Iterator[Chunk]]
    batches: Callable[[Connection, Sequence[str]], Iterator[Any]] | None = None


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
    sql_where: bool = False  # the opener takes a Where and applies it in SQL (else rows are filtered in memory)

    def may_read(self, role: Role | None) -> bool:
        return self.readers is None or role in self.readers

    def parse_filters(self, values: dict[str, Any]) -> Filters:
        """Filters from ``{parameter: value}`` (values as text, lists for repeated ones), as the route reads them."""
        return self.filters.model_validate(values)

    def open(self, conn: Connection, filters: Filters, viewer: Viewer, shape: Shape = WEB, page: Page = ALL,
             where: Where | None = None) -> Rows:
        """The rows ``viewer`` may read with ``filters`` and ``where`` (``page`` of them; ``count`` is of all that
        match); raises :class:`InvalidInput` naming a wrong filter, :class:`PermissionDenied` for a role that may
        not read it."""
        if not self.may_read(viewer.role):
            raise PermissionDenied(f"the {self.name} layer is for the role {' or '.join(r.value for r in self.readers or ())}; "
                                   f"yours is {viewer.role.value if viewer.role else 'none (not signed in)'}")
        if self.personal and viewer.audit is None:
            raise RuntimeError(f"the {self.name} layer holds personal data: it is read only with an audit of the read")
        if where is None:
            return self.opener(conn, filters, viewer, shape, page)
        if self.sql_where:
            return self.opener(conn, filters, viewer, shape, page, where)
        return _filtered(conn, self.opener(conn, filters, viewer, shape, ALL), where, self.fields, page)


def _filtered(conn: Connection, rows: Rows, where: Where, fields: Sequence[FieldSpec], page: Page) -> Rows:
    """The rows of an aggregate layer (computed in memory) that pass ``where``, then the ``page`` of them."""
    kept = [(fid, props, geometry) for chunk in rows.chunks(conn)
            for fid, props, geometry in zip(chunk.ids, _properties(chunk), chunk.geometry, strict=True)
            if where.test(fid, props, geometry)]
    return Rows(rows.members, len(kept), in_chunks(fields, kept, page))


def _properties(chunk: Chunk) -> Iterator[dict[str, Any]]:
    names = list(chunk.columns)
    for i in range(len(chunk)):
        yield {n: chunk.columns[n][i] for n in names}


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


def sql_chunks(conn: Connection, sql: Any, params: dict[str, Any], fields: Sequence[FieldSpec]) -> Iterator[Chunk]:
    """The rows of ``sql`` streamed in chunks: its first column is the row's id, then ``fields`` in order, then the geometry
    (GeoJSON text or WKB, as :func:`geometry_sql` selects it)."""
    result = conn.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(sql, params)
    for part in result.partitions(CHUNK_ROWS):  # the size given: yield_per alone gave one partition of every row (SQLAlchemy 2.1)
        columns = list(zip(*part, strict=True))
        geometry = [json.loads(g) if isinstance(g, str) else bytes(g) if g is not None else None for g in columns[-1]]
        yield Chunk(list(columns[0]), {spec.name: list(col) for spec, col in zip(fields, columns[:-1], strict=True)}, geometry)


def sql_rows(members: dict[str, Any], count: int, sql: Any, params: dict[str, Any], fields: Sequence[FieldSpec],
             ids: Callable[[Any], Any] | None = None, audit: Callable[[list[Any]], None] | None = None) -> Rows:
    """The :class:`Rows` of a layer read by SQL: ``sql`` with ``params`` (the page's included) selects ``fields`` in
    order, the first being the row's key, then the geometry; read as chunks (:func:`sql_chunks`) or as Arrow batches
    (:mod:`maps.sources.arrow_rows`). ``ids`` makes a row's id of its key; ``audit`` is handed the ids of each chunk or
    batch before it is handed on (a batch reads the key for it even when the reader's fields leave it out)."""
    key = fields[0].name

    def chunks(c: Connection) -> Iterator[Chunk]:
        for chunk in sql_chunks(c, sql, params, fields):
            if ids is not None:
                chunk.ids = [ids(v) for v in chunk.ids]
            if audit is not None:
                audit(chunk.ids)
            yield chunk

    def batches(c: Connection, names: Sequence[str]) -> Iterator[Any]:
        from maps.sources.arrow_rows import sql_batches  # pyarrow: imported by the first file export, not at start-up

        extra = [key] if audit is not None and key not in names else []
        for batch in sql_batches(c, sql, params, fields, [*extra, *names]):
            if audit is not None:
                keys = batch.column(key).to_pylist()
                audit([ids(v) for v in keys] if ids is not None else keys)
            yield batch.drop_columns(extra)

    return Rows(members, count, chunks, batches)


def iso(value: Any) -> Any:
    """Dates and times as ISO 8601 text (what the GeoJSON routes answer), everything else as is."""
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value
