"""Errors become answers here, and only here.

Routes and the packages below them raise :mod:`geodata.errors` exceptions
(or FastAPI's ``HTTPException`` for sign-in challenges); the handlers that
:func:`install_error_handlers` registers on the app turn them into one body
shape, FastAPI's own:

- ``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}`` for invalid input,
- ``{"detail": "..."}`` for everything else,

and, under ``/openrosa``, into the OpenRosa response document that ODK
Collect shows to the surveyor. An unexpected exception never reaches the
client: :class:`api.middleware.RequestLog` answers 500 with the request id.

A database outage (connection refused or lost, a pool or statement timeout)
is not a bug: it is answered 503 with ``Retry-After``, so that the web form
and ODK Collect keep the submission and send it again later.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from geodata.db import OUTAGE_ERRORS, unavailable
from geodata.errors import (
    Conflict,
    DatabaseUnavailable,
    InvalidInput,
    LabourAtlasError,
    Locked,
    NotFound,
    PermissionDenied,
    Refused,
    TooLarge,
    Unavailable,
)
from geodata.logs import get_logger
from survey.openrosa import OPENROSA_VERSION, response_xml

log = get_logger("errors")

STATUS: dict[type[LabourAtlasError], int] = {
    NotFound: 404,
    Conflict: 409,
    PermissionDenied: 403,
    InvalidInput: 422,
    TooLarge: 413,
    Refused: 400,
    Locked: 423,
    Unavailable: 503,
}
OPENROSA_PREFIX = "/openrosa"


def status_of(exc: LabourAtlasError) -> int:
    """The HTTP status of a domain error: the first of its classes (most specific first) that has one.

    >>> from api.security.accounts import UsernameTaken
    >>> status_of(UsernameTaken("taken")), status_of(InvalidInput("bad"))
    (409, 422)
    """
    return next((STATUS[c] for c in type(exc).__mro__ if c in STATUS), 500)


def error_response(request: Request, status: int, detail: object, headers: dict[str, str] | None = None) -> Response:
    """The answer to a failed request: JSON ``{"detail": ...}``, or an OpenRosa document under /openrosa."""
    if request.url.path.startswith(OPENROSA_PREFIX):
        return openrosa_error(status, detail, headers)
    return JSONResponse({"detail": jsonable_encoder(detail)}, status_code=status, headers=headers)


def openrosa_error(status: int, detail: object, headers: dict[str, str] | None = None) -> Response:
    """An OpenRosa response document with the message (ODK Collect shows only this, not JSON)."""
    if isinstance(detail, list):
        text = "; ".join(f"{'.'.join(str(p) for p in d.get('loc', ()) if p != 'body') or 'body'}: {d.get('msg')}"
                         if isinstance(d, dict) else str(d) for d in detail)
    else:
        text = str(detail)
    return Response(response_xml(text, "error"), status_code=status, media_type="text/xml; charset=utf-8",
                    headers={"X-OpenRosa-Version": OPENROSA_VERSION, **(headers or {})})


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LabourAtlasError)
    status = status_of(exc)
    # An account error that is really a conflict (a name taken) answers as one: a message, not a field list.
    detail = exc.as_detail() if status == 422 and isinstance(exc, InvalidInput) else str(exc)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, DatabaseUnavailable) else None
    return error_response(request, status, detail, headers)


async def _database_outage(request: Request, exc: Exception) -> Response:
    # The cause goes to the log (it names hosts and ports), the user is told to retry.
    log.warning("database unavailable in %s %s: %s", request.method, request.url.path,
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    return await _domain_error(request, unavailable())


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(request, exc.status_code, exc.detail, getattr(exc, "headers", None))


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(request, 422, exc.errors())


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app``."""
    app.add_exception_handler(LabourAtlasError, _domain_error)
    for error in OUTAGE_ERRORS:
        app.add_exception_handler(error, _database_outage)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
