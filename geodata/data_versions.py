"""The version of each kind of data (bumped by a trigger on every change), for cache keys and ETags.

Every cached layer and tile is keyed by the versions of the data it was
made from. Asking PostgreSQL for them costs a round trip per request, which
is most of the time of a tile served from memory; so the server keeps them
in memory, kept current by ``LISTEN data_version`` (the trigger notifies on
every change, delivered when the change commits). A process without the
watch (the CLI, a test client), or whose watch lost its connection, asks
the database: the answer is the same, only slower.

Why a version read from memory cannot label stale data: it is set only
after the change committed, and a request reads its data after reading the
version, so it sees at least that version's data.
"""

from __future__ import annotations

import logging
import threading

import psycopg
from sqlalchemy import Connection, text

CHANNEL = "data_version"
RETRY_SECONDS = 2.0

log = logging.getLogger(__name__)


def read_versions(conn: Connection, *names: str) -> tuple:
    """The versions of the named kinds of data, from the database: ``((name, version), ...)`` by name."""
    return tuple(conn.execute(text("SELECT name, version FROM data_version WHERE name = ANY(:n) ORDER BY name"),
                              {"n": list(names)}).all())


class VersionWatch:
    """All data versions of one database in memory, updated by notifications from a thread of its own."""

    def __init__(self) -> None:
        self.url: str | None = None
        self.current: dict[str, int] | None = None  # None: not listening now, ask the database
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, url: str) -> None:
        """Listen to the database at ``url`` (a SQLAlchemy or libpq URL) until :meth:`stop`."""
        self.stop()
        self.url = url
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="data-version-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None
        with self._lock:
            self.current = None

    def wait_ready(self, timeout: float = 5.0) -> bool:
        """True once the versions are in memory (for tests and start-up)."""
        ready = threading.Event()
        for _ in range(int(timeout / 0.05)):
            with self._lock:
                if self.current is not None:
                    ready.set()
                    break
            self._stop.wait(0.05)
        return ready.is_set()

    def versions(self, conn: Connection, *names: str) -> tuple:
        """The versions of ``names``: from memory when listening to ``conn``'s database, else from the database."""
        with self._lock:
            current = self.current
        if current is None or conn.engine.url.render_as_string(hide_password=False) != self.url or \
                any(n not in current for n in names):
            return read_versions(conn, *names)
        return tuple((n, current[n]) for n in sorted(set(names)))

    def _load(self, listener: psycopg.Connection) -> None:
        rows = listener.execute("SELECT name, version FROM data_version").fetchall()
        with self._lock:
            self.current = dict(rows)

    def _run(self) -> None:
        assert self.url is not None
        libpq_url = self.url.replace("postgresql+psycopg://", "postgresql://")
        while not self._stop.is_set():
            try:
                with psycopg.connect(libpq_url, autocommit=True, application_name="labour-atlas versions") as listener:
                    listener.execute(f"LISTEN {CHANNEL}")
                    self._load(listener)  # after LISTEN: a change from now on is both loaded or notified
                    while not self._stop.is_set():
                        if any(True for _ in listener.notifies(timeout=1.0, stop_after=1)):
                            self._load(listener)
            except psycopg.Error as exc:
                log.warning("data versions: listening failed (%s); asking the database until it is back", type(exc).__name__)
            with self._lock:
                self.current = None
            self._stop.wait(RETRY_SECONDS)


watch = VersionWatch()


def versions(conn: Connection, *names: str) -> tuple:
    """The versions of the named kinds of data (``incident``, ``admin_unit``, ...), for a cache key.

    Example (needs a database)::

        versions(conn, "incident", "admin_unit")
        # (('admin_unit', 3), ('incident', 17))
    """
    return watch.versions(conn, *names)
