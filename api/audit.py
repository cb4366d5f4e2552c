"""The audit log: who read or exported which personal records, when, where and why.

Rows are only ever added (a trigger in the database refuses UPDATE, DELETE and
TRUNCATE). Every route that returns personal data requires a purpose (header
``X-Purpose``) and writes one row in the same transaction as the read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, Engine, text


def record_access(
    conn: Connection, *, actor: str, role: str | None, method: str, route: str, purpose: str, record_ids: Iterable[Any]
) -> int:
    """Append one audit row; returns its id."""
    return conn.execute(
        text(
            """INSERT INTO audit_log (actor, role, method, route, purpose, record_ids)
               VALUES (:actor, :role, :method, :route, :purpose, CAST(:ids AS text[])) RETURNING id"""
        ),
        {"actor": actor, "role": role, "method": method, "route": route, "purpose": purpose,
         "ids": [str(i) for i in record_ids]},
    ).scalar_one()


def list_audit(
    conn: Connection, *, actor: str | None = None, record_id: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """Audit rows, newest first, optionally for one actor or one record."""
    rows = conn.execute(
        text(
            """SELECT * FROM audit_log
               WHERE (CAST(:actor AS text) IS NULL OR actor = :actor)
                 AND (CAST(:rid AS text) IS NULL OR record_ids @> ARRAY[CAST(:rid AS text)])
               ORDER BY id DESC LIMIT :limit OFFSET :offset"""
        ),
        {"actor": actor or None, "rid": record_id or None, "limit": limit, "offset": offset},
    ).mappings()
    return [{**r, "at": r["at"].isoformat()} for r in rows]


def audit_writer(engine: Engine, *, actor: str, role: str | None, method: str, route: str, purpose: str
                 ) -> Callable[[list[Any]], None]:
    """An audit of a read that outlives its request (a streamed export, a job): each call appends one row in a
    transaction of its own, committed before the records it names are handed on."""

    def audit(record_ids: list[Any]) -> None:
        with engine.begin() as conn:
            record_access(conn, actor=actor, role=role, method=method, route=route, purpose=purpose, record_ids=record_ids)

    return audit
