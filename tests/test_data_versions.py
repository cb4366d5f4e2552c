"""Data versions: in memory while the server listens, from the database otherwise, never behind a committed change."""

from __future__ import annotations

import time

from sqlalchemy import text

from geodata.data_versions import VersionWatch, read_versions


def wait_for(check, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def bump(engine, name: str = "unit_population") -> None:
    with engine.begin() as conn:
        conn.execute(text(f"DELETE FROM {name} WHERE false"))  # a statement on the table bumps its version


def test_the_watch_follows_committed_changes_and_answers_from_memory(seeded, seeded_url):
    watch = VersionWatch()
    watch.start(seeded.url.render_as_string(hide_password=False))
    try:
        assert watch.wait_ready()
        with seeded.connect() as conn:
            before = read_versions(conn, "unit_population", "incident")
            assert watch.versions(conn, "unit_population", "incident") == before
        bump(seeded)
        with seeded.connect() as conn:
            after = read_versions(conn, "unit_population", "incident")
            assert after != before
            assert wait_for(lambda: watch.versions(conn, "unit_population", "incident") == after)
            # From memory now: a version set behind the watch's back is not seen (proof no query was made).
            conn.execute(text("UPDATE data_version SET version = version + 1000 WHERE name = 'incident'"))
            assert watch.versions(conn, "incident") == (("incident", dict(after)["incident"]),)
            conn.rollback()
    finally:
        watch.stop()


def test_a_watch_that_lost_its_connection_asks_the_database_then_listens_again(seeded, seeded_url):
    watch = VersionWatch()
    watch.start(seeded.url.render_as_string(hide_password=False))
    try:
        assert watch.wait_ready()
        with seeded.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE application_name = 'labour-atlas versions'"))
        assert wait_for(lambda: watch.current is None, 5)
        bump(seeded)  # while nobody listens
        with seeded.connect() as conn:
            assert watch.versions(conn, "unit_population") == read_versions(conn, "unit_population")
        assert watch.wait_ready(10)
        with seeded.connect() as conn:
            assert watch.versions(conn, "unit_population") == read_versions(conn, "unit_population")
    finally:
        watch.stop()


def test_versions_held_for_another_database_are_not_used(seeded):
    """A process that switched databases (tests, a CLI command) must not key its caches by the other one's versions."""
    watch = VersionWatch()
    watch.url = seeded.url.render_as_string(hide_password=False).replace(f"/{seeded.url.database}", "/another")
    watch.current = {"incident": -1}
    with seeded.connect() as conn:
        assert watch.versions(conn, "incident") == read_versions(conn, "incident") != (("incident", -1),)
        watch.url = seeded.url.render_as_string(hide_password=False)
        assert watch.versions(conn, "incident") == (("incident", -1),)


def test_the_server_listens_from_start_up_to_shut_down(seeded):
    from fastapi.testclient import TestClient

    from api.main import app
    from geodata.data_versions import watch

    with TestClient(app):
        assert watch.wait_ready() and watch.url == seeded.url.render_as_string(hide_password=False)
    assert watch.current is None
