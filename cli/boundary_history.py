"""``labour-atlas boundaries``: the record of boundary imports, and undoing one."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.output import console, fail
from etl.boundary_history import list_imports, undo_import
from geodata.db import get_engine
from geodata.errors import LabourAtlasError

app = typer.Typer(help="Boundary imports: list them, undo one.", no_args_is_help=True)


@app.command("list")
def list_(limit: Annotated[int, typer.Option(help="How many imports to show, newest first")] = 20) -> None:
    """List boundary imports: who, when, which file (and its SHA-256), what changed, whether undone."""
    with get_engine().connect() as conn:
        found = list_imports(conn, limit)
    # One line per import rather than a table: file names and hashes stay whole, to copy.
    console.print(f"{len(found)} boundary imports, newest first", highlight=False)
    for r in found:
        c = r["counts"]
        changes = f"{c.get('new', 0)} new, {c.get('updated', 0)} updated, {c.get('reparented', 0)} re-parented"
        undone = f"; undone {r['undone_at']:%Y-%m-%d %H:%M} by {r['undone_by']}" if r["undone_at"] else ""
        layer = f" (layer {r['layer']})" if r["layer"] else ""
        console.print(f"{r['id']}  {r['imported_at']:%Y-%m-%d %H:%M}  {r['imported_by']}  {r['file_name']}{layer}  sha256 {r['file_sha256']}  "
                      f"{r['structure']} {r['level']}: {changes}{undone}", highlight=False)


@app.command("undo")
def undo(import_id: Annotated[int, typer.Argument(help="The import to undo (see `labour-atlas boundaries list`)")]) -> None:
    """Put back the units an import changed, as they were before it."""
    try:
        r = undo_import(import_id)
    except LabourAtlasError as exc:
        fail(f"{exc}\nNothing was changed.")
    console.print(
        f"import {r.import_id} ({r.file_name}) undone: {r.restored} units restored, {r.removed} removed, "
        f"{r.approximate_redrawn} approximate communes redrawn",
        highlight=False,
    )
