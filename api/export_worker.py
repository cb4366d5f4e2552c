"""The background worker of export jobs: one thread in the server process, one job at a time.

One at a time because an export is bound by the database and the disk, and
the machine serves maps meanwhile; jobs wait their turn ``queued``. Jobs left
unfinished by a stopped server are marked failed at start-up
(:func:`etl.exports.jobs.fail_unfinished`).
"""

from __future__ import annotations

import queue
import threading
import uuid
from typing import Any

from sqlalchemy import text

from api.access import reader_for
from api.audit import audit_writer
from api.deps import AuthUser
from etl.exports.jobs import run_job
from geodata.db import get_engine
from geodata.errors import PermissionDenied
from geodata.logs import get_logger
from geodata.roles import Role
from maps.sources import Viewer, layer_source

log = get_logger("exports")
_queue: queue.Queue[str] = queue.Queue()
_started = threading.Lock()
_thread: threading.Thread | None = None


def job_viewer(job: dict[str, Any]) -> Viewer:
    """The reader a job reads as: its owner with the role and area the owner has now (a disabled owner: none)."""
    engine = get_engine()
    with engine.connect() as conn:
        row = conn.execute(text("SELECT role, disabled FROM app_user WHERE id = :id"), {"id": job["owner_id"]}).one_or_none()
    if row is None or row.disabled:
        raise PermissionDenied("the owner of this export job is disabled or no longer exists")
    user = AuthUser(uuid.UUID(str(job["owner_id"])), job["owner"], Role(row.role))
    source = layer_source(job["layer"])
    audit = None
    if source.personal:
        audit = audit_writer(engine, actor=user.username, role=user.role.value, method="POST",
                             route=f"/api/v1/exports/{source.name}", purpose=job["purpose"] or "export job")
    return Viewer(user.role, reader_for(user, source.limit), user.username, audit)


def _work() -> None:
    while True:
        job_id = _queue.get()
        try:
            run_job(get_engine(), job_id, job_viewer)
        except Exception:  # run_job records its own failures; a database gone away must not end the worker
            log.exception("export job %s could not be run", job_id)
        finally:
            _queue.task_done()


def submit(job_id: str) -> None:
    """Queue job ``job_id`` for the worker thread (started on first use; a daemon: a stopping server does not wait
    for queued exports, which are marked failed when it starts again)."""
    global _thread
    with _started:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_work, name="export-jobs", daemon=True)
            _thread.start()
    _queue.put(job_id)
