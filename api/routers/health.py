"""Liveness and readiness: is the database there, with PostGIS and our schema?"""

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.access import PUBLIC
from api.schemas import Health
from geodata.db import get_engine

router = APIRouter(tags=["health"], dependencies=[Depends(PUBLIC)])


@router.get("/health", response_model=Health, responses={503: {"model": Health, "description": "The database is unreachable"}})
def health() -> JSONResponse:
    """200 with versions when the database answers; 503 with the reason otherwise."""
    try:
        with get_engine().connect() as conn:
            postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar()
            units = conn.execute(text("SELECT count(*) FROM admin_unit")).scalar()
    except Exception as exc:  # any failure here means "not ready"
        answer = Health(status="unavailable", database=str(exc).splitlines()[0])
        return JSONResponse(answer.model_dump(), status_code=503)
    return JSONResponse(Health(status="ok", database="ok", postgis=postgis, admin_units=units).model_dump())
