"""``labour-atlas import``: boundary polygons and survey files, all or nothing per file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from cli.output import console, fail, progress_bar
from etl.boundaries import BoundaryFields, BoundaryImportResult, import_boundaries
from etl.incidents import import_incidents
from etl.population import import_population
from etl.recruiters import import_events, import_recruiters
from etl.surveys import SurveyImportError, import_surveys
from etl.tables import TableImportError
from etl.targets import import_targets
from geodata.db import get_engine, is_outage
from geodata.errors import LabourAtlasError
from geodata.settings import MissingSecret
from geodata.structures import Level, Structure

app = typer.Typer(help="Import files.", no_args_is_help=True)


@app.command("boundaries")
def boundaries(
    path: Annotated[Path, typer.Argument(help="Shapefile, GeoPackage or GeoJSON")],
    level: Annotated[Level, typer.Option(help="Level of the units in the file")],
    structure: Annotated[Structure, typer.Option(help="Boundary structure of the units")],
    layer: Annotated[Optional[str], typer.Option(help="Layer name (required for a file with several layers)")] = None,  # noqa: UP045 (typer reads the annotation)
    code_field: Annotated[str, typer.Option(help="Field holding the GSO code")] = "code",
    name_field: Annotated[Optional[str], typer.Option(help="Field holding the name [default: name, if present]")] = None,  # noqa: UP045
    parent_field: Annotated[Optional[str], typer.Option(help="Field holding the parent code [default: parent_code, if present]")] = None,  # noqa: UP045
    type_field: Annotated[Optional[str], typer.Option(help="Field holding the unit type [default: unit_type, if present]")] = None,  # noqa: UP045
    assume_crs: Annotated[Optional[str], typer.Option(help="CRS of the coordinates, for a file that declares none or a wrong one, e.g. EPSG:9209 (VN-2000 / TM-3 105-30)")] = None,  # noqa: UP045
    encoding: Annotated[Optional[str], typer.Option(help="Encoding of a DBF's text when it cannot be told: utf-8, cp1258, tcvn3 or vni")] = None,  # noqa: UP045
    allow_parent_change: Annotated[bool, typer.Option("--allow-parent-change", help="Let the file move units to another parent (their polygon must lie in it)")] = False,
    allow_new_units: Annotated[bool, typer.Option("--allow-new-units", help="Let the file add units that are not in the GSO code list")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check everything and print what would change; write nothing")] = False,
    show: Annotated[int, typer.Option(help="How many units to list per kind of change")] = 20,
) -> None:
    """Import boundary polygons of one level; all or nothing, recorded so that it can be undone."""
    fields = BoundaryFields(code=code_field, name=name_field, parent=parent_field, unit_type=type_field)
    try:
        with progress_bar(f"reading {path.name}") as update, outage_undone(path):
            r = import_boundaries(
                path, level=level, structure=structure, fields=fields, layer=layer, assume_crs=assume_crs, encoding=encoding,
                allow_parent_change=allow_parent_change, allow_new_units=allow_new_units, dry_run=dry_run, progress=update,
            )
    except LabourAtlasError as exc:
        fail(f"{exc}\nNothing was imported{' (dry run)' if dry_run else ''}.")
    print_import(r, show)


def print_import(r: BoundaryImportResult, show: int) -> None:
    """Print what an import did (or would do): counts, then each kind of change, unit by unit (``show`` of each).

    Example::

        print_import(import_boundaries(path, level=Level.commune, structure=Structure.pre2025, dry_run=True), show=20)
    """
    layer = f" layer '{r.layer}'," if r.layer else ""
    console.print(f"{r.path}:{layer} {r.features} {r.level} features ({r.structure}) from {r.source_crs}", highlight=False)
    if r.crs_note:
        console.print(f"  CRS: {r.crs_note}", highlight=False)
    if r.encoding:
        console.print(f"  text read as {r.encoding} ({r.encoding_note})", highlight=False)
    counts = (f"{r.inserted} new, {r.updated} updated, {len(r.reparented)} re-parented, {len(r.renamed)} names differing "
              f"from the official ones, {len(r.repaired)} invalid polygons repaired")
    console.print(("dry run, nothing was written; the import would make: " if r.dry_run else f"import {r.import_id}: ") + counts,
                  highlight=False)
    sections = [
        ("new units", r.new_units), ("re-parented", r.reparented),
        ("names differing from the official names (the official names are kept)", r.renamed),
        ("unit types differing from the code list (kept)", r.retyped), ("repaired polygons", r.repaired),
        ("area outside the parent (within tolerance)", r.outside), ("overlaps (within tolerance)", r.overlaps),
        ("gaps (within tolerance)", r.gaps), ("not checked", r.unchecked),
    ]
    for title, changes in sections:
        if not changes:
            continue
        console.print(f"{title}: {len(changes)}", highlight=False)
        for change in changes[:show]:
            console.print(f"  {change}", highlight=False)
        if len(changes) > show:
            console.print(f"  ... {len(changes) - show} more (--show)", highlight=False)
    if r.approximate_redrawn:
        console.print(f"approximate communes redrawn around the official ones: {r.approximate_redrawn} "
                      f"(in {len(r.regions_redrawn)} parents)", highlight=False)
    if r.bbox:
        console.print("bounding box (lon/lat): " + ", ".join(f"{v:.4f}" for v in r.bbox))
    console.print("units with a polygon now: " + ", ".join(f"{k} {v}" for k, v in sorted(r.units_with_geometry.items())))
    if r.import_id is not None:
        console.print(f"to undo: labour-atlas boundaries undo {r.import_id}", highlight=False)


@app.command("surveys")
def surveys(
    path: Annotated[Path, typer.Argument(help="CSV export of ODK Central or KoboToolbox, or Labour Atlas CSV")],
    show: Annotated[int, typer.Option(help="How many rejected rows to list")] = 20,
) -> None:
    """Import survey records from CSV; invalid rows go to quarantine with their row numbers."""
    try:
        with progress_bar(f"importing {path.name}") as update, outage_undone(path):
            r = import_surveys(path, progress=update)
    except (SurveyImportError, MissingSecret) as exc:
        fail(f"{exc}\nNothing was imported.")
    console.print(f"read with {r.dialect}", highlight=False)
    table = Table("outcome", "rows", title=f"{r.path}: {r.rows} rows")
    for outcome in ("created", "exists", "conflict", "rejected"):
        table.add_row(outcome, str(r.counts.get(outcome, 0)))
    console.print(table)
    for row, field, message in r.rejected[:show]:
        console.print(f"  row {row}, field {field}: {message}", highlight=False)
    if len(r.rejected) > show:
        console.print(f"  ... {len(r.rejected) - show} more reasons (all are in the quarantine: GET /api/v1/quarantine)")


@app.command("targets")
def targets(path: Annotated[Path, typer.Argument(help="CSV or XLSX: unit_code, structure, year, indicator, kind, value, value_max")]) -> None:
    """Import yearly targets of units (other columns are kept as notes); all rows or none; again updates."""
    r = run_table_import(import_targets, path, "targets", who=operator())
    for row, written, stored in r.padded:
        console.print(f"  row {row}: unit code {written} read as {stored} (leading zeros restored)", highlight=False)


def run_table_import(load, path: Path, what: str, **kwargs):
    """Run one all-or-nothing table import in its own transaction and print what it did (or fail with its errors)."""
    try:
        with outage_undone(path), get_engine().begin() as conn:
            r = load(conn, path, **kwargs)
    except TableImportError as exc:
        fail(str(exc))
    changed = f", {r.inserted} new, {r.updated} updated" if hasattr(r, "inserted") else ""
    console.print(f"{r.path} (read as {r.read_as}): {r.rows} {what}{changed}", highlight=False)
    return r


@contextmanager
def outage_undone(path: Path) -> Iterator[None]:
    """Say plainly that an import cut off by a database outage wrote nothing and can simply be run again.

    Every import is one transaction: a lost connection rolls it back whole.
    """
    try:
        yield
    except Exception as exc:
        if not is_outage(exc):
            raise
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        fail(f"{path}: the database became unavailable during the import ({reason}).\n"
             "Nothing was imported: run the same command again when the database is back.")


def operator() -> str:
    """Who runs an import from the command line (kept with what it writes)."""
    import getpass

    return f"cli:{getpass.getuser()}"


@app.command("incidents")
def incidents(path: Annotated[Path, typer.Argument(
        help="CSV or XLSX: incident_id, type, occurred_on, lon, lat or commune_code, persons_affected, status, source")]) -> None:
    """Import incidents (a count of persons affected, never a name); all rows or none; the same incident_id again updates."""
    run_table_import(import_incidents, path, "incidents", who=operator())


@app.command("population")
def population(path: Annotated[Path, typer.Argument(help="CSV or XLSX: unit_code, structure, year, population (and/or households)")]) -> None:
    """Import population per unit and year (the denominators of incident rates); all rows or none."""
    run_table_import(import_population, path, "units")


@app.command("recruiters")
def recruiters(path: Annotated[Path, typer.Argument(
        help="CSV or XLSX: licence_number, name, status, valid_from, valid_to, markets, lon, lat (head office)")]) -> None:
    """Import the register of licensed recruitment enterprises; all rows or none; again updates by licence number."""
    run_table_import(import_recruiters, path, "recruiters")


@app.command("recruitment-events")
def recruitment_events(path: Annotated[Path, typer.Argument(
        help="CSV or XLSX: licence_number or actor_name, occurred_on, lon and lat or commune_code, kind, attendees [event_id]")]) -> None:
    """Import recruitment events (seminars, counselling, selections); all rows or none; each event stored once."""
    run_table_import(import_events, path, "events")
