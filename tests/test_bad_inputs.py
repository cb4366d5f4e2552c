"""The catalogue of bad inputs (tests/bad_inputs/cases.toml): each case sent as a real client sends it.

HTTP cases go to the app served by uvicorn, over one keep-alive connection,
so that an answer which broke the connection would fail the next request;
CSV cases run ``labour-atlas import surveys``. Every case counts the survey
records and quarantine entries before and after.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app as cli_app
from tests.payloads import NOW, basic

CATALOGUE = Path(__file__).parent / "bad_inputs"
CASES = tomllib.loads((CATALOGUE / "cases.toml").read_text(encoding="utf-8"))["case"]
ROUTES = {"api": "/api/v1/submissions", "batch": "/api/v1/submissions/batch", "openrosa": "/openrosa/submission"}
BOUNDARY = "----labour-atlas-test-boundary"


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


def counts(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return conn.execute(text("SELECT (SELECT count(*) FROM survey_record), (SELECT count(*) FROM submission_quarantine)")).one()


@pytest.fixture(scope="module")
def http(live_server_module, accounts) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server_module, timeout=60) as c:
        yield c


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input(case, request, seeded, commune, accounts, tmp_path):
    body = GENERATORS[case["generate"]]() if "generate" in case else filled((CATALOGUE / case["file"]).read_bytes(), commune)
    before = counts(seeded)
    if case["channel"] == "csv":
        path = tmp_path / case.get("file", "generated.csv")
        path.write_bytes(body)
        result = CliRunner().invoke(cli_app, ["import", "surveys", str(path)])
        status, said = result.exit_code, result.output
        assert "Traceback" not in said
    else:
        http: httpx.Client = request.getfixturevalue("http")
        if case["channel"] == "openrosa":
            u = accounts.user("surveyor", ("42",))
            headers = {**basic(u.name, u.password), "X-OpenRosa-Version": "1.0",
                       "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
            body = multipart(body) if case.get("generate") != "big_openrosa" else multipart(b"<x/>", body)
        else:
            headers = {**accounts.headers("officer"), "Content-Type": "application/json"}
        content = iter([body[i:i + 65536] for i in range(0, len(body), 65536)]) if case.get("chunked") else body
        r = http.post(ROUTES[case["channel"]], content=content, headers=headers)
        status, said = r.status_code, r.text
        if case["channel"] == "openrosa":
            assert r.headers["content-type"].startswith("text/xml") and "<OpenRosaResponse" in said
        else:
            assert r.headers["content-type"].startswith("application/json")
            answer = r.json()
            assert "detail" in answer
            # "field: message", as a reader of the answer sees it.
            said += "".join(f"\n{e['field']}: {e['message']}" for e in answer.get("errors") or ())
        assert "Traceback" not in said
        # The connection (or a new one) still serves.
        assert http.get("/health").status_code == 200
    after = counts(seeded)
    assert status == case["status"], said
    assert case["says"] in said
    assert after[0] - before[0] == case["stored"], "survey records added"
    assert after[1] - before[1] == case["quarantined"], "quarantine entries added"
