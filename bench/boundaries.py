"""Benchmark: import 11,000 synthetic communes as GeoPackage, Shapefile and GeoJSON, against ogr2ogr.

Run by hand (it is not a test)::

    .venv/bin/python bench/boundaries.py                  # 11,000 communes, ~300 vertices each
    .venv/bin/python bench/boundaries.py --communes 3000 --vertices 100

It starts its own private PostgreSQL + PostGIS cluster in a temporary folder
(fsync off), loads the bundled reference data and draws the approximate
pre-2025 communes (as the demo does). Then it makes SYNTHETIC commune
polygons (not real boundaries): every district with a polygon is tiled by
Voronoi cells of random points, one cell per commune of the code list, plus
extra cells with new codes (40001...) until there are ``--communes``; each
cell is densified to about ``--vertices`` vertices, so that the GeoJSON
weighs what a province's full-resolution file does (the issue's 11,000
polygons were 123 MB of GeoJSON). It writes them three ways, as they come:

- GeoPackage and Shapefile in VN-2000 / UTM zone 48N (EPSG:3405; the
  Shapefile with a .cpg of UTF-8): read, reprojected to WGS 84;
- GeoJSON in WGS 84 (RFC 7946).

For each file, timed, in a fresh Python process each (so that its peak
memory is the import's own, ``ru_maxrss``):

1. ``import_boundaries`` (``labour-atlas import boundaries ... --allow-new-units``, fields
   ``ma_xa``, ``ten_xa``, ``loai``, ``ma_huyen``),
   the whole import: read once, codes and geometry checked, reprojected,
   stored, checked against parents and neighbours, approximate communes
   redrawn, recorded; then undone (not timed) so that every format starts
   from the same database;
2. reading alone (``etl.boundary_files.read_layer``), to show where the
   time goes;
3. ``ogr2ogr`` loading the same file into a new PostGIS table, reprojected
   to EPSG:4326 (``-t_srs``, ``PG_USE_COPY``), if ``ogr2ogr`` is on the PATH
   (Debian: ``apt-get install gdal-bin``): the baseline of a plain load
   without any check. Its peak memory is measured the same way.

It prints seconds, peak memory and the ratio import / ogr2ogr per format,
and whether the goal (under 30 s each, under 1 GB) is met. The cluster and
its folder are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _result import Figure, emit, judged  # bench/ is the script's folder, first on sys.path

from geodata import db, migrate
from geodata.embedded import EmbeddedPostgres

FORMATS = {"gpkg": ("GeoPackage", 3405), "shp": ("Shapefile", 3405), "geojson": ("GeoJSON", 4326)}
GOAL_SECONDS = 30
GOAL_MB = 1024


def start_database(folder: Path) -> tuple[EmbeddedPostgres, str]:
    pg = EmbeddedPostgres(folder / "pgdata", durable=False)
    url = pg.start()
    db.use_database(url)
    migrate.upgrade()
    from etl.reference import seed_reference
    from geodata.approximate import approximate_communes
    from geodata.structures import Structure

    seed_reference()
    with db.get_engine().begin() as conn:
        approximate_communes(conn, Structure.pre2025)
    return pg, url


def synthetic_communes(total: int, vertices: int, seed: int = 11) -> gpd.GeoDataFrame:
    """SYNTHETIC commune polygons tiling the real district polygons; real codes first, new codes after."""
    rng = np.random.default_rng(seed)
    with db.get_engine().connect() as conn:
        districts = conn.execute(
            text(
                """SELECT d.code, ST_AsBinary(d.geom) AS geom, array_agg(c.code ORDER BY c.code) AS communes,
                          array_agg(c.name ORDER BY c.code) AS names
                   FROM admin_unit d JOIN admin_unit c ON c.structure = d.structure AND c.parent_code = d.code
                   WHERE d.structure = 'pre2025' AND d.level = 'district' AND d.geom IS NOT NULL
                   GROUP BY d.code, d.geom ORDER BY d.code"""
            )
        ).all()
    real = sum(len(d.communes) for d in districts)
    extra = max(total - real, 0)
    share = np.array([len(d.communes) for d in districts], dtype=float)
    extras = rng.multinomial(extra, share / share.sum()) if extra else np.zeros(len(districts), dtype=int)
    codes, names, parents, cells = [], [], [], []
    next_code = 40001
    # A few real district polygons overlap (Thanh Ba and Cẩm Khê by 0.09 km²): each district gives up what
    # the districts before it took, so that the synthetic communes overlap nowhere.
    outlines = shapely.from_wkb([bytes(d.geom) for d in districts])
    tree = shapely.STRtree(outlines)
    for i, j in tree.query(outlines, predicate="intersects").T:
        if j < i and shapely.area(shapely.intersection(outlines[i], outlines[j])) > 0:
            outlines[i] = shapely.difference(outlines[i], outlines[j])
    for d, outline, more in zip(districts, outlines, extras, strict=True):
        n = len(d.communes) + int(more)
        minx, miny, maxx, maxy = outline.bounds
        points: list[shapely.Point] = []
        while len(points) < n:
            candidates = shapely.points(rng.uniform(minx, maxx, 4 * n), rng.uniform(miny, maxy, 4 * n))
            points += list(candidates[shapely.contains(outline, candidates)])[: n - len(points)]
        tiles = shapely.get_parts(shapely.voronoi_polygons(shapely.MultiPoint(points), extend_to=outline, ordered=True))
        tiles = shapely.intersection(tiles, outline)
        for i, tile in enumerate(tiles):
            if i < len(d.communes):
                codes.append(d.communes[i])
                names.append(d.names[i])
            else:
                codes.append(f"{next_code:05d}")
                names.append(f"Xã Tổng Hợp {next_code}")
                next_code += 1
            parents.append(d.code)
            cells.append(tile)
    cells = np.array(cells, dtype=object)
    # About `vertices` vertices per cell: segments of a length that splits its perimeter so.
    cells = shapely.segmentize(cells, np.maximum(shapely.length(cells) / vertices, 1e-6))
    types = ["xã"] * len(codes)
    # Field names of at most ten characters, as a Shapefile keeps them.
    return gpd.GeoDataFrame({"ma_xa": codes, "ten_xa": names, "loai": types, "ma_huyen": parents}, geometry=cells, crs=4326)


def write_files(gdf: gpd.GeoDataFrame, folder: Path) -> dict[str, Path]:
    out = {}
    for ext, (_, epsg) in FORMATS.items():
        path = folder / f"communes.{ext}"
        frame = gdf if epsg == 4326 else gdf.to_crs(epsg)
        kwargs = {"encoding": "UTF-8"} if ext == "shp" else {}
        frame.to_file(path, **kwargs)
        out[ext] = path
    return out


def child(mode: str, path: str) -> None:
    """Run one measurement in this (fresh) process; print its result as JSON."""
    from etl.boundaries import BoundaryFields, import_boundaries
    from etl.boundary_files import read_layer
    from geodata.structures import Level, Structure

    t = time.perf_counter()
    result = {}
    if mode == "import":
        r = import_boundaries(Path(path), level=Level.commune, structure=Structure.pre2025, allow_new_units=True,
                              fields=BoundaryFields(code="ma_xa", name="ten_xa", unit_type="loai", parent="ma_huyen"))
        result = {"import_id": r.import_id, "inserted": r.inserted, "updated": r.updated, "redrawn": r.approximate_redrawn,
                  "outside": len(r.outside), "overlaps": len(r.overlaps), "gaps": len(r.gaps)}
    else:
        result = {"features": len(read_layer(Path(path)).attributes)}
    result["seconds"] = time.perf_counter() - t
    print(json.dumps(result))


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``cmd``; return (seconds, peak resident memory of that process in MB, standard output).

    The peak is sampled from ``/proc/PID/status`` every 20 ms: ``ru_maxrss``
    of a child started from this (big) process would include this one's
    memory at the fork.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, text=True)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _rss_kb(proc.pid))
            time.sleep(0.02)
        seconds = time.perf_counter() - t
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, cmd[:4]))} failed: {err.read().strip()[-2000:]}")
        return seconds, peak / 1024, out.read()


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--communes", type=int, default=11_000)
    parser.add_argument("--vertices", type=int, default=300, help="vertices per synthetic commune (about)")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--short", action="store_true", help="1,500 communes of about 100 vertices, GeoPackage only")
    args = parser.parse_args(argv)
    if args.short:
        args.communes, args.vertices = 1_500, 100
    full_size = args.communes >= 11_000 and args.vertices >= 300
    if args.child:
        child(*args.child)
        return 0
    folder = Path(tempfile.mkdtemp(prefix="labour-atlas-bench-"))
    folder.chmod(0o755)
    pg = None
    try:
        t = time.perf_counter()
        pg, url = start_database(folder)
        print(f"database ready in {time.perf_counter() - t:.1f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        t = time.perf_counter()
        gdf = synthetic_communes(args.communes, args.vertices)
        files = write_files(gdf, folder)
        if args.short:
            # Each format costs the same fixed set-up and clean-up: one is enough for a short run.
            files = {"gpkg": files["gpkg"]}
        vertices = int(shapely.get_num_coordinates(gdf.geometry.values).sum())
        sizes = {ext: sum(q.stat().st_size for q in folder.glob("communes.*") if q.suffix.lower() in
                          ((".shp", ".shx", ".dbf", ".prj", ".cpg") if ext == "shp" else (f".{ext}",))) for ext in files}
        print(f"{len(gdf):,} synthetic communes, {vertices:,} vertices, written in {time.perf_counter() - t:.1f} s: "
              + ", ".join(f"{FORMATS[ext][0]} {size / 1e6:.0f} MB" for ext, size in sizes.items()), flush=True)
        db.close_database()
        env = {**os.environ, "DATABASE_URL": url}
        ogr2ogr = shutil.which("ogr2ogr")
        if ogr2ogr is None:
            print("ogr2ogr not found (Debian: apt-get install gdal-bin): no baseline")
        pg_dsn = url.replace("postgresql+psycopg://", "postgresql://")
        rows = []
        me = [sys.executable, str(Path(__file__).resolve())]
        for ext, path in files.items():
            seconds, peak, out = run_measured([*me, "--child", "import", str(path)], env)
            result = json.loads(out.strip().splitlines()[-1])
            read_s, read_peak, _ = run_measured([*me, "--child", "read", str(path)], env)
            from etl.boundary_history import undo_import

            db.use_database(url)
            undo_import(result["import_id"])
            db.close_database()
            base = None
            if ogr2ogr:
                base = run_measured(
                    [ogr2ogr, "--config", "PG_USE_COPY", "YES", "-f", "PostgreSQL", f"PG:{_libpq(pg_dsn)}", str(path),
                     "-nln", f"ogr_{ext}", "-t_srs", "EPSG:4326", "-nlt", "PROMOTE_TO_MULTI", "-lco", "GEOMETRY_NAME=geom",
                     "-overwrite"],
                    env,
                )
            rows.append((ext, seconds, peak, result, read_s, read_peak, base))
            load = os.getloadavg()[0]
            print(f"{FORMATS[ext][0]}: import {seconds:.1f} s (in the process {result['seconds']:.1f} s), peak {peak:.0f} MB; "
                  f"{result['inserted']} new, {result['updated']} updated, {result['redrawn']} approximate communes redrawn"
                  + (f"; ogr2ogr {base[0]:.1f} s, peak {base[1]:.0f} MB" if base else "") + f" (load average {load:.1f})", flush=True)
        print()
        print(f"{'file':<11} {'import s':>9} {'peak MB':>8} {'read s':>7} {'ogr2ogr s':>10} {'ogr MB':>7} {'import/ogr2ogr':>15}  goal (<{GOAL_SECONDS} s, <{GOAL_MB} MB)")
        figures = []
        for ext, seconds, peak, _, read_s, _, base in rows:
            ratio = f"{seconds / base[0]:.2f}x" if base else "-"
            met = "met" if seconds < GOAL_SECONDS and peak < GOAL_MB else "NOT met"
            figures += [
                Figure(f"{FORMATS[ext][0]}: import {args.communes:,} communes", seconds, "s",
                       f"< {GOAL_SECONDS} s for 11,000 communes", judged(seconds < GOAL_SECONDS, not full_size)),
                Figure(f"{FORMATS[ext][0]}: peak memory", peak, "MB", f"< {GOAL_MB:,} MB for 11,000 communes",
                       judged(peak < GOAL_MB, not full_size)),
            ]
            if base:
                figures.append(Figure(f"{FORMATS[ext][0]}: import / ogr2ogr", seconds / base[0], "x"))
            print(f"{FORMATS[ext][0]:<11} {seconds:9.1f} {peak:8.0f} {read_s:7.1f} {base[0] if base else float('nan'):10.1f} "
                  f"{base[1] if base else float('nan'):7.0f} {ratio:>15}  {met}")
        emit("boundaries", figures)
    finally:
        db.close_database()
        if pg is not None:
            pg.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


def _libpq(url: str) -> str:
    """A libpq key=value connection string from a postgresql:// URL (what GDAL's PG: prefix takes)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return f"host={u.host} port={u.port} dbname={u.database} user={u.username} password={u.password}"


if __name__ == "__main__":
    raise SystemExit(main())
