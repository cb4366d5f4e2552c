"""HTTP caching: ETags and 304 answers, and how long a client may keep an answer.

A phone on a weak signal should download a thing once: what never changes
(versioned URLs) is kept a year; what may change is asked for again with its
ETag and answered 304 (a few hundred bytes) when unchanged.
"""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import Response

IMMUTABLE = "public, max-age=31536000, immutable"
"""Versioned URLs (``?v=``) never change: kept a year, never asked for again."""
REVALIDATE = "no-cache"
"""Kept, but asked for again each time (answered 304 when unchanged)."""


def etag_of(body: bytes) -> str:
    """A strong ETag of a body.

    >>> etag_of(b"abc")
    '"ba7816bf8f01cfea414140de"'
    """
    return '"' + hashlib.sha256(body).hexdigest()[:24] + '"'


def not_modified(request: Request, etag: str) -> bool:
    """Whether the client's ``If-None-Match`` names ``etag`` (weak or strong) or is ``*``."""
    wanted = request.headers.get("if-none-match", "")
    return wanted.strip() == "*" or any(t.strip().removeprefix("W/") == etag for t in wanted.split(","))


def conditional(request: Request, body: bytes, media_type: str, headers: dict[str, str] | None = None,
                cache_control: str = REVALIDATE) -> Response:
    """``body`` with its ETag, or 304 when the client already has it."""
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": cache_control, **(headers or {})}
    if not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)
