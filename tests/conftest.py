"""Test fixtures: a real PostGIS that the tests create themselves.

With ``TEST_DATABASE_URL`` set, the tests create fresh databases on that
server (and drop them afterwards); otherwise they start a private cluster in a
temporary folder. They never touch a database they did not create.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.helpers import TEST_SECRET

# A fixed secret for the tests (ID hashes, payload fingerprints); set before
# the settings are first read. Strong enough for the settings to accept it.
os.environ.setdefault("LABOUR_ATLAS_SECRET_KEY", TEST_SECRET)

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from geodata import db, migrate
from tests.helpers import using


class Server:
    """Creates and drops databases on one PostgreSQL server."""

    def __init__(self, admin_url: str, cleanup=None) -> None:
        self.admin_url = admin_url
        self.cleanup = cleanup
        self.created: list[str] = []

    def _admin(self) -> psycopg.Connection:
        url = make_url(self.admin_url).set(drivername="postgresql")
        return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)

    def create_database(self, template: str | None = None) -> str:
        """A new database (a copy of the database of URL ``template`` when given); returns its URL."""
        name = f"la_test_{os.getpid()}_{secrets.token_hex(3)}"
        with self._admin() as conn:
            if template:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(template).database}"')
            else:
                conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return make_url(self.admin_url).set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        current = db.current_url()
        if current and make_url(current).database == name:
            db.close_database()
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.remove(name)

    def close(self) -> None:
        for name in list(self.created):
            with self._admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if self.cleanup:
            self.cleanup()


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        srv = Server(given)
    else:
        from geodata.embedded import EmbeddedPostgres

        folder = Path(tempfile.mkdtemp(prefix="labour-atlas-test-"))
        folder.chmod(0o755)  # as root, the cluster runs as 'postgres'
        pg = EmbeddedPostgres(folder / "pgdata", durable=False)
        url = pg.start()

        def cleanup() -> None:
            pg.stop()
            shutil.rmtree(folder, ignore_errors=True)

        srv = Server(url.rsplit("/", 1)[0] + "/postgres", cleanup)
    yield srv
    srv.close()


@pytest.fixture(scope="session")
def seeded_url(server: Server) -> str:
    """A database migrated and loaded like the demo (reference data, approximate communes)."""
    from etl.reference import seed_reference
    from geodata.approximate import approximate_communes
    from geodata.structures import Structure

    url = server.create_database()
    engine = db.use_database(url)
    migrate.upgrade()
    seed_reference()
    for s in Structure:
        with engine.begin() as conn:
            approximate_communes(conn, s)
    return url


@pytest.fixture
def seeded(seeded_url: str) -> Engine:
    """The engine of the seeded database (shared by tests: do not change it, or roll back)."""
    return db.use_database(seeded_url)


@pytest.fixture
def seeded_copy(server: Server, seeded_url: str) -> Iterator[Engine]:
    """A private copy of the seeded database, dropped afterwards: for tests that change units or boundaries.

    Copied by PostgreSQL from the seeded database as a template (a fraction
    of a second), which needs no open connection to it: the app's engine is
    closed first (the next use of ``seeded`` opens it again).
    """
    if db.current_url() == db.normalise_url(seeded_url):
        db.close_database()
    url = server.create_database(template=seeded_url)
    with using(url) as engine:
        yield engine
    server.drop_database(url)


@pytest.fixture
def fresh(server: Server) -> Iterator[Engine]:
    """A new migrated database holding only the code lists, dropped afterwards."""
    from etl.reference import load_code_lists

    url = server.create_database()
    with using(url) as engine:
        migrate.upgrade()
        with engine.begin() as conn:
            load_code_lists(conn)
        yield engine
    server.drop_database(url)


class Accounts:
    """Test accounts in the seeded database, made once per session and reused.

    ``headers(role, scope, structure)`` gives the Authorization header of a
    user with that role and area (created on first use).
    """

    PASSWORD = "correct horse battery staple"

    def __init__(self, url: str) -> None:
        self.url = url
        self.made: dict[tuple, object] = {}

    def user(self, role: str, scope: tuple[str, ...] = ("all",), structure: str = "2025"):
        from types import SimpleNamespace

        from api.security.accounts import create_user

        key = (role, tuple(scope), structure)
        if key not in self.made:
            name = f"t-{role[:6]}-{secrets.token_hex(3)}"
            with db.use_database(self.url).begin() as conn:
                uid = create_user(conn, name, self.PASSWORD, role, list(scope), structure)
            self.made[key] = SimpleNamespace(id=uid, name=name, role=role, password=self.PASSWORD)
        return self.made[key]

    def headers(self, role: str, scope: tuple[str, ...] = ("all",), structure: str = "2025") -> dict[str, str]:
        from api.security.tokens import create_access_token

        u = self.user(role, scope, structure)
        token, _ = create_access_token(u.id, role, minutes=240)
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def accounts(seeded_url: str) -> Accounts:
    return Accounts(seeded_url)


@pytest.fixture
def client(seeded: Engine, accounts: Accounts):
    """A test client signed in as an officer of the whole country, stating a purpose.

    Pass ``headers=accounts.headers(role, scope)`` to a request to act as someone else.
    """
    from fastapi.testclient import TestClient

    from api.main import create_app

    # Tests read personal records for a stated purpose, as officers must.
    headers = {"X-Purpose": "automated test", **accounts.headers("officer")}
    with TestClient(create_app(), headers=headers) as c:
        yield c


@pytest.fixture
def anonymous_client(seeded: Engine):
    """A test client with no credentials."""
    from fastapi.testclient import TestClient

    from api.main import create_app

    with TestClient(create_app()) as c:
        yield c


@contextmanager
def served() -> Iterator[str]:
    """The app served by uvicorn on a free loopback port (the database is the one in use)."""
    import threading
    import time

    import httpx
    import uvicorn

    from api.main import create_app
    from geodata.embedded import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(base + "/health", timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_server(seeded: Engine) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port, for browser tests."""
    with served() as base:
        yield base


@pytest.fixture(scope="module")
def live_server_module(seeded_url: str) -> Iterator[str]:
    """One server for the tests of a module (the seeded database)."""
    db.use_database(seeded_url)
    with served() as base:
        yield base


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def browser_page():
    """A page of Debian's headless Chromium, driven by Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        page = browser.new_page(viewport={"width": 412, "height": 860})  # a phone-sized screen
        yield page
        browser.close()


@pytest.fixture(scope="session")
def commune(seeded_url):
    """A 2025 commune of Hà Tĩnh with its representative point (from the data)."""
    from geodata.db import use_database

    with use_database(seeded_url).connect() as conn:
        row = conn.execute(
            text(
                """SELECT code, ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat
                   FROM admin_unit WHERE structure = '2025' AND parent_code = '42' AND geom IS NOT NULL ORDER BY code LIMIT 1"""
            )
        ).one()
        other = conn.execute(
            text(
                """SELECT code, ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat
                   FROM admin_unit WHERE structure = '2025' AND parent_code = '42' AND geom IS NOT NULL ORDER BY code OFFSET 5 LIMIT 1"""
            )
        ).one()
    return {"code": row.code, "lon": row.lon, "lat": row.lat, "other": other._asdict()}


class Environment:
    """Environment variables for one test, read again by the settings; undone afterwards."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch

    def __call__(self, **variables: str | None) -> None:
        from geodata.settings import reset_settings

        for name, value in variables.items():
            if value is None:
                self.monkeypatch.delenv(name, raising=False)
            else:
                self.monkeypatch.setenv(name, value)
        reset_settings()

    def patch(self, target: object, name: str, value: object) -> None:
        self.monkeypatch.setattr(target, name, value)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[Environment]:
    """Set environment variables (None removes one); the settings are read anew, and again after the test."""
    from geodata.settings import reset_settings

    yield Environment(monkeypatch)
    monkeypatch.undo()
    reset_settings()
