"""The FastAPI application."""

import gc
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.routers import (
    aggregates,
    audit,
    auth,
    break_glass,
    health,
    locate,
    openrosa,
    pages,
    subjects,
    submissions,
    survey_page,
    units,
    users,
)

STATIC = Path(__file__).parent / "static"


@asynccontextmanager
async def frozen_start_up(app: FastAPI):
    # What start-up loaded lives as long as the server: kept out of the
    # garbage collector's full passes, which otherwise stop every request.
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


def create_app() -> FastAPI:
    """Build the app (the database comes from :mod:`geodata.db`)."""
    app = FastAPI(
        lifespan=frozen_start_up,
        title="Labour Atlas",
        version="0.1.0",
        description="Administrative units, survey records and map layers for Vietnam's contract-labour programme.",
    )
    app.include_router(health.router)
    app.include_router(units.router)
    app.include_router(locate.router)
    app.include_router(submissions.router)
    app.include_router(openrosa.public)
    app.include_router(openrosa.router)
    app.include_router(pages.router)
    app.include_router(survey_page.router)
    app.include_router(auth.router)
    app.include_router(users.router)
    app.include_router(audit.router)
    app.include_router(aggregates.router)
    app.include_router(subjects.router)
    app.include_router(break_glass.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


app = create_app()
