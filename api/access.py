"""Who may call each route: one rule per route, declared as a dependency.

Every route of the app carries exactly one of:

- :data:`PUBLIC` (``dependencies=[Depends(PUBLIC)]``): no sign-in; only
  public data (boundaries, the blank form, sign-in itself);
- an :class:`Allow` (``user: Annotated[AuthUser, Depends(Allow(...))]``): the
  roles that may call it and how the data it touches is limited. The limit
  itself is a WHERE in the route's SQL (:class:`geodata.scopes.Reader`).

tests/test_authorization.py walks the app's route table
(:func:`app_route_rules`) and fails for a route with no rule, so a new route
cannot ship without one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from api.deps import AuthUser, CurrentUser
from api.security.signin import authenticate
from geodata.db import get_engine
from geodata.errors import PermissionDenied
from geodata.roles import Role
from geodata.scopes import Reader
from maps.sources import LayerSource, Viewer

Limit = Literal["none", "area", "own_or_area"]
"""How a route limits what a caller touches: ``none`` (the caller's own
account, or data that is not personal), ``area`` (the caller's area scope),
``own_or_area`` (surveyors: what they sent; others: their area)."""

ALL_ROLES = tuple(Role)


class Public:
    """The rule of a route anyone may call."""

    def __call__(self) -> None:
        return None

    def __repr__(self) -> str:
        return "PUBLIC"


PUBLIC = Public()


class Allow:
    """The rule of a route: only ``roles`` may call it (403 for others, 401 without a token).

    >>> OfficerUser = Annotated[AuthUser, Depends(Allow(Role.officer, limit="area"))]
    """

    def __init__(self, *roles: Role, limit: Limit = "area") -> None:
        self.roles = frozenset(roles)
        self.limit = limit

    def check(self, user: AuthUser) -> AuthUser:
        if user.role not in self.roles:
            raise PermissionDenied(f"this needs the role {' or '.join(sorted(r.value for r in self.roles))}; yours is {user.role.value}")
        return user

    def __call__(self, user: CurrentUser) -> AuthUser:
        return self.check(user)

    def __repr__(self) -> str:
        return f"Allow({', '.join(sorted(r.value for r in self.roles))}; limit={self.limit})"


class AllowBasic(Allow):
    """Like :class:`Allow`, signed in with HTTP Basic (ODK Collect, KoboCollect).

    The password is checked like a sign-in (slowed, then locked after
    repeated failures). Use HTTPS: Basic sends the password with each request.
    """

    realm = "Labour Atlas"

    def challenge(self, reason: str) -> HTTPException:
        return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=reason,
                             headers={"WWW-Authenticate": f'Basic realm="{self.realm}", charset="UTF-8"'})

    async def __call__(self, request: Request) -> AuthUser:  # type: ignore[override]
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value:
            raise self.challenge("sign in with your Labour Atlas username and password")
        try:
            username, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise self.challenge("malformed Basic credentials") from None
        if not sep:
            raise self.challenge("malformed Basic credentials")
        result = await run_in_threadpool(_check_password, username, password)
        if result.status != "ok":
            if result.delay:
                await asyncio.sleep(result.delay)
            reason = {"locked": "account locked after repeated failed sign-ins; try again later",
                      "disabled": "this account is disabled"}.get(result.status, "incorrect username or password")
            raise self.challenge(reason)
        return self.check(AuthUser(result.user_id, username.strip().lower(), Role(result.role)))


def _check_password(username: str, password: str):
    # Own transaction: a failure count must be kept although the request fails.
    with get_engine().begin() as conn:
        return authenticate(conn, username, password, issue_tokens_on_success=False)


OFFICERS = Allow(Role.officer, limit="area")
ADMINS = Allow(Role.admin, limit="none")
OfficerUser = Annotated[AuthUser, Depends(OFFICERS)]
"""An officer, limited to its area (records, quarantine, a person's data)."""
AdminUser = Annotated[AuthUser, Depends(ADMINS)]
"""An administrator (accounts, the audit log; personal data only through break-glass)."""


def reader_for(user: AuthUser, limit: Limit) -> Reader:
    """The row limit of ``user`` on a route with ``limit`` (see :data:`Limit`)."""
    if limit == "own_or_area" and user.role is Role.surveyor:
        return Reader(own=user.username)
    if limit in ("area", "own_or_area"):
        return Reader(area_of=user.id)
    return Reader()


_layer_rules: dict[str, Public | Allow] = {}


def layer_rule(source: LayerSource) -> Public | Allow:
    """The access rule of a layer, the same object for every route that reads it (its GeoJSON route, its export).

    >>> from maps.sources import SOURCES
    >>> layer_rule(SOURCES["units"]), layer_rule(SOURCES["survey-records"])
    (PUBLIC, Allow(officer; limit=area))
    """
    if source.name not in _layer_rules:
        _layer_rules[source.name] = PUBLIC if source.readers is None else Allow(*source.readers, limit=source.limit)
    return _layer_rules[source.name]


def viewer_for(user: AuthUser | None, source: LayerSource, audit: Callable[[list[str]], None] | None = None) -> Viewer:
    """Who reads ``source``: the user's role and area limit (none for a public layer), for the audit its name."""
    if user is None:
        return Viewer(None, Reader(), "anonymous", audit)
    return Viewer(user.role, reader_for(user, source.limit), user.username, audit)


@dataclass(frozen=True)
class RouteRule:
    """One route of the app (method and path as served) and the access rules it declares."""

    method: str
    path: str
    rules: tuple[Public | Allow, ...]


def app_route_rules(app: FastAPI) -> list[RouteRule]:
    """Every API route of ``app`` with its rules (through its dependencies, at any depth), by path and method.

    Routes that are not API routes (the OpenAPI page, static files) are left
    out; the authorization test lists them itself.
    """

    def walk(dep: Dependant | None) -> Iterator[Public | Allow]:
        if dep is None:
            return
        if isinstance(dep.call, (Public, Allow)):
            yield dep.call
        for sub in dep.dependencies:
            yield from walk(sub)

    found = []
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute):
            continue
        rules = tuple(walk(route.dependant))
        found += [RouteRule(method, route.path, rules) for method in sorted(route.methods or ())]
    return sorted(found, key=lambda r: (r.path, r.method))
