"""Export jobs: an export too big for one request, made in the background and fetched later by its owner.

State lives in ``export_job`` (migration 0016): ``queued`` -> ``running`` ->
``done`` or ``failed``; ``expired`` once its file is past ``expires_at`` and
removed. ``rows_done`` of ``rows_total`` is the progress. Only the owner sees
a job (anyone else is told it does not exist). The file is written under
:attr:`geodata.settings.Settings.export_files` as ``<id>.part`` and renamed when
complete, so a job never offers half a file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text

from etl.exports import check_crs, check_format, open_export
from geodata.errors import LabourAtlasError, NotFound
from geodata.logs import get_logger
from geodata.settings import get_settings
from maps.sources import Viewer, layer_source

log = get_logger("exports")
COLUMNS = """id::text, owner, layer, format, crs, filters, state, rows_total, rows_done, file_name, file_bytes, error,
             created_at, started_at, finished_at, expires_at"""


def create_job(conn: Connection, *, owner_id: uuid.UUID, owner: str, role: str, layer: str, format: str, crs: str,
               filters: dict[str, Any], purpose: str | None, rows_total: int) -> dict[str, Any]:
    """A queued job (the caller has already opened the export once, so its filters are known to be good)."""
    hours = get_settings().export_job_hours
    row = conn.execute(text(f"""
        INSERT INTO export_job (owner_id, owner, role, layer, format, crs, filters, purpose, worker, rows_total, expires_at)
        VALUES (:owner_id, :owner, :role, :layer, :format, :crs, CAST(:filters AS jsonb), :purpose, :worker, :total,
                now() + make_interval(hours => :hours))
        RETURNING {COLUMNS}"""), {"owner_id": owner_id, "owner": owner, "role": role, "layer": layer, "format": format,
                                  "crs": crs, "filters": json.dumps(filters, ensure_ascii=False, default=str),
                                  "purpose": purpose, "worker": this_worker(), "total": rows_total,
                                  "hours": hours}).mappings().one()
    return dict(row)


def get_job(conn: Connection, job_id: str, owner_id: uuid.UUID) -> dict[str, Any]:
    """The job ``job_id`` of ``owner_id``; :class:`NotFound` for a job of anyone else, or none."""
    try:
        uuid.UUID(job_id)
    except ValueError:
        raise NotFound(f"no export job {job_id!r}") from None
    row = conn.execute(text(f"SELECT {COLUMNS}, file_path FROM export_job WHERE id = :id AND owner_id = :owner"),
                       {"id": job_id, "owner": owner_id}).mappings().one_or_none()
    if row is None:
        raise NotFound(f"no export job {job_id!r}")
    return dict(row)


def expire_jobs(engine: Engine) -> int:
    """Remove the files of jobs past their expiry and mark them ``expired``; returns how many."""
    with engine.begin() as conn:
        # RETURNING gives the row as updated (no path): the old path comes from the CTE.
        paths = conn.execute(text("""
            WITH old AS (SELECT id, file_path FROM export_job WHERE expires_at < now() AND state <> 'expired' FOR UPDATE)
            UPDATE export_job j SET state = 'expired', file_path = NULL FROM old WHERE j.id = old.id
            RETURNING old.file_path""")).scalars().all()
    for p in paths:
        if p:
            Path(p).unlink(missing_ok=True)
    return len(paths)


def this_worker() -> str:
    """The server process that runs the jobs it accepts: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(worker: str) -> bool:
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname():
        return True  # another machine's process: not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def fail_unfinished(engine: Engine) -> int:
    """Jobs left queued or running by a server process of this machine that has stopped: failed, saying so (their
    owner asks again). Jobs of processes still running (another worker of the same server) are left to them."""
    with engine.begin() as conn:
        open_jobs = conn.execute(text("SELECT DISTINCT worker FROM export_job WHERE state IN ('queued', 'running')")).scalars().all()
        gone = [w for w in open_jobs if not _alive(w)]
        if not gone:
            return 0
        return conn.execute(text("""UPDATE export_job SET state = 'failed', finished_at = now(),
                                           error = 'the server stopped before the export was finished: ask for it again'
                                    WHERE state IN ('queued', 'running') AND worker = ANY(:gone)"""), {"gone": gone}).rowcount


def run_job(engine: Engine, job_id: str, viewer_of: Callable[[dict[str, Any]], Viewer]) -> None:
    """Make the file of job ``job_id`` (in this thread): progress in the table after each chunk, the state at the end.

    ``viewer_of(job)`` is the reader the job reads as: its owner, with the role and area the owner has now.
    """
    with engine.begin() as conn:
        job = conn.execute(text("""UPDATE export_job SET state = 'running', started_at = now() WHERE id = :id AND state = 'queued'
                                   RETURNING id::text, owner_id, owner, role, layer, format, crs, filters, purpose"""),
                           {"id": job_id}).mappings().one_or_none()
    if job is None:
        return
    folder = get_settings().export_files
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"{job_id}.part"
    try:
        source = layer_source(job["layer"])
        fmt = check_format(job["format"])
        crs = check_crs(fmt, job["crs"])
        viewer = viewer_of(dict(job))
        with engine.connect() as conn:
            export = open_export(conn, source, source.parse_filters(job["filters"]), viewer, fmt, crs)
            conn.commit()

            def progress(done: int, total: int) -> None:
                with engine.begin() as c:
                    c.execute(text("UPDATE export_job SET rows_done = :d, rows_total = :t WHERE id = :id"),
                              {"d": done, "t": total, "id": job_id})

            with open(part, "wb") as f:
                for block in export.write(conn, progress):
                    f.write(block)
        final = part.with_suffix("." + fmt.extension)
        part.rename(final)
        with engine.begin() as conn:
            conn.execute(text("""UPDATE export_job SET state = 'done', finished_at = now(), file_path = :path, file_name = :name,
                                        file_bytes = :size, rows_done = rows_total WHERE id = :id"""),
                         {"path": str(final), "name": export.filename, "size": final.stat().st_size, "id": job_id})
    except Exception as exc:  # the owner reads why (an error it can act on) or that it is logged; the server goes on
        part.unlink(missing_ok=True)
        if isinstance(exc, LabourAtlasError):
            reason = str(exc)
        else:
            log.exception("export job %s failed", job_id)
            reason = f"the export failed on the server ({type(exc).__name__}); the operators have the details in the log"
        with engine.begin() as conn:
            conn.execute(text("UPDATE export_job SET state = 'failed', finished_at = now(), error = :e WHERE id = :id"),
                         {"e": reason[:2000], "id": job_id})


def job_answer(job: dict[str, Any]) -> dict[str, Any]:
    """The job as its status route answers (times as ISO 8601, no file path)."""
    out = {k: v for k, v in job.items() if k != "file_path"}
    for k in ("created_at", "started_at", "finished_at", "expires_at"):
        if isinstance(out.get(k), dt.datetime):
            out[k] = out[k].isoformat()
    return out
