"""Benchmark: assign many points to their 2025 commune, three ways, in two scenarios.

Run by hand (it is not a test)::

    .venv/bin/python bench/locate.py                     # database scenario, 1,000,000 points
    .venv/bin/python bench/locate.py --scenario both     # database and memory scenarios
    .venv/bin/python bench/locate.py --points 100000 --variants --explain

It starts its own private PostgreSQL + PostGIS cluster in a temporary folder
(fsync off), loads the bundled reference data and the approximate 2025
communes, draws N random points uniformly inside the union of the 2025
province polygons (fixed seed), and assigns each point to the commune whose
polygon covers it (the lowest code on a shared border).

Scenario ``database`` (the default; Labour Atlas's case: the points are survey
records that already live in PostGIS, and the assignment must end up there).
The points are first loaded into a table ``bench_point (id, geom)`` in the
order they were drawn, i.e. random (not timed; ``--load-order morton`` loads
them spatially sorted, as records collected commune by commune would be).
Then, timed:

1. set-based in PostGIS: a GiST index on the points and ANALYZE (both timed,
   although ``survey_record`` already keeps such an index), then one
   ``INSERT ... SELECT`` joining ``admin_unit_part`` with ``ST_Covers`` into a
   result table;
2. geopandas ``sjoin``: read the points (binary COPY, the fastest way out; or
   ``read_postgis`` with ``--sjoin-read postgis``) and the commune polygons
   out of PostGIS, ``sjoin``, keep the lowest code per point, and write the
   assignments back into a table with a binary COPY, committed;

Scenario ``memory`` (the points are born in Python, e.g. a file to place):

1. set-based in PostGIS: COPY the points into a table (id, geom), index them,
   ANALYZE, then the same ``INSERT ... SELECT``; the time includes building
   and sending the COPY;
2. geopandas ``sjoin`` of the in-memory points against the polygons read
   from PostGIS (the time includes that read); the result stays in memory.

In both, 3. one query per point (``geodata.locate.LOCATE_SQL``, as
``/api/v1/locate`` runs it) on a sample, scaled to N.

It prints points per second for each, the ratios, and how often the methods
agree (in the database scenario, on what was written to the tables). The
cluster and its folder are removed at the end.

By default ``sjoin`` uses the same subdivided parts (``admin_unit_part``) as
the set-based query: point-in-polygon tests against small parts are faster
than against whole communes of thousands of vertices (``--sjoin-polygons
communes`` for the whole polygons).

The plans (``--explain``), since the btree on ``admin_unit_part`` is on
``(code)`` alone: one point (``LOCATE_SQL``, or the set-based query with no
index on the points) is a plain GiST index scan of ``admin_unit_part``
(``geom ~ point``), about 15 us per point; with the former ``(structure,
code)`` btree the planner ANDed both indexes and read the thousands of btree
entries of structure '2025' for every point, which ``enable_bitmapscan =
off`` used to avoid; that setting no longer changes anything. What makes the
set-based query fast is a GiST index on the points and ANALYZE: PostgreSQL
then loops over the ~4,400 commune parts instead and fetches the points
inside each one; PostGIS tests many points against the same polygon, which
it prepares once (``--variants`` times the alternatives). In the memory
scenario, sorting the points spatially (Morton order) before the COPY keeps
each part's points on few pages.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from _result import Figure, emit  # bench/ is the script's folder, first on sys.path
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, Engine, text

from geodata.structures import Structure

console = Console()

STRUCTURE = Structure.v2025
# A date on which the 2025 structure is in force (for LOCATE_SQL).
ON_DATE = dt.date(2026, 1, 1)

# -- method 1: set-based in PostGIS -------------------------------------------
# Scratch tables, UNLOGGED: nothing here needs to survive a crash. The sjoin's
# result table is UNLOGGED too, so that both methods write the same way.
POINT_TABLES_SQL = (
    "DROP TABLE IF EXISTS bench_point, bench_set, bench_sjoin",
    "CREATE UNLOGGED TABLE bench_point (id integer NOT NULL, geom geometry(Point, 4326) NOT NULL)",
)
RESULT_TABLE_SQL = "CREATE UNLOGGED TABLE bench_set (id integer NOT NULL, code text NOT NULL)"
SJOIN_TABLE_SQL = "CREATE UNLOGGED TABLE bench_sjoin (id integer NOT NULL, code text NOT NULL)"

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
    order: str = "morton"          # memory scenario: 'morton' sorts the points spatially before the COPY; 'none'
    point_index: bool = True       # GiST index on the points (timed)
    analyze: bool = True           # ANALYZE the points (timed)
    workers: int | None = None     # max_parallel_workers_per_gather (None: server default)
    into: str = "insert"           # 'insert': INSERT ... SELECT (serial); 'ctas': CREATE TABLE AS (may go parallel)
    jit: bool = False              # JIT compiles ~50-120 ms of code for a query this "expensive" (by estimate)

    def label(self, scenario: str = "memory") -> str:
        parts = [self.query]
        if scenario == "memory":
            parts.append(f"order={self.order}")
        parts.append("point GiST" if self.point_index else "no point index")
        if not self.analyze:
            parts.append("no ANALYZE")
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
    SetPlan(query="distinct", order="morton", point_index=False),
    SetPlan(query="lateral", order="morton", point_index=True),
    SetPlan(query="distinct", order="none", point_index=True),
    SetPlan(query="distinct", order="morton", point_index=True, jit=True),
    SetPlan(query="group", order="morton", point_index=True),
    BEST,
    SetPlan(query="distinct", order="morton", point_index=True, workers=0, into="ctas"),
    SetPlan(query="distinct", order="morton", point_index=True, into="ctas"),
]
# In the database scenario the points are where they are: no ordering to choose.
DB_VARIANTS = [
    SetPlan(query="distinct", point_index=False, analyze=False, jit=True),   # the naive query
    SetPlan(query="lateral", point_index=False),
    SetPlan(query="lateral", point_index=True),
    SetPlan(query="group", point_index=True),
    BEST,
    SetPlan(query="distinct", point_index=True, workers=0, into="ctas"),
    SetPlan(query="distinct", point_index=True, into="ctas"),
]

# One row of a binary COPY: field count, then (length, value) per field. The
# geometry is little-endian EWKB: Point with SRID (type 0x20000001), both as we
# send it and as PostGIS sends it back (geometry_send on a little-endian host).
COPY_ROW = np.dtype([
    ("fields", ">i2"), ("id_len", ">i4"), ("id", ">i4"), ("geom_len", ">i4"),
    ("byte_order", "u1"), ("wkb_type", "<u4"), ("srid", "<u4"), ("x", "<f8"), ("y", "<f8"),
])
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)
COPY_CHUNK = 8 << 20
SETTINGS = {"work_mem": "256MB", "maintenance_work_mem": "512MB"}


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


def copy_in(conn: Connection, statement: str, payload: bytes) -> None:
    """Send a whole binary COPY stream."""
    cursor = conn.connection.dbapi_connection.cursor()
    with cursor.copy(statement) as copy:
        for start in range(0, len(payload), COPY_CHUNK):
            copy.write(payload[start:start + COPY_CHUNK])


def configure(conn: Connection, plan: SetPlan) -> None:
    """Session settings of a plan (committed, so that they hold for the timed part)."""
    settings = SETTINGS | {"jit": "on" if plan.jit else "off"}
    if plan.workers is not None:
        settings["max_parallel_workers_per_gather"] = str(plan.workers)
    for name, value in settings.items():
        conn.execute(text("SELECT set_config(:n, :v, false)"), {"n": name, "v": value})
    conn.commit()


def assign_in_sql(conn: Connection, plan: SetPlan, scenario: str, explain: bool) -> tuple[float, float]:
    """Index and ANALYZE the points as the plan says, then write the assignment; seconds of both steps."""
    t0 = time.perf_counter()
    if plan.point_index:
        conn.execute(text("CREATE INDEX bench_point_geom ON bench_point USING gist (geom)"))
    if plan.analyze:
        conn.execute(text("ANALYZE bench_point"))
    t1 = time.perf_counter()
    select = SELECT_SQL[plan.query]
    statement = ("INSERT INTO bench_set (id, code) " if plan.into == "insert" else "CREATE UNLOGGED TABLE bench_set AS ") + select
    if explain:  # not timed; EXPLAIN without ANALYZE only plans the statement
        plan_rows = conn.execute(text("EXPLAIN " + statement), {"s": STRUCTURE.value}).scalars()
        console.print(f"{scenario} scenario: plan of the set-based statement ({plan.label(scenario)}):", style="bold")
        console.print("\n".join(plan_rows), highlight=False, soft_wrap=True)
    t2 = time.perf_counter()
    conn.execute(text(statement), {"s": STRUCTURE.value})
    conn.commit()
    return t1 - t0, time.perf_counter() - t2


def read_codes(conn: Connection, table: str) -> pd.Series:
    """The code per point id written to ``table``."""
    return pd.read_sql_query(text(f"SELECT id, code FROM {table}"), conn).set_index("id")["code"]


def drop_tables(conn: Connection) -> None:
    conn.execute(text("RESET ALL"))
    conn.execute(text("DROP TABLE IF EXISTS bench_point, bench_set, bench_sjoin"))
    conn.commit()


def set_based(conn: Connection, points: np.ndarray, plan: SetPlan,
              explain: bool = False) -> tuple[float, pd.Series, dict[str, float]]:
    """Memory scenario: seconds taken (COPY included), the code per point id, and seconds per phase."""
    for statement in POINT_TABLES_SQL:
        conn.execute(text(statement))
    if plan.into == "insert":
        conn.execute(text(RESULT_TABLE_SQL))
    configure(conn, plan)

    t0 = time.perf_counter()
    copy_in(conn, "COPY bench_point (id, geom) FROM STDIN (FORMAT binary)", copy_payload(points, plan.order))
    copy_s = time.perf_counter() - t0
    index_s, join_s = assign_in_sql(conn, plan, "memory", explain)
    codes = read_codes(conn, "bench_set")
    drop_tables(conn)
    return copy_s + index_s + join_s, codes, {"COPY": copy_s, "index + ANALYZE": index_s, "join + write": join_s}


def load_points(engine: Engine, points: np.ndarray, order: str = "none") -> None:
    """Database scenario, not timed: the points as a table (id, geom), committed.

    ``order`` 'none': in the order drawn (random: the worst case for the
    set-based join, whose index scans then jump between heap pages);
    'morton': spatially sorted, like records that arrive commune by commune.
    """
    with engine.connect() as conn:
        for statement in POINT_TABLES_SQL:
            conn.execute(text(statement))
        copy_in(conn, "COPY bench_point (id, geom) FROM STDIN (FORMAT binary)", copy_payload(points, order))
        conn.commit()
    # Settle the new table the way a long-lived one is (hint bits, visibility
    # map): whichever method read it first would otherwise pay that for both.
    # Column statistics are not gathered: ANALYZE is part of the work timed.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (FREEZE) bench_point"))


def set_based_in_db(conn: Connection, plan: SetPlan,
                    explain: bool = False) -> tuple[float, pd.Series, dict[str, float]]:
    """Database scenario: the points are in ``bench_point``; seconds to index, analyze, assign and write."""
    conn.execute(text("DROP TABLE IF EXISTS bench_set"))
    conn.execute(text("DROP INDEX IF EXISTS bench_point_geom"))
    if plan.into == "insert":
        conn.execute(text(RESULT_TABLE_SQL))
    configure(conn, plan)
    index_s, join_s = assign_in_sql(conn, plan, "database", explain)
    codes = read_codes(conn, "bench_set")
    conn.execute(text("RESET ALL"))
    conn.execute(text("DROP INDEX IF EXISTS bench_point_geom"))
    conn.commit()
    return index_s + join_s, codes, {"index + ANALYZE": index_s, "join + write": join_s}


# -- method 2: geopandas sjoin ------------------------------------------------
POLYGONS_SQL = {
    "parts": text("SELECT code, geom FROM admin_unit_part WHERE structure = :s AND level = 'commune'"),
    "communes": text(
        "SELECT code, geom FROM admin_unit WHERE structure = :s AND level = 'commune' AND geom IS NOT NULL"
    ),
}
# One row of the binary COPY of the result: (id integer, code text of 5 characters).
CODE_ROW = np.dtype([("fields", ">i2"), ("id_len", ">i4"), ("id", ">i4"), ("code_len", ">i4"), ("code", "S5")])


def lowest_code(hits: pd.DataFrame) -> pd.Series:
    """The lowest ``code`` per index value of ``hits``.

    Only border points have more than one hit; a groupby over all of them
    (strings, 1M groups) would take longer than the join itself.
    """
    dup = hits.index.duplicated(keep=False)
    return pd.concat([hits.loc[~dup, "code"], hits.loc[dup, "code"].groupby(level=0).min()]).sort_index()


def read_polygons(engine: Engine, polygons: str) -> gpd.GeoDataFrame:
    with engine.connect() as conn:
        return gpd.read_postgis(POLYGONS_SQL[polygons], conn, geom_col="geom", params={"s": STRUCTURE.value})


def sjoin(engine: Engine, points: np.ndarray, predicate: str, polygons: str) -> tuple[float, pd.Series, dict[str, float]]:
    """Memory scenario: seconds in total (polygon transfer included), code per point id, seconds per phase."""
    t0 = time.perf_counter()
    communes = read_polygons(engine, polygons)
    t1 = time.perf_counter()
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(points[:, 0], points[:, 1]), crs=4326)
    hits = gpd.sjoin(pts, communes, how="inner", predicate=predicate)
    codes = lowest_code(hits)
    t2 = time.perf_counter()
    return t2 - t0, codes, {"read polygons": t1 - t0, "sjoin + lowest code": t2 - t1}


def read_points_copy(conn: Connection) -> tuple[np.ndarray, np.ndarray]:
    """Ids and (x, y) of ``bench_point`` by a binary COPY, decoded with numpy (fixed-width rows)."""
    cursor = conn.connection.dbapi_connection.cursor()
    buf = bytearray()
    with cursor.copy("COPY bench_point (id, geom) TO STDOUT (FORMAT binary)") as copy:
        for block in copy:
            buf += block
    if bytes(buf[:len(COPY_HEADER)]) != COPY_HEADER or bytes(buf[-2:]) != COPY_TRAILER:
        raise RuntimeError("unexpected binary COPY framing")
    rows = np.frombuffer(buf, dtype=COPY_ROW, offset=len(COPY_HEADER), count=(len(buf) - len(COPY_HEADER) - 2) // COPY_ROW.itemsize)
    if len(rows) and not ((rows["geom_len"] == 25).all() and (rows["byte_order"] == 1).all()
                          and (rows["wkb_type"] == 0x20000001).all()):
        raise RuntimeError("the points do not come back as little-endian 2D EWKB points")
    return rows["id"].astype(np.int32), np.column_stack([rows["x"], rows["y"]])


def read_points_postgis(conn: Connection) -> tuple[np.ndarray, np.ndarray]:
    """Ids and (x, y) of ``bench_point`` by ``geopandas.read_postgis`` (WKB through pandas)."""
    df = gpd.read_postgis(text("SELECT id, geom FROM bench_point"), conn, geom_col="geom")
    return df["id"].to_numpy(np.int32), shapely.get_coordinates(df.geometry.to_numpy())


def write_codes(conn: Connection, codes: pd.Series) -> None:
    """Write (id, code) into ``bench_sjoin`` with one binary COPY (text COPY if codes are not 5 characters)."""
    values = codes.to_numpy(dtype=object)
    lengths = codes.str.len().to_numpy()
    cursor = conn.connection.dbapi_connection.cursor()
    if len(values) and (lengths == 5).all():
        rows = np.empty(len(values), dtype=CODE_ROW)
        rows["fields"] = 2
        rows["id_len"] = 4
        rows["id"] = codes.index.to_numpy(np.int32)
        rows["code_len"] = 5
        rows["code"] = values.astype("S5")
        copy_in(conn, "COPY bench_sjoin (id, code) FROM STDIN (FORMAT binary)", COPY_HEADER + rows.tobytes() + COPY_TRAILER)
    else:
        payload = codes.rename("code").rename_axis("id").to_csv(sep="\t", header=False).encode()
        with cursor.copy("COPY bench_sjoin (id, code) FROM STDIN") as copy:
            for start in range(0, len(payload), COPY_CHUNK):
                copy.write(payload[start:start + COPY_CHUNK])


def sjoin_in_db(engine: Engine, predicate: str, polygons: str, read: str) -> tuple[float, pd.Series, dict[str, float]]:
    """Database scenario: read points and polygons out of PostGIS, sjoin, write the result back (COPY), commit."""
    reader = read_points_copy if read == "copy" else read_points_postgis
    with engine.connect() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_sjoin"))
        conn.commit()
        t0 = time.perf_counter()
        ids, xy = reader(conn)
        conn.commit()
        t1 = time.perf_counter()
        communes = read_polygons(engine, polygons)
        t2 = time.perf_counter()
        pts = gpd.GeoDataFrame({"id": ids}, geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=4326).set_index("id")
        hits = gpd.sjoin(pts, communes, how="inner", predicate=predicate)
        codes = lowest_code(hits)
        t3 = time.perf_counter()
        conn.execute(text(SJOIN_TABLE_SQL))
        write_codes(conn, codes)
        conn.commit()
        t4 = time.perf_counter()
        stored = read_codes(conn, "bench_sjoin")
        conn.execute(text("DROP TABLE bench_sjoin"))
        conn.commit()
    phases = {f"read points ({read})": t1 - t0, "read polygons": t2 - t1, "sjoin + lowest code": t3 - t2,
              "COPY back": t4 - t3}
    return t4 - t0, stored, phases


# -- method 3: one query per point --------------------------------------------
def per_point(engine: Engine, points: np.ndarray, sample: np.ndarray) -> tuple[float, pd.Series]:
    """Seconds for the sample (one LOCATE_SQL query per point) and the commune code per point id."""
    from geodata.locate import LOCATE_SQL

    query = text(LOCATE_SQL)
    out: dict[int, str] = {}
    with engine.connect() as conn:
        t0 = time.perf_counter()
        for i in sample.tolist():
            lon, lat = points[i]
            params = {"structure": STRUCTURE.value, "d": ON_DATE, "lon": float(lon), "lat": float(lat)}
            for row in conn.execute(query, params):
                if row.level == "commune":
                    out[i] = row.code
        seconds = time.perf_counter() - t0
        conn.commit()
    return seconds, pd.Series(out, dtype=object)


def explain_per_point(engine: Engine, points: np.ndarray, i: int) -> None:
    """EXPLAIN ANALYZE of LOCATE_SQL on point ``i``."""
    from geodata.locate import LOCATE_SQL

    lon, lat = points[i]
    params = {"structure": STRUCTURE.value, "d": ON_DATE, "lon": float(lon), "lat": float(lat)}
    with engine.connect() as conn:
        rows = conn.execute(text("EXPLAIN (ANALYZE, COSTS OFF) " + LOCATE_SQL), params).scalars()
        console.print("plan of one query per point (LOCATE_SQL):", style="bold")
        console.print("\n".join(rows), highlight=False, soft_wrap=True)
        conn.rollback()


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


@dataclass
class Outcome:
    """One scenario's figures."""

    scenario: str
    rows: list[tuple[str, str, float, float]] = field(default_factory=list)  # (method, what is timed, seconds, points/s)
    set_rate: float = 0.0
    sjoin_rate: float = 0.0


def run_memory(engine: Engine, points: np.ndarray, plan: SetPlan, args) -> tuple[Outcome, pd.Series, pd.Series]:
    n = len(points)
    with console.status("memory scenario: set-based PostGIS"), engine.connect() as conn:
        set_s, set_codes, phases = set_based(conn, points, plan, explain=args.explain)
    console.print(f"memory scenario: set-based PostGIS: {set_s:.2f} s ({plan.label()}): "
                  + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()))
    with console.status("memory scenario: geopandas sjoin"):
        sj_s, sj_codes, sj_phases = sjoin(engine, points, args.predicate, args.sjoin_polygons)
    console.print(f"memory scenario: geopandas sjoin ({args.predicate}, {args.sjoin_polygons}): {sj_s:.2f} s: "
                  + ", ".join(f"{k} {v:.2f} s" for k, v in sj_phases.items()))
    out = Outcome("memory", set_rate=n / set_s, sjoin_rate=n / sj_s)
    into = "INSERT ... SELECT" if plan.into == "insert" else "CREATE TABLE AS"
    out.rows.append(("set-based PostGIS", f"COPY in + index + ANALYZE + {into}", set_s, n / set_s))
    out.rows.append((f"geopandas sjoin ({args.sjoin_polygons})", "read polygons + sjoin (result in memory)", sj_s, n / sj_s))
    return out, set_codes, sj_codes


def run_database(engine: Engine, points: np.ndarray, plan: SetPlan, args) -> tuple[Outcome, pd.Series, pd.Series]:
    n = len(points)
    t0 = time.perf_counter()
    with console.status("database scenario: loading the points into PostGIS (not timed)"):
        load_points(engine, points, args.load_order)
    console.print(f"database scenario: {n:,} points loaded into bench_point (id, geom) in {time.perf_counter() - t0:.1f} s "
                  f"(not timed; order: {'as drawn, random' if args.load_order == 'none' else 'Morton'})")
    with console.status("database scenario: set-based PostGIS"), engine.connect() as conn:
        set_s, set_codes, phases = set_based_in_db(conn, plan, explain=args.explain)
    console.print(f"database scenario: set-based PostGIS: {set_s:.2f} s ({plan.label('database')}): "
                  + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()))
    out = Outcome("database", set_rate=n / set_s)
    into = "INSERT ... SELECT" if plan.into == "insert" else "CREATE TABLE AS"
    out.rows.append(("set-based PostGIS", f"index + ANALYZE + {into} into a table", set_s, n / set_s))
    reads = ["copy", "postgis"] if args.sjoin_read == "both" else [args.sjoin_read]
    sj_codes = None
    for read in reads:
        with console.status(f"database scenario: geopandas sjoin (read by {read})"):
            sj_s, codes, sj_phases = sjoin_in_db(engine, args.predicate, args.sjoin_polygons, read)
        console.print(f"database scenario: geopandas sjoin ({args.predicate}, {args.sjoin_polygons}): {sj_s:.2f} s: "
                      + ", ".join(f"{k} {v:.2f} s" for k, v in sj_phases.items()))
        how = "binary COPY out" if read == "copy" else "read_postgis"
        out.rows.append((f"geopandas sjoin ({args.sjoin_polygons})",
                         f"{how} + read polygons + sjoin + COPY back into a table", sj_s, n / sj_s))
        if sj_codes is None:  # the first (fastest by default) is the one compared against
            sj_codes, out.sjoin_rate = codes, n / sj_s
    with engine.connect() as conn:
        drop_tables(conn)
    return out, set_codes, sj_codes


def run_variants(engine: Engine, points: np.ndarray, reference: pd.Series, scenario: str, args) -> None:
    """Time each set-based plan on (up to) 100,000 of the points."""
    sub = points[:100_000]
    ids = np.arange(len(sub))
    plans = VARIANTS if scenario == "memory" else DB_VARIANTS
    table = Table("set-based plan", "seconds", "points/s", "agrees",
                  title=f"{scenario} scenario: set-based plans on {len(sub):,} points")
    for plan in plans:
        with engine.connect() as conn:
            if scenario == "memory":
                seconds, codes, _ = set_based(conn, sub, plan)
            else:
                load_points(engine, sub, args.load_order)
                seconds, codes, _ = set_based_in_db(conn, plan)
                drop_tables(conn)
        pct = agreement(codes, reference, ids)[0]
        mark = " (default)" if plan == BEST else ""
        table.add_row(plan.label(scenario) + mark, f"{seconds:.2f}", f"{len(sub) / seconds:,.0f}", f"{pct:.3f}%")
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=("database", "memory", "both"), default="database",
                        help="database (default): the points are in a PostGIS table and the result must be written "
                             "to one; memory: the points are in Python memory; both")
    parser.add_argument("--points", type=int, default=1_000_000, help="number of random points (default 1,000,000)")
    parser.add_argument("--sample", type=int, default=2_000, help="points located one query at a time (default 2,000)")
    parser.add_argument("--seed", type=int, default=20250701, help="random seed (default 20250701)")
    parser.add_argument("--predicate", choices=("intersects", "within"), default="intersects",
                        help="sjoin predicate (default intersects: like ST_Covers it counts a point on a border)")
    parser.add_argument("--sjoin-polygons", choices=("parts", "communes"), default="parts",
                        help="polygons for sjoin: parts (default; the subdivided parts the set-based query uses) "
                             "or communes (whole polygons)")
    parser.add_argument("--sjoin-read", choices=("copy", "postgis", "both"), default="both",
                        help="database scenario: how sjoin reads the points: binary COPY (the ratio uses it), "
                             "read_postgis, or both (default)")
    parser.add_argument("--load-order", choices=("none", "morton"), default="none",
                        help="database scenario: the order of the points in their table (not timed): none (default; "
                             "as drawn, i.e. random) or morton (spatially sorted)")
    parser.add_argument("--variants", action="store_true",
                        help="also time other set-based plans (on up to 100,000 points)")
    parser.add_argument("--into", choices=("insert", "ctas"), default="insert",
                        help="set-based: INSERT ... SELECT (default; never parallel in PostgreSQL 15) "
                             "or CREATE TABLE AS (may use parallel workers)")
    parser.add_argument("--explain", action="store_true",
                        help="print the plans of the set-based statement and of one LOCATE_SQL query")
    parser.add_argument("--short", action="store_true", help="100,000 points, 500 one at a time, sjoin read by COPY only")
    args = parser.parse_args(argv)
    if args.short:
        args.points, args.sample, args.sjoin_read = 100_000, 500, "copy"
    n = args.points
    if n < 1 or args.sample < 1:
        parser.error("--points and --sample must be at least 1")
    scenarios = ["database", "memory"] if args.scenario == "both" else [args.scenario]

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

        outcomes: list[Outcome] = []
        codes: dict[str, tuple[pd.Series, pd.Series]] = {}
        for scenario in scenarios:
            runner = run_database if scenario == "database" else run_memory
            outcome, set_codes, sj_codes = runner(engine, points, plan, args)
            outcomes.append(outcome)
            codes[scenario] = (set_codes, sj_codes)

        # 3. one query per point, on a sample: the same in both scenarios
        rng = np.random.default_rng(args.seed + 1)
        sample = np.sort(rng.choice(n, size=min(args.sample, n), replace=False))
        if args.explain:
            explain_per_point(engine, points, int(sample[0]))
        with console.status("one query per point"):
            pp_s, pp_codes = per_point(engine, points, sample)
        pp_rate = len(sample) / pp_s
        console.print(f"one query per point: {len(sample):,} points in {pp_s:.2f} s")

        table = Table("scenario", "method", "timed", "seconds", "points/s", title=f"Assigning {n:,} points to 2025 communes")
        for o in outcomes:
            for method, timed, seconds, rate in o.rows:
                table.add_row(o.scenario, method, timed, f"{seconds:.2f}", f"{rate:,.0f}")
        table.add_row("both", f"one query per point (LOCATE_SQL, {len(sample):,} sampled)", "the queries, scaled to N",
                      f"{n / pp_rate:.1f}", f"{pp_rate:,.0f}")
        console.print(table)
        figures = [Figure("one query per point", pp_rate, "points/s")]
        for o in outcomes:
            console.print(f"{o.scenario} scenario: set-based vs one query per point: {o.set_rate / pp_rate:,.1f}x "
                          f"(goal at least 10x); set-based vs sjoin: {o.set_rate / o.sjoin_rate:.2f}x (goal at least 1x)")
            figures += [
                Figure(f"{o.scenario}: set-based PostGIS, {n:,} points", o.set_rate, "points/s"),
                Figure(f"{o.scenario}: geopandas sjoin", o.sjoin_rate, "points/s"),
                Figure(f"{o.scenario}: set-based / one query per point", o.set_rate / pp_rate, "x", ">= 10x",
                       o.set_rate / pp_rate >= 10),
                Figure(f"{o.scenario}: set-based / sjoin", o.set_rate / o.sjoin_rate, "x", ">= 1x", o.set_rate >= o.sjoin_rate),
            ]

        all_ids = np.arange(n)
        for scenario, (set_codes, sj_codes) in codes.items():
            console.print(f"{scenario} scenario: points located: set-based {len(set_codes):,}, sjoin {len(sj_codes):,} of {n:,}; "
                          f"per point {len(pp_codes):,} of {len(sample):,}")
            for label, a, b, ids in (
                ("set-based vs sjoin", set_codes, sj_codes, all_ids),
                ("set-based vs per point", set_codes, pp_codes, sample),
                ("sjoin vs per point", sj_codes, pp_codes, sample),
            ):
                pct, differ, total = agreement(a, b, ids)
                console.print(f"{scenario} scenario: agreement {label}: {pct:.4f}% ({differ:,} of {total:,} points differ)")
                if label == "set-based vs sjoin":
                    figures.append(Figure(f"{scenario}: agreement {label}", pct, "%"))

        if args.variants:
            for scenario in scenarios:
                run_variants(engine, points, codes[scenario][0], scenario, args)
        emit("locate", figures)
        return 0
    finally:
        if pg is not None:
            from geodata.db import get_engine

            get_engine().dispose()
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
