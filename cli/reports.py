"""``labour-atlas report``: the periodic progress report of a unit, as XLSX or printable HTML.

Run by an operator on the server, so the whole country is in reach; the role
says which numbers the report holds: ``--as-role officer`` (the default) live
counts, ``--as-role leader`` or ``planner`` the numbers of frozen releases
only (what is handed to a leader), ``--as-role police_analyst`` incident
counts and recruiter flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from cli.output import console, fail
from etl.report_files import render_report, report_filename
from geodata.db import get_engine
from geodata.errors import LabourAtlasError
from geodata.roles import Role
from geodata.scopes import Reader
from geodata.structures import Structure
from maps.reports import REPORT_ROLES, unit_report

ROLES = ", ".join(r.value for r in REPORT_ROLES)


def report(
    unit: Annotated[str, typer.Option("--unit", help="The unit's GSO code, e.g. 42 (Hà Tĩnh)")],
    period: Annotated[str, typer.Option("--period", help="A half-year (2025-H1, 2025-H2) or a year (2025)")],
    format: Annotated[Literal["xlsx", "html"], typer.Option("--format", help="xlsx or html (printable, A4)")] = "xlsx",
    out: Annotated[Path | None, typer.Option("--out", help="The file to write (default: bao-cao-UNIT-PERIOD.FORMAT here)")] = None,
    as_role: Annotated[str, typer.Option("--as-role", help=f"Whose numbers: {ROLES}")] = Role.officer.value,
    structure: Annotated[Structure, typer.Option(help="Boundary structure of the unit")] = Structure.v2025,
) -> None:
    """Write the progress report of a unit for a half-year or a year."""
    try:
        role = Role(as_role)
    except ValueError:
        fail(f"--as-role: {as_role!r} is not a role; reports are made for {ROLES}")
    try:
        with get_engine().begin() as conn:  # a suppressed role's first read of a closed month makes its release
            made = unit_report(conn, unit_code=unit.strip(), period=period, role=role, reader=Reader(), structure=structure.value)
    except LabourAtlasError as exc:
        where = {"period": "--period", "code": "--unit"}
        loc = getattr(exc, "loc", ())
        fail(f"{where.get(loc[-1], '') + ': ' if loc else ''}{exc}")
    path = out or Path(report_filename(made, format))
    try:
        path.write_bytes(render_report(made, format))
    except OSError as exc:
        fail(f"--out: cannot write {path}: {exc.strerror}")
    hidden = "" if made.k is None or role is Role.police_analyst else f", counts below {made.k} hidden (releases only)"
    console.print(f"report of {made.unit_name} ({made.unit_code}) for {made.period} as {role.value}{hidden}: {path}")
