"""Dependencies shared by the routes: the database connection, the signed-in user."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Header, HTTPException, Query, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Connection, text

from api.audit import record_access
from api.security.tokens import InvalidToken, decode_access_token
from geodata.db import get_engine
from geodata.errors import InvalidInput
from geodata.roles import Role


def get_conn() -> Iterator[Connection]:
    """A connection in a transaction for one request (read routes)."""
    with get_engine().begin() as conn:
        yield conn


# scope="function": the transaction commits (and the connection goes back to
# the pool) when the route function returns, before the answer is sent. A
# client told "201 stored" must find its record even if the commit failed
# otherwise; and a connection held while the answer travels would make the
# pool open extra ones under load.
DbConn = Annotated[Connection, Depends(get_conn, scope="function")]

# Declares the bearer scheme in OpenAPI (the "Authorize" button of /docs);
# errors are raised below, with the reason.
bearer_token = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


@dataclass(frozen=True)
class AuthUser:
    """The signed-in user: id, username and role (the role as stored now, not as in the token)."""

    id: uuid.UUID
    username: str
    role: Role


def unauthorized(reason: str, error: str | None = "invalid_token") -> HTTPException:
    """A 401 answer with the ``WWW-Authenticate`` header of RFC 6750."""
    challenge = "Bearer" if error is None else f'Bearer error="{error}", error_description="{reason}"'
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=reason, headers={"WWW-Authenticate": challenge})


def get_current_user(conn: DbConn, token: Annotated[str | None, Depends(bearer_token)]) -> AuthUser:
    """The user of the bearer token; 401 when it is missing, invalid, expired, or the user is disabled."""
    if not token:
        raise unauthorized("not signed in: send 'Authorization: Bearer <access token>' (POST /api/v1/auth/token)", error=None)
    try:
        claims = decode_access_token(token)
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from None
    row = conn.execute(
        text("SELECT id, username, role, disabled FROM app_user WHERE id = :id"), {"id": claims.user_id}
    ).one_or_none()
    if row is None or row.disabled:
        raise unauthorized("this account is disabled or no longer exists")
    return AuthUser(row.id, row.username, Role(row.role))


CurrentUser = Annotated[AuthUser, Depends(get_current_user)]


@dataclass
class PersonalRead:
    """A read of personal data in progress: call :meth:`log` with the record ids returned."""

    conn: Connection
    actor: str
    role: str | None
    method: str
    route: str
    purpose: str

    def log(self, record_ids) -> None:
        record_access(self.conn, actor=self.actor, role=self.role, method=self.method, route=self.route,
                      purpose=self.purpose, record_ids=record_ids)


def personal_read(
    request: Request,
    conn: DbConn,
    user: CurrentUser,
    x_purpose: Annotated[str | None, Header(alias="X-Purpose", description="Why these personal records are read "
                                            "(kept in the audit log); percent-encode non-ASCII text")] = None,
    purpose: Annotated[str | None, Query(description="The same as the X-Purpose header, e.g. in Vietnamese")] = None,
) -> PersonalRead:
    """Routes returning personal data require a purpose and write an audit row."""
    stated = (purpose if purpose is not None else unquote(x_purpose or "")).strip()
    if len(stated) < 3:
        raise InvalidInput("say why you read these personal records: header X-Purpose or parameter purpose "
                           "(3 characters or more); it is kept in the audit log", loc=("header", "X-Purpose"), type="missing")
    return PersonalRead(conn, user.username, user.role.value, request.method, request.url.path, stated[:500])


AuditedRead = Annotated[PersonalRead, Depends(personal_read)]
