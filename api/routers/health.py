"""Liveness and readiness: is the database there, with PostGIS and our schema? If not, which is missing?"""

from functools import lru_cache

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.access import PUBLIC
from api.schemas import Health
from geodata import data_versions
from geodata.db import get_engine, is_outage
from geodata.settings import get_settings

router = APIRouter(tags=["health"], dependencies=[Depends(PUBLIC)])


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    """The newest migration this code knows (read from the migration files once)."""
    from alembic.script import ScriptDirectory

    from geodata.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (psycopg adds hints on later lines), or its class name."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def check() -> Health:
    """Ask each dependency in turn; a dependency that cannot be asked because one before it is down is "unknown"."""
    deps = {"database": "unknown", "postgis": "unknown", "schema": "unknown"}
    down: list[str] = []
    postgis = units = None
    try:
        with get_engine().connect() as conn:
            deps["database"] = "ok"
            postgis = conn.execute(text(
                "SELECT CASE WHEN to_regproc('postgis_lib_version') IS NULL THEN NULL ELSE postgis_lib_version() END"
            )).scalar()
            deps["postgis"] = postgis or "the PostGIS extension is not installed in this database"
            if not postgis:
                down.append("postgis")
            revision = conn.execute(text(
                "SELECT CASE WHEN to_regclass('alembic_version') IS NULL THEN NULL "
                "ELSE (SELECT max(version_num) FROM alembic_version) END"
            )).scalar()
            head = head_revision()
            deps["schema"] = "ok" if revision == head else \
                f"at migration {revision or 'none'}, the code needs {head}: run `labour-atlas db upgrade`"
            if revision != head:
                down.append("schema")
            else:
                units = conn.execute(text("SELECT count(*) FROM admin_unit")).scalar()
    except Exception as exc:  # any failure here means "not ready", and says why
        if deps["database"] != "ok" or is_outage(exc):  # refused, or lost during the checks
            deps["database"] = "unreachable: " + first_line(exc)
            down.insert(0, "database")
        else:
            failed = next((k for k, v in deps.items() if v == "unknown"), "schema")
            deps[failed] = first_line(exc)
            down.append(failed)
    return Health(status="unavailable" if down else "ok", down=down, dependencies=deps,
                  database="ok" if deps["database"] == "ok" else deps["database"], postgis=postgis, admin_units=units)


@router.get("/health", response_model=Health, responses={503: {"model": Health, "description": "A dependency is down"}})
def health() -> JSONResponse:
    """200 with versions when the database, PostGIS and the schema are ready; 503 naming what is down otherwise.

    Also says (``dependencies.data_versions``) whether the server follows data changes by notification or,
    while that connection is lost, by asking the database (slower, never stale).
    """
    answer = check()
    answer.dependencies["data_versions"] = "listening" if data_versions.watch.current is not None else "asking the database"
    if answer.down:
        return JSONResponse(answer.model_dump(), status_code=503,
                            headers={"Retry-After": str(get_settings().retry_after_seconds)})
    return JSONResponse(answer.model_dump())
