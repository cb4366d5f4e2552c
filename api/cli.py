"""The ``labour-atlas`` command line."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from api.security import Role
from geodata.scopes import Reader
from geodata.structures import Level, Structure

app = typer.Typer(help="Labour Atlas: map and database of Vietnam's contract-labour programme.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema and reference data.", no_args_is_help=True)
import_app = typer.Typer(help="Import files.", no_args_is_help=True)
geodata_app = typer.Typer(help="Boundary geometry tools.", no_args_is_help=True)
user_app = typer.Typer(help="User accounts: role and area scope.", no_args_is_help=True)
subject_app = typer.Typer(help="Data-subject rights: one person's records, exported or erased.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(geodata_app, name="geodata")
app.add_typer(user_app, name="user")
app.add_typer(subject_app, name="subject")

# soft_wrap: messages are not broken into lines by rich (the terminal wraps
# them), so a file path or an error can be copied whole, and the output does
# not depend on the width of the terminal or the length of the path.
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


@contextlib.contextmanager
def progress_bar(label: str) -> Iterator:
    """A rich progress bar; yields a ``(done, total)`` callback."""
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True) as p:
        task = p.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            p.update(task, completed=done, total=total)

        yield update


def _database_from_settings() -> None:
    from geodata.db import get_engine

    try:
        get_engine()
    except RuntimeError as exc:
        fail(str(exc))


# -- db ------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Migrate the database (DATABASE_URL) to the newest schema."""
    from geodata import migrate

    _database_from_settings()
    migrate.upgrade(revision)
    console.print(f"database at revision {migrate.current_revision()}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision ('base' removes everything)")]) -> None:
    """Migrate the database down to REVISION."""
    from geodata import migrate

    _database_from_settings()
    migrate.downgrade(revision)
    console.print(f"database at revision {migrate.current_revision()}")


def run_seed() -> None:
    from etl.reference import seed_reference

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


@db_app.command("seed")
def db_seed(
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Do nothing when units are already loaded")] = False,
    approximate: Annotated[bool, typer.Option("--approximate-communes", help="Then draw approximate communes of both structures")] = False,
) -> None:
    """Load the bundled real code lists, polygons and old->new crosswalk."""
    _database_from_settings()
    if if_empty and reference_is_loaded():
        console.print("reference data already loaded; nothing to do")
        return
    run_seed()
    if approximate:
        run_approximation(list(Structure))


# -- import --------------------------------------------------------------------
@import_app.command("boundaries")
def import_boundaries_cmd(
    path: Annotated[Path, typer.Argument(help="Shapefile, GeoPackage or GeoJSON")],
    level: Annotated[Level, typer.Option(help="Level of the units in the file")],
    structure: Annotated[Structure, typer.Option(help="Boundary structure of the units")],
    layer: Annotated[Optional[str], typer.Option(help="Layer name (GeoPackage with several layers)")] = None,
    code_field: Annotated[str, typer.Option(help="Field holding the GSO code")] = "code",
    name_field: Annotated[Optional[str], typer.Option(help="Field holding the name [default: name, if present]")] = None,
    parent_field: Annotated[Optional[str], typer.Option(help="Field holding the parent code [default: parent_code, if present]")] = None,
    type_field: Annotated[Optional[str], typer.Option(help="Field holding the unit type [default: unit_type, if present]")] = None,
    assume_crs: Annotated[Optional[str], typer.Option(help="CRS for a file that declares none, e.g. EPSG:3405")] = None,
) -> None:
    """Import boundary polygons of one level; all or nothing."""
    from etl.boundaries import BoundaryFields, BoundaryImportError, import_boundaries

    _database_from_settings()
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


@import_app.command("surveys")
def import_surveys_cmd(
    path: Annotated[Path, typer.Argument(help="CSV export of ODK Central or KoboToolbox, or Labour Atlas CSV")],
    show: Annotated[int, typer.Option(help="How many rejected rows to list")] = 20,
) -> None:
    """Import survey records from CSV; invalid rows go to quarantine with their row numbers."""
    from etl.surveys import SurveyImportError, import_surveys
    from survey.identity import MissingSecret

    _database_from_settings()
    try:
        with progress_bar(f"importing {path.name}") as update:
            r = import_surveys(path, progress=update)
    except (SurveyImportError, MissingSecret) as exc:
        fail(f"{exc}\nNothing was imported.")
    table = Table("outcome", "rows", title=f"{r.path}: {r.rows} rows")
    for outcome in ("created", "exists", "conflict", "rejected"):
        table.add_row(outcome, str(r.counts.get(outcome, 0)))
    console.print(table)
    for row, field, message in r.rejected[:show]:
        console.print(f"  row {row}, field {field}: {message}", highlight=False)
    if len(r.rejected) > show:
        console.print(f"  ... {len(r.rejected) - show} more reasons (all are in the quarantine: GET /api/v1/quarantine)")


# -- geodata -------------------------------------------------------------------
@geodata_app.command("approximate-communes")
def approximate_communes_cmd(
    structure: Annotated[Structure, typer.Option(help="Boundary structure")],
) -> None:
    """Draw approximate commune polygons (Voronoi cells of centres, clipped to the parent)."""
    _database_from_settings()
    run_approximation([structure])


def run_approximation(structures: list[Structure]) -> None:
    from geodata.approximate import approximate_communes
    from geodata.db import get_engine

    for s in structures:
        with console.status(f"drawing approximate communes ({s.value})"), get_engine().begin() as conn:
            r = approximate_communes(conn, s)
        console.print(
            f"{r.structure}: {r.with_cell} of {r.communes} communes have an approximate polygon; "
            f"{r.official_kept} official kept; {r.seeds_moved} centres moved inside their parent; "
            f"{r.without_region} without any parent polygon (e.g. Quảng Ninh, whose boundary is missing)"
        )


# -- user ----------------------------------------------------------------------
@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="Username (letters, digits, '.', '_', '@', '-'; case-insensitive)")],
    role: Annotated[Role, typer.Option(help="What the user does")],
    scope: Annotated[str, typer.Option(help="Unit codes of the area, comma-separated, any level (or 'all'); optional for admin")] = "",
    structure: Annotated[Structure, typer.Option(help="Boundary structure of the scope codes")] = Structure.v2025,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input (first line)")] = False,
) -> None:
    """Create a user with a role and an area scope (a code covers the unit and everything inside it)."""
    import sys

    from api.security import AccountError, create_user
    from geodata.db import get_engine

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            fail("--password-stdin: no password on standard input")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    _database_from_settings()
    try:
        with get_engine().begin() as conn:
            create_user(conn, name, password, role, scope.split(","), structure)
    except AccountError as exc:
        fail(f"{exc}\nNo user was created.")
    console.print(f"user {name.strip().lower()} created ({role.value}, scope {scope or 'none'} in {structure.value})", highlight=False)


@user_app.command("list")
def user_list() -> None:
    """List users with role, state and scope (no password hashes)."""
    from api.security import list_users
    from geodata.db import get_engine

    _database_from_settings()
    with get_engine().connect() as conn:
        users = list_users(conn)
    table = Table("username", "role", "scope", "state", "last sign-in", title=f"{len(users)} users")
    table.columns[0].no_wrap = True  # names are what an administrator looks for
    for u in users:
        units = [f"{s['code']} {s['name']} ({s['structure']})" for s in u["scope"]]
        # A whole-country area is 34 or 63 provinces: show a few and the count.
        scope = ", ".join(units[:3]) + (f" and {len(units) - 3} more" if len(units) > 3 else "") if units else "-"
        state = "disabled" if u["disabled"] else f"locked until {u['locked_until']:%Y-%m-%d %H:%M}" if u["locked_until"] else "active"
        last = f"{u['last_login_at']:%Y-%m-%d %H:%M}" if u["last_login_at"] else "never"
        table.add_row(u["username"], u["role"], scope, state, last)
    console.print(table)


@user_app.command("disable")
def user_disable(name: Annotated[str, typer.Argument(help="Username")]) -> None:
    """Disable a user: no more sign-in; its tokens stop working at once."""
    from api.security import UnknownUser, disable_user
    from geodata.db import get_engine

    _database_from_settings()
    try:
        with get_engine().begin() as conn:
            disable_user(conn, name)
    except UnknownUser as exc:
        fail(str(exc))
    console.print(f"user {name.strip().lower()} disabled", highlight=False)


# -- data-subject rights --------------------------------------------------------
def _national_id_from_stdin() -> str:
    import sys

    value = sys.stdin.readline().strip()
    if not value:
        fail("type the person's national ID number on standard input (it is never stored in clear)")
    return value


def _audit_cli(conn, command: str, purpose: str, ids) -> None:
    import getpass

    from api.audit import record_access

    record_access(conn, actor=f"cli:{getpass.getuser()}", role=None, method="CLI", route=command, purpose=purpose, record_ids=ids)


PurposeOption = Annotated[str, typer.Option(help="Why (kept in the audit log), e.g. the request's reference")]


@subject_app.command("export")
def subject_export(purpose: PurposeOption) -> None:
    """Print, as JSON, everything held about the person whose national ID is read from stdin."""
    import json

    from geodata.db import get_engine
    from survey.subject_rights import export_person

    national_id = _national_id_from_stdin()
    _database_from_settings()
    with get_engine().begin() as conn:
        found = export_person(conn, national_id, Reader())  # an operator on the server: no area limit
        _audit_cli(conn, "subject export", purpose, [r["instance_id"] for r in found["records"]])
    print(json.dumps(found, ensure_ascii=False, indent=2, default=str))


@subject_app.command("erase")
def subject_erase(purpose: PurposeOption) -> None:
    """Anonymise the records of the person whose national ID is read from stdin (they stay as counts)."""
    from geodata.db import get_engine
    from survey.subject_rights import erase_person

    national_id = _national_id_from_stdin()
    _database_from_settings()
    with get_engine().begin() as conn:
        done = erase_person(conn, national_id, Reader())
        _audit_cli(conn, "subject erase", purpose, done["records"])
    console.print(f"anonymised {len(done['records'])} records; blanked {len(done['quarantine'])} quarantined payloads")


@app.command()
def purge(
    older_than: Annotated[int, typer.Option("--older-than", help="Anonymise records collected more than this many years ago")],
) -> None:
    """Anonymise old survey records: personal fields removed, records kept as counts."""
    from geodata.db import get_engine
    from survey.subject_rights import purge_older_than

    _database_from_settings()
    try:
        with get_engine().begin() as conn:
            ids = purge_older_than(conn, older_than)
            _audit_cli(conn, "purge", f"retention: older than {older_than} years", ids)
    except ValueError as exc:
        fail(str(exc))
    console.print(f"anonymised {len(ids)} records collected more than {older_than} years ago")


# -- serving -------------------------------------------------------------------
def serve_app(host: str, port: int) -> None:
    import uvicorn

    from api.main import create_app

    console.print(f"Labour Atlas on [bold]http://{host}:{port}[/] (API docs at /docs); Ctrl-C stops it")
    uvicorn.run(create_app(), host=host, port=port, log_level="info")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
) -> None:
    """Serve the app against DATABASE_URL (no demo loading); needs a strong LABOUR_ATLAS_SECRET_KEY."""
    check_server_secret()
    _database_from_settings()
    serve_app(host, port)


def check_server_secret() -> None:
    """Refuse to serve with a missing, short or default secret, except in demo mode."""
    from api.security import MIN_SECRET_LENGTH, secret_problem
    from geodata.settings import get_settings

    settings = get_settings()
    problem = secret_problem(settings.secret_key)
    if problem is None:
        return
    if settings.demo:
        err.print(f"[yellow]warning:[/] {problem}; accepted only because LABOUR_ATLAS_DEMO is set", highlight=False)
        return
    fail(
        f"refusing to start: {problem}.\n"
        f"Set LABOUR_ATLAS_SECRET_KEY to a random value of at least {MIN_SECRET_LENGTH} characters, e.g. from\n"
        "  python3 -c 'import secrets; print(secrets.token_urlsafe(32))'\n"
        "and keep it (it also keys the national ID hashes: changing it later breaks duplicate detection).\n"
        "To try the app without one, run `labour-atlas demo`."
    )


def reference_is_loaded() -> bool:
    from sqlalchemy import text

    from geodata.db import get_engine

    with get_engine().connect() as conn:
        return bool(
            conn.execute(
                text("SELECT count(*) > 0 FROM admin_unit WHERE level = 'commune' AND geom IS NOT NULL AND structure = '2025'")
            ).scalar()
        )


def ensure_demo_secret(settings) -> None:
    """The demo keeps a generated secret in its data folder when none is set."""
    import secrets

    if settings.secret_key:
        return
    path = settings.data_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    settings.secret_key = path.read_text().strip()


DEMO_ACCOUNTS = (  # username, role, area (2025 codes): one of each role, in the sample provinces
    ("demo-surveyor", "surveyor", ["42"]), ("demo-officer", "officer", ["42"]), ("demo-leader", "leader", ["42"]),
    ("demo-planner", "planner", ["42", "40", "38"]), ("demo-police", "police_analyst", ["42"]), ("demo-admin", "admin", []),
)


def ensure_demo_accounts(data_dir: Path) -> Path:
    """Create one account per role for the demo (new random passwords), listed in a private file."""
    from sqlalchemy import text

    from api.security import create_user, hash_password
    from geodata.db import get_engine

    path = data_dir / "demo-accounts.txt"
    lines = ["# Labour Atlas demo accounts (demo only; made by `labour-atlas demo`)", "# username\trole\tpassword"]
    with get_engine().begin() as conn:
        for name, role, scope in DEMO_ACCOUNTS:
            password = secrets.token_urlsafe(12)
            exists = conn.execute(text("UPDATE app_user SET password_hash = :h, disabled = false, failed_logins = 0, "
                                       "locked_until = NULL WHERE username = :n RETURNING id"),
                                  {"h": hash_password(password), "n": name}).scalar()
            if exists is None:
                create_user(conn, name, password, role, scope, "2025")
            lines.append(f"{name}\t{role}\t{password}")
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def load_demo_sample() -> None:
    from etl.sample import load_sample_surveys, sample_is_loaded
    from geodata.db import get_engine

    with get_engine().begin() as conn:
        if sample_is_loaded(conn):
            console.print("sample survey records already loaded")
            return
        with console.status("loading synthetic sample survey records"):
            n = load_sample_surveys(conn)
    console.print(f"{n:,} synthetic sample survey records loaded (source 'sample (synthetic)')")


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    reload_data: Annotated[bool, typer.Option("--reload-data", help="Load the reference data again")] = False,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Prepare the database, then exit")] = False,
) -> None:
    """Run the demo: a private PostGIS (unless DATABASE_URL is set), real boundaries, the app."""
    from geodata import migrate
    from geodata.db import use_database
    from geodata.embedded import EmbeddedDatabaseError, EmbeddedPostgres, cluster_folder
    from geodata.settings import get_settings

    settings = get_settings()
    settings.demo = True
    ensure_demo_secret(settings)
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
        if reload_data or not reference_is_loaded():
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
            serve_app(host, port)
    except EmbeddedDatabaseError as exc:
        fail(str(exc))
    finally:
        if pg is not None:
            pg.stop()
            console.print("private PostgreSQL cluster stopped")


if __name__ == "__main__":
    app()
