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
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from api.access import PUBLIC
from geodata.settings import get_settings
from survey.definition import FORM
from survey.webform import webform_spec

router = APIRouter(include_in_schema=False, dependencies=[Depends(PUBLIC)])
API = Path(__file__).parent.parent
templates = Jinja2Templates(directory=API / "templates")
ASSETS = ("static/survey/survey.js", "static/survey/survey.css")
SCOPE = "/survey"


def asset_version() -> str:
    """Changes whenever the page, its assets or the form change (cache busting, service worker update)."""
    h = hashlib.sha256(FORM.version.encode())
    for rel in ("templates/survey.html", *ASSETS):
        h.update((API / rel).read_bytes())
    return h.hexdigest()[:12]


def _lang(request: Request) -> str:
    return "en" if request.query_params.get("lang") == "en" else "vi"


@router.get("/survey", response_class=HTMLResponse)
def survey_page(request: Request) -> HTMLResponse:
    """The survey form (Vietnamese; ``?lang=en`` for English)."""
    lang = _lang(request)
    spec = webform_spec(FORM)
    response = templates.TemplateResponse(
        request, "survey.html", {"lang": lang, "title": spec["title"][lang], "v": asset_version(), "scope": SCOPE}
    )
    response.headers["Cache-Control"] = "no-cache"
    return response


class WebForm(BaseModel):
    """The form definition as the web page reads it (see :func:`survey.webform.webform_spec`)."""

    form_id: str
    version: str
    title: dict[str, str]
    published: str
    kinds: list[dict[str, Any]]
    fields: list[dict[str, Any]]
    rules: dict[str, Any]


@router.get("/survey/form.json", response_model=WebForm)
def survey_form() -> JSONResponse:
    """The form as JSON, generated from the form definition (plus this server's GPS accuracy limit)."""
    spec = webform_spec(FORM)
    spec["rules"]["gps_accuracy_limit_m"] = get_settings().gps_accuracy_limit_m
    return JSONResponse(WebForm.model_validate(spec).model_dump(), headers={"Cache-Control": "no-cache"})


# The service worker. Network first for the page and the form (so a changed
# form arrives as soon as there is signal), but after TIMEOUT_MS on a weak
# signal the stored copy is shown and the network answer only refreshes it.
SERVICE_WORKER = """\
'use strict';
const CACHE = 'labour-survey-' + %(version)s;
const PRECACHE = %(precache)s;
const TIMEOUT_MS = 4000;

self.addEventListener('install', event => {
  event.waitUntil(caches.open(CACHE).then(c => c.addAll(PRECACHE.map(u => new Request(u, {cache: 'reload'})))).then(() => self.skipWaiting()));
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

function networkFirst(event) {
  const request = event.request;
  let stored;
  const saved = new Promise(resolve => { stored = resolve; });
  event.waitUntil(saved);  // the fresh copy is kept even after the stored one was shown
  const network = fetch(request).then(response => {
    if (response.ok) {
      const copy = response.clone();
      caches.open(CACHE).then(c => c.put(request, copy)).then(stored, stored);
    } else stored();
    return response;
  }, error => { stored(); throw error; });
  return (async () => {
    const cache = await caches.open(CACHE);
    const cached = await cache.match(request) || (request.mode === 'navigate' ? await cache.match('/survey') : undefined);
    if (!cached) return network;
    const late = new Promise(resolve => setTimeout(() => resolve(cached), TIMEOUT_MS));
    return Promise.race([network.then(r => r.ok ? r : cached, () => cached), late]);
  })();
}

self.addEventListener('fetch', event => {
  if (event.request.method !== 'GET') return;
  const url = new URL(event.request.url);
  if (handled(url)) event.respondWith(networkFirst(event));
});
"""


@router.get("/survey/sw.js", response_class=Response)
def service_worker() -> Response:
    """The service worker of the survey form (scope ``/survey``)."""
    v = asset_version()
    precache = [SCOPE, f"{SCOPE}?lang=en", f"{SCOPE}/form.json", *(f"/{a}?v={v}" for a in ASSETS)]
    body = SERVICE_WORKER % {"version": json.dumps(v), "precache": json.dumps(precache)}
    return Response(
        body,
        media_type="text/javascript",
        headers={"Service-Worker-Allowed": SCOPE, "Cache-Control": "no-cache"},
    )
