"""``labour-atlas user``: accounts with a role and an area scope."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from api.security.accounts import (
    AccountError,
    create_user,
    disable_user,
    list_users,
    normalise_username,
)
from cli.output import console, fail
from geodata.db import get_engine
from geodata.roles import Role
from geodata.structures import Structure

app = typer.Typer(help="User accounts: role and area scope.", no_args_is_help=True)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Username (letters, digits, '.', '_', '@', '-'; case-insensitive)")],
    role: Annotated[Role, typer.Option(help="What the user does")],
    scope: Annotated[str, typer.Option(help="Unit codes of the area, comma-separated, any level (or 'all'); optional for admin")] = "",
    structure: Annotated[Structure, typer.Option(help="Boundary structure of the scope codes")] = Structure.v2025,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input (first line)")] = False,
) -> None:
    """Create a user with a role and an area scope (a code covers the unit and everything inside it)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            fail("--password-stdin: no password on standard input")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        with get_engine().begin() as conn:
            create_user(conn, name, password, role, scope.split(","), structure)
    except AccountError as exc:
        fail(f"{exc}\nNo user was created.")
    console.print(f"user {normalise_username(name)} created ({role.value}, scope {scope or 'none'} in {structure.value})", highlight=False)


@app.command("list")
def list_() -> None:
    """List users with role, state and scope (no password hashes)."""
    with get_engine().connect() as conn:
        found = list_users(conn)
    table = Table("username", "role", "scope", "state", "last sign-in", title=f"{len(found)} users")
    table.columns[0].no_wrap = True  # names are what an administrator looks for
    for u in found:
        units = [f"{s['code']} {s['name']} ({s['structure']})" for s in u["scope"]]
        # A whole-country area is 34 or 63 provinces: show a few and the count.
        area = ", ".join(units[:3]) + (f" and {len(units) - 3} more" if len(units) > 3 else "") if units else "-"
        state = "disabled" if u["disabled"] else f"locked until {u['locked_until']:%Y-%m-%d %H:%M}" if u["locked_until"] else "active"
        last = f"{u['last_login_at']:%Y-%m-%d %H:%M}" if u["last_login_at"] else "never"
        table.add_row(u["username"], u["role"], area, state, last)
    console.print(table)



@app.command("disable")
def disable(name: Annotated[str, typer.Argument(help="Username")]) -> None:
    """Disable a user: no more sign-in; its tokens stop working at once."""
    try:
        with get_engine().begin() as conn:
            disable_user(conn, name)
    except AccountError as exc:
        fail(str(exc))
    console.print(f"user {normalise_username(name)} disabled", highlight=False)
