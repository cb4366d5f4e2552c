"""``labour-atlas geodata``: boundary geometry tools."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.database import run_approximation
from geodata.structures import Structure

app = typer.Typer(help="Boundary geometry tools.", no_args_is_help=True)


@app.command("approximate-communes")
def approximate_communes(structure: Annotated[Structure, typer.Option(help="Boundary structure")]) -> None:
    """Draw approximate commune polygons (Voronoi cells of centres, clipped to the parent)."""
    run_approximation([structure])
