"""Benchmark: our commune tiles against tipg's, on the same database, the same tiles, the same load.

    .venv/bin/python bench/tiles.py [--concurrency 8] [--seconds 10] [--rounds 3] [--tipg-venv .bench/tipg]

Needs ``wrk`` (``apt-get install wrk``): a Python client on the same
machine is slower than the servers and would measure itself. Starts a
private PostGIS with the reference data and the approximate communes and
serves it three times, one process each — Labour Atlas with its tile cache
(``/tiles/units/{z}/{x}/{y}.mvt``, level commune), Labour Atlas with the
cache off (``LABOUR_ATLAS_TILE_CACHE_TILES=0``: every tile made anew) and
tipg (``/collections/public.admin_unit/tiles/WebMercatorQuad/...``, the
same table and web geometry; installed with pip into its own virtualenv on
first run). wrk then requests the same list of tiles over Viet Nam at zooms
5-12 round and round, with the same connections and ``Accept-Encoding:
gzip``, for ``--seconds``, the servers in turn, ``--rounds`` times; medians
are printed. Cold: ours without cache against tipg (which has none).
Repeated: ours with its cache, warmed by one pass, against tipg. Goals: cold
at least as fast as tipg, repeated at least three times tipg.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("LABOUR_ATLAS_SECRET_KEY", "bench-only-R7kW2mQ9xT4vN8pL3cZ6aB5dE")

import httpx
from _common import private_cluster, remove_cluster, serve
from _result import Figure, emit  # bench/ is the script's folder, first on sys.path

from geodata import db, migrate
from geodata.embedded import free_port

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


# Each connection walks the list from its own offset; done() prints one JSON line.
WRK_SCRIPT = r"""
local paths, n, counter = {}, 0, 0
function init(args)
  for line in io.lines(args[1]) do n = n + 1; paths[n] = line end
  counter = math.random(n)
end
function request()
  counter = counter % n + 1
  return wrk.format("GET", paths[counter])
end
function done(summary, latency, requests)
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout
  io.write(string.format('{"requests": %d, "seconds": %f, "p95_ms": %f, "bytes": %d, "errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(95) / 1000, summary.bytes, bad))
end
"""


def tipg_python(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "tipg", "uvicorn"], check=True)
    return python


def features(base: str, paths: list[str]) -> int:
    """How many features the tiles hold (the servers must be compared on the same content)."""
    import mapbox_vector_tile

    total = 0
    with httpx.Client(base_url=base, timeout=120) as client:
        for path in paths:
            r = client.get(path)
            r.raise_for_status()
            total += sum(len(layer["features"]) for layer in mapbox_vector_tile.decode(r.content).values())
    return total


def load(base: str, paths_file: Path, script: Path, concurrency: int, seconds: int) -> dict:
    out = subprocess.run(["wrk", "-t", "2", "-c", str(concurrency), "-d", f"{seconds}s", "--timeout", "60s",
                          "-H", "Accept-Encoding: gzip", "-s", str(script), base, "--", str(paths_file)],
                         check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if result["errors"]:
        raise RuntimeError(f"{base}: {result['errors']} failed requests")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tipg-venv", type=Path, default=ROOT / ".bench" / "tipg")
    parser.add_argument("--short", action="store_true", help="3 s per run, one round (tipg must be installed already)")
    args = parser.parse_args(argv)
    if args.short:
        args.seconds, args.rounds = 3, 1
    if not shutil.which("wrk"):
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        emit("tiles", [], skipped="wrk is not installed (apt-get install wrk)")
        return 0
    if args.short and not (args.tipg_venv / "bin" / "python").exists():
        # Installing tipg (pip, network) is not a short run's business.
        emit("tiles", [], skipped=f"tipg is not installed in {args.tipg_venv} (a full run installs it)")
        return 0
    python = tipg_python(args.tipg_venv)
    folder, pg = private_cluster()
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
        env = os.environ | {"DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
        ports = {"ours": free_port(), "ours-no-cache": free_port(), "tipg": free_port()}
        ours_cmd = [sys.executable, "-m", "uvicorn", "api.main:app", "--log-level", "warning", "--port"]
        servers.append(serve([*ours_cmd, str(ports["ours"])], env, ports["ours"], folder / "ours.log"))
        servers.append(serve([*ours_cmd, str(ports["ours-no-cache"])], env | {"LABOUR_ATLAS_TILE_CACHE_TILES": "0"},
                             ports["ours-no-cache"], folder / "ours-no-cache.log"))
        tipg_env = env | {"DATABASE_URL": url.replace("postgresql+psycopg://", "postgresql://"),
                          "TIPG_DB_TABLES": '["public.admin_unit"]', "TIPG_DB_EXCLUDE_FUNCTION_SCHEMAS": '["public"]'}
        servers.append(serve([str(python), "-m", "uvicorn", "tipg.main:app", "--log-level", "warning", "--port", str(ports["tipg"])],
                             tipg_env, ports["tipg"], folder / "tipg.log", "/collections"))
        wanted = tiles()
        ours_paths = [f"/tiles/units/{z}/{x}/{y}.mvt?structure=2025&level=commune" for z, x, y in wanted]
        tipg_paths = [f"/collections/public.admin_unit/tiles/WebMercatorQuad/{z}/{x}/{y}?structure=2025&level=commune"
                      f"&geom-column=geom_web&properties=code,name,level,geom_quality" for z, x, y in wanted]
        paths = {"ours": ours_paths, "ours-no-cache": ours_paths, "tipg": tipg_paths}
        files = {}
        for name, listed in paths.items():
            files[name] = folder / f"{name}.paths"
            files[name].write_text("\n".join(listed) + "\n")
        script = folder / "tiles.lua"
        script.write_text(WRK_SCRIPT)
        base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        counted = {name: features(base[name], paths[name]) for name in ("ours", "tipg")}  # also warms our cache
        print(f"{len(wanted)} tiles at zooms {ZOOMS.start}-{ZOOMS.stop - 1}; features in them: ours {counted['ours']:,}, "
              f"tipg {counted['tipg']:,}; wrk, {args.concurrency} connections, {args.seconds} s per run, {args.rounds} rounds\n")
        runs: dict[str, list[dict]] = {name: [] for name in ports}
        order = list(ports)
        for r in range(args.rounds):
            for name in order[r % 3:] + order[:r % 3]:  # turns rotate: no server always runs on a cooler machine
                runs[name].append(load(base[name], files[name], script, args.concurrency, args.seconds))
        rate = {name: statistics.median(x["requests"] / x["seconds"] for x in done) for name, done in runs.items()}
        p95 = {name: statistics.median(x["p95_ms"] for x in done) for name, done in runs.items()}
        print(f"{'server':22} {'tiles/s':>9} {'p95 ms':>8}   (medians)")
        for name in ports:
            print(f"{name:22} {rate[name]:9.1f} {p95[name]:8.1f}")
        print()
        figures = [Figure(f"{name}: tiles per second", rate[name], "tiles/s") for name in ports]
        figures += [Figure(f"{name}: p95", p95[name], "ms") for name in ports]
        for label, ours, goal in (("cold", "ours-no-cache", 1.0), ("repeated", "ours", 3.0)):
            ratio = rate[ours] / rate["tipg"]
            print(f"{label}: {ours} / tipg = {ratio:.2f}x (goal at least {goal:.0f}x) -> {'met' if ratio >= goal else 'NOT met'}")
            figures.append(Figure(f"{label}: {ours} / tipg", ratio, "x", f">= {goal:.0f}x", ratio >= goal))
        emit("tiles", figures)
        return 0
    finally:
        for proc in servers:
            os.killpg(proc.pid, signal.SIGTERM)
        remove_cluster(folder, pg)


if __name__ == "__main__":
    raise SystemExit(main())
