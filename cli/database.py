"""``labour-atlas db``: schema migrations and the bundled reference data."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli.output import console, progress_bar
from etl.reference import reference_is_loaded, seed_reference
from geodata import migrate
from geodata.approximate import approximate_communes
from geodata.db import get_engine
from geodata.structures import Structure

app = typer.Typer(help="Database schema and reference data.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Migrate the database (DATABASE_URL) to the newest schema."""
    migrate.upgrade(revision)
    console.print(f"database at revision {migrate.current_revision()}")


@app.command("downgrade")
def downgrade(revision: Annotated[str, typer.Argument(help="Target revision ('base' removes everything)")]) -> None:
    """Migrate the database down to REVISION."""
    migrate.downgrade(revision)
    console.print(f"database at revision {migrate.current_revision()}")


@app.command("seed")
def seed(
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Do nothing when units are already loaded")] = False,
    approximate: Annotated[bool, typer.Option("--approximate-communes", help="Then draw approximate communes of both structures")] = False,
) -> None:
    """Load the bundled real code lists, polygons and old->new crosswalk."""
    with get_engine().connect() as conn:
        loaded = reference_is_loaded(conn)
    if if_empty and loaded:
        console.print("reference data already loaded; nothing to do")
        return
    run_seed()
    if approximate:
        run_approximation(list(Structure))


def run_seed() -> None:
    """Load the reference data with a progress bar and print what was loaded."""
    with progress_bar("reading reference polygons") as update:
        result = seed_reference(progress=update)
    table = Table("structure", "level", "units", "with polygon", title="Reference data loaded")
    for structure, levels in sorted(result.units.items()):
        for level in ("province", "district", "commune"):
            if level in levels:
                table.add_row(structure, level, str(levels[level]), str(result.polygons.get(structure, {}).get(level, 0)))
    console.print(table)
    console.print(
        f"crosswalk links: {result.crosswalk_links}; commune centres: {result.centres}; "
        f"abolished district polygons dissolved into successors: "
        + ", ".join(f"{a}->{b}" for a, b in sorted(result.merged_districts.items()))
    )
    if result.approximate_provinces:
        console.print(f"approximate province polygons (no openly licensed official one): {', '.join(result.approximate_provinces)} "
                      "(Quảng Ninh: Natural Earth, public domain; marked approximate)")


def run_approximation(structures: list[Structure]) -> None:
    """Draw the approximate communes of ``structures`` and print what was drawn."""
    for s in structures:
        with console.status(f"drawing approximate communes ({s.value})"), get_engine().begin() as conn:
            r = approximate_communes(conn, s)
        console.print(
            f"{r.structure}: {r.with_cell} of {r.communes} communes have an approximate polygon; "
            f"{r.official_kept} official kept; {r.seeds_moved} centres moved inside their parent; "
            f"{r.without_region} without any parent polygon"
        )
