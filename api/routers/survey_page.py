"""The survey web form: the page, its form definition as JSON, and its service worker.

The page (``api/templates/survey.html`` + ``api/static/survey/``) builds the
form from ``/survey/form.json`` (:func:`survey.webform.webform_spec`), keeps
unsent forms in the phone's storage and sends them to ``POST
/api/v1/submissions`` when there is signal. The service worker keeps the page,
its script and style and the form definition so that the form opens offline.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from api.access import PUBLIC
from api.caching import conditional
from geodata.settings import get_settings
from survey.definition import FORM
from survey.webform import webform_spec

router = APIRouter(include_in_schema=False, dependencies=[Depends(PUBLIC)])
API = Path(__file__).parent.parent
templates = Jinja2Templates(directory=API / "templates")
ASSETS = ("static/survey/survey.js", "static/survey/survey.css")
SCOPE = "/survey"
class WebForm(BaseModel):
    """The form definition as the web page reads it (see :func:`survey.webform.webform_spec`), with the message
    catalogue its checks and the server's rejections are written from (:mod:`survey.messages`)."""

    form_id: str
    version: str
    title: dict[str, str]
    published: str
    kinds: list[dict[str, Any]]
    fields: list[dict[str, Any]]
    rules: dict[str, Any]
    messages: dict[str, dict[str, str]]


@lru_cache(maxsize=4)
def _form_json(gps_accuracy_limit_m: float) -> bytes:
    spec = webform_spec(FORM)
    spec["rules"]["gps_accuracy_limit_m"] = gps_accuracy_limit_m
    return json.dumps(WebForm.model_validate(spec).model_dump(), ensure_ascii=False, separators=(",", ":")).encode()


def form_json() -> bytes:
    """The form as the page reads it (plus this server's GPS accuracy limit)."""
    return _form_json(get_settings().gps_accuracy_limit_m)


@lru_cache(maxsize=4)
def _asset_version(form: bytes) -> str:
    h = hashlib.sha256(form)
    for rel in ("templates/survey.html", *ASSETS):
        h.update((API / rel).read_bytes())
    return h.hexdigest()[:12]


def asset_version() -> str:
    """Changes whenever the page, its assets or the form (with the settings it carries) change: the versioned
    URLs of the assets, the service worker's cache, and the page's check that its stored form is current."""
    return _asset_version(form_json())


def _lang(request: Request) -> str:
    return "en" if request.query_params.get("lang") == "en" else "vi"


@router.get("/survey", response_class=HTMLResponse)
def survey_page(request: Request) -> Response:
    """The survey form (Vietnamese; ``?lang=en`` for English)."""
    lang = _lang(request)
    spec = webform_spec(FORM)
    page = templates.get_template("survey.html").render(
        {"request": request, "lang": lang, "title": spec["title"][lang], "v": asset_version(), "scope": SCOPE})
    return conditional(request, page.encode(), "text/html; charset=utf-8")


@router.get("/survey/form.json", response_model=WebForm)
def survey_form(request: Request) -> Response:
    """The form as JSON, generated from the form definition (plus this server's GPS accuracy limit and the
    message catalogue); 304 when the page already has it."""
    return conditional(request, form_json(), "application/json")


def _favicon_png() -> bytes:
    # A 16 x 16 square in the page's colour, written here rather than shipped as a binary file.
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x1f\x4e\x9a" * 16 for _ in range(16))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


FAVICON = _favicon_png()


@router.get("/favicon.ico", response_class=Response)
def favicon() -> Response:
    """The site's icon (browsers ask for it on every first visit)."""
    return Response(FAVICON, media_type="image/png", headers={"Cache-Control": "public, max-age=604800"})


# The service worker. The page, its versioned script and style and the form
# were just loaded: installing takes them from the browser's HTTP cache (the
# page and the form revalidated with their ETags, 304), not downloaded again.
# Then the stored copy answers at once (a warm open waits for no network) and
# the network only refreshes it in the background; a new version of anything
# is a new service worker with a new cache, which takes over.
SERVICE_WORKER = """\
'use strict';
const CACHE = 'labour-survey-' + %(version)s;
const PRECACHE = %(precache)s;

self.addEventListener('install', event => {
  event.waitUntil(caches.open(CACHE).then(c => c.addAll(PRECACHE)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', event => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key.startsWith('labour-survey-') && key !== CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

function handled(url) {
  return url.origin === self.location.origin && (url.pathname === '/survey' || url.pathname === '/survey/form.json'
    || url.pathname.startsWith('/static/survey/'));
}

function refresh(cache, request) {
  return fetch(request).then(response => {
    if (response.ok) return cache.put(request, response.clone()).then(() => response);
    return response;
  });
}

async function answer(event) {
  const request = event.request;
  const url = new URL(request.url);
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request) || (request.mode === 'navigate' ? await cache.match(url.pathname + url.search) : undefined);
  if (!cached) return refresh(cache, request).catch(() => cache.match('/survey').then(r => r || Response.error()));
  if (!url.searchParams.has('v')) event.waitUntil(refresh(cache, request).catch(() => null));  // versioned: never changes
  return cached;
}

self.addEventListener('fetch', event => {
  if (event.request.method !== 'GET') return;
  if (handled(new URL(event.request.url))) event.respondWith(answer(event));
});
"""


@router.get("/survey/sw.js", response_class=Response)
def service_worker(request: Request) -> Response:
    """The service worker of the survey form (scope ``/survey``)."""
    v = asset_version()
    precache = [SCOPE, f"{SCOPE}?lang=en", f"{SCOPE}/form.json", *(f"/{a}?v={v}" for a in ASSETS)]
    body = SERVICE_WORKER % {"version": json.dumps(v), "precache": json.dumps(precache)}
    return conditional(request, body.encode(), "text/javascript", {"Service-Worker-Allowed": SCOPE})
