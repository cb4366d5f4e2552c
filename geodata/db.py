"""The one database engine of the process.

Everything that talks to PostGIS gets its connection here, so that the demo,
the server, the CLI and the tests point at the same database by setting
``DATABASE_URL`` (or by calling :func:`use_database`). Queries are SQL text
run on connections of this engine (``with get_engine().begin() as conn``):
the work is set-based in PostGIS, so there is no ORM session.
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine

from geodata.settings import get_settings

_engine: Engine | None = None
_url: str | None = None


def normalise_url(url: str) -> str:
    """Make a PostgreSQL URL use the psycopg 3 driver.

    >>> normalise_url("postgresql://u@h/db")
    'postgresql+psycopg://u@h/db'
    """
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def use_database(url: str) -> Engine:
    """Point the process at the database ``url`` and return its engine."""
    global _engine, _url
    url = normalise_url(url)
    if _engine is not None and _url == url:
        return _engine
    if _engine is not None:
        _engine.dispose()
    # The pool holds a connection for each request in flight (50 clients in
    # the benchmark; the thread pool runs 40 at a time): a smaller one closes
    # and reopens connections under load, each costing a fork and a login.
    # No ping before each checkout (a round trip per request): a connection
    # found dead fails its request and SQLAlchemy then discards the whole
    # pool, so one database restart costs the requests in flight, which the
    # web form and ODK Collect send again.
    # JIT compilation costs more than it saves on this app's short statements.
    _engine = create_engine(
        url, pool_size=50, max_overflow=10, pool_recycle=1800,
        connect_args={"options": "-c jit=off"},
    )
    _url = url
    return _engine


def current_url() -> str | None:
    """The URL of the database the process uses now (None before any is chosen)."""
    return _url


def close_database() -> None:
    """Close every pooled connection and forget the engine (e.g. before the database is dropped)."""
    global _engine, _url
    if _engine is not None:
        _engine.dispose()
    _engine = _url = None


def get_engine() -> Engine:
    """Return the engine of the current database.

    Raises ``RuntimeError`` with a hint when no database is configured.
    """
    if _engine is not None:
        return _engine
    url = get_settings().database_url
    if not url:
        raise RuntimeError(
            "No database configured: set DATABASE_URL "
            "(e.g. postgresql://user:pass@localhost:5432/labour_atlas) "
            "or run `labour-atlas demo` for a private one."
        )
    return use_database(url)
