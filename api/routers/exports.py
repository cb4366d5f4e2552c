"""Exports of every layer: ``GET /api/v1/exports/{layer}`` streams the file, ``POST`` makes it as a job.

One route per layer of the registry (:data:`maps.sources.SOURCES`), so each
carries its layer's own rule (:func:`api.access.layer_rule`): a role that may
not read a layer gets 403 for its export too. The query parameters are
``format``, ``crs`` and the layer's own filters (the same as its GeoJSON
route's). Survey records also need a purpose, and every chunk that leaves is
audited before it is sent.

A GET of more rows than ``LABOUR_ATLAS_EXPORT_JOB_ROWS`` answers 413 saying to
POST the same URL: the job's status is ``GET /api/v1/export-jobs/{id}`` and its
file ``GET /api/v1/export-jobs/{id}/file`` (the owner's only; 404 for others).
"""

# No `from __future__ import annotations` here: the routes are made per layer in a function, and FastAPI
# must see the layer's filter model itself, not its name as a string.
from collections.abc import Iterator
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from sqlalchemy import Connection

from api import export_worker
from api.access import PUBLIC, Allow, Public, layer_rule, viewer_for
from api.audit import audit_writer
from api.deps import AuthUser, DbConn, PersonalRead, personal_read
from api.schemas import ExportJob
from etl.exports import FORMATS, check_crs, check_format, open_export
from etl.exports.jobs import create_job, expire_jobs, get_job, job_answer
from geodata.db import get_engine
from geodata.errors import NotFound, TooLarge
from geodata.roles import Role
from geodata.settings import get_settings
from maps.sources import SOURCES, LayerSource

router = APIRouter(tags=["exports"])

FormatName = Literal["shp", "gpkg", "geojson", "csv", "kml"]
assert set(FormatName.__args__) == set(FORMATS)  # type: ignore[attr-defined]
FormatQuery = Annotated[FormatName, Query(description="shp (zipped shapefile), gpkg, geojson, csv (UTF-8 with BOM) or kml")]
CrsQuery = Annotated[str | None, Query(description="EPSG:4326 (default), EPSG:4756, EPSG:3405, EPSG:3406, or "
                                                   "vn2000-tm3:<province code> (e.g. vn2000-tm3:42); OGC CRS URIs too")]
SIGNED_IN = Allow(*Role, limit="none")
"""Jobs of a public layer: anyone signed in (a job has an owner)."""
JOB_OWNERS = Allow(*Role, limit="none")
JobOwner = Annotated[AuthUser, Depends(JOB_OWNERS)]


def job_rule(source: LayerSource) -> Public | Allow:
    rule = layer_rule(source)
    return SIGNED_IN if rule is PUBLIC else rule


def no_purpose() -> None:
    return None


def _open(conn: Connection, source: LayerSource, user: AuthUser | None, filters: Any, format: str, crs: str | None,
          read: PersonalRead | None, method: str):
    fmt = check_format(format)
    out = check_crs(fmt, crs)
    audit = None
    if read is not None:
        audit = audit_writer(get_engine(), actor=read.actor, role=read.role, method=method, route=read.route, purpose=read.purpose)
    return open_export(conn, source, filters, viewer_for(user, source, audit), fmt, out)


def _job_links(job: dict[str, Any]) -> dict[str, Any]:
    answer = job_answer(job)
    answer["status_url"] = f"/api/v1/export-jobs/{job['id']}"
    answer["file_url"] = f"/api/v1/export-jobs/{job['id']}/file" if job["state"] == "done" else None
    return answer


def _attachment(name: str) -> str:
    return f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}"


def add_layer_routes(source: LayerSource) -> None:
    """The GET (streamed file) and POST (job) routes of one layer."""
    Reader = Annotated[AuthUser | None, Depends(layer_rule(source))]  # noqa: N806 (types, named as types)
    Owner = Annotated[AuthUser, Depends(job_rule(source))]  # noqa: N806
    Filters = Annotated[source.filters, Query()]  # noqa: N806
    Purpose = Annotated[PersonalRead | None, Depends(personal_read if source.personal else no_purpose)]  # noqa: N806
    personal = " Personal data: say why (header X-Purpose or parameter purpose); every chunk is audited." if source.personal else ""

    def export_file(conn: DbConn, user: Reader, filters: Filters, read: Purpose, format: FormatQuery = "gpkg",
                    crs: CrsQuery = None) -> StreamingResponse:
        export = _open(conn, source, user, filters, format, crs, read, "GET")
        limit = get_settings().export_job_rows
        if export.rows.count > limit:
            raise TooLarge(f"{export.rows.count} rows are more than one download carries ({limit}, "
                           f"LABOUR_ATLAS_EXPORT_JOB_ROWS): POST the same URL to make the file as a job, then follow its "
                           "status_url until it is done and fetch its file_url")

        def body() -> Iterator[bytes]:
            with get_engine().connect() as c:
                yield from export.write(c)

        return StreamingResponse(body(), media_type=export.format.media_type,
                                 headers={"Content-Disposition": _attachment(export.filename),
                                          "X-Feature-Count": str(export.rows.count), "X-CRS": export.target.crs.key})

    def export_job(request: Request, response: Response, conn: DbConn, user: Owner, filters: Filters, read: Purpose,
                   format: FormatQuery = "gpkg", crs: CrsQuery = None) -> dict:
        export = _open(conn, source, user, filters, format, crs, read, "POST")
        expire_jobs(get_engine())
        job = create_job(conn, owner_id=user.id, owner=user.username, role=user.role.value, layer=source.name,
                         format=export.format.name, crs=export.target.crs.key,
                         filters=filters.model_dump(mode="json", exclude_none=True),
                         purpose=read.purpose if read else None, rows_total=export.rows.count)
        conn.commit()
        export_worker.submit(job["id"])
        response.status_code = 202
        response.headers["Location"] = f"/api/v1/export-jobs/{job['id']}"
        return _job_links(job)

    path = f"/api/v1/exports/{source.name}"
    router.add_api_route(path, export_file, methods=["GET"], response_class=StreamingResponse, name=f"export_{source.name}",
                         summary=f"Export {source.title}", description=f"{source.description}. The file, streamed "
                         f"(shp, gpkg, geojson, csv, kml) in the CRS asked for.{personal}")
    router.add_api_route(path, export_job, methods=["POST"], response_model=ExportJob, status_code=202,
                         name=f"export_job_{source.name}", summary=f"Export {source.title} as a job",
                         description=f"The same export made in the background, for files too big for one download.{personal}")


for _source in SOURCES.values():
    add_layer_routes(_source)


@router.get("/api/v1/export-jobs/{job_id}", response_model=ExportJob)
def export_job_status(conn: DbConn, user: JobOwner, job_id: str) -> dict:
    """Your export job: queued, running (rows_done of rows_total), done (file_url), failed (error) or expired."""
    expire_jobs(get_engine())
    return _job_links(get_job(conn, job_id, user.id))


@router.get("/api/v1/export-jobs/{job_id}/file", response_class=FileResponse)
def export_job_file(conn: DbConn, user: JobOwner, job_id: str) -> FileResponse:
    """The file of your finished export job (404 for anyone else's, before it is done, or once it has expired)."""
    expire_jobs(get_engine())
    job = get_job(conn, job_id, user.id)
    if job["state"] != "done" or not job["file_path"]:
        raise NotFound(f"export job {job_id} has no file ({job['state']}{': ' + job['error'] if job['error'] else ''})")
    return FileResponse(job["file_path"], media_type=FORMATS[job["format"]].media_type,
                        headers={"Content-Disposition": _attachment(job["file_name"])})
