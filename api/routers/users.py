"""User administration (admins only): list, create, disable."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from api.access import AdminUser
from api.deps import DbConn
from api.security.accounts import (
    create_user,
    disable_user,
    list_users,
    normalise_username,
)
from geodata.errors import Refused
from geodata.roles import Role
from geodata.structures import Structure

router = APIRouter(prefix="/api/v1/admin/users", tags=["admin"])


class ScopeCode(BaseModel):
    structure: str
    code: str
    name: str | None = None


class UserOut(BaseModel):
    username: str
    role: Role
    disabled: bool
    scope: list[ScopeCode]
    created_at: dt.datetime
    last_login_at: dt.datetime | None = None
    locked_until: dt.datetime | None = None


class UserCreate(BaseModel):
    username: str = Field(max_length=64, examples=["ht.officer01"])
    # Checked by create_user, so that a refused password is never echoed
    # back in a validation error.
    password: str = Field(max_length=1024)
    role: Role
    scope: list[str] = Field(default_factory=list, max_length=1000, description="Unit codes (any level) of `structure`, or ['all']")
    structure: Structure = Structure.v2025


def _find(conn, username: str) -> dict:
    (user,) = list_users(conn, username)
    return user


@router.get("", response_model=list[UserOut])
def users(admin: AdminUser, conn: DbConn) -> list[dict]:
    """All accounts with their role, state and scope (no password hashes)."""
    return list_users(conn)


@router.post("", response_model=UserOut, status_code=status.HTTP_201_CREATED,
             responses={409: {"description": "Username taken"}, 422: {"description": "Invalid name, password, role or scope"}})
def add_user(admin: AdminUser, conn: DbConn, body: UserCreate) -> dict:
    """Create an account with a role and an area scope."""
    create_user(conn, body.username, body.password, body.role, body.scope, body.structure)
    return _find(conn, body.username)


@router.post("/{username}/disable", response_model=UserOut, responses={404: {"description": "No such user"}})
def disable(admin: AdminUser, conn: DbConn, username: str) -> dict:
    """Disable an account: it can no longer sign in, and its tokens stop working at once."""
    if normalise_username(username) == admin.username:
        raise Refused("you cannot disable your own account")
    disable_user(conn, username)
    return _find(conn, username)
