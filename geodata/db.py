"""The one database engine of the process.

Everything that talks to PostGIS gets its connection here, so that the demo,
the server, the CLI and the tests point at the same database by setting
``DATABASE_URL`` (or by calling :func:`use_database`). Queries are SQL text
run on connections of this engine (``with get_engine().begin() as conn``):
the work is set-based in PostGIS, so there is no ORM session.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import Engine, create_engine, exc

from geodata.errors import DatabaseUnavailable
from geodata.settings import get_settings

_engine: Engine | None = None
_url: str | None = None
# Long work run by hand (imports of a million rows, migrations, releases)
# is not cut by the server's statement timeout: see allow_long_statements.
_long_statements = False


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
    s = get_settings()
    # The pool holds a connection for each request in flight (50 clients in
    # the benchmark; the thread pool runs 40 at a time): a smaller one closes
    # and reopens connections under load, each costing a fork and a login.
    # Each checkout first pings its connection (one short round trip): after
    # a database restart every pooled connection is dead, and without the
    # ping the first request on each would fail although the database is
    # back. A ping that fails opens a new connection; if that fails too, the
    # request is answered 503 (api.errors) and the next one tries again.
    # JIT compilation costs more than it saves on this app's short statements.
    _engine = create_engine(
        url, pool_size=50, max_overflow=10, pool_recycle=1800, pool_pre_ping=True,
        pool_timeout=s.db_pool_timeout_seconds,
        connect_args={
            "options": connection_options(0 if _long_statements else s.db_statement_timeout_seconds),
            "connect_timeout": s.db_connect_timeout_seconds,
            # A database host that vanishes (a network cut, a failover) would leave a request waiting on a
            # dead TCP connection for the kernel's quarter of an hour: data unacknowledged for 10 s, or an
            # idle connection whose probes go unanswered for about 25 s, ends it with an error instead.
            "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
            "tcp_user_timeout": 10_000,
        },
    )
    _url = url
    return _engine


def connection_options(statement_timeout_seconds: float) -> str:
    """The ``-c`` settings every connection of the process starts with (libpq ``options``); 0: no statement timeout.

    >>> connection_options(2.5)
    '-c jit=off -c statement_timeout=2500'
    >>> connection_options(0)
    '-c jit=off'
    """
    options = "-c jit=off"
    if timeout_ms := round(statement_timeout_seconds * 1000):
        options += f" -c statement_timeout={timeout_ms}"
    return options


def allow_long_statements() -> None:
    """Let this process's statements run as long as they need (the command line's imports, migrations, releases).

    Must be called before the engine is made; the server never calls it.
    """
    global _long_statements
    _long_statements = True


# What a lost, refused or timed-out database connection raises: psycopg's
# OperationalError (SQLSTATE classes 08 connection, 53 resources, 57
# operator intervention: shutdown, cancelled statement), SQLAlchemy's
# wrappers of it, and the pool's own timeout.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    exc.OperationalError, exc.InterfaceError, exc.TimeoutError, psycopg.OperationalError, psycopg.InterfaceError,
)


def is_outage(error: BaseException) -> bool:
    """Is ``error`` the database being unreachable, restarting, overloaded or too slow (worth retrying later)?

    >>> is_outage(psycopg.OperationalError("connection refused")), is_outage(ValueError("bad"))
    (True, False)
    """
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, OUTAGE_ERRORS)


def unavailable() -> DatabaseUnavailable:
    """The error a user is given for a database outage: send the same request again later.

    Sending a submission again is safe: one that was stored after all (the
    connection was lost with the answer) is stored once, and answered so.

    >>> str(unavailable())[:39]
    'the database is unavailable right now: '
    """
    seconds = get_settings().retry_after_seconds
    return DatabaseUnavailable(
        f"the database is unavailable right now: send the same request again in {seconds} s "
        "(a form saved on the phone stays there until the server has stored it)", retry_after=seconds)


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
