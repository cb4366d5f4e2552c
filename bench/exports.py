"""Benchmark: exports as GeoPackage and Shapefile against ``ogr2ogr`` reading the same rows from PostGIS, same run.

    .venv/bin/python bench/exports.py            # 100,000 and 1,000,000 survey records, the 2025 communes
    .venv/bin/python bench/exports.py --short    # 20,000 survey records, the 2025 communes (under a minute or so)

Starts a private PostgreSQL + PostGIS cluster (fsync off) in a temporary
folder, migrates it, loads the reference data and the approximate 2025
communes, and adds survey records set-based (a valid record ingested once,
copied with fresh ids, Vietnamese names and points spread over the 2025
communes). Then it serves the app in a subprocess (``uvicorn api.main:app``,
one process) and, for each data set and format:

- ours: ``GET /api/v1/exports/{layer}?format=...`` as an officer of the whole
  country (survey records with a purpose: audited as in use), the body streamed
  to a file; the server's resident memory (``VmRSS`` of its process) sampled
  every 50 ms; peak reported;
- baseline: ``ogr2ogr`` (the system's gdal-bin) reading the same columns of the
  same rows in the same order from PostGIS (``-sql``), writing the same format
  (Shapefile: ``-lco ENCODING=UTF-8``, and the parts zipped at the same deflate
  level as ours, so both deliver a zip), its own memory sampled the same way.
  ogr2ogr's text fields stay 80 bytes wide (a 1,000,000-record .dbf passes
  2 GB: GDAL warns and goes on); ``-lco RESIZE=YES``, which would narrow them
  as ours are, rewrites the file row by row (ogr2ogr took 50 s for 100,000
  records with it, 9 s without): the baseline is the faster ogr2ogr.

Ours and ogr2ogr alternate (ours first for one data set, ogr2ogr first for
the next). Goals: ours no slower than ogr2ogr (ratio ours/ogr2ogr <= 1.0) and
the server's memory flat: under 300 MB at every size. The last line is
``BENCH-RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("LABOUR_ATLAS_SECRET_KEY", secrets.token_urlsafe(32))

import httpx
from _common import private_cluster, remove_cluster, serve  # bench/ is the script's folder, first on sys.path
from sqlalchemy import text

from geodata import db, migrate
from geodata.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
MEMORY_GOAL_MB = 300.0
FLAT_MB = 50.0  # "flat": ten times the rows may not cost more than this much more memory
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương"]
GIVEN = ["Thị Hồng Nhung", "Văn Đạt", "Thị Ánh", "Hữu Phúc", "Ngọc Trâm", "Quốc Việt", "Thị Tuyết", "Đức Thắng", "Thu Hà"]


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB (0 once it has gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


class PeakMemory:
    """Samples a process's resident memory every 50 ms while in the ``with`` block; ``peak`` in MB."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self._stop.wait(0.05)

    def __enter__(self) -> PeakMemory:
        self.peak = rss_mb(self.pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def load_records(engine, start: int, n: int) -> None:
    """Survey records up to ``n`` in all (``start`` are there): one valid record ingested, copied set-based over the
    2025 communes."""
    from survey.ingest import Incoming, ingest
    from survey.store import Sender

    with engine.begin() as conn:
        code, lon, lat = conn.execute(text("""SELECT code, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom))
                                              FROM admin_unit WHERE structure = '2025' AND level = 'commune' AND parent_code = '42'
                                              ORDER BY code LIMIT 1""")).one()
        payload = {"instance_id": "00000000-0000-4000-8000-000000000001", "kind": "aspirant",
                   "collected_at": "2026-06-01T09:00:00+07:00", "surveyor": "Lê Văn Khảo", "consent": True,
                   "commune_code": code, "location": {"lat": lat, "lon": lon, "accuracy": 8.5},
                   "full_name": "Nguyễn Thị Hồng Nhung", "national_id": "042199012345", "phone": "0912345678",
                   "birth_year": 1999, "sex": "female", "ethnicity": "01", "household_status": "near_poor",
                   "markets_wanted": ["JP", "KR"], "sector": "caregiving", "aspirant_needs": ["language", "loan"]}
        (o,) = ingest(conn, [Incoming(json.dumps(payload, ensure_ascii=False), payload)], source="bench", sender=Sender("bench"))
        assert o.status in ("created", "exists"), o
        conn.execute(text("""
            CREATE TEMP TABLE commune_point ON COMMIT DROP AS
            SELECT row_number() OVER (ORDER BY code) - 1 AS i, code, parent_code, ST_PointOnSurface(geom) AS p
            FROM admin_unit WHERE structure = '2025' AND level = 'commune' AND geom IS NOT NULL"""))
        communes = conn.execute(text("SELECT count(*) FROM commune_point")).scalar_one()
        conn.execute(text("""
            INSERT INTO survey_record (province_code, instance_id, form_id, form_version, kind, collected_at, submitted_at,
                surveyor, source, structure, declared_commune_code, assigned_commune_code, geom, gps_accuracy_m, consent,
                id_hash, full_name, name_folded, birth_year, sex, answers, payload_hash, review_status, review_comment)
            SELECT c.parent_code, gen_random_uuid(), t.form_id, t.form_version, t.kind,
                   t.collected_at - make_interval(mins => g % 100000), t.submitted_at - make_interval(secs => g),
                   t.surveyor, 'bench', '2025', c.code, c.code,
                   ST_Translate(c.p, ((g::bigint * 7919) % 100 - 50) * 1e-5, ((g::bigint * 104729) % 100 - 50) * 1e-5), 5 + g % 30, true,
                   md5(g::text), (CAST(:family AS text[]))[1 + g % cardinality(CAST(:family AS text[]))] || ' ' || (CAST(:given AS text[]))[1 + (g / 7) % cardinality(CAST(:given AS text[]))],
                   t.name_folded, 1970 + g % 35, CASE WHEN g % 2 = 0 THEN 'female' ELSE 'male' END, t.answers,
                   md5('p' || g), (ARRAY['received', 'approved', 'has_issues'])[1 + g % 3],
                   CASE WHEN g % 50 = 0 THEN 'Kiểm tra lại địa chỉ thường trú' END
            FROM survey_record t, generate_series(GREATEST(:start, 1), :n - 1) g JOIN commune_point c ON c.i = g % :communes
            WHERE t.instance_id = :tpl"""), {"start": start, "n": n, "communes": communes, "tpl": payload["instance_id"],
                                              "family": FAMILY, "given": GIVEN})
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE survey_record"))


def ours(base: str, token: str, layer: str, params: dict, out: Path, pid: int) -> tuple[float, float, int]:
    """Seconds, peak server memory (MB) and rows of one export through the API."""
    with PeakMemory(pid) as mem, httpx.Client(base_url=base, timeout=None) as client:
        start = time.perf_counter()
        with client.stream("GET", f"/api/v1/exports/{layer}", params=params,
                           headers={"Authorization": f"Bearer {token}", "X-Purpose": "benchmark"}) as r:
            if r.status_code != 200:
                r.read()
                raise RuntimeError(f"{layer} {params}: {r.status_code} {r.text[:500]}")
            rows = int(r.headers["x-feature-count"])
            with open(out, "wb") as f:
                for block in r.iter_bytes(1 << 20):
                    f.write(block)
        seconds = time.perf_counter() - start
    return seconds, mem.peak, rows


def pg_dsn(url: str) -> str:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    parts = {"host": u.host, "port": u.port, "dbname": u.database, "user": u.username, "password": u.password}
    return "PG:" + " ".join(f"{k}={v}" for k, v in parts.items() if v)


def baseline(url: str, sql: str, fmt: str, layer: str, folder: Path) -> tuple[float, float, Path]:
    """Seconds and peak memory (MB) of ogr2ogr writing the same rows (and, for a shapefile, zipping its parts)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    stem = layer.replace("-", "_")
    if fmt == "gpkg":
        target, options = folder / f"{stem}.gpkg", ["-f", "GPKG"]
    else:
        target, options = folder / f"{stem}.shp", ["-f", "ESRI Shapefile", "-lco", "ENCODING=UTF-8"]
    cmd = ["ogr2ogr", *options, str(target), pg_dsn(url), "-sql", sql, "-nln", stem, "-a_srs", "EPSG:4326"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with PeakMemory(proc.pid) as mem:
        _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"ogr2ogr failed: {err.decode(errors='replace')[-2000:]}")
    if fmt == "shp":
        archive = folder / f"{stem}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
                if (folder / f"{stem}{ext}").exists():
                    z.write(folder / f"{stem}{ext}", f"{stem}{ext}")
        target = archive
    return time.perf_counter() - start, mem.peak, target


def record_sql() -> str:
    """The survey-records layer's own columns, all rows, in its order (what the officer of the country exports)."""
    from maps.sources.records import ANSWERS, OWN
    from survey.records import LIST_ORDER

    columns = ", ".join(f"{sql} AS {spec.name}" for spec, sql in OWN + ANSWERS)
    return f"SELECT {columns}, r.geom FROM survey_record r {LIST_ORDER}"


COMMUNE_SQL = ("SELECT u.code, u.name, u.unit_type, u.level, u.parent_code, u.structure, u.valid_from, u.valid_to, "
               "u.geom_quality, u.geom_source, ST_Multi(u.geom) AS geom FROM admin_unit u "
               "WHERE u.structure = '2025' AND u.level = 'commune' ORDER BY u.code")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="20,000 survey records only (a quick run)")
    parser.add_argument("--sizes", type=int, nargs="*", help="numbers of survey records (default 100000 1000000)")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([20_000] if args.short else [100_000, 1_000_000])
    if not shutil.which("ogr2ogr"):
        print("ogr2ogr is needed: apt-get install gdal-bin", file=sys.stderr)
        return 2
    folder, pg = private_cluster("labour-atlas-bench-exports-")
    url = pg.start()
    server = None
    figures, table = [], []
    peaks: dict[tuple[str, str], list[float]] = {}
    try:
        engine = db.use_database(url)
        migrate.upgrade()
        from api.security.accounts import create_user
        from api.security.tokens import create_access_token
        from etl.reference import seed_reference
        from geodata.approximate import approximate_communes
        from geodata.structures import Structure

        seed_reference()
        with engine.begin() as conn:
            approximate_communes(conn, Structure.v2025)
            officer = create_user(conn, f"bench-officer-{secrets.token_hex(3)}", secrets.token_urlsafe(18), "officer", ["all"], "2025")
        token, _ = create_access_token(officer, "officer", minutes=600)
        port = free_port()
        env = os.environ | {"DATABASE_URL": url, "PYTHONPATH": str(ROOT), "LABOUR_ATLAS_EXPORT_JOB_ROWS": str(10**8)}
        runs: list[tuple[str, int, str, dict, str]] = []
        loaded = 0
        for n in sizes:
            runs.append(("survey-records", n, "survey-records", {}, record_sql()))
        runs.append(("communes-2025", 0, "units", {"structure": "2025", "level": "commune"}, COMMUNE_SQL))
        base = f"http://127.0.0.1:{port}"
        for i, (label, n, layer, filters, sql) in enumerate(runs):
            if n:
                if server is not None:  # a fresh server per size: each peak is that size's own
                    os.killpg(server.pid, signal.SIGTERM)
                    server.wait(30)
                print(f"loading {n - loaded:,} more survey records ...", flush=True)
                started = time.perf_counter()
                load_records(engine, loaded, n)
                loaded = n
                print(f"  {time.perf_counter() - started:.0f} s", flush=True)
            if server is None or n:
                server = serve([sys.executable, "-m", "uvicorn", "api.main:app", "--log-level", "warning", "--port", str(port)], env, port,
                               folder / "server.log", ready=lambda status: status == 200, cwd=ROOT)
                idle = rss_mb(server.pid)
            for j, fmt in enumerate(("gpkg", "shp")):
                out = folder / f"ours.{fmt}"
                first_ours = (i + j) % 2 == 0
                result = {}
                for who in (("ours", "ogr2ogr") if first_ours else ("ogr2ogr", "ours")):
                    if who == "ours":
                        result["ours"] = ours(base, token, layer, {**filters, "format": fmt}, out, server.pid)
                    else:
                        result["ogr2ogr"] = baseline(url, sql, fmt, layer, folder / "ogr")
                seconds, peak, rows = result["ours"]
                ogr_seconds, ogr_peak, ogr_file = result["ogr2ogr"]
                ratio = seconds / ogr_seconds
                size = f"{label} {rows:,}" if n else f"{label} ({rows:,})"
                table.append((size, fmt, seconds, ogr_seconds, ratio, idle, peak, ogr_peak,
                              out.stat().st_size / 2**20, ogr_file.stat().st_size / 2**20))
                print(f"{size:28} {fmt:5} ours {seconds:7.1f} s  ogr2ogr {ogr_seconds:7.1f} s  ratio {ratio:5.2f}  "
                      f"server idle {idle:5.0f} MB peak {peak:5.0f} MB  ogr2ogr peak {ogr_peak:5.0f} MB  "
                      f"files {out.stat().st_size / 2**20:.1f} / {ogr_file.stat().st_size / 2**20:.1f} MB", flush=True)
                key = f"{label}-{rows}-{fmt}"
                figures += [
                    {"name": f"{key} seconds ours/ogr2ogr", "value": round(ratio, 3), "unit": "ratio", "goal": "<= 1.0",
                     "met": ratio <= 1.0},
                    {"name": f"{key} seconds ours", "value": round(seconds, 2), "unit": "s", "goal": None, "met": None},
                    {"name": f"{key} seconds ogr2ogr", "value": round(ogr_seconds, 2), "unit": "s", "goal": None, "met": None},
                    {"name": f"{key} server peak RSS", "value": round(peak, 1), "unit": "MB", "goal": f"< {MEMORY_GOAL_MB:.0f}",
                     "met": peak < MEMORY_GOAL_MB},
                    {"name": f"{key} server RSS above idle", "value": round(peak - idle, 1), "unit": "MB", "goal": None,
                     "met": None},
                ]
                peaks.setdefault((label, fmt), []).append(peak)
        for (label, fmt), seen in peaks.items():
            if label == "survey-records" and len(seen) > 1:  # flat: the largest size needs no more than the smallest
                growth = seen[-1] - seen[0]
                figures.append({"name": f"survey-records {fmt} peak RSS growth from {sizes[0]} to {sizes[-1]} rows",
                                "value": round(growth, 1), "unit": "MB", "goal": f"< {FLAT_MB:.0f}", "met": growth < FLAT_MB})
        print()
        print(f"{'data':28} {'fmt':5} {'ours s':>7} {'ogr s':>7} {'ratio':>6} {'idle MB':>8} {'peak MB':>8} {'ogr MB':>7} "
              f"{'ours MB':>8} {'ogr file':>8}")
        for row in table:
            print(f"{row[0]:28} {row[1]:5} {row[2]:7.1f} {row[3]:7.1f} {row[4]:6.2f} {row[5]:8.0f} {row[6]:8.0f} {row[7]:7.0f} "
                  f"{row[8]:8.1f} {row[9]:8.1f}")
        return 0
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
        remove_cluster(folder, pg)
        print("BENCH-RESULT " + json.dumps({"bench": "exports", "figures": figures}, ensure_ascii=False))


if __name__ == "__main__":
    raise SystemExit(main())
