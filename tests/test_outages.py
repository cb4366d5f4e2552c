"""Database outages: the server answers 503 with Retry-After, never a 500 or a hang, and recovers by itself.

These tests stop and start a PostgreSQL cluster of their own (made here, in a
temporary folder): stopping it affects no other test and never the
machine's own server. The app is served by uvicorn in this process and is
never restarted: after the outage the same server must answer again.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import text

from api.deps import DbConn
from geodata import db
from tests.payloads import aspirant, basic, instance_xml

# Short timeouts, so that an outage is told quickly and a hang would fail the test.
CONNECT_TIMEOUT, STATEMENT_TIMEOUT, RETRY_AFTER = 2, 3, 2
# Any request must be answered well within this (a hang fails the request, hence the test).
ANSWER_WITHIN = CONNECT_TIMEOUT + STATEMENT_TIMEOUT + 10
RESPONSE = "{http://openrosa.org/http/response}"


class Cluster:
    """The private cluster of this module: stop and start it at will (same port, same URL)."""

    def __init__(self) -> None:
        from geodata.embedded import EmbeddedPostgres

        self.folder = Path(tempfile.mkdtemp(prefix="labour-atlas-outage-"))
        self.folder.chmod(0o755)  # as root, the cluster runs as 'postgres'
        self.pg = EmbeddedPostgres(self.folder / "pgdata", durable=False)
        self.url = self.pg.start()

    def stop(self) -> None:
        self.pg.stop()

    def start(self) -> None:
        assert self.pg.start() == self.url

    def postmaster(self) -> int:
        return int((self.pg.folder / "postmaster.pid").read_text().split()[0])

    def plain_url(self) -> str:
        return self.url.replace("+psycopg", "")

    def count(self, sql: str, **params) -> int:
        with psycopg.connect(self.plain_url(), connect_timeout=10) as conn:
            return conn.execute(sql, params).fetchone()[0]

    def close(self) -> None:
        self.pg.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A private cluster, migrated and loaded like the demo (reference data, the 2025 communes)."""
    from etl.reference import seed_reference
    from geodata import migrate
    from geodata.approximate import approximate_communes
    from geodata.structures import Structure
    from tests.helpers import using

    c = Cluster()
    try:
        with using(c.url) as engine:
            migrate.upgrade()
            seed_reference()
            with engine.begin() as conn:
                approximate_communes(conn, Structure.v2025)
        db.close_database()
        yield c
    finally:
        db.close_database()
        c.close()


@pytest.fixture
def app_db(cluster: Cluster, environment, monkeypatch) -> Iterator[Cluster]:
    """The app's engine on the private cluster, with short timeouts; the cluster is running afterwards."""
    environment(LABOUR_ATLAS_DB_CONNECT_TIMEOUT_SECONDS=str(CONNECT_TIMEOUT),
                LABOUR_ATLAS_DB_STATEMENT_TIMEOUT_SECONDS=str(STATEMENT_TIMEOUT),
                LABOUR_ATLAS_RETRY_AFTER_SECONDS=str(RETRY_AFTER))
    # As the server: statements limited (a command-line test earlier in the session may have lifted the limit).
    monkeypatch.setattr(db, "_long_statements", False)
    db.close_database()
    db.use_database(cluster.url)
    try:
        yield cluster
    finally:
        if cluster.pg._running_port() is None:
            cluster.start()
        db.close_database()


@pytest.fixture
def served_app(app_db: Cluster) -> Iterator[str]:
    from tests.conftest import served

    with served() as base:
        yield base


def make_user(cluster: Cluster, role: str, scope=("all",)):
    from types import SimpleNamespace

    from api.security.accounts import create_user
    from api.security.tokens import create_access_token

    name, password = f"o-{role[:6]}-{uuid.uuid4().hex[:6]}", "correct horse battery staple"
    with db.get_engine().begin() as conn:
        uid = create_user(conn, name, password, role, list(scope), "2025")
    token, _ = create_access_token(uid, role, minutes=60)
    return SimpleNamespace(name=name, password=password, bearer={"Authorization": f"Bearer {token}"})


def a_commune(cluster: Cluster) -> dict:
    with psycopg.connect(cluster.plain_url()) as conn:
        code, lon, lat = conn.execute(
            """SELECT code, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM admin_unit
               WHERE structure = '2025' AND level = 'commune' AND parent_code = '42' AND geom IS NOT NULL
               ORDER BY code LIMIT 1""").fetchone()
    return {"code": code, "lon": lon, "lat": lat}


def records(cluster: Cluster, instance_id: str) -> int:
    return cluster.count("SELECT count(*) FROM survey_record WHERE instance_id = %(i)s::uuid", i=instance_id)


def assert_retry_later(r: httpx.Response) -> None:
    """503, Retry-After in seconds, and a JSON body that says so (no traceback, no host names)."""
    assert r.status_code == 503, (r.status_code, r.text[:300])
    assert r.headers["retry-after"] == str(RETRY_AFTER)
    body = r.json()
    assert set(body) == {"detail"} and "database is unavailable" in body["detail"]
    assert "127.0.0.1" not in r.text and "Traceback" not in r.text and "psycopg" not in r.text


def assert_openrosa_retry_later(r: httpx.Response) -> None:
    """What ODK Collect reads: 503 with Retry-After and its XML document (it keeps the form and says why)."""
    assert r.status_code == 503 and r.headers["retry-after"] == str(RETRY_AFTER)
    assert r.headers["content-type"].startswith("text/xml") and r.headers["x-openrosa-version"] == "1.0"
    message = ET.fromstring(r.content).find(f"{RESPONSE}message")
    assert message.get("nature") == "error" and "database is unavailable" in message.text


def odk_post(client: httpx.Client, base: str, xml: bytes, user) -> httpx.Response:
    files = [("xml_submission_file", ("submission.xml", xml, "text/xml"))]
    return client.post(base + "/openrosa/submission", files=files,
                       headers={"X-OpenRosa-Version": "1.0", **basic(user.name, user.password)})


# -- the API and OpenRosa across a stop and a start ------------------------------------------------


def test_outage_is_503_with_retry_after_and_the_server_recovers_without_a_restart(served_app, app_db):
    from tests.payloads import answers

    base, cluster = served_app, app_db
    officer, surveyor = make_user(cluster, "officer"), make_user(cluster, "surveyor")
    commune = a_commune(cluster)
    submission = aspirant(commune, full_name="Nguyễn Thị Mất Điện")
    odk = answers(commune, full_name="Trần Văn Chờ Mạng")
    odk_xml = instance_xml(odk)
    odk_id = odk["instanceID"].removeprefix("uuid:")
    with httpx.Client(timeout=ANSWER_WITHIN) as client:
        assert client.get(base + "/health").json()["down"] == []
        assert client.get(base + "/api/v1/units", params={"parent": "42"}, headers=officer.bearer).status_code == 200

        cluster.stop()
        health = client.get(base + "/health")
        assert health.status_code == 503 and health.headers["retry-after"] == str(RETRY_AFTER)
        body = health.json()
        assert body["status"] == "unavailable" and body["down"] == ["database"]
        assert body["dependencies"]["database"].startswith("unreachable: ")
        # Signed-in reads, a sign-in, a submission: all "try again later", none a 500.
        assert_retry_later(client.get(base + "/api/v1/units", params={"parent": "42"}, headers=officer.bearer))
        assert_retry_later(client.get(base + "/api/v1/auth/me", headers=officer.bearer))
        assert_retry_later(client.post(base + "/api/v1/auth/token",
                                       data={"username": officer.name, "password": officer.password}))
        for _ in range(3):  # the phone tries again; each time the same answer
            assert_retry_later(client.post(base + "/api/v1/submissions", json=submission, headers=surveyor.bearer))
        assert_retry_later(client.post(base + "/api/v1/submissions/batch", json=[submission], headers=surveyor.bearer))
        # What needs no database still works: the survey page opens, and its form, to keep saving offline.
        assert client.get(base + "/survey").status_code == 200
        assert client.get(base + "/survey/form.json").json()["fields"]
        # ODK Collect: the pre-flight and the submission (it keeps the form on a non-2xx answer).
        head = client.head(base + "/openrosa/submission", headers=basic(surveyor.name, surveyor.password))
        assert head.status_code == 503 and head.headers["retry-after"] == str(RETRY_AFTER)
        assert_openrosa_retry_later(odk_post(client, base, odk_xml, surveyor))

        cluster.start()
        # The same server, not restarted: answering again at its first request.
        health = client.get(base + "/health")
        assert health.status_code == 200 and health.json()["down"] == [] and health.json()["admin_units"] > 10_000
        assert client.get(base + "/api/v1/units", params={"parent": "42"}, headers=officer.bearer).status_code == 200
        assert records(cluster, submission["instance_id"]) == 0  # nothing was stored during the outage
        assert client.post(base + "/api/v1/submissions", json=submission, headers=surveyor.bearer).status_code == 201
        assert client.post(base + "/api/v1/submissions", json=submission, headers=surveyor.bearer).status_code == 200
        assert odk_post(client, base, odk_xml, surveyor).status_code == 201
        assert odk_post(client, base, odk_xml, surveyor).status_code == 201  # "already received"
    assert records(cluster, submission["instance_id"]) == 1 and records(cluster, odk_id) == 1


def test_the_first_request_after_a_restart_nobody_saw_is_answered(served_app, app_db):
    """Every pooled connection died with the restart: each is found dead before use and replaced, not used."""
    base, cluster = served_app, app_db
    officer = make_user(cluster, "officer")
    with httpx.Client(timeout=ANSWER_WITHIN) as client:
        for _ in range(5):
            assert client.get(base + "/api/v1/auth/me", headers=officer.bearer).status_code == 200
        cluster.stop()
        cluster.start()
        assert client.get(base + "/api/v1/auth/me", headers=officer.bearer).status_code == 200
        assert client.get(base + "/health").status_code == 200


def test_a_stalled_database_is_503_after_the_connect_timeout_not_a_hang(served_app, app_db):
    """The postmaster accepts nothing (frozen): a new connection gives up after db_connect_timeout_seconds."""
    base, cluster = served_app, app_db
    officer = make_user(cluster, "officer")
    postmaster = cluster.postmaster()
    db.get_engine().dispose()  # no pooled connection left: the next request must connect
    os.kill(postmaster, signal.SIGSTOP)
    try:
        with httpx.Client(timeout=ANSWER_WITHIN) as client:
            assert_retry_later(client.get(base + "/api/v1/units", params={"parent": "42"}, headers=officer.bearer))
            assert client.get(base + "/health").json()["down"] == ["database"]
    finally:
        os.kill(postmaster, signal.SIGCONT)
    with httpx.Client(timeout=ANSWER_WITHIN) as client:
        assert client.get(base + "/api/v1/units", params={"parent": "42"}, headers=officer.bearer).status_code == 200


def test_a_frozen_database_is_503_at_the_request_deadline_not_a_hang(served_app, app_db, environment):
    """Every process of the cluster frozen (a paused host, a stalled disk): the kernel still accepts and
    acknowledges, so no connection fails and no timeout of PostgreSQL's own can fire. The request is
    answered 503 at request_timeout_seconds, and answers come back when the database thaws."""
    base, cluster = served_app, app_db
    officer = make_user(cluster, "officer")
    environment(LABOUR_ATLAS_REQUEST_TIMEOUT_SECONDS="4")
    with httpx.Client(timeout=ANSWER_WITHIN) as client:
        assert client.get(base + "/api/v1/auth/me", headers=officer.bearer).status_code == 200  # a pooled connection
        postmaster = cluster.postmaster()
        frozen = [postmaster, *map(int, subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True,
                                                       text=True).stdout.split())]
        assert len(frozen) > 3  # the postmaster, its workers and the pooled backends
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        try:
            assert_retry_later(client.get(base + "/api/v1/auth/me", headers=officer.bearer))
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
        for _ in range(2):  # the request given up on finishes meanwhile; nothing is stuck
            assert client.get(base + "/api/v1/auth/me", headers=officer.bearer).status_code == 200


def test_a_statement_past_the_statement_timeout_is_503_not_a_hang(served_app, app_db):
    """A table locked by someone else (a long migration): the request is cancelled at the statement timeout."""
    base, cluster = served_app, app_db
    officer = make_user(cluster, "officer")
    with psycopg.connect(cluster.plain_url()) as locker:
        locker.execute("LOCK TABLE admin_unit IN ACCESS EXCLUSIVE MODE")
        with httpx.Client(timeout=ANSWER_WITHIN) as client:
            assert_retry_later(client.get(base + "/api/v1/units", params={"parent": "42"}, headers=officer.bearer))
        locker.rollback()
    with httpx.Client(timeout=ANSWER_WITHIN) as client:
        assert client.get(base + "/api/v1/units", params={"parent": "42"}, headers=officer.bearer).status_code == 200


def test_a_connection_lost_at_the_commit_is_503_and_nothing_is_stored(app_db):
    """The route has done its work; the connection dies before the commit (run after the route returns)."""
    from fastapi.testclient import TestClient

    from api.main import create_app

    cluster = app_db
    with psycopg.connect(cluster.plain_url(), autocommit=True) as admin:
        admin.execute("CREATE TABLE IF NOT EXISTS outage_probe (note text)")
        app = create_app()

        @app.post("/probe")
        def probe(conn: DbConn) -> dict:
            conn.execute(text("INSERT INTO outage_probe VALUES ('written, never committed')"))
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            return {"stored": True}

        with TestClient(app) as client:
            r = client.post("/probe")
        assert r.status_code == 503 and r.headers["retry-after"] == str(RETRY_AFTER)
        assert "database is unavailable" in r.json()["detail"]
        assert admin.execute("SELECT count(*) FROM outage_probe").fetchone()[0] == 0
        admin.execute("DROP TABLE outage_probe")


def test_health_names_a_schema_behind_the_code(served_app, app_db):
    base, cluster = served_app, app_db
    with psycopg.connect(cluster.plain_url(), autocommit=True) as conn:
        head = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
        try:
            r = httpx.get(base + "/health", timeout=ANSWER_WITHIN)
        finally:
            conn.execute("UPDATE alembic_version SET version_num = %s", (head,))
    body = r.json()
    assert r.status_code == 503 and body["down"] == ["schema"] and body["database"] == "ok"
    assert "labour-atlas db upgrade" in body["dependencies"]["schema"] and body["postgis"].startswith("3.")


# -- an import cut off by an outage ----------------------------------------------------------------


def own_csv(path: Path, payloads: list[dict]) -> Path:
    """Labour Atlas's own CSV of ``payloads`` (the columns of the JSON API, the location in three)."""
    import csv

    rows = []
    for p in payloads:
        row = {k: (" ".join(v) if isinstance(v, list) else ("true" if v is True else "false" if v is False else v))
               for k, v in p.items() if k != "location"}
        row |= {"location_lat": p["location"]["lat"], "location_lon": p["location"]["lon"],
                "location_accuracy": p["location"]["accuracy"]}
        rows.append(row)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def test_an_import_cut_off_by_an_outage_writes_nothing_and_runs_again(app_db, monkeypatch, tmp_path):
    """The database stops after the first chunk was written in the import's transaction: nothing stays."""
    from typer.testing import CliRunner

    from cli.main import app as cli
    from etl.surveys import import_surveys

    cluster = app_db
    monkeypatch.setattr("etl.surveys.CHUNK", 3)
    commune = a_commune(cluster)
    rows = [aspirant(commune, full_name=f"Lê Thị Gián Đoạn {i}", national_id=f"042 199 0{i:05d}") for i in range(10)]
    rows.append(aspirant(commune, sex="nam"))  # rejected: goes to the quarantine, or nowhere if cut off
    path = own_csv(tmp_path / "cat_dien.csv", rows)
    before = {t: cluster.count(f"SELECT count(*) FROM {t}") for t in ("survey_record", "submission_quarantine")}
    stopped = []

    def outage_after_the_first_chunk(done: int, total: int) -> None:
        if not stopped:
            stopped.append(done)
            cluster.stop()

    with pytest.raises(db.OUTAGE_ERRORS) as cut:
        import_surveys(path, progress=outage_after_the_first_chunk)
    assert db.is_outage(cut.value) and stopped == [3]
    cluster.start()
    after = {t: cluster.count(f"SELECT count(*) FROM {t}") for t in ("survey_record", "submission_quarantine")}
    assert after == before  # the stored chunk went with the transaction

    # From the command line the operator is told what happened and what to do.
    stopped.clear()
    monkeypatch.setattr("cli.imports.progress_bar", lambda label: _Progress(outage_after_the_first_chunk))
    result = CliRunner().invoke(cli, ["import", "surveys", str(path)], env={"DATABASE_URL": cluster.url})
    assert result.exit_code == 1, result.output
    assert "database became unavailable" in result.output and "Nothing was imported" in result.output
    assert "run the same command again" in result.output and "Traceback" not in result.output
    cluster.start()
    db.close_database()
    db.use_database(cluster.url)
    assert {t: cluster.count(f"SELECT count(*) FROM {t}") for t in ("survey_record", "submission_quarantine")} == before

    # Run again: every row once, the work tables of the cut-off runs gone.
    r = import_surveys(path)
    assert dict(r.counts) == {"created": 10, "rejected": 1}
    assert cluster.count("SELECT count(*) FROM survey_record WHERE full_name LIKE 'Lê Thị Gián Đoạn %%'") == 10
    assert cluster.count("SELECT count(*) FROM submission_quarantine WHERE file_name = 'cat_dien.csv'") == 1
    assert cluster.count("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'survey_import_%%'") == 0


class _Progress:
    """Stands in for the command line's progress bar: calls ``callback`` as the bar would be updated."""

    def __init__(self, callback) -> None:
        self.callback = callback

    def __enter__(self):
        return self.callback

    def __exit__(self, *exc) -> None:
        return None


# -- the web form's queue across an outage, in Chromium --------------------------------------------


def open_and_fill(page, base: str, surveyor, commune: dict, who: str) -> None:
    """Sign in on the survey page and fill an aspirant's form (not saved yet)."""
    page.context.grant_permissions(["geolocation"], origin=base)
    page.context.set_geolocation({"latitude": commune["lat"], "longitude": commune["lon"], "accuracy": 9})
    page.goto(base + "/survey")
    page.locator("body.ready").wait_for(timeout=20000)
    page.fill('#signin input[name="username"]', surveyor.name)
    page.fill('#signin input[name="password"]', surveyor.password)
    page.click('#signin button[type="submit"]')
    page.locator("#who", has_text=surveyor.name).wait_for(timeout=20000)
    page.check('input[name="kind"][value="aspirant"]')
    page.fill("#f-surveyor", "Lê Văn Khảo")
    page.check("#f-consent")
    page.fill("#f-commune_code-q", commune["code"])
    page.locator(f'#f-commune_code-results button[data-code="{commune["code"]}"]').click(timeout=10000)
    page.click("#f-location-button")
    page.locator("#f-location-status", has_text="± 9 m").wait_for(timeout=10000)
    page.fill("#f-full_name", who)
    page.fill("#f-birth_year", "1996")
    page.check('input[name="sex"][value="female"]')
    page.check('input[name="markets_wanted"][value="JP"]')
    page.select_option("#f-sector", "caregiving")


QUEUE = """() => new Promise((resolve, reject) => {
    const open = indexedDB.open('labour-atlas-survey');
    open.onsuccess = () => { const req = open.result.transaction('queue').objectStore('queue').getAll();
                             req.onsuccess = () => resolve(req.result); req.onerror = () => reject(req.error); };
    open.onerror = () => reject(open.error); })"""


def test_the_web_form_keeps_a_form_through_an_outage_and_sends_it_once(served_app, app_db, browser_page):
    """Saved while the database is down: the server answers 503, the form stays queued on the phone, and is
    sent by itself (Retry-After) once the database is back: stored exactly once."""
    base, cluster, page = served_app, app_db, browser_page
    surveyor = make_user(cluster, "surveyor", ("42",))
    commune = a_commune(cluster)
    who = f"Phạm Thị Mất Kết Nối {uuid.uuid4().hex[:6]}"
    answers: list[int] = []
    page.on("response", lambda r: answers.append(r.status) if r.url.endswith("/api/v1/submissions") else None)
    open_and_fill(page, base, surveyor, commune, who)

    cluster.stop()
    page.click("#save")
    deadline = time.monotonic() + 30
    while 503 not in answers and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert 503 in answers and 201 not in answers
    page.locator("#unsent", has_text="Chưa gửi: 1").wait_for(timeout=10000)
    queue = page.evaluate(QUEUE)
    assert [item["payload"]["full_name"] for item in queue] == [who]
    instance_id = queue[0]["payload"]["instance_id"]
    # Still down: the retries it makes by itself are refused too, and the form stays.
    page.wait_for_timeout((RETRY_AFTER + 1) * 1000)
    assert answers.count(503) >= 2 and "Chưa gửi: 1" in page.inner_text("#unsent")

    cluster.start()
    # No click, no reload: the page tries again after Retry-After and the form leaves the queue.
    page.locator("#unsent", has_text="Chưa gửi: 0").wait_for(timeout=30000)
    assert answers[-1] == 201 and answers.count(201) == 1
    assert records(cluster, instance_id) == 1
    with db.get_engine().connect() as conn:
        row = conn.execute(text("SELECT full_name, surveyor, declared_commune_code FROM survey_record "
                                "WHERE instance_id = :i"), {"i": instance_id}).one()
    assert tuple(row) == (who, "Lê Văn Khảo", commune["code"])


def test_an_access_token_that_expires_during_the_outage_is_renewed_after_it(served_app, app_db, browser_page):
    """The token renewal meets the outage first (503): the form waits, then renewal and sending succeed."""
    base, cluster, page = served_app, app_db, browser_page
    surveyor = make_user(cluster, "surveyor", ("42",))
    commune = a_commune(cluster)
    who = f"Võ Thị Hết Hạn {uuid.uuid4().hex[:6]}"
    answers: list[tuple[str, int]] = []
    page.on("response", lambda r: answers.append((r.url.rsplit("/", 1)[-1], r.status)) if "/api/v1/" in r.url else None)
    open_and_fill(page, base, surveyor, commune, who)
    # The access token runs out now, as after a day offline (another tab of the page could write this).
    page.evaluate("""() => new Promise((resolve, reject) => {
        const key = 'labourAtlas.survey.session';
        const open = indexedDB.open('labour-atlas-survey');
        open.onsuccess = () => {
          const t = open.result.transaction('kv', 'readwrite'), kv = t.objectStore('kv');
          const get = kv.get(key);
          get.onsuccess = () => kv.put(Object.assign({}, get.result, { access_until: 0 }), key);
          t.oncomplete = () => { new BroadcastChannel('labour-atlas-survey').postMessage(key); resolve(true); };
          t.onerror = () => reject(t.error);
        };
      })""")
    cluster.stop()
    page.click("#save")
    deadline = time.monotonic() + 30
    while ("refresh", 503) not in answers and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert ("refresh", 503) in answers and not any(name == "submissions" for name, _ in answers)
    page.locator("#unsent", has_text="Chưa gửi: 1").wait_for(timeout=10000)
    assert surveyor.name in page.inner_text("#who")  # still signed in: a 503 is no reason to end the session
    instance_id = page.evaluate(QUEUE)[0]["payload"]["instance_id"]

    cluster.start()
    page.locator("#unsent", has_text="Chưa gửi: 0").wait_for(timeout=30000)
    assert ("refresh", 200) in answers and [s for name, s in answers if name == "submissions"] == [201]
    assert records(cluster, instance_id) == 1


# -- the request deadline, on its own --------------------------------------------------------------


def deadline_run(app, body_chunks: list[tuple[float, bytes]], environment) -> list[dict]:
    """Run ``app`` behind :class:`api.middleware.Deadline` (timeout 0.5 s) with a body arriving as
    ``(delay, bytes)`` chunks; returns what the client was sent."""
    import asyncio

    from api.middleware import Deadline

    environment(LABOUR_ATLAS_REQUEST_TIMEOUT_SECONDS="0.5", LABOUR_ATLAS_RETRY_AFTER_SECONDS="7")
    sent: list[dict] = []
    chunks = list(body_chunks)

    async def receive() -> dict:
        if not chunks:
            await asyncio.sleep(3600)
        delay, data = chunks.pop(0)
        await asyncio.sleep(delay)
        return {"type": "http.request", "body": data, "more_body": bool(chunks)}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/v1/submissions", "headers": [], "query_string": b""}
    asyncio.run(Deadline(app)(scope, receive, send))
    return sent


def answer(status: int, body: bytes):
    async def send_it(send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body})
    return send_it


def test_the_deadline_answers_503_for_work_that_hangs_and_drops_its_late_answer(environment):
    import asyncio

    async def hangs(scope, receive, send) -> None:
        await receive()
        await asyncio.sleep(1.5)  # the database answers, too late
        await answer(201, b"stored")(send)

    sent = deadline_run(hangs, [(0, b"{}")], environment)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]  # one answer, not two
    assert sent[0]["status"] == 503 and (b"retry-after", b"7") in sent[0]["headers"]
    assert b"database is unavailable" in sent[1]["body"]


def test_the_deadline_counts_from_the_last_bytes_of_a_slow_upload(environment):
    async def reads_all(scope, receive, send) -> None:
        body = b""
        while True:
            m = await receive()
            body += m["body"]
            if not m["more_body"]:
                break
        await answer(201, body)(send)

    # 1.2 s in all, never 0.5 s without a byte: not a hang.
    sent = deadline_run(reads_all, [(0.3, b"a"), (0.3, b"b"), (0.3, b"c"), (0.3, b"d")], environment)
    assert sent[0]["status"] == 201 and sent[1]["body"] == b"abcd"


def test_the_deadline_never_cuts_an_answer_that_has_begun(environment):
    import asyncio

    async def long_download(scope, receive, send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one ", b"two ", b"three"):
            await asyncio.sleep(0.4)
            await send({"type": "http.response.body", "body": part, "more_body": part != b"three"})

    sent = deadline_run(long_download, [(0, b"")], environment)
    assert sent[0]["status"] == 200 and b"".join(m.get("body", b"") for m in sent[1:]) == b"one two three"


@pytest.mark.parametrize("locks", [True, False], ids=["bulk load locks records", "setting off"])
def test_a_submission_during_a_bulk_load_waits_or_is_503_never_500(served_app, app_db, environment, monkeypatch, tmp_path, locks):
    """A bulk load holds survey_record locked until it commits: a phone's submission meanwhile is answered 503 with
    Retry-After (sent again, stored once); with the setting off the table stays open and it is stored at once."""
    from etl.surveys import import_surveys

    base, cluster = served_app, app_db
    environment(LABOUR_ATLAS_BULK_LOAD_LOCKS_RECORDS=str(locks).lower())
    # As if the file were bigger than the table, whatever earlier tests stored.
    monkeypatch.setattr("etl.surveys.is_bulk_load", lambda conn, n: True)
    monkeypatch.setattr("etl.surveys.CHUNK", 2)
    commune = a_commune(cluster)
    surveyor = make_user(cluster, "surveyor")
    path = own_csv(tmp_path / "bulk_during.csv", [aspirant(commune, full_name=f"Lò Văn Tải {i}") for i in range(4)])
    phone = aspirant(commune, full_name="Mè Thị Gửi Trong Lúc Nạp")
    answers = []

    def submit_between_chunks(done: int, total: int) -> None:
        if not answers:  # the import's transaction is open: its lock, if any, is held
            with httpx.Client(timeout=ANSWER_WITHIN) as client:
                answers.append(client.post(base + "/api/v1/submissions", json=phone, headers=surveyor.bearer))

    r = import_surveys(path, progress=submit_between_chunks)
    assert dict(r.counts) == {"created": 4}
    if locks:
        assert_retry_later(answers[0])
        assert records(cluster, phone["instance_id"]) == 0
        with httpx.Client(timeout=ANSWER_WITHIN) as client:  # the phone sends it again
            assert client.post(base + "/api/v1/submissions", json=phone, headers=surveyor.bearer).status_code == 201
    else:
        assert answers[0].status_code == 201, answers[0].text[:300]
    assert records(cluster, phone["instance_id"]) == 1
