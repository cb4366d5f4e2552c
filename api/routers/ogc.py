"""OGC API Features under ``/ogc``: every layer of the registry (:mod:`maps.sources`) as a collection, for QGIS,
GDAL/OGR, OWSLib and browsers.

Parts 1 (core, GeoJSON, HTML, OpenAPI 3.0), 2 (coordinates in CRS84, EPSG:4326, VN-2000 and its grids) and 3
(``/queryables``, CQL2 text filters) of the standard. Sign-in is a bearer token or HTTP Basic
(:class:`api.access.AllowLayers`): each collection follows its layer's readers, and one a caller may not read is
neither listed nor found (404). Every read of survey records, a personal layer, writes each chunk's record ids
to the audit log before the chunk is sent, with the purpose stated (header ``X-Purpose`` or parameter
``purpose``) or marked as not stated (:func:`purpose_of`).

The items of a page are streamed: the layer's rows come chunk by chunk on a connection of the response's own,
so a page of 10,000 features (or a GDAL client walking 100,000 by ``next`` links) holds one chunk in memory.
Where a layer is read by SQL (units, incidents, survey records) ``bbox``, ``datetime`` and ``filter`` are a
WHERE in that SQL; aggregate layers (coverage, hot spots, counts, recruiters), computed in memory, are
filtered after they are computed and before they are paged, on the full polygons this API answers with.
"""

from __future__ import annotations

import datetime as dt
import json
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from api import ogc_params
from api.access import AllowLayers, viewer_for
from api.audit import record_access
from api.deps import AuthUser, DbConn
from api.schemas import OgcCollection, OgcCollections, OgcConformance, OgcLanding, OgcQueryables
from geodata.cql2 import GEOMETRY
from geodata.crs import CRS84_URI
from geodata.db import get_engine
from geodata.errors import InvalidInput, NotFound
from maps.sources import SOURCES, LayerSource, Page, Shape, Viewer

router = APIRouter(prefix="/ogc", tags=["ogc"])
templates = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")
OGC = AllowLayers()
Caller = Annotated[AuthUser | None, Depends(OGC)]

DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
GEOJSON = "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
TRS = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
# Geometry as GeoJSON, full detail (a GIS wants the real boundaries, not the web map's simplified copy).
SHAPE = Shape("geojson", "full")
RESERVED = {"limit", "offset", "bbox", "bbox-crs", "datetime", "crs", "filter", "filter-lang", "filter-crs", "f", "purpose"}
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
]
JSON_TYPES = {"text": {"type": "string"}, "integer": {"type": "integer"}, "real": {"type": "number"},
              "boolean": {"type": "boolean"}, "date": {"type": "string", "format": "date"},
              "datetime": {"type": "string", "format": "date-time"}}
Format = Annotated[str | None, Query(alias="f", description="json (GeoJSON for items) or html; default: by the Accept header")]


class BadRequest(HTTPException):
    """A 400 with FastAPI's detail shape (``[{"loc", "msg", "type"}]``): OGC API answers bad parameters with 400."""

    def __init__(self, error: InvalidInput) -> None:
        super().__init__(400, detail=error.as_detail())


# -- helpers -----------------------------------------------------------------------------------------------------
def base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + router.prefix


def wants_html(request: Request, f: str | None) -> bool:
    """``f=html``, or no ``f`` and a browser's Accept header (text/html before any JSON)."""
    if f is not None:
        if f not in ("json", "html", "geojson"):
            raise BadRequest(InvalidInput(f"f: {f!r} is not a format here; use json or html", loc=("query", "f")))
        return f == "html"
    accept = request.headers.get("accept", "")
    html = accept.find("text/html")
    json_at = min((i for i in (accept.find("json"),) if i >= 0), default=len(accept) + 1)
    return html >= 0 and html < json_at


def link(href: str, rel: str, type_: str | None = None, title: str | None = None) -> dict[str, Any]:
    return {"href": href, "rel": rel, "type": type_, "title": title}


def page(request: Request, title: str, links: list[dict], description: str = "", facts: list | None = None,
         columns: list[str] | None = None, rows: Any = None, row_links: Any = None) -> Response:
    return templates.TemplateResponse(request, "ogc.html", {"title": title, "description": description, "links": links,
                                                           "facts": facts or [], "columns": columns, "rows": rows or [],
                                                           "row_links": row_links})


def visible(user: AuthUser | None) -> list[LayerSource]:
    """The layers ``user`` may read (without sign-in: the public ones)."""
    role = user.role if user else None
    return [s for s in SOURCES.values() if s.may_read(role)]


def collection_source(collection_id: str, user: AuthUser | None) -> LayerSource:
    """The layer of a collection the caller may read: 404 otherwise (401 with a challenge when not signed in)."""
    source = SOURCES.get(collection_id)
    role = user.role if user else None
    if source is not None and not source.may_read(role) and user is None:
        raise OGC.basic.challenge(f"sign in to read the collection {collection_id}")
    if source is None or not source.may_read(role):
        names = ", ".join(s.name for s in visible(user))
        raise NotFound(f"no collection {collection_id!r}; yours are {names}")
    return source


def country_bbox(conn: DbConn) -> list[float]:
    """Every layer lies in Vietnam: the extent of the provinces in force (a cheap, honest outer bound)."""
    from sqlalchemy import text

    box = conn.execute(text("""SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (
        SELECT ST_Extent(geom_web) AS e FROM admin_unit WHERE level = 'province' AND valid_to IS NULL) x""")).one()
    return [round(v, 4) for v in box] if box[0] is not None else [102.1, 8.1, 109.5, 23.4]


def describe(request: Request, source: LayerSource, bbox: list[float]) -> dict[str, Any]:
    url = f"{base(request)}/collections/{source.name}"
    extent: dict[str, Any] = {"spatial": {"bbox": [bbox], "crs": CRS84_URI}}
    if source.temporal:
        extent["temporal"] = {"interval": [[None, None]], "trs": TRS}
    return {
        "id": source.name, "title": source.title, "description": source.description,
        "links": [link(url, "self", "application/json", "This collection"),
                  link(f"{url}?f=html", "alternate", "text/html", "This collection as HTML"),
                  link(f"{url}/items", "items", GEOJSON, "Its features"),
                  link(f"{url}/items?f=html", "items", "text/html", "Its features as HTML"),
                  link(f"{url}/queryables", "http://www.opengis.net/def/rel/ogc/1.0/queryables", "application/schema+json",
                       "The properties a filter may name")],
        "extent": extent, "itemType": "feature", "crs": ogc_params.supported_crs(), "storageCrs": CRS84_URI,
    }


def layer_filters(request: Request, source: LayerSource):
    """The layer's own filters from the query (its route's parameters), 400 naming a wrong one."""
    values: dict[str, Any] = {}
    for name, spec in source.filters.model_fields.items():
        key = spec.alias or name
        given = request.query_params.getlist(key)
        if not given:
            continue
        values[key] = given if typing.get_origin(spec.annotation) is list or "list[" in str(spec.annotation) else given[-1]
    try:
        return source.parse_filters(values)
    except ValidationError as exc:
        e = exc.errors()[0]
        raise BadRequest(InvalidInput(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}",
                                      loc=("query", *(str(x) for x in e["loc"])))) from None


def purpose_of(request: Request) -> str:
    """Why personal records are read: header ``X-Purpose`` or parameter ``purpose``, as on the other routes.

    GIS clients cannot always send it (GDAL's OAPIF driver sends its own headers, older QGIS none): the read
    is then still audited, record by record, with the purpose marked as not stated and the client named.
    """
    stated = (request.query_params.get("purpose") or unquote(request.headers.get("x-purpose", ""))).strip()
    if len(stated) >= 3:
        return stated[:500]
    return f"not stated (OGC API Features client: {request.headers.get('user-agent', 'unknown')[:120]})"


def viewer(request: Request, user: AuthUser | None, source: LayerSource) -> Viewer:
    """Who reads; for a personal layer with an audit that writes (and commits) each chunk's ids before it is sent."""
    if not source.personal:
        return viewer_for(user, source)
    assert user is not None  # a personal layer is never public
    purpose, path = purpose_of(request), request.url.path

    def audit(ids: list[str]) -> None:
        with get_engine().begin() as c:
            record_access(c, actor=user.username, role=user.role.value, method="GET", route=path, purpose=purpose,
                          record_ids=ids)

    return viewer_for(user, source, audit)


# -- routes ------------------------------------------------------------------------------------------------------
@router.get("", response_model=OgcLanding, response_class=JSONResponse)
def landing(request: Request, user: Caller, f: Format = None) -> Response:
    """The landing page: links to the API definition, the conformance classes and the collections."""
    url = base(request)
    links = [link(url, "self", "application/json", "This document"),
             link(f"{url}?f=html", "alternate", "text/html", "This document as HTML"),
             link(f"{url}/api", "service-desc", OPENAPI, "The API definition (OpenAPI 3.0)"),
             link(str(request.base_url).rstrip("/") + "/docs", "service-doc", "text/html", "The API documentation"),
             link(f"{url}/conformance", "conformance", "application/json", "Conformance classes"),
             link(f"{url}/collections", "data", "application/json", "The collections")]
    title, description = "Labour Atlas", "Map layers of Vietnam's contract-labour programme (OGC API Features)"
    if wants_html(request, f):
        return page(request, title, links, description)
    return JSONResponse({"title": title, "description": description, "links": links})


@router.get("/conformance", response_model=OgcConformance, response_class=JSONResponse)
def conformance(request: Request, user: Caller, f: Format = None) -> Response:
    """The conformance classes this API implements."""
    if wants_html(request, f):
        return page(request, "Conformance", [link(c, "conformance", None, c) for c in CONFORMANCE])
    return JSONResponse({"conformsTo": CONFORMANCE})


@router.get("/api", response_class=Response, responses={200: {"content": {OPENAPI: {}}}})
def api_definition(request: Request, user: Caller) -> Response:
    """The OpenAPI 3.0 document of the OGC API (its own paths, with each visible collection's parameters)."""
    document = request.app.openapi()
    paths = {p: v for p, v in document.get("paths", {}).items() if p.startswith(router.prefix)}
    schemas = document.get("components", {}).get("schemas", {})
    answer = {"openapi": "3.0.3", "info": {"title": "Labour Atlas OGC API Features", "version": document["info"]["version"]},
              "servers": [{"url": str(request.base_url).rstrip("/")}], "paths": paths,
              "components": {"schemas": {name: schemas[name] for name in sorted(_referenced(paths, schemas))}}}
    return Response(json.dumps(answer, ensure_ascii=False), media_type=OPENAPI)


def _referenced(value: Any, schemas: dict[str, Any], found: set[str] | None = None) -> set[str]:
    """The schemas ``value`` refers to, and those they refer to (the OGC document carries only its own)."""
    found = set() if found is None else found
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name not in found and name in schemas:
                found.add(name)
                _referenced(schemas[name], schemas, found)
        for v in value.values():
            _referenced(v, schemas, found)
    elif isinstance(value, list):
        for v in value:
            _referenced(v, schemas, found)
    return found


@router.get("/collections", response_model=OgcCollections, response_class=JSONResponse)
def collections(request: Request, conn: DbConn, user: Caller, f: Format = None) -> Response:
    """The collections the caller may read (without sign-in: the public ones)."""
    url = f"{base(request)}/collections"
    answer = {"links": [link(url, "self", "application/json", "The collections"),
                        link(f"{url}?f=html", "alternate", "text/html", "The collections as HTML")],
              "collections": [describe(request, s, bbox) for bbox in [country_bbox(conn)] for s in visible(user)]}
    if wants_html(request, f):
        return page(request, "Collections", answer["links"] + [link(f"{url}/{c['id']}?f=html", "collection", None, c["title"])
                                                               for c in answer["collections"]])
    return JSONResponse(answer)


@router.get("/collections/{collection_id}", response_model=OgcCollection, response_class=JSONResponse)
def collection(request: Request, conn: DbConn, user: Caller, collection_id: str, f: Format = None) -> Response:
    """One collection: its extent, the CRSs it can be read in, its links."""
    source = collection_source(collection_id, user)
    answer = describe(request, source, country_bbox(conn))
    if wants_html(request, f):
        facts = [("Filters (query parameters)", ", ".join(source.filters.model_fields) or "none"),
                 ("CRS", ", ".join(answer["crs"]))]
        return page(request, source.title, answer["links"], source.description, facts)
    return JSONResponse(answer)


@router.get("/collections/{collection_id}/queryables", response_model=OgcQueryables, response_class=JSONResponse)
def queryables(request: Request, user: Caller, collection_id: str, f: Format = None) -> Response:
    """The properties a ``filter`` may name, as a JSON Schema (with the geometry)."""
    source = collection_source(collection_id, user)
    url = f"{base(request)}/collections/{source.name}/queryables"
    types = ogc_params.queryables(source)
    properties: dict[str, dict[str, Any]] = {
        GEOMETRY: {"title": "geometry", "format": f"geometry-{source.geometry_type.lower()}", "x-ogc-role": "primary-geometry"}}
    for spec in source.fields:
        if spec.name in types:
            properties[spec.name] = {"title": spec.name, "description": spec.description, **JSON_TYPES[spec.type]}
    if source.temporal:
        properties[source.temporal]["x-ogc-role"] = "primary-instant"
    answer = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": url, "type": "object",
              "title": source.title, "properties": properties, "additionalProperties": False}
    if wants_html(request, f):
        return page(request, f"Queryables of {source.title}", [link(url, "self", "application/schema+json")],
                    columns=["property", "type", "description"],
                    rows=[[k, v.get("format", v.get("type")), v.get("description", "")] for k, v in properties.items()])
    return Response(json.dumps(answer, ensure_ascii=False), media_type="application/schema+json")


def _single_structure(request: Request, source: LayerSource, feature_id: str):
    """Ids like ``2025:42`` name their boundary structure: read the item in it unless the query says otherwise."""
    structure, sep, _ = feature_id.partition(":")
    if sep and "structure" in source.filters.model_fields and "structure" not in request.query_params \
            and structure in ("2025", "pre2025"):
        return source.filters.model_validate({**layer_filters(request, source).model_dump(by_alias=True), "structure": structure})
    return layer_filters(request, source)


def _query(request: Request, source: LayerSource, ids: tuple[str, ...] | None = None):
    q = request.query_params
    try:
        where = ogc_params.where(source, bbox=q.get("bbox"), bbox_crs=q.get("bbox-crs"), datetime=q.get("datetime"),
                                 filter_text=q.get("filter"), filter_lang=q.get("filter-lang"),
                                 filter_crs=q.get("filter-crs"), ids=ids)
        crs = ogc_params.output_crs(q.get("crs"))
    except InvalidInput as exc:
        raise BadRequest(exc) from None
    return where, crs


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(InvalidInput(f"{name}: {raw!r} is not a whole number", loc=("query", name))) from None
    if not low <= value <= high:
        raise BadRequest(InvalidInput(f"{name}: {value} is outside {low}..{high}", loc=("query", name)))
    return value


def _feature(feature: dict[str, Any], crs: ogc_params.OgcCrs) -> dict[str, Any]:
    return {"type": "Feature", "id": feature["id"], "geometry": ogc_params.reproject(feature["geometry"], crs),
            "properties": {k: ogc_params.json_value(v) for k, v in feature["properties"].items()}}


@router.get("/collections/{collection_id}/items", response_class=StreamingResponse,
            responses={200: {"content": {GEOJSON: {}, "text/html": {}}}})
def items(request: Request, conn: DbConn, user: Caller, collection_id: str,
          limit: Annotated[str | None, Query(description=f"Features per page, 1 to {MAX_LIMIT} (more is read as "
                                                          f"{MAX_LIMIT}); default {DEFAULT_LIMIT}")] = None,
          offset: Annotated[str | None, Query(description="Features to skip (or follow the next link)")] = None,
          bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy in bbox-crs (default CRS84)")] = None,
          datetime: Annotated[str | None, Query(description="An instant or interval (a/b, ../b, a/..) on the layer's date")] = None,
          crs: Annotated[str | None, Query(description="Output CRS URI (see the collection's crs list)")] = None,
          filter: Annotated[str | None, Query(description="A CQL2 text filter over the queryables")] = None,
          f: Format = None) -> Response:
    """The features of a collection, a page at a time (``limit``, ``offset``, ``next`` links), streamed.

    The layer's own filters (those of its route and export) are further query parameters.
    """
    source = collection_source(collection_id, user)
    html = wants_html(request, f)
    # A limit above the maximum is read as the maximum (Part 1, 7.15.3), not refused.
    size = min(_int(request, "limit", DEFAULT_LIMIT, 1, 10**9), MAX_LIMIT)
    start = _int(request, "offset", 0, 0, 10**9)
    filters = layer_filters(request, source)
    where, out_crs = _query(request, source)
    who = viewer(request, user, source)
    try:
        rows = source.open(conn, filters, who, SHAPE, Page(size, start), where)
    except InvalidInput as exc:
        raise BadRequest(exc) from None
    returned = max(0, min(size, rows.count - start))
    url = request.url
    links = [link(str(url), "self", GEOJSON if not html else "text/html", "This page"),
             link(str(url.include_query_params(f="html" if not html else "json")), "alternate",
                  "text/html" if not html else GEOJSON, "This page as HTML" if not html else "This page as GeoJSON"),
             link(f"{base(request)}/collections/{source.name}", "collection", "application/json", source.title)]
    if start + returned < rows.count:
        links.append(link(str(url.include_query_params(offset=start + size, limit=size)), "next",
                          "text/html" if html else GEOJSON, "Next page"))
    if start > 0:
        links.append(link(str(url.include_query_params(offset=max(0, start - size), limit=size)), "prev",
                          "text/html" if html else GEOJSON, "Previous page"))
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    headers = {"Content-Crs": f"<{out_crs.uri}>", "OGC-NumberMatched": str(rows.count)}

    def features() -> Iterator[dict[str, Any]]:
        # Its own connection: the request's is given back when this function returns, before the body is sent.
        with get_engine().connect() as c:
            for chunk in rows.chunks(c):
                for feature in chunk.features():
                    yield _feature(feature, out_crs)

    if html:
        columns = [s.name for s in source.fields]
        table = ([feature["id"], *(feature["properties"].get(n) for n in columns)] for feature in features())
        template = templates.get_template("ogc.html")
        body = template.generate(title=f"{source.title}: features {start + 1}–{start + returned} of {rows.count}",
                                 description=source.description, links=links, facts=[], columns=["id", *columns],
                                 rows=table,
                                 row_links=lambda fid: f"{base(request)}/collections/{source.name}/items/{quote(str(fid), safe=':')}?f=html")
        return StreamingResponse(body, media_type="text/html; charset=utf-8", headers=headers)

    def geojson() -> Iterator[str]:
        head = {"type": "FeatureCollection", "numberMatched": rows.count, "numberReturned": returned, "timeStamp": stamp,
                "links": links}
        yield json.dumps(head, ensure_ascii=False)[:-1] + ', "features": ['
        first = True
        for feature in features():
            yield ("" if first else ",\n") + json.dumps(feature, ensure_ascii=False, default=str)
            first = False
        yield "]}\n"

    return StreamingResponse(geojson(), media_type=GEOJSON, headers=headers)


@router.get("/collections/{collection_id}/items/{feature_id}", response_class=Response,
            responses={200: {"content": {GEOJSON: {}, "text/html": {}}}})
def item(request: Request, conn: DbConn, user: Caller, collection_id: str, feature_id: str, f: Format = None,
         crs: Annotated[str | None, Query(description="Output CRS URI")] = None) -> Response:
    """One feature of a collection (404 when the caller may not read it, or it is not there)."""
    source = collection_source(collection_id, user)
    html = wants_html(request, f)
    filters = _single_structure(request, source, feature_id)
    where, out_crs = _query(request, source, ids=(feature_id,))
    try:
        rows = source.open(conn, filters, viewer(request, user, source), SHAPE, Page(1), where)
    except InvalidInput as exc:
        raise BadRequest(exc) from None
    found = [_feature(x, out_crs) for chunk in rows.chunks(conn) for x in chunk.features()]
    if not found:
        raise NotFound(f"no feature {feature_id!r} in the collection {source.name} (for you, with these parameters)")
    url = f"{base(request)}/collections/{source.name}"
    links = [link(str(request.url), "self", "text/html" if html else GEOJSON, "This feature"),
             link(str(request.url.include_query_params(f="json" if html else "html")), "alternate",
                  GEOJSON if html else "text/html", "This feature as GeoJSON" if html else "This feature as HTML"),
             link(url, "collection", "application/json", source.title)]
    feature = {**found[0], "links": links}
    headers = {"Content-Crs": f"<{out_crs.uri}>"}
    if html:
        return page(request, f"{source.title}: {feature_id}", links, source.description,
                    columns=["property", "value"], rows=[[k, v] for k, v in feature["properties"].items()])
    return Response(json.dumps(feature, ensure_ascii=False, default=str), media_type=GEOJSON, headers=headers)
