"""The FastAPI application: ``uvicorn api.main:app``, or ``labour-atlas serve``.

Building the app reads the settings, which refuse a weak server secret, and
requires a secret to be set: no entry point serves without one.
"""

import gc
import threading
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.types import Scope

from api.caching import IMMUTABLE, REVALIDATE
from api.errors import document_error_answers, install_error_handlers
from api.middleware import BodyLimit, Deadline, RequestLog
from api.routers import (
    aggregates,
    audit,
    auth,
    break_glass,
    dashboard,
    exports,
    health,
    incidents,
    layers,
    locate,
    map_pages,
    ogc,
    openrosa,
    pages,
    reports,
    subjects,
    submissions,
    survey_page,
    targets,
    tiles,
    units,
    users,
)
from etl.exports.jobs import fail_unfinished
from geodata import data_versions
from geodata.db import get_engine
from geodata.logs import configure_logging
from geodata.settings import get_settings
from maps import hotspots

STATIC = Path(__file__).parent / "static"
# Text answers shorter than this gain nothing from compression (the headers are as large).
COMPRESS_FROM_BYTES = 500


class VersionedStatic(StaticFiles):
    """Static files with their ETag (304 when unchanged, as Starlette answers), kept a year when asked for
    with the current version (``?v=``, the survey page's assets), revalidated otherwise."""

    async def get_response(self, path: str, scope: Scope):
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            query = parse_qs(scope.get("query_string", b"").decode())
            current = query.get("v") == [survey_page.asset_version()]
            response.headers["Cache-Control"] = IMMUTABLE if current else REVALIDATE
        return response


@asynccontextmanager
async def frozen_start_up(app: FastAPI):
    # What start-up loaded lives as long as the server: kept out of the
    # garbage collector's full passes, which otherwise stop every request.
    gc.collect()
    gc.freeze()
    if get_settings().warm_hotspots:  # see the setting: a few seconds once against 90 MB for good
        threading.Thread(target=hotspots.warm, name="warm-hotspots", daemon=True).start()
    # Without a database configured, every request says so, and there is nothing to listen to.
    with suppress(RuntimeError):
        data_versions.watch.start(get_engine().url.render_as_string(hide_password=False))
    # Export jobs of a server that stopped will not be finished: say so to their owners.
    with suppress(RuntimeError, SQLAlchemyError):
        fail_unfinished(get_engine())
    yield
    data_versions.watch.stop()
    gc.unfreeze()


def create_app() -> FastAPI:
    """Build the app (the database comes from :mod:`geodata.db`).

    Raises :class:`geodata.settings.SettingsError` for a weak secret and
    :class:`geodata.settings.MissingSecret` when none is set.
    """
    get_settings().require_secret()
    configure_logging("server")
    app = FastAPI(
        lifespan=frozen_start_up,
        title="Labour Atlas",
        version="0.1.0",
        description="Administrative units, survey records and map layers for Vietnam's contract-labour programme.",
    )
    install_error_handlers(app)
    # Added last, outermost: the request log sees every answer, the body limit's too. Compression sits
    # between them: it wraps every answer (errors too) and the log still counts its time.
    app.add_middleware(BodyLimit)
    # A GeoPackage is a database file: compressing hundreds of megabytes on the fly (level 9) would cost the
    # server more time than writing it. Zips are left alone by Starlette already.
    app.add_middleware(GZipMiddleware, minimum_size=COMPRESS_FROM_BYTES,
                       exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, "application/geopackage+sqlite3"))
    # Inside the log: a request given up on is logged with its 503.
    app.add_middleware(Deadline)
    app.add_middleware(RequestLog)
    for module in (health, units, locate, submissions, openrosa, pages, survey_page, auth, users, audit, aggregates,
                   subjects, break_glass, targets, layers, incidents, tiles, dashboard, map_pages, reports, exports, ogc):
        app.include_router(module.router)
    app.include_router(openrosa.public)
    document_error_answers(app)
    app.mount("/static", VersionedStatic(directory=STATIC), name="static")
    return app


app = create_app()
