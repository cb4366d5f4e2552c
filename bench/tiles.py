"""Benchmark: our commune tiles against tipg's, on the same database, the same tiles, the same concurrency.

    .venv/bin/python bench/tiles.py [--concurrency 8] [--tipg-venv .bench/tipg]

Starts a private PostGIS with the reference data and the approximate
communes, serves it twice — Labour Atlas (``/tiles/units/{z}/{x}/{y}.mvt``,
level commune) and tipg (``/collections/public.admin_unit/tiles/...``, the
same table; tipg is installed with pip into its own virtualenv on first run,
``--tipg-venv``) — and requests the same list of tiles over Viet Nam at
zooms 5-12, with the same concurrency, twice: cold (first request of each
tile) and repeated. Prints tiles per second, p95 latency, bytes, and the
ratio ours / tipg. Goals: cold at least as fast as tipg, repeated at least
three times tipg.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("LABOUR_ATLAS_SECRET_KEY", "bench-only-R7kW2mQ9xT4vN8pL3cZ6aB5dE")

import httpx

from geodata import db, migrate
from geodata.embedded import EmbeddedPostgres, free_port

ROOT = Path(__file__).resolve().parent.parent
VIETNAM = (102.1, 8.5, 109.5, 23.4)
ZOOMS = range(5, 13)
TILES_PER_ZOOM = 40


def tiles() -> list[tuple[int, int, int]]:
    """A fixed list of tiles over Viet Nam's land, zooms 5-12 (all at low zooms, a spread sample at high ones)."""
    out = []
    for z in ZOOMS:
        n = 2**z
        x0, x1 = (int((lon + 180) / 360 * n) for lon in (VIETNAM[0], VIETNAM[2]))
        y0, y1 = (int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n) for lat in (VIETNAM[3], VIETNAM[1]))
        every = [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
        step = max(1, len(every) // TILES_PER_ZOOM)
        out += every[::step][:TILES_PER_ZOOM]
    return out


def tipg_python(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "tipg", "uvicorn"], check=True)
    return python


def serve(cmd: list[str], env: dict[str, str], port: int, probe: str) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=2).status_code < 500:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server {' '.join(cmd)} did not start")


async def fetch_all(urls: list[str], concurrency: int) -> tuple[float, list[float], int]:
    limit = asyncio.Semaphore(concurrency)
    times: list[float] = []
    size = 0

    async with httpx.AsyncClient(timeout=120) as client:
        async def one(url: str) -> None:
            nonlocal size
            async with limit:
                t = time.perf_counter()
                r = await client.get(url)
                times.append(time.perf_counter() - t)
                r.raise_for_status()
                size += len(r.content)

        start = time.perf_counter()
        await asyncio.gather(*(one(u) for u in urls))
        return time.perf_counter() - start, times, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--tipg-venv", type=Path, default=ROOT / ".bench" / "tipg")
    args = parser.parse_args(argv)
    python = tipg_python(args.tipg_venv)
    folder = Path(tempfile.mkdtemp(prefix="labour-atlas-bench-"))
    folder.chmod(0o755)
    pg = EmbeddedPostgres(folder / "pgdata", durable=False)
    url = pg.start()
    servers = []
    try:
        db.use_database(url)
        migrate.upgrade()
        from etl.reference import seed_reference
        from geodata.approximate import approximate_communes
        from geodata.structures import Structure

        seed_reference()
        with db.get_engine().begin() as conn:
            approximate_communes(conn, Structure.v2025)
        db.close_database()
        ours, theirs = free_port(), free_port()
        env = os.environ | {"DATABASE_URL": url}
        servers.append(serve([sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(ours), "--log-level", "warning"],
                             env | {"PYTHONPATH": str(ROOT)}, ours, "/health"))
        tipg_env = env | {"DATABASE_URL": url.replace("postgresql+psycopg://", "postgresql://"), "TIPG_DB_TABLES": "public.admin_unit",
                          "TIPG_DB_EXCLUDE_FUNCTION_SCHEMAS": '["public"]'}
        servers.append(serve([str(python), "-m", "uvicorn", "tipg.main:app", "--port", str(theirs), "--log-level", "warning"],
                             tipg_env, theirs, "/collections"))
        wanted = tiles()
        lists = {
            "labour-atlas": [f"http://127.0.0.1:{ours}/tiles/units/{z}/{x}/{y}.mvt?structure=2025&level=commune" for z, x, y in wanted],
            "tipg": [f"http://127.0.0.1:{theirs}/collections/public.admin_unit/tiles/WebMercatorQuad/{z}/{x}/{y}"
                     f"?filter=structure%3D%272025%27%20AND%20level%3D%27commune%27&geom-column=geom_web"
                     f"&properties=code,name,level,geom_quality" for z, x, y in wanted],
        }
        results = {}
        for name, urls in lists.items():
            for run in ("cold", "repeat"):
                elapsed, times, size = asyncio.run(fetch_all(urls, args.concurrency))
                p95 = statistics.quantiles(times, n=20)[18]
                results[name, run] = (len(urls) / elapsed, p95, size)
        print(f"{len(wanted)} tiles at zooms {ZOOMS.start}-{ZOOMS.stop - 1}, concurrency {args.concurrency}\n")
        print(f"{'server':14} {'run':7} {'tiles/s':>9} {'p95 ms':>8} {'MB':>7}")
        for (name, run), (rate, p95, size) in results.items():
            print(f"{name:14} {run:7} {rate:9.1f} {p95 * 1000:8.1f} {size / 1e6:7.2f}")
        for run, goal in (("cold", 1.0), ("repeat", 3.0)):
            ratio = results["labour-atlas", run][0] / results["tipg", run][0]
            print(f"{run}: ours / tipg = {ratio:.2f}x (goal at least {goal:.0f}x) -> {'met' if ratio >= goal else 'NOT met'}")
        return 0
    finally:
        for proc in servers:
            os.killpg(proc.pid, signal.SIGTERM)
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
