"""The record of boundary imports, and undoing one.

Every import (:func:`etl.boundaries.import_boundaries`) writes a row of
``boundary_import`` (who, when, the file's name and SHA-256, counts) and the
previous state of each unit it changed (``boundary_import_unit``). Undoing
an import puts those units back as they were (units it created are removed)
and redraws the approximate communes around them again.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from etl.boundaries import BoundaryImportError
from geodata.approximate import approximate_communes
from geodata.crosswalk import refresh_crosswalk_shares
from geodata.db import get_engine
from geodata.scopes import refresh_scopes
from geodata.structures import Structure
from geodata.unit_geometry import refresh_unit_geometry


@dataclass
class UndoResult:
    import_id: int
    file_name: str
    restored: int
    removed: int
    approximate_redrawn: int


def list_imports(conn: Connection, limit: int = 50) -> list[dict]:
    """The latest boundary imports, newest first, with their counts and whether they were undone.

    Example (needs a database)::

        with get_engine().connect() as conn:
            list_imports(conn)[0]["file_name"]
        # 'xa_ha_tinh.shp'
    """
    rows = conn.execute(
        text(
            """SELECT id, imported_at, imported_by, file_name, file_sha256, layer, structure, level, source_crs, encoding,
                      counts, undone_at, undone_by
               FROM boundary_import ORDER BY id DESC LIMIT :n"""
        ),
        {"n": limit},
    ).mappings().all()
    return [dict(r) for r in rows]


UNDO_SQL = """
UPDATE admin_unit u SET name = p.name, unit_type = p.unit_type, parent_code = p.parent_code, geom = p.geom,
       geom_quality = p.geom_quality, geom_source = p.geom_source, name_in_file = p.name_in_file,
       unit_type_in_file = p.unit_type_in_file, boundary_import_id = p.boundary_import_id
FROM boundary_import_unit p
WHERE p.import_id = :id AND p.existed AND u.structure = p.structure AND u.code = p.code
"""


def undo_import(import_id: int, actor: str | None = None) -> UndoResult:
    """Put back the units an import changed, as they were before it, in one transaction.

    Refused when the import does not exist, was undone already, or a later
    import (not undone) changed some of the same units: undo that one first.
    Units the import created are removed, which the database refuses for a
    commune that survey records declare.

    Example::

        undo_import(12)
        # UndoResult(import_id=12, file_name='xa_ha_tinh.shp', restored=262, removed=0, approximate_redrawn=0)
    """
    with get_engine().begin() as conn:
        row = conn.execute(
            text("SELECT id, file_name, structure, undone_at, regions FROM boundary_import WHERE id = :id FOR UPDATE"),
            {"id": import_id},
        ).first()
        if row is None:
            raise BoundaryImportError(f"no boundary import {import_id} (list them with `labour-atlas boundaries list`)")
        if row.undone_at is not None:
            raise BoundaryImportError(f"boundary import {import_id} ({row.file_name}) was already undone on {row.undone_at:%Y-%m-%d %H:%M}")
        later = conn.execute(
            text(
                """SELECT i.id, i.file_name, count(*) AS units FROM boundary_import_unit l
                   JOIN boundary_import i ON i.id = l.import_id
                   JOIN boundary_import_unit mine ON mine.import_id = :id AND mine.structure = l.structure AND mine.code = l.code
                   WHERE l.import_id > :id AND i.undone_at IS NULL
                   GROUP BY i.id, i.file_name ORDER BY i.id DESC"""
            ),
            {"id": import_id},
        ).all()
        if later:
            listing = ", ".join(f"import {r.id} ({r.file_name}, {r.units} of the same units)" for r in later)
            raise BoundaryImportError(
                f"boundary import {import_id} ({row.file_name}) cannot be undone: later imports changed the same units since: "
                f"{listing}. Undo those first, newest first."
            )
        structure = Structure(row.structure)
        conn.execute(
            text(
                """CREATE TEMP TABLE boundary_stage ON COMMIT DROP AS
                   SELECT code, geom FROM boundary_import_unit WHERE import_id = :id"""
            ),
            {"id": import_id},
        )
        restored = conn.execute(text(UNDO_SQL), {"id": import_id}).rowcount
        try:
            with conn.begin_nested():
                removed = conn.execute(
                    text(
                        """DELETE FROM admin_unit u USING boundary_import_unit p
                           WHERE p.import_id = :id AND NOT p.existed AND u.structure = p.structure AND u.code = p.code"""
                    ),
                    {"id": import_id},
                ).rowcount
        except DBAPIError as exc:
            raise BoundaryImportError(
                f"boundary import {import_id} ({row.file_name}) cannot be undone: a unit it created is now used "
                f"({str(exc.orig).splitlines()[0]})"
            ) from None
        refresh_unit_geometry(conn, structure, codes_from="boundary_stage")
        regions = set(row.regions) | set(
            conn.execute(
                text("SELECT parent_code FROM boundary_import_unit WHERE import_id = :id AND parent_code IS NOT NULL"), {"id": import_id}
            ).scalars()
        ) | set(conn.execute(text("SELECT code FROM boundary_stage")).scalars())
        redrawn = approximate_communes(conn, structure, regions=regions).redrawn if regions else 0
        if not regions:
            refresh_crosswalk_shares(conn)
        refresh_scopes(conn)
        conn.execute(
            text("UPDATE boundary_import SET undone_at = now(), undone_by = :by WHERE id = :id"),
            {"id": import_id, "by": actor or f"cli:{getpass.getuser()}"},
        )
    return UndoResult(import_id, row.file_name, restored, removed, redrawn)
