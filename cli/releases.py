"""``labour-atlas release``: frozen, audited releases of aggregates for leaders, planners and police.

``labour-atlas release`` makes every release that is due (the last closed
period of each structure, and a revision of every released period whose
records changed); ``--period`` releases one period. The server also makes
them itself when first asked after a period closes (see maps.releases), so
running this from the server's scheduler only saves the first reader the
wait.
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from cli.output import console, fail, warn
from geodata.db import get_engine
from geodata.errors import LabourAtlasError
from geodata.structures import Structure
from maps.disclosure_audit import AuditFailed
from maps.periods import Period
from maps.releases import DATASETS, due_releases, get_release, make_release, releases_of, verify_release

app = typer.Typer(help="Frozen, audited releases of suppressed aggregates.", invoke_without_command=True)


def _who() -> str:
    return f"cli:{getpass.getuser()}"


@app.callback()
def release(
    ctx: typer.Context,
    period: Annotated[str | None, typer.Option(help="Release this period (2026-10, 2026-Q3, 2026-H1, 2026) instead of every due one")] = None,
    structure: Annotated[Structure | None, typer.Option(help="Only this boundary structure")] = None,
    dataset: Annotated[str | None, typer.Option(help=f"Only this dataset ({', '.join(DATASETS)})")] = None,
) -> None:
    """Make every due release (or the release of --period): suppressed, audited, stored for good."""
    if ctx.invoked_subcommand is not None:
        return
    if dataset is not None and dataset not in DATASETS:
        fail(f"no dataset {dataset!r}; there are: {', '.join(DATASETS)}")
    with get_engine().connect() as conn:
        if period is not None:
            p = Period.parse(period, loc=("--period",))
            wanted = [(d, s.value, p) for d in DATASETS.values() for s in Structure]
        else:
            wanted = due_releases(conn)
    wanted = [(d, s, p) for d, s, p in wanted
              if (dataset is None or d.name == dataset) and (structure is None or s == structure.value)]
    failed = 0
    for d, s, p in wanted:
        try:
            with get_engine().begin() as conn:
                outcome = make_release(conn, d, s, p, made_by=_who())
        except AuditFailed as exc:
            failed += 1
            warn(f"{d.name} {s} {p.label}: refused, nothing published: {exc}")
            continue
        except LabourAtlasError as exc:
            failed += 1
            warn(f"{d.name} {s} {p.label}: {exc}")
            continue
        r = outcome.release
        if not outcome.made:
            console.print(f"{d.name} {s} {p.label}: revision {r.revision} is current ({outcome.reason})")
            continue
        layers = "; ".join(f"k={k}: {v['primary']} primary and {v['complementary']} complementary cells hidden, "
                           f"audit passed in {v['seconds']:.1f} s" for k, v in r.method["layers"].items())
        console.print(f"{d.name} {s} {p.label}: revision {r.revision} made ({outcome.reason}), {r.records} records; {layers}")
    if not wanted:
        console.print("nothing is due")
    if failed:
        raise typer.Exit(1)


@app.command("list")
def list_releases(
    period: Annotated[str | None, typer.Option(help="Only this period")] = None,
    structure: Annotated[Structure | None, typer.Option(help="Only this boundary structure")] = None,
) -> None:
    """List the releases made, oldest first."""
    p = Period.parse(period, loc=("--period",)) if period else None
    with get_engine().connect() as conn:
        found = releases_of(conn, None, structure.value if structure else None, p)
    if not found:
        console.print("no releases")
    for r in found:
        hidden = "; ".join(f"k={k}: {v['primary']} primary + {v['complementary']} complementary hidden"
                           for k, v in r.method["layers"].items())
        console.print(f"{r.id}  {r.dataset}  {r.structure}  {r.period.label}  revision {r.revision}  "
                      f"made {r.made_at.isoformat(timespec='seconds')} by {r.made_by}  {r.records} records  {hidden}")


@app.command("verify")
def verify(release_id: Annotated[int, typer.Argument(help="The release's id (labour-atlas release list)")]) -> None:
    """Audit a stored release again, from its stored cells, with every earlier release of its period."""
    with get_engine().connect() as conn:
        r = get_release(conn, release_id)
        reports = verify_release(conn, r)
    for k, report in reports.items():
        console.print(f"release {r.id} ({r.dataset} {r.structure} {r.period.label} revision {r.revision}), k={k}: {report.summary()}")
    if not all(report.passed for report in reports.values()):
        raise typer.Exit(1)
