"""Fuzzing the API from its own OpenAPI document (Schemathesis), once per role, in-process.

Every operation the app documents is called with requests Schemathesis
generates from its declared parameters and bodies (valid ones, and invalid
ones), as a signed-in user of each role. For every answer:

- no 5xx;
- the status is one the operation declares, the content type is the declared
  one, and a JSON body matches the declared schema of that status;
- for a police analyst or a leader, every JSON object in the answer holds only
  fields its response model declares (``additionalProperties`` read strictly:
  a free-form object such as ``dict[str, Any]`` may hold nothing for them),
  so a personal field cannot reach them through an under-declared model.

Binary answers (vector tiles, the XLSForm) and HTML pages are checked for
their status and content type only: their bodies have no JSON schema.

The run is bounded (``EXAMPLES`` per operation and generation mode, fixed
seed, no deadline) so that it stays within a few minutes on two cores. It
runs against a private copy of the seeded database: generated requests
create users, erase persons and review records.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance
from sqlalchemy import text

from api.main import create_app
from geodata import db
from geodata.roles import Role
from survey.ingest import Incoming, ingest
from survey.store import Sender
from tests.payloads import aspirant

# Examples per operation and generation mode (positive and negative): 2 x 3 per role and operation in
# the suite; FUZZ_EXAMPLES=50 for a longer hunt by hand.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))
# Roles whose answers may hold only declared fields (DESIGN.md: aggregates, never personal fields).
STRICT_ROLES = (Role.police_analyst, Role.leader)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

APP = create_app()
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@dataclass
class Findings:
    """Distinct problems, each with one request that shows it."""

    seen: dict[str, str] = field(default_factory=dict)
    calls: int = 0
    no_negative: set[str] = field(default_factory=set)

    def add(self, key: str, example: str) -> None:
        self.seen.setdefault(key, example)


# -- the strict walk: every key of the answer is declared by the model ----------------------------
def resolve(schema: dict, components: dict) -> dict:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def undeclared(value: object, schema: dict, components: dict, at: str = "$") -> list[str]:
    """The paths of ``value``'s fields that ``schema`` does not declare (``[]`` when all are declared).

    >>> undeclared({"a": 1, "b": {"c": 2}}, {"type": "object", "properties": {"a": {}, "b": {"type": "object"}}}, {})
    ['$.b.c']
    >>> undeclared([{"a": 1}], {"type": "array", "items": {"type": "object", "properties": {"a": {}}}}, {})
    []
    """
    schema = resolve(schema, components)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        # The value is declared when one alternative declares all of it.
        found = [undeclared(value, s, components, at) for s in alternatives]
        return min(found, key=len)
    if "allOf" in schema:
        merged: dict = {"properties": {}}
        for part in schema["allOf"]:
            part = resolve(part, components)
            merged["properties"].update(part.get("properties", {}))
            if "additionalProperties" in part:
                merged["additionalProperties"] = part["additionalProperties"]
        return undeclared(value, merged, components, at)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        out = []
        for key, item in value.items():
            if key in properties:
                out += undeclared(item, properties[key], components, f"{at}.{key}")
            elif isinstance(extra, dict) and extra:
                out += undeclared(item, extra, components, f"{at}.{key}")
            else:
                out.append(f"{at}.{key}")
        return out
    if isinstance(value, list):
        items = schema.get("items") or {}
        if schema.get("prefixItems"):
            return [p for i, v in enumerate(value) for p in undeclared(v, schema["prefixItems"][min(i, len(schema["prefixItems"]) - 1)],
                                                                         components, f"{at}[{i}]")]
        return [p for i, v in enumerate(value) for p in undeclared(v, items, components, f"{at}[{i}]")]
    return []


def declared_schema(operation, status: int) -> dict | None:
    responses = operation.definition.raw.get("responses", {})
    answer = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default") or {}
    return (answer.get("content") or {}).get("application/json", {}).get("schema")


# -- the world -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fuzz_world(server, seeded_url, accounts, commune) -> Iterator[dict[Role, dict[str, str]]]:
    """A private copy of the seeded database with records and incidents in province 42, and one user per role."""
    users = {role: accounts.user(role.value, () if role is Role.admin else ("42",)) for role in Role}
    if db.current_url() == db.normalise_url(seeded_url):
        db.close_database()
    url = server.create_database(template=seeded_url)
    engine = db.use_database(url)
    with engine.begin() as conn:
        for i in range(3):
            payload = aspirant(commune, national_id=f"042{secrets.randbelow(10**9):09d}", full_name=f"Phan Thị Mờ {i}")
            ingest(conn, [Incoming(json.dumps(payload, ensure_ascii=False), payload)], source="test",
                   sender=Sender(users[Role.surveyor].name))
        bad = aspirant(commune, sex="unknown")
        ingest(conn, [Incoming(json.dumps(bad, ensure_ascii=False), bad)], source="test", sender=Sender(users[Role.surveyor].name))
        conn.execute(text("""
            INSERT INTO incident (province_code, incident_id, type, occurred_on, geom, structure, commune_code, status, source)
            SELECT '42', 'fuzz-' || row_number() OVER (ORDER BY code), 'illegal_brokerage', CURRENT_DATE - 3,
                   ST_Centroid(geom), '2025', code, 'reported', 'fuzzing (synthetic)'
            FROM admin_unit WHERE structure = '2025' AND parent_code = '42' AND geom IS NOT NULL ORDER BY code LIMIT 40"""))
        # A target with notes (the file's other columns): a free-form object that strict roles read.
        conn.execute(text("""
            INSERT INTO target (structure, unit_code, year, indicator, kind, value, notes, source, updated_by)
            VALUES ('2025', '42', EXTRACT(YEAR FROM CURRENT_DATE), 'departures', 'absolute', 300,
                    '{"source_document": "Kế hoạch 12/KH-UBND", "note": "fuzzing"}', 'fuzzing', 'fuzzing')
            ON CONFLICT DO NOTHING"""))
    from api.security.tokens import create_access_token

    headers = {}
    for role, u in users.items():
        token, _ = create_access_token(u.id, role.value, minutes=240)
        headers[role] = {"Authorization": f"Bearer {token}", "X-Purpose": "fuzzing"}
    yield headers
    server.drop_database(url)
    db.use_database(seeded_url)


def fuzz_operation(operation, headers: dict[str, str], strict: bool, found: Findings) -> None:
    components = SCHEMA.raw_schema.get("components", {}).get("schemas", {})
    label = f"{operation.method.upper()} {operation.path}"
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case) -> None:
            # The role's credentials win over any generated Authorization header.
            case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in ("authorization", "x-purpose")}
            found.calls += 1
            try:
                response = case.call(headers=headers)
            except Exception as exc:  # the app raised through the transport: a 500 by another name
                found.add(f"{label}: raised {type(exc).__name__}: {exc}"[:300], case.as_curl_command())
                return
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except FailureGroup as group:
                for failure in group.exceptions:
                    said = " | ".join(str(failure.message).strip().splitlines()[:3])
                    found.add(f"{label} {response.status_code}: {failure.title}: {said}"[:400],
                              f"{case.as_curl_command()}\n{response.text[:300]}")
            if strict and response.headers.get("content-type", [""])[0].startswith("application/json") and response.content:
                schema = declared_schema(operation, response.status_code)
                if schema is None:
                    found.add(f"{label} {response.status_code}: no JSON schema declared", case.as_curl_command())
                else:
                    extra = undeclared(response.json(), schema, components)
                    if extra:
                        found.add(f"{label} {response.status_code}: undeclared fields {sorted(set(extra))[:5]}",
                                  f"{case.as_curl_command()}\n{response.text[:300]}")

        try:
            run()
        except Unsatisfiable:
            # Nothing Schemathesis can make invalid (no parameters, or only free strings): no negative cases.
            if mode is GenerationMode.POSITIVE:
                raise
            found.no_negative.add(label)


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
def test_fuzz_every_operation(fuzz_world, role):
    """No 5xx, every answer conforms to the OpenAPI document, strict roles receive only declared fields."""
    found = Findings()
    for operation in OPERATIONS:
        fuzz_operation(operation, fuzz_world[role], role in STRICT_ROLES, found)
    assert found.calls >= len(OPERATIONS) * 2
    problems = sorted(found.seen)
    assert problems == [], "\n".join(problems) + "\n\nExamples:\n" + "\n\n".join(f"{k}\n    {found.seen[k]}" for k in problems[:30])


# -- pages outside the OpenAPI document ------------------------------------------------------------
# The HTML pages, the map frames and the web form's files are not API operations (include_in_schema=False),
# so Schemathesis does not reach them: each is called with hostile values of the parameters they share with
# the layers (dates that do not exist, a year 0, levels and numbers out of range, text where a code goes).
HOSTILE = [{}, {"to": "0001-01-01"}, {"to": "2024-02-29"}, {"from": "9999-12-31", "to": "0001-01-01"}, {"year": "0"},
           {"level": "hamlet"}, {"parent": "42'; DROP TABLE admin_unit; --"}, {"permutations": "-1"}, {"half": "2025-H3"},
           {"lang": "\u0000"}, {"classes": "100000000000000000000"}, {"view": "hexagons", "hexagon_m": "1"}]


@pytest.mark.parametrize("role", [Role.officer, Role.leader, Role.police_analyst], ids=lambda r: r.value)
def test_pages_outside_the_openapi_document_never_answer_5xx(fuzz_world, role):
    from fastapi.testclient import TestClient

    documented = {(m.upper(), p) for p, ops in SCHEMA.raw_schema["paths"].items() for m in ops}
    from api.access import app_route_rules

    pages = sorted({r.path for r in app_route_rules(APP) if r.method == "GET" and ("GET", r.path) not in documented})
    assert "/maps/hotspots/frame" in pages
    failures = []
    with TestClient(APP) as client:
        for path in pages:
            for params in HOSTILE:
                r = client.get(path, params=params, headers=fuzz_world[role])
                if r.status_code >= 500 or (r.status_code >= 400 and not r.headers["content-type"].startswith("application/json")):
                    failures.append(f"{path} {params}: {r.status_code} {r.text[:200]}")
    assert failures == []
