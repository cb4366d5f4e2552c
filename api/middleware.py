"""One log line per request, a request id on every answer, a 500 without a traceback for the unexpected,
and body limits counted on the bytes read.

Pure ASGI middlewares (no per-request task or body copy, unlike
``BaseHTTPMiddleware``): submissions are answered in a few milliseconds and
must stay so.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geodata.logs import get_logger
from geodata.settings import get_settings

requests_log = get_logger("requests")
errors_log = get_logger("errors")
REQUEST_ID_HEADER = b"x-request-id"
# A client's own id is kept only when it is short and plain (it goes into the log).
CLIENT_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{8,64}$")


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER and CLIENT_REQUEST_ID.match(value):
            return value.decode()
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The path template of the matched route (``/api/v1/submissions/{instance_id}``), never the URL itself.

    URLs can carry values a log must not keep; templates cannot.
    """
    route = scope.get("route")
    return getattr(route, "path_format", None) or getattr(route, "path", None) or "(no route)"


class RequestLog:
    """Logs ``request_id method route status duration_ms`` per request and answers unexpected errors with a 500.

    The request id is the client's ``X-Request-ID`` when it is plain, else a
    new one; it is sent back in ``X-Request-ID`` and in the body of a 500,
    and is in the log line, so a user's report finds the server's traceback.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            errors_log.exception("unexpected error in %s %s request_id=%s", scope["method"], route_template(scope), request_id)
            status = 500
            if not response_started:
                await _internal_error(scope, receive, send, request_id)
        finally:
            requests_log.info("request_id=%s method=%s route=%s status=%s duration_ms=%.1f", request_id, scope["method"],
                              route_template(scope), status, (time.perf_counter() - started) * 1000)


async def _internal_error(scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
    from api.errors import OPENROSA_PREFIX, openrosa_error

    detail = f"internal error: the request could not be completed; quote request id {request_id} to an administrator"
    if scope["path"].startswith(OPENROSA_PREFIX):  # what ODK Collect can show to the surveyor
        response = openrosa_error(500, detail, {"X-Request-ID": request_id})
    else:
        response = JSONResponse({"detail": detail, "request_id": request_id}, status_code=500,
                                headers={"X-Request-ID": request_id})
    await response(scope, receive, send)


class BodyTooLarge(HTTPException):
    """A request body past its limit, found while it was being read (answered 413 by the error handlers)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit:,} bytes, the limit of this route; "
                              "send fewer submissions per request (or smaller attachments)")


def body_limit(path: str) -> int:
    """The largest body ``path`` accepts (settings ``max_*_bytes``)."""
    s = get_settings()
    if path == "/openrosa/submission":
        return s.max_submission_bytes
    if path == "/api/v1/submissions/batch":
        return s.max_batch_bytes
    return s.max_body_bytes


class BodyLimit:
    """Refuses bodies past their route's limit on the bytes actually read, chunked uploads included.

    A declared ``Content-Length`` over the limit is answered at once, before
    anything is read; otherwise the body is counted as the app reads it and
    the read fails with :class:`BodyTooLarge` at the first byte too many, so
    nothing larger is ever held in memory, parsed or stored.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"])
        declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            from api.errors import error_response

            exc = BodyTooLarge(limit)
            await error_response(Request(scope), exc.status_code, exc.detail)(scope, receive, send)
            return
        read = 0

        async def counted() -> Message:
            nonlocal read
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


class Deadline:
    """Answers 503 with Retry-After when a request has had no answer ``request_timeout_seconds`` after its last
    body bytes arrived, so that no client waits on a database that hangs without failing.

    The work goes on in its thread (it cannot be stopped) and its answer,
    when it comes, is dropped: a submission it stores after all is found
    when the phone sends it again, and answered "stored before". An answer
    that has begun (a long download) is never cut.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        timeout = get_settings().request_timeout_seconds if scope["type"] == "http" else 0
        if not timeout:
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        last_bytes = loop.time()
        started = given_up = False

        async def timed_receive() -> Message:
            nonlocal last_bytes
            message = await receive()
            last_bytes = loop.time()  # a slow upload is not a hang
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if given_up:
                return  # the client has its 503 already
            started = started or message["type"] == "http.response.start"
            await send(message)

        # One timer per request, moved on while the body arrives (no task per request: the work runs inline).
        def check() -> None:
            nonlocal timer, given_up
            left = last_bytes + timeout - loop.time()
            if started:
                timer = None
            elif left > 0:
                timer = loop.call_later(left, check)
            else:
                given_up = True  # from now on the work's own answer is dropped
                answer = loop.create_task(_unavailable(scope, receive, send))
                _GIVEN_UP.add(answer)
                answer.add_done_callback(_GIVEN_UP.discard)

        timer = loop.call_later(timeout, check)
        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception as exc:
            if not given_up:
                raise
            errors_log.warning("after its deadline, %s %s failed: %r", scope["method"], route_template(scope), exc)
        finally:
            if timer is not None:
                timer.cancel()


# The 503 answers being sent (a task needs a reference until it ends).
_GIVEN_UP: set[asyncio.Task] = set()


async def _unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    from api.errors import error_response
    from geodata.db import unavailable

    exc = unavailable()
    errors_log.warning("no answer within %.0f s to %s %s: answered 503", get_settings().request_timeout_seconds,
                       scope["method"], route_template(scope))
    await error_response(Request(scope), 503, str(exc), {"Retry-After": str(exc.retry_after)})(scope, receive, send)
