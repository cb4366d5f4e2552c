"""The ``labour-atlas`` command: the groups of commands and the one place that opens settings and database."""

from __future__ import annotations

import typer

from cli import boundaries, boundary_history, database, demo, exports, imports, releases, reports, serve, subjects, users
from cli.output import fail
from geodata.db import allow_long_statements, get_engine
from geodata.logs import configure_logging
from geodata.settings import SettingsError, get_settings

app = typer.Typer(help="Labour Atlas: map and database of Vietnam's contract-labour programme.", no_args_is_help=True)
app.add_typer(database.app, name="db")
app.add_typer(imports.app, name="import")
app.add_typer(boundaries.app, name="geodata")
app.add_typer(boundary_history.app, name="boundaries")
app.add_typer(users.app, name="user")
app.add_typer(subjects.app, name="subject")
app.add_typer(releases.app, name="release")
app.command()(subjects.purge)
app.command()(exports.export)
app.command()(reports.report)
app.command()(serve.serve)
app.command()(demo.demo)

# Commands that choose their database themselves.
OWN_DATABASE = {"demo"}
# Commands that run the web server: its statements are cut at db_statement_timeout_seconds.
SERVERS = {"demo", "serve"}


@app.callback()
def open_database(ctx: typer.Context) -> None:
    """Read the settings and open the database of DATABASE_URL before any command that needs it."""
    configure_logging("cli")
    if ctx.invoked_subcommand not in SERVERS:
        allow_long_statements()  # imports, migrations and releases run as long as they need
    if ctx.invoked_subcommand in OWN_DATABASE or ctx.resilient_parsing:
        return
    try:
        get_settings()
        get_engine()
    except (SettingsError, RuntimeError) as exc:
        fail(str(exc))
