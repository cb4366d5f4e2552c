"""Accounts: create, list, disable; a user's role and area scope.

Usernames are case-insensitive (stored in lower case). An account's scope is
a set of unit codes of one boundary structure (see :mod:`geodata.scopes`).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import Connection, text

from api.security.passwords import hash_password, password_problem
from api.security.sessions import revoke_user_sessions
from geodata.errors import Conflict, InvalidInput, NotFound
from geodata.roles import Role
from geodata.scopes import refresh_scopes
from geodata.structures import Structure

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")


class AccountError(InvalidInput):
    """An account could not be created or changed; the message says what to do."""


class UsernameTaken(Conflict, AccountError):
    """Another account has this username."""


class UnknownUser(NotFound, AccountError):
    """No account has this username."""


def normalise_username(username: str) -> str:
    """Usernames are case-insensitive: stored and looked up in lower case.

    >>> normalise_username("  HT.CanBo01 ")
    'ht.canbo01'
    """
    return username.strip().lower()


def create_user(
    conn: Connection,
    username: str,
    password: str,
    role: Role | str,
    scope: list[str],
    structure: Structure | str = Structure.v2025,
) -> uuid.UUID:
    """Create an account with its area scope; returns its id.

    Parameters
    ----------
    username:
        2-64 characters: letters, digits, ``. _ @ -`` (stored in lower case).
    password:
        At least ``password_min_length`` characters, not containing the name.
    role:
        One of :class:`~geodata.roles.Role`.
    scope:
        Unit codes of ``structure`` at any level (each means the unit and
        everything inside it); ``["all"]`` means every province. Required
        except for ``admin``.

    Raises :class:`AccountError` (or :class:`UsernameTaken`) with what to fix.

    Example (needs a database)::

        create_user(conn, "ht.officer", "a long passphrase", "officer", ["42"], "pre2025")
    """
    name = normalise_username(username)
    if not USERNAME_PATTERN.match(name):
        raise AccountError(
            f"invalid username {username!r}: use 2-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit",
            loc=("body", "username"),
        )
    try:
        role = Role(role)
    except ValueError:
        raise AccountError(f"unknown role {role!r}; roles: {', '.join(r.value for r in Role)}", loc=("body", "role")) from None
    try:
        structure = Structure(structure)
    except ValueError:
        raise AccountError(f"unknown structure {structure!r}; use 'pre2025' or '2025'", loc=("body", "structure")) from None
    problem = password_problem(password, name)
    if problem:
        raise AccountError(problem, loc=("body", "password"))
    codes = sorted({c.strip() for c in scope if c.strip()})
    if codes == ["all"]:
        codes = list(conn.execute(
            text("SELECT code FROM admin_unit WHERE structure = :s AND level = 'province' ORDER BY code"), {"s": structure.value}
        ).scalars())
    if not codes and role is not Role.admin:
        raise AccountError(f"a {role.value} needs an area scope: give one or more unit codes (or 'all')", loc=("body", "scope"))
    known = set(conn.execute(
        text("SELECT code FROM admin_unit WHERE structure = :s AND code = ANY(:codes)"), {"s": structure.value, "codes": codes}
    ).scalars())
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise AccountError(
            f"no unit with code {', '.join(unknown)} in the {structure.value} structure "
            f"(look codes up with GET /api/v1/units?structure={structure.value}&q=NAME)",
            loc=("body", "scope"),
        )
    user_id = conn.execute(
        text(
            """INSERT INTO app_user (username, password_hash, role) VALUES (:name, :hash, :role)
               ON CONFLICT (username) DO NOTHING RETURNING id"""
        ),
        {"name": name, "hash": hash_password(password), "role": role.value},
    ).scalar()
    if user_id is None:
        raise UsernameTaken(f"a user named {name!r} already exists")
    if codes:
        conn.execute(
            text("INSERT INTO user_scope (user_id, structure, unit_code) SELECT :id, :s, unnest(CAST(:codes AS text[]))"),
            {"id": user_id, "s": structure.value, "codes": codes},
        )
        refresh_scopes(conn, user_id)
    return user_id


def reset_password(conn: Connection, username: str, password: str) -> bool:
    """Give an existing account a new password and unlock and enable it; False when there is no such account.

    For the demo accounts, made anew at each start; the password rules are
    not checked here (callers choose strong passwords).
    """
    return conn.execute(
        text("""UPDATE app_user SET password_hash = :h, disabled = false, failed_logins = 0, locked_until = NULL
                WHERE username = :n RETURNING id"""),
        {"h": hash_password(password), "n": normalise_username(username)},
    ).scalar() is not None


def list_users(conn: Connection, username: str | None = None) -> list[dict[str, Any]]:
    """All accounts (or the one named ``username``) with role, state and scope, by username.

    Never includes a password hash.
    """
    rows = conn.execute(
        text(
            """SELECT u.username, u.role, u.disabled, u.created_at, u.last_login_at,
                      CASE WHEN u.locked_until > now() THEN u.locked_until END AS locked_until,
                      coalesce(json_agg(json_build_object('structure', s.structure, 'code', s.unit_code, 'name', a.name)
                                        ORDER BY s.structure, s.unit_code) FILTER (WHERE s.unit_code IS NOT NULL), '[]') AS scope
               FROM app_user u
               LEFT JOIN user_scope s ON s.user_id = u.id
               LEFT JOIN admin_unit a ON a.structure = s.structure AND a.code = s.unit_code
               WHERE CAST(:name AS text) IS NULL OR u.username = :name
               GROUP BY u.id ORDER BY u.username"""
        ),
        {"name": normalise_username(username) if username is not None else None},
    ).mappings()
    return [dict(r) for r in rows]


def disable_user(conn: Connection, username: str) -> None:
    """Disable an account and end its sessions (refresh tokens revoked; access tokens fail at once).

    Raises :class:`UnknownUser` when there is no such account.
    """
    user_id = conn.execute(
        text("UPDATE app_user SET disabled = true WHERE username = :name RETURNING id"), {"name": normalise_username(username)}
    ).scalar()
    if user_id is None:
        raise UnknownUser(f"no user named {username!r} (see `labour-atlas user list`)")
    revoke_user_sessions(conn, user_id)


def user_scope_codes(conn: Connection, user_id: uuid.UUID) -> list[dict[str, str]]:
    """The scope codes of a user as given (structure, code, name), not expanded."""
    rows = conn.execute(
        text(
            """SELECT s.structure, s.unit_code AS code, a.name, a.level FROM user_scope s
               JOIN admin_unit a ON a.structure = s.structure AND a.code = s.unit_code
               WHERE s.user_id = :id ORDER BY s.structure, s.unit_code"""
        ),
        {"id": user_id},
    ).mappings()
    return [dict(r) for r in rows]
