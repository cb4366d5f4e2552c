"""Helpers shared by the tests (test files import them from here, never from each other)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from geodata import db

TEST_SECRET = "tests-only-7Qm2xZ9vLk4Rt8Wp3Ns6Hd1Fj5Gb0Yc"
"""The server secret of the tests (never used anywhere else)."""


@contextmanager
def using(url: str) -> Iterator[Engine]:
    """Point the app's one engine at ``url`` for the duration, then back at the previous database."""
    previous = db.current_url()
    engine = db.use_database(url)
    try:
        yield engine
    finally:
        if previous:
            db.use_database(previous)
