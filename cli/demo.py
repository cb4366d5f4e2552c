"""``labour-atlas demo``: a private PostGIS (unless DATABASE_URL is set), real boundaries, sample data, one account per role, the app."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

import typer

from api.security.accounts import create_user, reset_password
from cli.database import run_approximation, run_seed
from cli.output import console, fail
from cli.serve import HostOption, PortOption, check_server_secret, serve_app
from etl.reference import reference_is_loaded
from etl.sample import load_sample_surveys, sample_is_loaded
from etl.sample_layers import load_sample_layers, sample_layers_loaded
from geodata import migrate
from geodata.db import get_engine, use_database
from geodata.embedded import EmbeddedDatabaseError, EmbeddedPostgres, cluster_folder
from geodata.roles import Role
from geodata.settings import Settings, SettingsError, configure
from geodata.structures import Structure

DEMO_ACCOUNTS = (  # username, role, area (2025 codes): one of each role, in the sample provinces
    ("demo-surveyor", Role.surveyor, ["42"]), ("demo-officer", Role.officer, ["42"]), ("demo-leader", Role.leader, ["42"]),
    ("demo-planner", Role.planner, ["42", "40", "38"]), ("demo-police", Role.police_analyst, ["42"]), ("demo-admin", Role.admin, []),
)


def demo_settings() -> Settings:
    """The settings in demo mode, with the secret kept in the data folder when none is set."""
    settings = configure(demo=True)
    if settings.secret_key:
        return settings
    path = settings.data_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return configure(demo=True, secret_key=path.read_text().strip())


def ensure_demo_accounts(data_dir: Path) -> Path:
    """Create one account per role for the demo (new random passwords each start), listed in a private file."""
    path = data_dir / "demo-accounts.txt"
    lines = ["# Labour Atlas demo accounts (demo only; made by `labour-atlas demo`)", "# username\trole\tpassword"]
    with get_engine().begin() as conn:
        for name, role, scope in DEMO_ACCOUNTS:
            password = secrets.token_urlsafe(12)
            if not reset_password(conn, name, password):
                create_user(conn, name, password, role, scope, Structure.v2025)
            lines.append(f"{name}\t{role.value}\t{password}")
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def load_demo_sample() -> None:
    """Load the synthetic sample survey records once."""
    with get_engine().begin() as conn:
        n = None
        if sample_is_loaded(conn):
            console.print("sample survey records already loaded")
        else:
            with console.status("loading synthetic sample survey records"):
                n = load_sample_surveys(conn)
    if n is not None:
        console.print(f"{n:,} synthetic sample survey records loaded (source 'sample (synthetic)')")
    with get_engine().begin() as conn:
        if sample_layers_loaded(conn):
            return
        counts = load_sample_layers(conn)
    console.print(f"targets from real plans and for the demo: {counts['targets']}; synthetic recruiters {counts.get('recruiters', 0)}, "
                  f"recruitment events {counts.get('events', 0)}, incidents {counts.get('incidents', 0)} (source 'sample (synthetic)')")


def demo(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    reload_data: Annotated[bool, typer.Option("--reload-data", help="Load the reference data again")] = False,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Prepare the database, then exit")] = False,
) -> None:
    """Run the demo: a private PostGIS (unless DATABASE_URL is set), real boundaries, the app."""
    try:
        settings = demo_settings()
    except SettingsError as exc:
        fail(str(exc))
    pg = None
    try:
        if settings.database_url:
            use_database(settings.database_url)
            console.print("using the database of DATABASE_URL")
        else:
            folder = cluster_folder(settings.data_dir)
            pg = EmbeddedPostgres(folder)
            with console.status(f"starting the private PostgreSQL cluster in {folder}"):
                url = pg.start()
            use_database(url)
            console.print(f"private PostgreSQL + PostGIS running in {folder} (127.0.0.1:{pg.port})")
        migrate.upgrade()
        with get_engine().connect() as conn:
            loaded = reference_is_loaded(conn)
        if reload_data or not loaded:
            run_seed()
            run_approximation(list(Structure))
        else:
            console.print("reference data already loaded (use --reload-data to load it again)")
        load_demo_sample()
        accounts = ensure_demo_accounts(settings.data_dir)
        console.print(f"demo accounts (one per role; new passwords each start) in {accounts}:")
        for line in accounts.read_text(encoding="utf-8").splitlines()[2:]:
            console.print("  " + line.replace("\t", "  "), highlight=False, markup=False)
        if not no_serve:
            check_server_secret()
            serve_app(host, port)
    except EmbeddedDatabaseError as exc:
        fail(str(exc))
    finally:
        if pg is not None:
            pg.stop()
            console.print("private PostgreSQL cluster stopped")
