"""Benchmark: concurrent clients posting single submissions to a running server.

Run by hand (it is not a test)::

    .venv/bin/python bench/submit.py                       # own database and server, 50 clients, 30 s
    .venv/bin/python bench/submit.py --workers 2           # the server as `uvicorn --workers 2`
    .venv/bin/python bench/submit.py --url http://127.0.0.1:8000 --database-url postgresql://...@127.0.0.1/...

By default it starts its own private PostgreSQL + PostGIS cluster in a
temporary folder (fsync off), migrates it, loads the bundled reference data
and the approximate 2025 communes, then starts the app in a subprocess the
way the server install runs it (``labour-atlas serve``; with ``--workers N``,
``python -m uvicorn api.main:app --workers N``), with ``DATABASE_URL`` and a
fresh ``LABOUR_ATLAS_SECRET_KEY`` in its environment. With ``--url`` it uses a
server that is already running (on 127.0.0.1 only), and ``--database-url``
(or ``DATABASE_URL``) for the points and the final check.

Phases, each with the same number of concurrent clients (``--clients``, 50),
each client one keep-alive HTTP/1.1 connection sending one request at a time:

1. warm-up (``--warmup`` s, not counted): submissions;
2. baseline (``--baseline-seconds``): ``GET /health``, i.e. the framework and
   a database round trip, the floor a request cannot go below;
3. the run (``--seconds``, 30): ``POST /api/v1/submissions``, each a valid,
   distinct aspirant record (Vietnamese names, a fresh ``instance_id``) at a
   random point inside a random 2025 commune (drawn in PostGIS with
   ``ST_GeneratePoints``), declaring that commune.

It prints requests per second, p50 / p95 / p99 latency, the HTTP status
counts and errors of each phase, the database connections opened during each
phase (``pg_stat_database.sessions``: a pool that closes and reopens
connections shows here), the submissions per second as a ratio of the health
checks per second, and (own server only) the CPU time per request of the
client, of the app and of PostgreSQL, read from /proc. At the end it checks
in the database that the records stored for the instance_ids sent are
exactly those answered 201 (no loss, no duplicates).

4. a paced run (``--rate``, default 300/s, the goal): the same clients send
   on a fixed schedule that adds up to that rate, and latency counts from
   the scheduled time (a late request includes its wait).

With 50 clients that each wait for their answer before sending again (run
3), the mean latency is clients / throughput (Little's law): at saturation
it measures the queue, not the service. The goal, 300 submissions per
second with p95 under 100 ms, is therefore checked in two parts: run 3 says
whether the server sustains 300/s at all; run 4 gives the latency of a
server receiving 300/s from 50 clients.

To try a change without editing the app: ``--db-set jit=off`` sets a
PostgreSQL setting on the private database; ``--app module:app`` serves
another ASGI app (e.g. a patched copy of ``api.main:app`` on PYTHONPATH).

The HTTP client is a minimal asyncio one (a few dozen microseconds of CPU a
request), so that on a small machine the load generator takes as little CPU
as possible from the server it measures. Every loop is bounded in time and in
count; only 127.0.0.1 is contacted. The server and the cluster are stopped,
and the folder removed, at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from rich.console import Console
from rich.table import Table

# Wide enough for the tables when the output goes to a file.
console = Console(width=None if sys.stdout.isatty() else 160)

HOST = "127.0.0.1"
VIETNAM = dt.timezone(dt.timedelta(hours=7))
MAX_HEADER = 64 << 10         # bytes of response head accepted
MAX_BODY = 4 << 20            # bytes of response body accepted
MAX_CHUNKS = 10_000           # chunks of a chunked body accepted
POINTS_PER_COMMUNE = 3        # random points drawn inside each 2025 commune
GOAL_RATE, GOAL_P95_MS = 300.0, 100.0

# -- Vietnamese names -----------------------------------------------------------
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô",
          "Dương", "Lý", "Đinh", "Trịnh", "Lò", "Hà"]
MIDDLE = {"male": ["Văn", "Hữu", "Đức", "Minh", "Quốc", "Công", "Thành", "Xuân"],
          "female": ["Thị", "Ngọc", "Thu", "Thanh", "Hồng", "Kim", "Mỹ", "Bích"]}
GIVEN = {"male": ["An", "Bình", "Cường", "Dũng", "Đạt", "Giang", "Hải", "Hiếu", "Hùng", "Khánh", "Long", "Nam",
                  "Phúc", "Quân", "Quang", "Sơn", "Thắng", "Tuấn", "Tú", "Việt", "Páo", "Khải"],
         "female": ["Anh", "Chi", "Dung", "Hà", "Hạnh", "Hoa", "Hương", "Lan", "Linh", "Mai", "Nga", "Ngân",
                    "Nhung", "Phương", "Tâm", "Thảo", "Trang", "Tuyết", "Vân", "Yến", "Ánh", "Ẩn"]}
SURVEYORS = ["Lê Văn Khảo", "Nguyễn Thị Điều", "Trần Quốc Tra", "Phạm Thị Thu Hằng", "Đỗ Minh Đức", "Vũ Thị Ngọc Ánh"]


def vietnamese_name(rng: random.Random, sex: str) -> str:
    name = f"{rng.choice(FAMILY)} {rng.choice(MIDDLE[sex])}"
    if rng.random() < 0.3:
        name += f" {rng.choice(GIVEN[sex])}"
    return f"{name} {rng.choice(GIVEN[sex])}"


class Payloads:
    """Valid, distinct aspirant submissions at points inside 2025 communes."""

    def __init__(self, points: list[tuple[str, float, float]], seed: int):
        from survey.definition import FORM

        self.points = points
        self.rng = random.Random(seed)
        self.choices = {name: FORM.choice_values(name) for name in
                        ("ethnicity", "household_status", "market", "skills", "aspirant_needs", "education", "languages")}
        self.year = dt.datetime.now(VIETNAM).year

    def next(self) -> tuple[str, bytes]:
        """An instance_id and the JSON body of a new submission."""
        rng, ch = self.rng, self.choices
        code, lon, lat = rng.choice(self.points)
        sex = rng.choice(("male", "female"))
        birth = rng.randint(self.year - 45, self.year - 18)
        collected = dt.datetime.now(VIETNAM).replace(microsecond=0) - dt.timedelta(minutes=rng.randint(1, 600))
        iid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        payload = {
            "instance_id": iid,
            "kind": "aspirant",
            "collected_at": collected.isoformat(),
            "surveyor": rng.choice(SURVEYORS),
            "consent": True,
            "commune_code": code,
            "location": {"lat": lat, "lon": lon, "accuracy": round(rng.uniform(3, 40), 1)},
            "full_name": vietnamese_name(rng, sex),
            "phone": "09" + "".join(rng.choices("0123456789", k=8)),
            "birth_year": birth,
            "sex": sex,
            "ethnicity": rng.choice(ch["ethnicity"][:10]),
            "household_status": rng.choice(ch["household_status"]),
            "education": rng.choice(ch["education"]),
            "languages": rng.sample(ch["languages"], k=rng.randint(0, 2)),
            "markets_wanted": rng.sample(ch["market"], k=rng.randint(1, 3)),
            "sector": rng.choice(ch["skills"]),
            "aspirant_needs": rng.sample(ch["aspirant_needs"], k=rng.randint(0, 2)),
        }
        if rng.random() < 0.8:  # a national ID for most: 0PP S YY NNNNNN
            payload["national_id"] = (f"0{code[:2]}{1 if sex == 'male' else 0 if birth < 2000 else 3}"
                                      f"{birth % 100:02d}{rng.randrange(10**6):06d}")
        return iid, json.dumps(payload, ensure_ascii=False).encode()


# -- a minimal HTTP/1.1 keep-alive client ---------------------------------------
class HttpError(Exception):
    """The server's answer could not be read as HTTP/1.1."""


class Connection:
    """One keep-alive connection to 127.0.0.1:port; reconnects after an error."""

    # Sent with every request (the benchmark's surveyor signs in once).
    authorization: str | None = None

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.headers: dict[str, str] = {}  # of the last answer, names in lower case

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port, limit=MAX_HEADER)
        head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
        if self.authorization:
            head += f"Authorization: {self.authorization}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        await self.writer.drain()
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            raise HttpError("connection closed before an answer") from exc
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise HttpError(f"bad status line {lines[0][:80]!r}")
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        self.headers = headers
        if "content-length" in headers:
            length = int(headers["content-length"])
            if length > MAX_BODY:
                raise HttpError(f"body of {length} bytes")
            data = await self.reader.readexactly(length)
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            data = await self._chunked()
        else:
            raise HttpError("answer without a length")
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, data

    async def _chunked(self) -> bytes:
        data = bytearray()
        for _ in range(MAX_CHUNKS):
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return bytes(data)
            if len(data) + size > MAX_BODY:
                raise HttpError("chunked body too long")
            data += await self.reader.readexactly(size)
            await self.reader.readexactly(2)
        raise HttpError("too many chunks")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# -- phases ----------------------------------------------------------------------
@dataclass
class PhaseResult:
    name: str
    clients: int
    seconds: float = 0.0                                  # first start to last answer
    latencies: list[float] = field(default_factory=list)  # seconds, one per request
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    sent: list[str] = field(default_factory=list)         # instance_ids sent
    created: list[str] = field(default_factory=list)      # instance_ids answered 201
    cpu: dict[str, float] = field(default_factory=dict)   # CPU seconds per process group
    sessions: int | None = None                           # database connections opened meanwhile

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")


async def run_phase(name: str, port: int, clients: int, seconds: float, cap: int, timeout: float,
                    make: callable, cpu: CpuMeter | None, dburl: str | None, rate: float | None = None) -> PhaseResult:
    """``clients`` connections sending requests from ``make()`` until ``seconds`` have passed or ``cap`` are sent.

    ``make()`` returns (method, path, body, instance_id or None). A request
    started before the deadline is waited for (at most ``timeout`` s).

    With ``rate`` (requests per second, all clients together), each client
    sends on a fixed schedule (its share of the rate, staggered) instead of
    as fast as it can, and latency counts from the scheduled time: a request
    that had to wait for its client's previous answer is measured with the
    wait (no "coordinated omission").
    """
    result = PhaseResult(name, clients)
    per_client = max(1, -(-cap // clients))
    start = deadline = 0.0  # set just before the clients start
    last = [0.0]

    async def client(k: int) -> None:
        conn = Connection(port)
        interval = clients / rate if rate else 0.0
        try:
            for i in range(per_client):
                if time.monotonic() >= deadline:
                    break
                late = 0.0
                if rate:
                    due = start + (i + k / clients) * interval
                    if due >= deadline:
                        break
                    wait = due - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    late = max(0.0, -wait)  # count from when it was due
                method, path, body, iid = make()
                if iid:
                    result.sent.append(iid)
                t0 = time.perf_counter() - late
                try:
                    status, _ = await asyncio.wait_for(conn.request(method, path, body), timeout)
                except (TimeoutError, OSError, HttpError, asyncio.IncompleteReadError, ValueError) as exc:
                    result.errors[type(exc).__name__] += 1
                    conn.close()
                    status = None
                    await asyncio.sleep(0.05)  # no hot loop against a server that refuses
                result.latencies.append(time.perf_counter() - t0)
                last[0] = time.monotonic()
                if status is not None:
                    result.statuses[status] += 1
                    if status == 201 and iid:
                        result.created.append(iid)
        finally:
            conn.close()

    sessions = await asyncio.to_thread(db_sessions, dburl) if dburl else None
    before = cpu.sample() if cpu else None
    start = time.monotonic()
    deadline = start + seconds
    last[0] = start
    await asyncio.gather(*(client(k) for k in range(clients)))
    if cpu:
        after = cpu.sample()
        result.cpu = {k: after[k] - before[k] for k in after}
    result.seconds = last[0] - start
    if sessions is not None:
        # Backends report their start with their next statistics flush (at
        # most a second apart while busy); the count's own connection is one.
        await asyncio.sleep(1.2)
        result.sessions = await asyncio.to_thread(db_sessions, dburl) - sessions - 1
    return result


# -- CPU time from /proc -----------------------------------------------------------
class CpuMeter:
    """CPU seconds used so far by this process, by a process tree (the app), and by another (PostgreSQL)."""

    def __init__(self, roots: dict[str, int]):
        self.roots = roots
        self.tick = os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _stat(pid: str) -> tuple[int, list[str]] | None:
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        rest = raw[raw.rfind(")") + 2:].split()
        return int(rest[1]), rest  # ppid, fields from 'state' on

    def sample(self) -> dict[str, float]:
        stats = {int(p): s for p in os.listdir("/proc") if p.isdigit() and (s := self._stat(p)) is not None}
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in stats.items():
            children.setdefault(ppid, []).append(pid)
        out = {"client": time.process_time()}
        for label, root in self.roots.items():
            total, todo, seen = 0, [root], 0
            while todo and seen < 10_000:
                pid = todo.pop()
                seen += 1
                if pid in stats:
                    f = stats[pid][1]
                    # utime, stime, and the CPU of exited children it waited for
                    total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
                todo.extend(children.get(pid, ()))
            out[label] = total / self.tick
        return out


# -- database ----------------------------------------------------------------------
def sign_in_surveyor(dburl: str, port: int) -> str:
    """Create a surveyor whose area is the whole country and sign in; returns the Authorization header."""
    import secrets

    import httpx

    from api.security.accounts import create_user
    from geodata.db import use_database

    name, password = f"bench-surveyor-{secrets.token_hex(4)}", secrets.token_urlsafe(18)
    with use_database(dburl).begin() as conn:
        create_user(conn, name, password, "surveyor", ["all"], "2025")
    r = httpx.post(f"http://{HOST}:{port}/api/v1/auth/token", data={"username": name, "password": password}, timeout=30)
    r.raise_for_status()
    return f"Bearer {r.json()['access_token']}"


def start_database(folder: Path, settings: list[tuple[str, str]]):
    """Start a private cluster in ``folder``, migrate, seed, draw the 2025 communes; return (pg, url).

    ``settings``: (name, value) pairs set on the database (``ALTER DATABASE ... SET``), for
    trying a configuration change without changing the code.
    """
    from sqlalchemy import text

    from etl.reference import seed_reference
    from geodata import migrate
    from geodata.approximate import approximate_communes
    from geodata.db import get_engine, use_database
    from geodata.embedded import DATABASE, EmbeddedPostgres
    from geodata.structures import Structure

    pg = EmbeddedPostgres(folder / "pgdata", durable=False)
    url = pg.start()
    use_database(url)
    try:
        migrate.upgrade()
        seed_reference()
        with get_engine().begin() as conn:
            approximate_communes(conn, Structure.v2025)
        with get_engine().begin() as conn:
            conn.execute(text("ANALYZE"))
            for name, value in settings:
                if not conn.execute(text("SELECT 1 FROM pg_settings WHERE name = :n"), {"n": name}).scalar():
                    raise ValueError(f"--db-set: no PostgreSQL setting {name!r}")
                conn.execute(text(f'ALTER DATABASE "{DATABASE}" SET "{name}" = ' + "'" + value.replace("'", "''") + "'"))
    finally:
        get_engine().dispose()
    return pg, url


def plain_url(url: str) -> str:
    """A libpq URL (no SQLAlchemy driver suffix)."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    return url


def sample_points(dburl: str, seed: int) -> list[tuple[str, float, float]]:
    """Random points inside each 2025 commune that has a polygon: (code, lon, lat)."""
    import psycopg

    with psycopg.connect(plain_url(dburl), connect_timeout=10) as conn:
        rows = conn.execute(
            """SELECT code, ST_X(g), ST_Y(g) FROM (
                   SELECT code, (ST_Dump(ST_GeneratePoints(geom, %s, %s))).geom AS g
                   FROM admin_unit WHERE structure = '2025' AND level = 'commune' AND geom IS NOT NULL) p
               ORDER BY code""",
            (POINTS_PER_COMMUNE, seed),
        ).fetchall()
    return [(c, round(x, 7), round(y, 7)) for c, x, y in rows]


def db_sessions(dburl: str) -> int:
    """Connections opened to the database so far (pg_stat_database.sessions, PostgreSQL 14+)."""
    import psycopg

    with psycopg.connect(plain_url(dburl), connect_timeout=10) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()").fetchone()[0]


def count_stored(dburl: str, ids: list[str]) -> tuple[int, int]:
    """(records, distinct instance_ids) stored among ``ids``."""
    import psycopg

    with psycopg.connect(plain_url(dburl), connect_timeout=10) as conn:
        return conn.execute(
            "SELECT count(*), count(DISTINCT instance_id) FROM survey_record WHERE instance_id = ANY(%s::uuid[])", (ids,)
        ).fetchone()


# -- the server --------------------------------------------------------------------
def start_server(folder: Path, dburl: str, workers: int | None, app: str | None) -> tuple[subprocess.Popen, int, Path]:
    from geodata.embedded import free_port

    port = free_port()
    env = os.environ | {"DATABASE_URL": dburl, "LABOUR_ATLAS_SECRET_KEY": secrets.token_urlsafe(32)}
    if workers is None and app is None:  # as the server install runs it
        cmd = [str(Path(sys.executable).with_name("labour-atlas")), "serve", "--host", HOST, "--port", str(port)]
    else:
        cmd = [sys.executable, "-m", "uvicorn", app or "api.main:app", "--host", HOST, "--port", str(port),
               "--workers", str(workers or 1)]
    log = folder / "server.log"
    with log.open("wb") as out:  # the child keeps its own descriptor
        # Its own session: stopping it reaches uvicorn's worker processes too.
        proc = subprocess.Popen(cmd, env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return proc, port, log


async def wait_ready(port: int, proc: subprocess.Popen | None, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds / 0.2) + 1):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        conn = Connection(port)
        try:
            status, _ = await asyncio.wait_for(conn.request("GET", "/health"), 5)
            if status == 200:
                return
        except (TimeoutError, OSError, HttpError, asyncio.IncompleteReadError):
            pass
        finally:
            conn.close()
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the server did not answer /health within {seconds:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the group we created for it (pid == pgid)
        proc.wait(timeout=20)
    except ProcessLookupError:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


# -- report ------------------------------------------------------------------------
def report(results: list[PhaseResult]) -> None:
    table = Table("phase", "clients", "seconds", "requests", "per s", "p50 ms", "p95 ms", "p99 ms", "max ms",
                  "statuses", "errors", "new DB conns", title="Requests")
    for r in results:
        table.add_row(
            r.name, str(r.clients), f"{r.seconds:.1f}", f"{r.requests:,}", f"{r.rate:,.0f}",
            f"{r.percentile(50):.1f}", f"{r.percentile(95):.1f}", f"{r.percentile(99):.1f}", f"{r.percentile(100):.1f}",
            ", ".join(f"{k}: {v:,}" for k, v in sorted(r.statuses.items())) or "-",
            ", ".join(f"{k}: {v:,}" for k, v in sorted(r.errors.items())) or "0",
            "-" if r.sessions is None else f"{r.sessions:,}",
        )
    console.print(table)
    if any(r.cpu for r in results):
        cpu = Table("phase", "client ms/req", "app ms/req", "PostgreSQL ms/req", "total ms/req", "CPU busy",
                    title="CPU time per request (from /proc)")
        for r in results:
            if r.cpu and r.requests:
                per = {k: v / r.requests * 1000 for k, v in r.cpu.items()}
                busy = sum(r.cpu.values()) / r.seconds if r.seconds else 0
                cpu.add_row(r.name, f"{per['client']:.2f}", f"{per['app']:.2f}", f"{per['postgres']:.2f}",
                            f"{sum(per.values()):.2f}", f"{busy:.2f} of {os.cpu_count()} CPUs")
        console.print(cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="use this running server (http://127.0.0.1:PORT) instead of starting one")
    parser.add_argument("--database-url", help="with --url: its database, for the points and the final check "
                                                "(default: DATABASE_URL)")
    parser.add_argument("--workers", type=int, help="own server: run `uvicorn api.main:app --workers N` "
                                                    "(default: `labour-atlas serve`, one process)")
    parser.add_argument("--app", help="own server: run `uvicorn APP` (module:attribute, importable; e.g. a patched "
                                      "variant of api.main:app on PYTHONPATH) instead of `labour-atlas serve`")
    parser.add_argument("--db-set", action="append", default=[], metavar="NAME=VALUE",
                        help="own database: ALTER DATABASE ... SET NAME = VALUE before the server starts (repeatable), "
                             "e.g. jit=off")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--seconds", type=float, default=30, help="length of the submission run (default 30)")
    parser.add_argument("--baseline-seconds", type=float, default=10, help="length of the /health baseline (default 10)")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of submissions before measuring (default 3)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="at most this many requests per phase")
    parser.add_argument("--timeout", type=float, default=10, help="seconds to wait for one answer (default 10)")
    parser.add_argument("--seed", type=int, default=20251125, help="random seed (default 20251125)")
    parser.add_argument("--rate", type=float, default=GOAL_RATE,
                        help=f"after the flat-out run, a paced run at this many submissions per second "
                             f"(default {GOAL_RATE:.0f}, the goal; 0: none)")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0 or args.baseline_seconds < 0 or args.warmup < 0 or args.max_requests < 1:
        parser.error("--clients, --seconds and --max-requests must be positive")
    if args.workers is not None and (args.url or args.workers < 1):
        parser.error("--workers needs a positive number and applies only to the server this script starts")
    if any("=" not in kv for kv in args.db_set):
        parser.error("--db-set takes NAME=VALUE")
    args.db_set = [tuple(kv.split("=", 1)) for kv in args.db_set]
    if args.url and (args.app or args.db_set):
        parser.error("--app and --db-set apply only to the server and database this script starts")
    if args.url:
        u = urlsplit(args.url)
        if u.scheme != "http" or u.hostname != HOST or not u.port:
            parser.error("--url must be http://127.0.0.1:PORT (only 127.0.0.1 is contacted)")
        dburl = args.database_url or os.environ.get("DATABASE_URL")
        if not dburl:
            parser.error("--url needs --database-url (or DATABASE_URL) for the points and the final check")
        if urlsplit(plain_url(dburl)).hostname != HOST:
            parser.error("the database must be on 127.0.0.1 (only 127.0.0.1 is contacted)")
    return asyncio.run(run(args))


async def run(args) -> int:
    tmp = None
    pg = proc = None
    try:
        cpu = None
        if args.url:
            port = urlsplit(args.url).port
            dburl = args.database_url or os.environ["DATABASE_URL"]
        else:
            tmp = Path(tempfile.mkdtemp(prefix="labour-atlas-bench-submit-"))
            # As root the cluster runs as 'postgres', which must traverse this folder.
            os.chmod(tmp, 0o755)
            t0 = time.perf_counter()
            with console.status("starting PostgreSQL, loading reference data, drawing the 2025 communes"):
                pg, dburl = await asyncio.to_thread(start_database, tmp, args.db_set)
            console.print(f"database ready in {time.perf_counter() - t0:.1f} s (private cluster, fsync off, port {pg.port})"
                          + "".join(f"; {k} = {v}" for k, v in args.db_set))
            proc, port, log = start_server(tmp, dburl, args.workers, args.app)
            how = ("labour-atlas serve" if args.workers is None and args.app is None
                   else f"uvicorn {args.app or 'api.main:app'} --workers {args.workers or 1}")
            try:
                await wait_ready(port, proc)
            except RuntimeError:
                console.print(log.read_text(errors="replace")[-3000:], highlight=False, markup=False)
                raise
            console.print(f"server ready: {how} on http://{HOST}:{port} (pid {proc.pid}; log {log.name})")
            postmaster = int((pg.folder / "postmaster.pid").read_text().split()[0])
            cpu = CpuMeter({"app": proc.pid, "postgres": postmaster})
        if args.url:
            await wait_ready(port, None, seconds=10)

        Connection.authorization = await asyncio.to_thread(sign_in_surveyor, dburl, port)
        points = await asyncio.to_thread(sample_points, dburl, args.seed)
        if not points:
            raise RuntimeError("no 2025 commune with a polygon: load the reference data and approximate communes first")
        console.print(f"{len(points):,} random points inside {len({c for c, _, _ in points}):,} 2025 communes; "
                      f"{args.clients} clients; {os.cpu_count()} CPUs (client and server share them)")
        payloads = Payloads(points, args.seed)

        def submission():
            iid, body = payloads.next()
            return "POST", "/api/v1/submissions", body, iid

        def health():
            return "GET", "/health", None, None

        results = []
        phases = [("warm-up (POST)", args.warmup, submission, None),
                  ("baseline: GET /health", args.baseline_seconds, health, None),
                  ("POST /api/v1/submissions", args.seconds, submission, None),
                  (f"POST at {args.rate:g}/s (paced)", args.seconds if args.rate > 0 else 0, submission, args.rate)]
        for name, seconds, make, rate in phases:
            if seconds <= 0:
                continue
            with console.status(f"{name}: {args.clients} clients for {seconds:g} s"):
                r = await run_phase(name, port, args.clients, seconds, args.max_requests, args.timeout, make, cpu, dburl, rate)
            console.print(f"{name}: {r.requests:,} requests in {r.seconds:.1f} s, {r.rate:,.0f}/s, "
                          f"p95 {r.percentile(95):.1f} ms")
            results.append(r)
        report(results)

        sub = next(r for r in results if r.name == "POST /api/v1/submissions")
        paced = next((r for r in results if r.name.endswith("(paced)")), None)
        base = next((r for r in results if r.name.startswith("baseline")), None)
        if base is not None and base.rate:
            console.print(f"submissions per second / health checks per second: {sub.rate:,.0f} / {base.rate:,.0f} "
                          f"= {sub.rate / base.rate:.2f}")
        console.print(f"flat out: {sub.rate:,.0f} submissions/s (goal at least {GOAL_RATE:.0f}): "
                      + ("met" if sub.rate >= GOAL_RATE else "NOT met")
                      + f"; p95 {sub.percentile(95):.1f} ms at saturation (= clients / throughput, queueing)")
        if paced is not None:
            kept = paced.rate >= 0.97 * args.rate
            met = kept and paced.percentile(95) < GOAL_P95_MS and args.rate >= GOAL_RATE
            console.print(f"paced at {args.rate:g}/s: served {paced.rate:,.0f}/s, p95 {paced.percentile(95):.1f} ms "
                          f"(goal p95 under {GOAL_P95_MS:.0f} ms at {GOAL_RATE:.0f}/s): " + ("met" if met else "NOT met"))

        # No loss, no duplicates: what is stored for the ids sent is what was answered 201.
        sent = [i for r in results for i in r.sent]
        created = [i for r in results for i in r.created]
        stored, distinct = await asyncio.to_thread(count_stored, dburl, sent)
        stored_created, _ = await asyncio.to_thread(count_stored, dburl, created)
        ok = stored == distinct == len(created) == stored_created == len(set(created))
        console.print(f"database check: {len(sent):,} submissions sent (warm-up included), {len(created):,} answered 201; "
                      f"{stored:,} records stored for the ids sent ({distinct:,} distinct), {stored_created:,} of them "
                      f"answered 201: " + ("OK" if ok else "MISMATCH"))
        return 0 if ok else 1
    finally:
        try:
            if proc is not None:
                stop_server(proc)
        finally:
            try:
                if pg is not None:
                    pg.stop()
            finally:
                if tmp is not None:
                    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
