"""Liveness and readiness: is the database there, with PostGIS and our schema?"""

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.access import PUBLIC
from geodata.db import get_engine

router = APIRouter(tags=["health"], dependencies=[Depends(PUBLIC)])


@router.get("/health")
def health() -> JSONResponse:
    """200 with versions when the database answers; 503 with the reason otherwise."""
    try:
        with get_engine().connect() as conn:
            postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar()
            units = conn.execute(text("SELECT count(*) FROM admin_unit")).scalar()
    except Exception as exc:  # any failure here means "not ready"
        return JSONResponse({"status": "unavailable", "database": str(exc).splitlines()[0]}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok", "postgis": postgis, "admin_units": units})
