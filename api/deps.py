"""Dependencies shared by the routes: the database connection."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy import Connection

from geodata.db import get_engine


def get_conn() -> Iterator[Connection]:
    """A connection in a transaction for one request (read routes)."""
    with get_engine().begin() as conn:
        yield conn


DbConn = Annotated[Connection, Depends(get_conn)]
