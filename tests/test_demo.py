"""The embedded default: a private cluster that is reused, and the demo command."""

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from geodata.embedded import EmbeddedPostgres, free_port
from maps.releases import last_closed_period


@pytest.fixture
def folder():
    path = Path(tempfile.mkdtemp(prefix="labour-atlas-demo-"))
    path.chmod(0o755)  # as root, the cluster runs as 'postgres'
    yield path
    for pgdata in path.rglob("PG_VERSION"):
        EmbeddedPostgres(pgdata.parent).stop()
    shutil.rmtree(path, ignore_errors=True)


def test_private_cluster_keeps_its_data_between_runs(folder):
    pg = EmbeddedPostgres(folder / "pgdata")
    url = pg.start().replace("+psycopg", "")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (name text)")
        conn.execute("INSERT INTO kept VALUES ('Hà Tĩnh')")
        assert conn.execute("SELECT inet_server_addr()::text").fetchone()[0].startswith("127.0.0.1")
    pg.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
    again = EmbeddedPostgres(folder / "pgdata")
    with psycopg.connect(again.start().replace("+psycopg", "")) as conn:
        assert conn.execute("SELECT name FROM kept").fetchone()[0] == "Hà Tĩnh"
    # A wrong password is refused: the cluster is not open to anyone on the machine.
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"postgresql://labour_atlas:wrong@127.0.0.1:{again.port}/labour_atlas")
    again.stop()


def test_demo_loads_once_serves_and_stops_its_cluster_on_ctrl_c(folder):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["LABOUR_ATLAS_DATA_DIR"] = str(folder / "state")
    cli = [sys.executable, "-m", "cli", "demo"]
    first = subprocess.run([*cli, "--no-serve"], env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr + first.stdout
    assert "Reference data loaded" in first.stdout and "have an approximate polygon" in first.stdout
    assert "synthetic sample survey records loaded" in first.stdout and "demo-police" in first.stdout
    assert "synthetic recruiters 5, recruitment events 160, incidents 320" in first.stdout

    port = free_port()
    start = time.monotonic()
    server = subprocess.Popen([*cli, "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        body = None
        while time.monotonic() - start < 60:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert body and body["status"] == "ok" and body["admin_units"] == 14161
        assert time.monotonic() - start < 30  # the second run reuses the cluster and the data
        page = httpx.get(f"http://127.0.0.1:{port}/")
        assert page.status_code == 200 and "leaflet" in page.text
        # One account per role, with the passwords of this start in a private file; the sample data counts.
        listed = folder / "state" / "demo-accounts.txt"
        assert listed.stat().st_mode & 0o077 == 0
        accounts = {line.split("\t")[0]: line.split("\t")[2] for line in listed.read_text().splitlines()
                    if not line.startswith("#")}
        assert set(accounts) == {"demo-surveyor", "demo-officer", "demo-leader", "demo-planner", "demo-police", "demo-admin"}
        token = httpx.post(f"http://127.0.0.1:{port}/api/v1/auth/token",
                           data={"username": "demo-leader", "password": accounts["demo-leader"]}).json()["access_token"]
        counts = httpx.get(f"http://127.0.0.1:{port}/api/v1/aggregates/survey-counts",
                           params={"period": last_closed_period(dt.datetime.now(dt.UTC)).label},
                           headers={"Authorization": f"Bearer {token}"}, timeout=120).json()["units"]  # the release is made now
        shown = [u[m]["count"] for u in counts for m in ("aspirant", "returnee", "departure", "all") if not u[m]["suppressed"]]
        assert sum(shown) > 100 and any(u["all"]["suppressed"] for u in counts)
        # Every map page has something to show on first start: targets, and a hot spot where the sample planted one.
        coverage = httpx.get(f"http://127.0.0.1:{port}/api/v1/layers/coverage", params={"year": time.gmtime().tm_year},
                             headers={"Authorization": f"Bearer {token}"}).json()
        assert any(f["properties"]["target_lower"] for f in coverage["features"])
        police = httpx.post(f"http://127.0.0.1:{port}/api/v1/auth/token",
                            data={"username": "demo-police", "password": accounts["demo-police"]}).json()["access_token"]
        hot = httpx.get(f"http://127.0.0.1:{port}/api/v1/layers/hotspots", params={"level": "commune", "parent": "42"},
                        headers={"Authorization": f"Bearer {police}"}, timeout=120).json()
        assert any(f["properties"]["class"].startswith("hot") for f in hot["features"])
    finally:
        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=60)
    assert "already loaded" in out and "sample survey records already loaded" in out
    assert "private PostgreSQL cluster stopped" in out
    assert not (folder / "state" / "pgdata" / "postmaster.pid").exists()
