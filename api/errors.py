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

import json

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


def unreadable_body(exc: HTTPException) -> str | None:
    """Why FastAPI could not read a JSON body, when it says only "There was an error parsing the body" (400).

    FastAPI keeps the reason as the exception's cause: bytes that are not
    UTF-8, or arrays and objects nested beyond what Python's parser recurses
    into. Both are the caller's input, answered like any other invalid field.
    """
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return f"not valid UTF-8: byte 0x{cause.object[cause.start]:02x} at position {cause.start} (send the body in UTF-8)"
    if isinstance(cause, RecursionError):
        return "not readable: arrays or objects nested too deeply"
    return None


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and (reason := unreadable_body(exc)):
        return error_response(request, 422, [{"loc": ["body"], "msg": reason, "type": "value_error"}])
    return error_response(request, exc.status_code, exc.detail, getattr(exc, "headers", None))


def validation_detail(errors: list[dict]) -> list[dict]:
    """FastAPI's validation errors as the app answers them: where, what, which kind; not the input echoed back
    (a caller's own personal data, or megabytes of it) nor pydantic's internals (``ctx``, ``url``).

    >>> validation_detail([{"loc": ("query", "y"), "msg": "Input should be >= 0", "type": "greater_than_equal",
    ...                     "input": "-4", "ctx": {"ge": 0}}])
    [{'loc': ['query', 'y'], 'msg': 'Input should be >= 0', 'type': 'greater_than_equal'}]
    """
    return [{"loc": list(e.get("loc", ())), "msg": _message(e), "type": str(e.get("type", ""))} for e in errors]


def _message(error: dict) -> str:
    """pydantic's message; for a body that is not JSON, with the parser's reason (FastAPI keeps it in ``ctx``)."""
    reason = (error.get("ctx") or {}).get("error")
    if error.get("type") == "json_invalid" and isinstance(reason, str):
        return f"not valid JSON: {reason}"
    return str(error.get("msg", "")).removeprefix("Value error, ")


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(request, 422, validation_detail(list(exc.errors())))


# The error answers every route can give, beside those its rule and its shape add (see document_error_answers).
ANY_ROUTE = {422: "Invalid input: each rejected field named", 503: "A service it needs is unavailable; try again later"}
SIGNED_IN = {401: "Not signed in, or the token is invalid or expired", 403: "Your role may not do this"}
WITH_BODY = {400: "The body cannot be read", 413: "The body is larger than the limit"}
WITH_PATH = {404: "Nothing with this identifier (that you may see)"}
# OGC API Features answers a parameter it cannot use with 400 (its standard's status), not 422.
OGC_PREFIX = "/ogc"
OGC_ROUTE = {400: "A parameter that cannot be used (OGC API: 400), named with its position"}


def document_error_answers(app: FastAPI) -> None:
    """Declare in the app's OpenAPI document the error answers of every route, in the shape they come in.

    Outside /openrosa an error is JSON (:class:`api.schemas.ErrorAnswer`);
    under /openrosa it is an OpenRosa XML document. Where a route declares a
    status with its own model (a submission's outcome), either shape may come:
    its own, or an error raised before the route runs (the access rule, the
    body limit). The document is completed once, when first asked for.
    """
    from api.access import Allow, app_route_rules
    from api.schemas import ErrorAnswer

    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = generate()
        error = ErrorAnswer.model_json_schema(ref_template="#/components/schemas/{model}")
        components = doc.setdefault("components", {}).setdefault("schemas", {})
        components.update(error.pop("$defs", {}))
        components["ErrorAnswer"] = error
        json_error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorAnswer"}}}
        xml_error = {"text/xml": {"schema": {"type": "string"}}}
        signed_in = {(r.method, r.path) for r in app_route_rules(app) if any(isinstance(rule, Allow) for rule in r.rules)}
        for path, operations in doc.get("paths", {}).items():
            for method, operation in operations.items():
                errors = dict(ANY_ROUTE)
                if (method.upper(), path) in signed_in:
                    errors |= SIGNED_IN
                if method in ("post", "put", "patch"):
                    errors |= WITH_BODY
                if any(p.get("in") == "path" for p in operation.get("parameters", ())):
                    errors |= WITH_PATH
                if path.startswith(OGC_PREFIX):
                    errors |= OGC_ROUTE
                own = xml_error if path.startswith(OPENROSA_PREFIX) else json_error
                responses = operation.setdefault("responses", {})
                # Error statuses the route declares itself, without saying their shape, come in the same shape.
                errors |= {int(code): "" for code, declared in responses.items() if code[0] in "45" and "content" not in declared}
                for status, description in errors.items():
                    declared = responses.setdefault(str(status), {"description": description})
                    content = declared.setdefault("content", {})
                    # FastAPI's own 422 model: not the shape of this app's answers (nor JSON under /openrosa).
                    if content.get("application/json", {}).get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                        del content["application/json"]
                    for media, body in own.items():
                        schema = content.get(media, {}).get("schema")
                        if schema is None:
                            content[media] = body
                        elif schema != body["schema"]:
                            content[media] = {"schema": {"anyOf": [schema, body["schema"]]}}
        if not any("HTTPValidationError" in json.dumps(o) for o in doc.get("paths", {}).values()):
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app``."""
    app.add_exception_handler(LabourAtlasError, _domain_error)
    for error in OUTAGE_ERRORS:
        app.add_exception_handler(error, _database_outage)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
