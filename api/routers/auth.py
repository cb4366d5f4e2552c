"""Sign-in: OAuth2 password flow, refresh-token rotation, the signed-in user."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from sqlalchemy import text

from api.access import ALL_ROLES, PUBLIC, Allow
from api.caching import conditional, etag_of
from api.deps import AuthUser, DbConn, unauthorized
from api.schemas import AreaUnits
from api.security.accounts import user_scope_codes
from api.security.sessions import RefreshResult, rotate_refresh_token
from api.security.signin import LoginResult, authenticate
from geodata.db import get_engine
from geodata.errors import Locked, PermissionDenied

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
SignedIn = Annotated[AuthUser, Depends(Allow(*ALL_ROLES, limit="none"))]

BAD_CREDENTIALS = "incorrect username or password"
TOKEN_RESPONSES = {
    401: {"description": "Incorrect username or password (answers slow down after repeated failures)"},
    403: {"description": "The account is disabled"},
    423: {"description": "The account is locked for a while after repeated failed sign-ins"},
}


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires")


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class ScopeUnit(BaseModel):
    structure: str
    code: str
    name: str
    level: str


class Me(BaseModel):
    username: str
    role: str
    scope: list[ScopeUnit]


def _login(username: str, password: str) -> LoginResult:
    # Its own transaction: the failure count must be committed even though
    # the request then fails.
    with get_engine().begin() as conn:
        return authenticate(conn, username, password)


def _refresh(token: str) -> RefreshResult:
    with get_engine().begin() as conn:
        return rotate_refresh_token(conn, token)


def _no_store(response: Response) -> None:
    # RFC 6749 5.1: token responses must not be cached.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


@router.post("/token", response_model=TokenResponse, responses=TOKEN_RESPONSES, dependencies=[Depends(PUBLIC)])
async def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], response: Response) -> dict:
    """Sign in with username and password (form fields); get an access and a refresh token.

    The access token (a JWT, sent as ``Authorization: Bearer ...``) lives
    ``expires_in`` seconds; exchange the refresh token at ``/auth/refresh``
    for a new pair.
    """
    result = await run_in_threadpool(_login, form.username, form.password)
    if result.status == "ok":
        _no_store(response)
        return result.tokens.as_response()
    if result.status == "locked":
        raise Locked(f"too many failed sign-ins: this account is locked; try again in {result.locked_minutes} min "
                     "or ask an administrator")
    if result.status == "disabled":
        raise PermissionDenied("this account is disabled; ask an administrator")
    if result.delay:
        await asyncio.sleep(result.delay)  # no thread is held while waiting
    raise unauthorized(BAD_CREDENTIALS, error=None)


@router.post("/refresh", response_model=TokenResponse, responses={401: {"description": "Unknown, used, expired or revoked refresh token"}},
             dependencies=[Depends(PUBLIC)])
async def refresh(body: RefreshRequest, response: Response) -> dict:
    """Exchange a refresh token for a new access and refresh token; the old refresh token stops working.

    The same refresh token again within ``LABOUR_ATLAS_REFRESH_GRACE_SECONDS``
    (60 s) gives the same new pair again, as long as the new refresh token has
    not been used (the first answer was lost on the way). Later, presenting a
    refresh token that was already exchanged ends every session of that
    sign-in (a copy of it may have been stolen): sign in again.
    """
    result = await run_in_threadpool(_refresh, body.refresh_token)
    if result.status in ("ok", "again"):
        _no_store(response)
        return result.tokens.as_response()
    reasons = {
        "invalid": "unknown refresh token",
        "reused": "refresh token already used: all sessions of this sign-in are ended; sign in again",
        "expired": "refresh token expired; sign in again",
        "disabled": "this account is disabled",
    }
    raise unauthorized(reasons[result.status])


@router.get("/me", response_model=Me)
def me(user: SignedIn, conn: DbConn) -> dict:
    """The signed-in user: username, role and area scope (the unit codes as given)."""
    return {"username": user.username, "role": user.role.value, "scope": user_scope_codes(conn, user.id)}


AREA_COLUMNS = ["structure", "code", "name", "unit_type", "level", "parent_code", "name_folded"]
AREA_UNITS_SQL = text(f"""
SELECT {", ".join("u." + c for c in AREA_COLUMNS)}
FROM user_scope_unit s JOIN admin_unit u ON u.structure = s.structure AND u.code = s.code
WHERE s.user_id = :id ORDER BY u.structure, u.level, u.code
""")
CURRENT_STRUCTURE_SQL = text("""
SELECT name FROM boundary_structure
WHERE valid_from <= (now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
  AND (valid_to IS NULL OR (now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date < valid_to)
""")


@router.get("/me/units", response_model=AreaUnits, responses={304: {"description": "Unchanged since the version sent "
                                                                              "in If-None-Match"}})
def my_units(user: SignedIn, conn: DbConn, request: Request) -> Response:
    """Every unit of your area in both boundary structures (codes, names, types, parents, names without diacritics).

    The web form keeps them after sign-in so that a commune can be found with no signal from the first day;
    it asks again with ``If-None-Match`` and gets 304 until the boundaries or the area change.
    """
    rows = [list(r) for r in conn.execute(AREA_UNITS_SQL, {"id": user.id})]
    current = conn.execute(CURRENT_STRUCTURE_SQL).scalar()
    content = json.dumps([current, rows], ensure_ascii=False, separators=(",", ":")).encode()
    version = etag_of(content).strip('"')
    body = AreaUnits(version=version, current_structure=current, columns=AREA_COLUMNS, units=rows)
    return conditional(request, body.model_dump_json().encode(), "application/json")
