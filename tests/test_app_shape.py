"""The app's seams: one error shape, request logs without personal data, settings that refuse a weak secret,
response models on every JSON route, roles defined once, imports flowing one way."""

from __future__ import annotations

import ast
import logging
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from fastapi.datastructures import DefaultPlaceholder
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import text

from api.main import create_app
from geodata.roles import Role
from geodata.settings import MissingSecret, SettingsError
from tests.payloads import aspirant

ROOT = Path(__file__).resolve().parent.parent


def assert_error_shape(body: dict) -> None:
    """FastAPI's two shapes: a message, or a list of {loc, msg, type}."""
    assert set(body) >= {"detail"}
    detail = body["detail"]
    if isinstance(detail, list):
        assert detail, body
        for item in detail:
            assert {"loc", "msg", "type"} <= set(item), body
            assert isinstance(item["loc"], list) and isinstance(item["msg"], str), body
    else:
        assert isinstance(detail, str) and detail, body


def test_validation_not_found_forbidden_and_refused_answers_have_one_shape(client, accounts):
    invalid = client.get("/api/v1/units", params={"limit": 0})
    assert invalid.status_code == 422
    assert_error_shape(invalid.json())
    # A domain check (not pydantic's) answers in the same list shape, naming the parameter.
    no_district = client.get("/api/v1/units", params={"structure": "2025", "level": "district"})
    assert no_district.status_code == 422
    assert_error_shape(no_district.json())
    assert no_district.json()["detail"][0]["loc"] == ["query", "level"]
    assert "no district level" in no_district.json()["detail"][0]["msg"]
    missing = client.get("/api/v1/units/99999", params={"structure": "2025"})
    assert missing.status_code == 404
    assert_error_shape(missing.json())
    assert isinstance(missing.json()["detail"], str)
    forbidden = client.get("/api/v1/submissions", headers=accounts.headers("leader"))
    assert forbidden.status_code == 403
    assert_error_shape(forbidden.json())
    no_token = client.get("/api/v1/auth/me", headers={"Authorization": ""})
    assert no_token.status_code == 401 and no_token.headers["www-authenticate"].startswith("Bearer")
    assert_error_shape(no_token.json())
    for r in (invalid, no_district, missing, forbidden, no_token):
        assert len(r.headers["x-request-id"]) >= 8


def test_an_unexpected_exception_is_a_500_with_a_request_id_and_no_traceback(seeded, caplog):
    app = create_app()

    @app.get("/boom")
    def boom() -> dict:
        raise RuntimeError("secret internal state: password=hunter2")

    caplog.set_level(logging.INFO, logger="labour_atlas")
    with TestClient(app) as c:
        r = c.get("/boom")
        again = c.get("/health")  # the app keeps serving
    assert r.status_code == 500
    body = r.json()
    assert_error_shape(body)
    rid = body["request_id"]
    assert rid in body["detail"] and r.headers["x-request-id"] == rid
    assert "Traceback" not in r.text and "RuntimeError" not in r.text and "hunter2" not in r.text
    assert again.status_code == 200
    # The server's log has the traceback, findable by the request id.
    errors = [rec for rec in caplog.records if rec.name == "labour_atlas.errors"]
    assert errors and rid in errors[0].getMessage() and errors[0].exc_info is not None
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "labour_atlas.requests"]
    assert any(f"request_id={rid}" in m and "status=500" in m and "route=/boom" in m for m in lines)


def test_request_log_lines_carry_no_personal_field_and_no_token(client, commune, accounts, caplog):
    caplog.set_level(logging.INFO, logger="labour_atlas")
    person = aspirant(commune, full_name="Trần Thị Bích Ngọc", national_id="038199004321", phone="0987654321")
    r = client.post("/api/v1/submissions", json=person)
    assert r.status_code == 201, r.text
    u = accounts.user("officer")
    signed_in = client.post("/api/v1/auth/token", data={"username": u.name, "password": u.password})
    assert signed_in.status_code == 200
    tokens = signed_in.json()
    read = client.get(f"/api/v1/submissions/{person['instance_id']}", params={"purpose": "kiểm tra phiếu"},
                      headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert read.status_code == 200 and read.json()["full_name"] == "Trần Thị Bích Ngọc"
    lines = [rec.getMessage() for rec in caplog.records if rec.name.startswith("labour_atlas")]
    requests = [m for m in lines if m.startswith("request_id=")]
    assert len(requests) >= 3
    assert any("method=POST route=/api/v1/submissions status=201 duration_ms=" in m for m in requests)
    # The route template is logged, not the URL with its id or its purpose.
    assert any("route=/api/v1/submissions/{instance_id} status=200" in m for m in requests)
    everything = "\n".join(lines)
    for secret in ("Trần Thị Bích Ngọc", "Ngọc", "038199004321", "0987654321", person["instance_id"], u.password,
                   tokens["access_token"], tokens["refresh_token"], "kiểm tra", str(commune["lat"])):
        assert secret not in everything, secret


def test_the_app_refuses_to_start_with_a_weak_or_missing_secret(environment, seeded):
    environment(LABOUR_ATLAS_SECRET_KEY="changeme", LABOUR_ATLAS_DEMO=None)
    with pytest.raises(SettingsError, match="well-known default"):
        create_app()
    environment(LABOUR_ATLAS_SECRET_KEY="short-but-not-a-default")
    with pytest.raises(SettingsError, match="at least 32"):
        create_app()
    environment(LABOUR_ATLAS_SECRET_KEY=None)
    with pytest.raises(MissingSecret):
        create_app()
    environment(LABOUR_ATLAS_SECRET_KEY="changeme", LABOUR_ATLAS_DEMO="1")
    assert create_app() is not None  # the demo accepts it (and says so when serving)


@pytest.mark.parametrize("secret", ["changeme", "tiny", None])
def test_uvicorn_cannot_import_the_app_with_a_weak_secret(secret, tmp_path):
    """``uvicorn api.main:app`` imports the module: the settings refuse there, whatever the entry point."""
    env = {k: v for k, v in os.environ.items() if k not in ("LABOUR_ATLAS_SECRET_KEY", "LABOUR_ATLAS_DEMO")}
    if secret is not None:
        env["LABOUR_ATLAS_SECRET_KEY"] = secret
    r = subprocess.run([sys.executable, "-c", "import api.main"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "LABOUR_ATLAS_SECRET_KEY" in r.stderr


def declared_model(annotation) -> bool:
    """A pydantic model, or a list of one: not None, not a bare ``dict`` inferred from ``-> dict``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return typing.get_origin(annotation) is list and declared_model(typing.get_args(annotation)[0])


def test_every_json_route_declares_its_response_model():
    """The fields a caller can receive are a declared whitelist, visible in the OpenAPI document."""
    app = create_app()
    undeclared = []
    routes = [c.original_route for c in iter_route_contexts(app.routes) if isinstance(c.original_route, APIRoute)]
    assert len(routes) > 30
    for route in routes:
        response_class = route.response_class
        if isinstance(response_class, DefaultPlaceholder):
            response_class = response_class.value
        answers_json = issubclass(response_class, JSONResponse)
        if answers_json and route.status_code != 204 and not declared_model(route.response_model):
            undeclared.append(f"{sorted(route.methods)} {route.path}")
    assert undeclared == []
    schema = app.openapi()
    record = schema["components"]["schemas"]["SurveyRecord"]["properties"]
    assert "full_name" in record and "id_hash" not in record and "national_id" not in record
    counts = schema["components"]["schemas"]["UnitCounts"]["properties"]
    assert "full_name" not in counts and set(counts) >= {"aspirant", "returnee", "departure", "all"}


def test_roles_are_defined_once_and_the_database_agrees(seeded):
    """A new role is one enum value and one migration; this test fails until both exist."""
    with seeded.connect() as conn:
        check = conn.execute(text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'app_user'::regclass AND contype = 'c' "
            "AND pg_get_constraintdef(oid) LIKE '%role%'")).scalar_one()
    assert set(re.findall(r"'([a-z_]+)'", check)) == {r.value for r in Role}


LAYERS = {
    # package: the packages it may import (DESIGN.md, "Layout": imports flow one way)
    "geodata": set(),
    "survey": {"geodata"},
    "maps": {"geodata", "survey"},
    "etl": {"geodata", "survey", "maps"},
    "api": {"geodata", "survey", "maps", "etl"},
    "cli": {"geodata", "survey", "maps", "etl", "api"},
}


def test_imports_flow_one_way():
    wrong = []
    for package, allowed in LAYERS.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
                for name in names:
                    top = name.split(".")[0]
                    if top in LAYERS and top != package and top not in allowed:
                        wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert wrong == []


def test_suppressed_aggregates_come_only_from_releases():
    """One mechanism for every aggregate: only maps.releases suppresses tables and reads released cells.

    Routes, layers, tiles and exports get aggregates from maps.releases.aggregate_view; none may run
    the suppression itself (it would serve a live, unaudited table) or read the true counts a release keeps.
    """
    suppressing = {"protect", "hide_totals_of_small_parts", "primary_status", "_ComplementChooser"}
    wrong = []
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            # geodata/distribution.py names every table to place it on a cluster, and reads none.
            if rel in ("maps/releases.py", "maps/suppression.py", "maps/disclosure_audit.py", "geodata/distribution.py") \
                    or "/migrations/" in rel:
                continue
            source = path.read_text(encoding="utf-8")
            if "aggregate_release_cell" in source:
                wrong.append(f"{rel} reads aggregate_release_cell")
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.ImportFrom) and node.module == "maps.suppression":
                    wrong += [f"{rel} imports {a.name}" for a in node.names if a.name in suppressing]
    assert wrong == []
    routes = (ROOT / "api" / "routers" / "aggregates.py").read_text(encoding="utf-8")
    assert "aggregate_view(" in routes
