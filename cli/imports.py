"""``labour-atlas import``: boundary polygons and survey files, all or nothing per file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from cli.output import console, fail, progress_bar
from etl.boundaries import BoundaryFields, BoundaryImportError, import_boundaries
from etl.incidents import import_incidents
from etl.population import import_population
from etl.recruiters import import_events, import_recruiters
from etl.surveys import SurveyImportError, import_surveys
from etl.tables import TableImportError
from etl.targets import import_targets
from geodata.db import get_engine
from geodata.settings import MissingSecret
from geodata.structures import Level, Structure

app = typer.Typer(help="Import files.", no_args_is_help=True)


@app.command("boundaries")
def boundaries(
    path: Annotated[Path, typer.Argument(help="Shapefile, GeoPackage or GeoJSON")],
    level: Annotated[Level, typer.Option(help="Level of the units in the file")],
    structure: Annotated[Structure, typer.Option(help="Boundary structure of the units")],
    layer: Annotated[Optional[str], typer.Option(help="Layer name (GeoPackage with several layers)")] = None,  # noqa: UP045 (typer reads the annotation)
    code_field: Annotated[str, typer.Option(help="Field holding the GSO code")] = "code",
    name_field: Annotated[Optional[str], typer.Option(help="Field holding the name [default: name, if present]")] = None,  # noqa: UP045
    parent_field: Annotated[Optional[str], typer.Option(help="Field holding the parent code [default: parent_code, if present]")] = None,  # noqa: UP045
    type_field: Annotated[Optional[str], typer.Option(help="Field holding the unit type [default: unit_type, if present]")] = None,  # noqa: UP045
    assume_crs: Annotated[Optional[str], typer.Option(help="CRS for a file that declares none, e.g. EPSG:3405")] = None,  # noqa: UP045
) -> None:
    """Import boundary polygons of one level; all or nothing."""
    fields = BoundaryFields(code=code_field, name=name_field, parent=parent_field, unit_type=type_field)
    try:
        with progress_bar(f"reading {path.name}") as update:
            r = import_boundaries(path, level=level, structure=structure, fields=fields, layer=layer, assume_crs=assume_crs, progress=update)
    except (BoundaryImportError, ValueError) as exc:
        fail(f"{exc}\nNothing was imported.")
    console.print(
        f"{r.path}: {r.features} {r.level} features ({r.structure}) from {r.source_crs}: "
        f"{r.inserted} new, {r.updated} updated, {r.repaired} invalid polygons repaired"
    )
    if r.bbox:
        console.print("bounding box (lon/lat): " + ", ".join(f"{v:.4f}" for v in r.bbox))
    console.print("units with a polygon now: " + ", ".join(f"{k} {v}" for k, v in sorted(r.units_with_geometry.items())))


@app.command("surveys")
def surveys(
    path: Annotated[Path, typer.Argument(help="CSV export of ODK Central or KoboToolbox, or Labour Atlas CSV")],
    show: Annotated[int, typer.Option(help="How many rejected rows to list")] = 20,
) -> None:
    """Import survey records from CSV; invalid rows go to quarantine with their row numbers."""
    try:
        with progress_bar(f"importing {path.name}") as update:
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
    try:
        with get_engine().begin() as conn:
            r = import_targets(conn, path, who=operator())
    except TableImportError as exc:
        fail(str(exc))
    console.print(f"{r.path} (read as {r.read_as}): {r.rows} targets, {r.inserted} new, {r.updated} updated", highlight=False)
    for row, written, stored in r.padded:
        console.print(f"  row {row}: unit code {written} read as {stored} (leading zeros restored)", highlight=False)


def operator() -> str:
    """Who runs an import from the command line (kept with what it writes)."""
    import getpass

    return f"cli:{getpass.getuser()}"


@app.command("incidents")
def incidents(path: Annotated[Path, typer.Argument(
        help="CSV or XLSX: incident_id, type, occurred_on, lon, lat or commune_code, persons_affected, status, source")]) -> None:
    """Import incidents (a count of persons affected, never a name); all rows or none; the same incident_id again updates."""
    try:
        with get_engine().begin() as conn:
            r = import_incidents(conn, path, who=operator())
    except TableImportError as exc:
        fail(str(exc))
    console.print(f"{r.path} (read as {r.read_as}): {r.rows} incidents, {r.inserted} new, {r.updated} updated", highlight=False)


@app.command("population")
def population(path: Annotated[Path, typer.Argument(help="CSV or XLSX: unit_code, structure, year, population (and/or households)")]) -> None:
    """Import population per unit and year (the denominators of incident rates); all rows or none."""
    try:
        with get_engine().begin() as conn:
            r = import_population(conn, path)
    except TableImportError as exc:
        fail(str(exc))
    console.print(f"{r.path} (read as {r.read_as}): {r.rows} units", highlight=False)


@app.command("recruiters")
def recruiters(path: Annotated[Path, typer.Argument(
        help="CSV or XLSX: licence_number, name, status, valid_from, valid_to, markets, lon, lat (head office)")]) -> None:
    """Import the register of licensed recruitment enterprises; all rows or none; again updates by licence number."""
    try:
        with get_engine().begin() as conn:
            r = import_recruiters(conn, path)
    except TableImportError as exc:
        fail(str(exc))
    console.print(f"{r.path} (read as {r.read_as}): {r.rows} recruiters, {r.inserted} new, {r.updated} updated", highlight=False)


@app.command("recruitment-events")
def recruitment_events(path: Annotated[Path, typer.Argument(
        help="CSV or XLSX: licence_number or actor_name, occurred_on, lon and lat or commune_code, kind, attendees [event_id]")]) -> None:
    """Import recruitment events (seminars, counselling, selections); all rows or none; each event stored once."""
    try:
        with get_engine().begin() as conn:
            r = import_events(conn, path)
    except TableImportError as exc:
        fail(str(exc))
    console.print(f"{r.path} (read as {r.read_as}): {r.rows} events, {r.inserted} new, {r.updated} updated", highlight=False)
