"""Benchmark: assign many points to their 2025 commune, three ways.

Run by hand (it is not a test)::

    .venv/bin/python bench/locate.py                 # 1,000,000 points
    .venv/bin/python bench/locate.py --points 100000
    .venv/bin/python bench/locate.py --points 100000 --variants   # also time other SQL plans

It starts its own private PostgreSQL + PostGIS cluster in a temporary folder
(fsync off), loads the bundled reference data and the approximate 2025
communes, draws N random points uniformly inside the union of the 2025
province polygons (fixed seed), and assigns each point to the commune whose
polygon covers it (the lowest code on a shared border):

1. set-based in PostGIS: COPY the points into a table (id, geom), then one
   ``INSERT ... SELECT`` joining ``admin_unit_part`` with ``ST_Covers``; the
   time includes building and sending the COPY, indexing the points and
   ANALYZE;
2. geopandas ``sjoin`` of the points against the commune polygons read from
   PostGIS; the time includes ``read_postgis`` and building the points;
3. one query per point (``geodata.locate.LOCATE_SQL``, as ``/api/v1/locate``
   runs it) on a sample, scaled to N.

It prints points per second for each, the ratios, and how often the methods
agree. The cluster and its folder are removed at the end.

What makes the set-based query fast (see ``--variants``): with no index on the
points, PostgreSQL probes ``admin_unit_part`` once per point and, for each
probe, ANDs the GiST index with the btree on ``(structure, code)``, reading
the thousands of entries of structure '2025' every time (about 0.25 ms per
point). With a GiST index on the points and ANALYZE, it loops over the ~4,400
commune parts instead and fetches the points inside each one; PostGIS then
tests many points against the same polygon, which it prepares once.
Sorting the points spatially (Morton order) before the COPY keeps each part's
points on few pages.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, Engine, text

from geodata.structures import Structure

console = Console()

STRUCTURE = Structure.v2025
# A date on which the 2025 structure is in force (for LOCATE_SQL).
ON_DATE = dt.date(2026, 1, 1)

# -- method 1: set-based in PostGIS -------------------------------------------
# Scratch tables, UNLOGGED: nothing here needs to survive a crash.
POINT_TABLES_SQL = (
    "DROP TABLE IF EXISTS bench_point, bench_set",
    "CREATE UNLOGGED TABLE bench_point (id integer NOT NULL, geom geometry(Point, 4326) NOT NULL)",
)
RESULT_TABLE_SQL = "CREATE UNLOGGED TABLE bench_set (id integer NOT NULL, code text NOT NULL)"

# The lowest code per point, three ways of writing it.
SELECT_SQL = {
    "distinct": """
        SELECT DISTINCT ON (pt.id) pt.id, p.code
        FROM bench_point pt
        JOIN admin_unit_part p
          ON p.structure = :s AND p.level = 'commune' AND ST_Covers(p.geom, pt.geom)
        ORDER BY pt.id, p.code
    """,
    "group": """
        SELECT pt.id, min(p.code) AS code
        FROM bench_point pt
        JOIN admin_unit_part p
          ON p.structure = :s AND p.level = 'commune' AND ST_Covers(p.geom, pt.geom)
        GROUP BY pt.id
    """,
    "lateral": """
        SELECT pt.id, c.code
        FROM bench_point pt
        CROSS JOIN LATERAL (
            SELECT p.code FROM admin_unit_part p
            WHERE p.structure = :s AND p.level = 'commune' AND ST_Covers(p.geom, pt.geom)
            ORDER BY p.code LIMIT 1
        ) c
    """,
}


@dataclass(frozen=True)
class SetPlan:
    """How the set-based assignment is run."""

    query: str = "distinct"        # a key of SELECT_SQL
    order: str = "morton"          # 'morton': sort the points spatially before the COPY; 'none'
    point_index: bool = True       # GiST index on the points after the COPY
    analyze: bool = True           # ANALYZE the points after the COPY
    bitmapscan: bool = True        # enable_bitmapscan (off avoids the GiST AND btree plan)
    workers: int | None = None     # max_parallel_workers_per_gather (None: server default)
    into: str = "insert"           # 'insert': INSERT ... SELECT (serial); 'ctas': CREATE TABLE AS (may go parallel)
    jit: bool = False              # JIT compiles ~80 ms of code for a query this "expensive" (by estimate)

    def label(self) -> str:
        parts = [self.query, f"order={self.order}", "point GiST" if self.point_index else "no point index"]
        if not self.analyze:
            parts.append("no ANALYZE")
        if not self.bitmapscan:
            parts.append("bitmapscan off")
        if self.workers is not None:
            parts.append(f"workers={self.workers}")
        parts.append("INSERT ... SELECT" if self.into == "insert" else "CREATE TABLE AS")
        if self.jit:
            parts.append("jit on")
        return ", ".join(parts)


BEST = SetPlan()
# Where the default plan comes from; --variants times each of these.
VARIANTS = [
    SetPlan(query="distinct", order="none", point_index=False, analyze=False, jit=True),   # the naive query
    SetPlan(query="distinct", order="none", point_index=False, analyze=True),
    SetPlan(query="lateral", order="none", point_index=False),
    SetPlan(query="distinct", order="none", point_index=False, bitmapscan=False),
    SetPlan(query="distinct", order="morton", point_index=False, bitmapscan=False),
    SetPlan(query="lateral", order="morton", point_index=True),
    SetPlan(query="distinct", order="none", point_index=True),
    SetPlan(query="distinct", order="morton", point_index=True, jit=True),
    SetPlan(query="group", order="morton", point_index=True),
    BEST,
    SetPlan(query="distinct", order="morton", point_index=True, workers=0, into="ctas"),
    SetPlan(query="distinct", order="morton", point_index=True, into="ctas"),
]

# One row of a binary COPY: field count, then (length, value) per field. The
# geometry is sent as little-endian EWKB: Point with SRID (type 0x20000001).
COPY_ROW = np.dtype([
    ("fields", ">i2"), ("id_len", ">i4"), ("id", ">i4"), ("geom_len", ">i4"),
    ("byte_order", "u1"), ("wkb_type", "<u4"), ("srid", "<u4"), ("x", "<f8"), ("y", "<f8"),
])
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)


def morton_order(xy: np.ndarray) -> np.ndarray:
    """A permutation sorting points along a Z-order (Morton) curve of 16 bits per axis."""
    lo, hi = xy.min(0), xy.max(0)
    q = ((xy - lo) / np.where(hi > lo, hi - lo, 1) * 0xFFFF).astype(np.uint64)

    def spread(v: np.ndarray) -> np.ndarray:
        v = (v | (v << np.uint64(8))) & np.uint64(0x00FF00FF)
        v = (v | (v << np.uint64(4))) & np.uint64(0x0F0F0F0F)
        v = (v | (v << np.uint64(2))) & np.uint64(0x33333333)
        return (v | (v << np.uint64(1))) & np.uint64(0x55555555)

    return np.argsort(spread(q[:, 0]) | (spread(q[:, 1]) << np.uint64(1)), kind="stable")


def copy_payload(points: np.ndarray, order: str) -> bytes:
    """The whole binary COPY stream of (id, geom) for ``points``; id = row number in ``points``."""
    ids = np.arange(len(points), dtype=np.int32)
    if order == "morton":
        perm = morton_order(points)
        ids, points = ids[perm], points[perm]
    rows = np.empty(len(points), dtype=COPY_ROW)
    rows["fields"] = 2
    rows["id_len"] = 4
    rows["id"] = ids
    rows["geom_len"] = COPY_ROW.itemsize - 14  # 25 bytes of EWKB
    rows["byte_order"] = 1
    rows["wkb_type"] = 0x20000001
    rows["srid"] = 4326
    rows["x"] = points[:, 0]
    rows["y"] = points[:, 1]
    return COPY_HEADER + rows.tobytes() + COPY_TRAILER


def set_based(conn: Connection, points: np.ndarray, plan: SetPlan,
              explain: bool = False) -> tuple[float, pd.Series, dict[str, float]]:
    """Seconds taken (COPY included), the code per point id, and seconds per phase."""
    for statement in POINT_TABLES_SQL:
        conn.execute(text(statement))
    if plan.into == "insert":
        conn.execute(text(RESULT_TABLE_SQL))
    settings = {
        "jit": "on" if plan.jit else "off",
        "enable_bitmapscan": "on" if plan.bitmapscan else "off",
        "work_mem": "256MB",
        "maintenance_work_mem": "512MB",
    }
    if plan.workers is not None:
        settings["max_parallel_workers_per_gather"] = str(plan.workers)
    for name, value in settings.items():
        conn.execute(text("SELECT set_config(:n, :v, false)"), {"n": name, "v": value})
    conn.commit()

    t0 = time.perf_counter()
    payload = copy_payload(points, plan.order)
    cursor = conn.connection.dbapi_connection.cursor()
    with cursor.copy("COPY bench_point (id, geom) FROM STDIN (FORMAT binary)") as copy:
        step = 8 << 20
        for start in range(0, len(payload), step):
            copy.write(payload[start:start + step])
    t1 = time.perf_counter()
    if plan.point_index:
        conn.execute(text("CREATE INDEX bench_point_geom ON bench_point USING gist (geom)"))
    if plan.analyze:
        conn.execute(text("ANALYZE bench_point"))
    t2 = time.perf_counter()
    select = SELECT_SQL[plan.query]
    if plan.into == "insert":
        conn.execute(text("INSERT INTO bench_set (id, code) " + select), {"s": STRUCTURE.value})
    else:
        conn.execute(text("CREATE UNLOGGED TABLE bench_set AS " + select), {"s": STRUCTURE.value})
    conn.commit()
    seconds = time.perf_counter() - t0

    if explain:
        plan_rows = conn.execute(text("EXPLAIN " + select), {"s": STRUCTURE.value}).scalars()
        console.print("\n".join(plan_rows), highlight=False)
    codes = pd.read_sql_query(text("SELECT id, code FROM bench_set"), conn).set_index("id")["code"]
    conn.execute(text("RESET ALL"))
    conn.execute(text("DROP TABLE bench_point, bench_set"))
    conn.commit()
    phases = {"COPY": t1 - t0, "index + ANALYZE": t2 - t1, "join": seconds - (t2 - t0)}
    return seconds, codes, phases


# -- method 2: geopandas sjoin ------------------------------------------------
COMMUNES_SQL = text(
    "SELECT code, geom FROM admin_unit WHERE structure = :s AND level = 'commune' AND geom IS NOT NULL"
)


def lowest_code(hits: pd.DataFrame) -> pd.Series:
    """The lowest ``code`` per index value of ``hits``.

    Only border points have more than one hit; a groupby over all of them
    (strings, 1M groups) would take longer than the join itself.
    """
    dup = hits.index.duplicated(keep=False)
    return pd.concat([hits.loc[~dup, "code"], hits.loc[dup, "code"].groupby(level=0).min()]).sort_index()


def sjoin(engine: Engine, points: np.ndarray, predicate: str) -> tuple[float, float, pd.Series]:
    """Seconds in total (polygon transfer included), seconds of the transfer, code per point id."""
    t0 = time.perf_counter()
    with engine.connect() as conn:
        communes = gpd.read_postgis(COMMUNES_SQL, conn, geom_col="geom", params={"s": STRUCTURE.value})
    transfer = time.perf_counter() - t0
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(points[:, 0], points[:, 1]), crs=4326)
    hits = gpd.sjoin(pts, communes, how="inner", predicate=predicate)
    codes = lowest_code(hits)
    return time.perf_counter() - t0, transfer, codes


# -- method 3: one query per point --------------------------------------------
def per_point(engine: Engine, points: np.ndarray, sample: np.ndarray, bitmapscan: bool = True) -> tuple[float, pd.Series]:
    """Seconds for the sample (one LOCATE_SQL query per point) and the commune code per point id."""
    from geodata.locate import LOCATE_SQL

    query = text(LOCATE_SQL)
    out: dict[int, str] = {}
    with engine.connect() as conn:
        if not bitmapscan:
            conn.execute(text("SET enable_bitmapscan = off"))
        t0 = time.perf_counter()
        for i in sample.tolist():
            lon, lat = points[i]
            params = {"structure": STRUCTURE.value, "d": ON_DATE, "lon": float(lon), "lat": float(lat)}
            for row in conn.execute(query, params):
                if row.level == "commune":
                    out[i] = row.code
        seconds = time.perf_counter() - t0
        conn.execute(text("RESET ALL"))
        conn.commit()
    return seconds, pd.Series(out, dtype=object)


# -- points -------------------------------------------------------------------
def random_points(engine: Engine, n: int, seed: int) -> tuple[np.ndarray, float]:
    """``n`` points uniform inside the union of the 2025 province polygons, and the share of the bbox kept."""
    with engine.connect() as conn:
        provinces = gpd.read_postgis(
            text("SELECT code, geom FROM admin_unit WHERE structure = :s AND level = 'province' AND geom IS NOT NULL"),
            conn, geom_col="geom", params={"s": STRUCTURE.value},
        )
    land = shapely.union_all(provinces.geometry.to_numpy())
    shapely.prepare(land)
    xmin, ymin, xmax, ymax = land.bounds
    rng = np.random.default_rng(seed)
    kept: list[np.ndarray] = []
    have = drawn = 0
    while have < n:
        batch = max(8 * (n - have), 10_000)
        xy = np.column_stack([rng.uniform(xmin, xmax, batch), rng.uniform(ymin, ymax, batch)])
        inside = xy[shapely.contains_xy(land, xy[:, 0], xy[:, 1])]
        kept.append(inside)
        have += len(inside)
        drawn += batch
    return np.concatenate(kept)[:n], have / drawn


# -- the run ------------------------------------------------------------------
def start_database(folder: Path):
    """Start a private cluster in ``folder``, migrate, seed, draw the 2025 communes."""
    from etl.reference import seed_reference
    from geodata import migrate
    from geodata.approximate import approximate_communes
    from geodata.db import get_engine, use_database
    from geodata.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres(folder / "pgdata", durable=False)
    url = pg.start()
    engine = use_database(url)
    migrate.upgrade()
    seed_reference()
    with get_engine().begin() as conn:
        approx = approximate_communes(conn, STRUCTURE)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
        parts = conn.execute(
            text("SELECT count(*) FROM admin_unit_part WHERE structure = :s AND level = 'commune'"), {"s": STRUCTURE.value}
        ).scalar()
    return pg, engine, approx, parts


def agreement(a: pd.Series, b: pd.Series, ids: np.ndarray) -> tuple[float, int, int]:
    """Percentage of ``ids`` on which ``a`` and ``b`` give the same code (both none counts as agreeing)."""
    x = a.reindex(ids).to_numpy(dtype=object)
    y = b.reindex(ids).to_numpy(dtype=object)
    same = (x == y) | (pd.isna(x) & pd.isna(y))
    return float(same.mean() * 100), int((~same).sum()), len(ids)


def run_variants(engine: Engine, points: np.ndarray, reference: pd.Series) -> None:
    """Time each plan of VARIANTS on (up to) 100,000 of the points."""
    sub = points[:100_000]
    ids = np.arange(len(sub))
    table = Table("set-based plan", "seconds", "points/s", "agrees", title=f"Set-based plans on {len(sub):,} points")
    for plan in VARIANTS:
        with engine.connect() as conn:
            seconds, codes, _ = set_based(conn, sub, plan)
        pct = agreement(codes, reference, ids)[0]
        mark = " (default)" if plan == BEST else ""
        table.add_row(plan.label() + mark, f"{seconds:.2f}", f"{len(sub) / seconds:,.0f}", f"{pct:.3f}%")
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000, help="number of random points (default 1,000,000)")
    parser.add_argument("--sample", type=int, default=2_000, help="points located one query at a time (default 2,000)")
    parser.add_argument("--seed", type=int, default=20250701, help="random seed (default 20250701)")
    parser.add_argument("--predicate", choices=("intersects", "within"), default="intersects",
                        help="sjoin predicate (default intersects: like ST_Covers it counts a point on a border)")
    parser.add_argument("--variants", action="store_true",
                        help="also time other set-based plans (on up to 100,000 points) and LOCATE_SQL with bitmapscan off")
    parser.add_argument("--into", choices=("insert", "ctas"), default="insert",
                        help="set-based: INSERT ... SELECT (default; never parallel in PostgreSQL 15) "
                             "or CREATE TABLE AS (may use parallel workers)")
    parser.add_argument("--explain", action="store_true", help="print the plan of the set-based query")
    args = parser.parse_args(argv)
    n = args.points
    if n < 1 or args.sample < 1:
        parser.error("--points and --sample must be at least 1")

    plan = replace(BEST, into=args.into)

    tmp = Path(tempfile.mkdtemp(prefix="labour-atlas-bench-"))
    # As root the cluster runs as 'postgres', which must traverse this folder.
    os.chmod(tmp, 0o755)
    pg = None
    try:
        t0 = time.perf_counter()
        with console.status("starting PostgreSQL, loading reference data, drawing the 2025 communes"):
            pg, engine, approx, parts = start_database(tmp)
        console.print(
            f"database ready in {time.perf_counter() - t0:.1f} s: {approx.with_cell} of {approx.communes} "
            f"2025 communes have a polygon ({parts:,} subdivided parts)"
        )
        with engine.connect() as conn:
            version, postgis, workers = conn.execute(text(
                "SELECT current_setting('server_version'), postgis_lib_version(), "
                "current_setting('max_parallel_workers_per_gather')"
            )).one()
        console.print(f"PostgreSQL {version}, PostGIS {postgis}, max_parallel_workers_per_gather={workers}, "
                      f"{os.cpu_count()} CPUs; geopandas {gpd.__version__}, shapely {shapely.__version__}")

        t0 = time.perf_counter()
        points, kept = random_points(engine, n, args.seed)
        console.print(f"{n:,} random points inside the 2025 provinces drawn in {time.perf_counter() - t0:.1f} s "
                      f"(seed {args.seed}; {kept:.0%} of the bounding box is inside)")

        # 1. set-based
        with console.status("set-based PostGIS"), engine.connect() as conn:
            set_s, set_codes, phases = set_based(conn, points, plan, explain=args.explain)
        console.print(f"set-based PostGIS: {set_s:.2f} s ({plan.label()}): "
                      + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()))

        # 2. sjoin
        with console.status("geopandas sjoin"):
            sj_s, sj_transfer, sj_codes = sjoin(engine, points, args.predicate)
        console.print(f"geopandas sjoin ({args.predicate}): {sj_s:.2f} s, of which read_postgis {sj_transfer:.2f} s")

        # 3. one query per point, on a sample
        rng = np.random.default_rng(args.seed + 1)
        sample = np.sort(rng.choice(n, size=min(args.sample, n), replace=False))
        with console.status("one query per point"):
            pp_s, pp_codes = per_point(engine, points, sample)
        pp_rate = len(sample) / pp_s
        console.print(f"one query per point: {len(sample):,} points in {pp_s:.2f} s")

        rates = {"set": n / set_s, "sjoin": n / sj_s, "point": pp_rate}
        table = Table("method", "points", "seconds", "points/s", title=f"Assigning {n:,} points to 2025 communes")
        table.add_row("set-based PostGIS (COPY + " + ("INSERT ... SELECT)" if plan.into == "insert" else "CREATE TABLE AS)"), f"{n:,}", f"{set_s:.2f}", f"{rates['set']:,.0f}")
        table.add_row("geopandas sjoin (read_postgis + sjoin)", f"{n:,}", f"{sj_s:.2f}", f"{rates['sjoin']:,.0f}")
        table.add_row(f"one query per point (LOCATE_SQL, {len(sample):,} sampled)", f"{n:,} (scaled)",
                      f"{n / pp_rate:.1f}", f"{pp_rate:,.0f}")
        console.print(table)
        console.print(f"set-based vs one query per point: {rates['set'] / rates['point']:,.1f}x")
        console.print(f"set-based vs sjoin: {rates['set'] / rates['sjoin']:.2f}x")

        all_ids = np.arange(n)
        console.print(f"points located: set-based {len(set_codes):,}, sjoin {len(sj_codes):,} of {n:,}; "
                      f"per point {len(pp_codes):,} of {len(sample):,}")
        for label, a, b, ids in (
            ("set-based vs sjoin", set_codes, sj_codes, all_ids),
            ("set-based vs per point", set_codes, pp_codes, sample),
            ("sjoin vs per point", sj_codes, pp_codes, sample),
        ):
            pct, differ, total = agreement(a, b, ids)
            console.print(f"agreement {label}: {pct:.4f}% ({differ:,} of {total:,} points differ)")

        if args.variants:
            run_variants(engine, points, set_codes)
            pp_off_s, _ = per_point(engine, points, sample, bitmapscan=False)
            console.print(f"one query per point with enable_bitmapscan off: {len(sample) / pp_off_s:,.0f} points/s "
                          f"(default settings: {pp_rate:,.0f})")
        return 0
    finally:
        if pg is not None:
            from geodata.db import get_engine

            get_engine().dispose()
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
