"""Benchmark: which queries stay on one shard, simulated with 4 province-range partitions on this machine.

    .venv/bin/python bench/scale_out.py [--short] [--records 1000000] [--incidents 200000] [--repeats 7]

A stand-in for a Citus cluster without Citus: starts a private PostGIS,
migrates a database ("single") and fills it with synthetic survey records
and incidents (labelled so) spread over the 3,321 communes of 2025; migrates
a second database ("partitioned") in which every table that
geodata.distribution distributes by ``province_code`` is declared
``PARTITION BY RANGE (province_code)`` with 4 partitions of about equal
record counts (contiguous province-code ranges, as shards would be), and
copies the rows into it (COPY between the two). Creating those tables from
the migrated ones (LIKE ... INCLUDING ALL) is itself a check: PostgreSQL, like
Citus, refuses a partitioned table whose unique index lacks the key.

Then runs the same representative queries on both with EXPLAIN (ANALYZE) and
reports, per query, how many partitions were read (after plan-time and
run-time pruning), the median execution time on each database, and the
time of the slowest partition's scan (on a cluster the shards are read at
the same time: a fan-out waits for about its slowest shard, plus the merge):

- an officer's province: the newest records of one province, by the province
  (what the app would send to one shard), by the list of its communes (the
  app's area condition today, which names no province), and by both;
- one record by instance_id, through the key table's province (as the app reads it);
- the national count of records by kind;
- the hot-spot input: incidents per commune of 2025 over a year, nationally.

Goal: the officer's province (by province, or by communes and province) and a
record read through its key read 1 partition of 4. The last stdout line is ``BENCH-RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("LABOUR_ATLAS_SECRET_KEY", "bench-only-R7kW2mQ9xT4vN8pL3cZ6aB5dE")

import psycopg
from _common import private_cluster, remove_cluster  # bench/ is the script's folder, first on sys.path
from sqlalchemy import text
from sqlalchemy.engine import make_url

from geodata import db, migrate
from geodata.distribution import DISTRIBUTED

PARTITIONS = 4
OFFICER_PROVINCE = "42"  # Hà Tĩnh

COMMUNES_SQL = """
CREATE TEMP TABLE bench_commune AS
SELECT row_number() OVER (ORDER BY code) AS i, code, parent_code FROM admin_unit WHERE structure = '2025' AND level = 'commune'
"""

# Synthetic, labelled so; spread over the communes by a multiplicative hash of the row number.
RECORDS_SQL = """
WITH n AS (SELECT count(*) AS communes FROM bench_commune),
g AS (SELECT g, c.code, c.parent_code FROM generate_series(1, :n) g, n
      JOIN bench_commune c ON true WHERE c.i = 1 + (g::bigint * 7919) % n.communes),
ins AS (
    INSERT INTO survey_record (province_code, instance_id, form_id, form_version, kind, collected_at, submitted_at, surveyor,
                               source, structure, declared_commune_code, assigned_commune_code, consent, payload_hash,
                               birth_year, sex, answers)
    SELECT parent_code, gen_random_uuid(), 'labour_survey', '1', (ARRAY['aspirant', 'returnee', 'departure'])[1 + g % 3],
           timestamptz '2025-07-01 08:00+07' + (g % 517) * interval '1 day' + (g % 600) * interval '1 minute',
           timestamptz '2025-07-01 09:00+07' + (g % 517) * interval '1 day' + (g % 600) * interval '1 minute',
           'bench', 'bench (synthetic)', '2025', code, code, true, md5(g::text), 1960 + g % 45,
           CASE WHEN g % 2 = 0 THEN 'female' ELSE 'male' END, '{}'
    FROM g
    RETURNING province_code, instance_id
)
INSERT INTO survey_record_key (instance_id, province_code) SELECT instance_id, province_code FROM ins
"""

INCIDENTS_SQL = """
WITH n AS (SELECT count(*) AS communes FROM bench_commune)
INSERT INTO incident (province_code, incident_id, type, occurred_on, structure, commune_code, persons_affected, status, source)
SELECT c.parent_code, 'bench-' || g, (ARRAY['illegal_brokerage', 'recruitment_fraud', 'irregular_departure'])[1 + g % 3],
       DATE '2025-07-01' + (g % 540), '2025', c.code, g % 4, 'reported', 'bench (synthetic)'
FROM generate_series(1, :n) g, n JOIN bench_commune c ON true WHERE c.i = 1 + (g::bigint * 104729) % n.communes
"""

QUERIES: dict[str, str] = {
    "officer_province_by_province": """
        SELECT r.instance_id, r.kind, r.declared_commune_code, r.submitted_at FROM survey_record r
        WHERE r.province_code = :p ORDER BY r.submitted_at DESC LIMIT 100""",
    "officer_province_by_communes": """
        SELECT r.instance_id, r.kind, r.declared_commune_code, r.submitted_at FROM survey_record r
        WHERE r.declared_commune_code = ANY (CAST(:communes AS text[])) ORDER BY r.submitted_at DESC LIMIT 100""",
    "officer_province_by_communes_and_province": """
        SELECT r.instance_id, r.kind, r.declared_commune_code, r.submitted_at FROM survey_record r
        WHERE r.province_code = :p AND r.declared_commune_code = ANY (CAST(:communes AS text[]))
        ORDER BY r.submitted_at DESC LIMIT 100""",
    "record_by_instance_id_through_key": """
        SELECT r.* FROM survey_record r WHERE (r.province_code, r.instance_id) IN (
            SELECT k.province_code, k.instance_id FROM survey_record_key k WHERE k.instance_id = CAST(:i AS uuid))""",
    "national_count_by_kind": """
        SELECT r.kind, count(*) FROM survey_record r GROUP BY r.kind""",
    "hotspot_input_national": """
        SELECT i.commune_code, count(*) AS incidents, sum(i.persons_affected) AS persons FROM incident i
        WHERE i.structure = '2025' AND i.occurred_on BETWEEN DATE '2026-01-01' AND DATE '2026-12-31'
        GROUP BY i.commune_code""",
}

ONE_SHARD = {"officer_province_by_province", "officer_province_by_communes_and_province", "record_by_instance_id_through_key"}


def plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def migrated(admin_url: str, name: str) -> str:
    """A new migrated database with the code lists and the crosswalk; returns its SQLAlchemy URL."""
    from etl.reference import load_code_lists, load_crosswalk

    with psycopg.connect(plain(admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = db.use_database(url)
    migrate.upgrade()
    with engine.begin() as conn:
        load_code_lists(conn)
        load_crosswalk(conn)
    return url


def province_ranges(conn, parts: int) -> list[str]:
    """The ``parts - 1`` lower bounds that cut the provinces, in code order, into runs of about equal record counts."""
    counts = conn.execute(text("SELECT province_code, count(*) FROM survey_record GROUP BY 1 ORDER BY 1")).all()
    total, bounds, running = sum(c for _, c in counts), [], 0
    for code, c in counts:
        if running >= total * (len(bounds) + 1) / parts and len(bounds) < parts - 1:
            bounds.append(code)
        running += c
    return bounds


def partition(url: str, bounds: list[str]) -> list[str]:
    """Replace each province-distributed table of ``url`` by a range-partitioned one; returns the partition names."""
    names: list[str] = []
    edges = ["MINVALUE", *(f"'{b}'" for b in bounds), "MAXVALUE"]
    with db.use_database(url).begin() as conn:
        for table, column in DISTRIBUTED.items():
            if column != "province_code":
                continue
            conn.execute(text(f"ALTER TABLE {table} RENAME TO {table}_single"))
            # INCLUDING ALL: the primary key and every index, which PostgreSQL accepts only if each unique one holds the key.
            conn.execute(text(f"CREATE TABLE {table} (LIKE {table}_single INCLUDING ALL) PARTITION BY RANGE ({column})"))
            for k in range(len(edges) - 1):
                conn.execute(text(f"CREATE TABLE {table}_p{k} PARTITION OF {table} FOR VALUES FROM ({edges[k]}) TO ({edges[k + 1]})"))
                names.append(f"{table}_p{k}")
        for table, column in DISTRIBUTED.items():
            if column == "province_code":
                conn.execute(text(f"DROP TABLE {table}_single CASCADE"))
    return names


def copy_tables(src_url: str, dst_url: str, tables: list[str]) -> None:
    """COPY the rows of ``tables`` from one database to the other (binary, streamed)."""
    with psycopg.connect(plain(src_url)) as src, psycopg.connect(plain(dst_url)) as dst:
        for table in tables:
            cols = [r[0] for r in src.execute(
                """SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped
                   AND attgenerated = '' ORDER BY attnum""", (table,))]
            names = ", ".join(cols)
            with src.cursor().copy(f"COPY {table} ({names}) TO STDOUT (FORMAT binary)") as out, \
                    dst.cursor().copy(f"COPY {table} ({names}) FROM STDIN (FORMAT binary)") as inp:
                for chunk in out:
                    inp.write(chunk)
        dst.commit()


def vacuum(url: str) -> None:
    with psycopg.connect(plain(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE survey_record, survey_record_key, incident")


def scans(plan: dict, partitions: set[str]) -> dict[str, float]:
    """The partitions a plan (EXPLAIN ANALYZE, JSON) read, with the time of their scans in ms (scans that ran)."""
    found: dict[str, float] = {}
    if plan.get("Relation Name") in partitions and plan.get("Actual Loops", 0) > 0:
        name = plan["Relation Name"]
        found[name] = found.get(name, 0.0) + plan["Actual Total Time"] * plan["Actual Loops"]
    for child in plan.get("Plans", []):
        for name, ms in scans(child, partitions).items():
            found[name] = found.get(name, 0.0) + ms
    return found


def measure(url: str, sql: str, params: dict, partitions: set[str], repeats: int) -> tuple[float, int, float, int]:
    """Median execution time (ms), partitions read, the median of the slowest partition's scan (ms), rows returned."""
    times, slowest, read, rows = [], [], 0, 0
    with db.use_database(url).connect() as conn:
        conn.execute(text(sql), params).all()  # warm
        for _ in range(repeats):
            (doc,) = conn.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + sql), params).scalar()
            times.append(doc["Execution Time"])
            read_ms = scans(doc["Plan"], partitions)
            read, rows = len(read_ms), int(doc["Plan"]["Actual Rows"])
            slowest.append(max(read_ms.values(), default=0.0))
    return statistics.median(times), read, statistics.median(slowest), rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="100,000 records and 20,000 incidents, 3 repeats (under a minute)")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--incidents", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    if args.short:
        args.records, args.incidents, args.repeats = 100_000, 20_000, 3
    folder, pg = private_cluster()
    started = time.perf_counter()
    try:
        admin = pg.start().rsplit("/", 1)[0] + "/postgres"
        single = migrated(admin, "scale_single")
        with db.use_database(single).begin() as conn:
            conn.execute(text(COMMUNES_SQL))
            conn.execute(text(RECORDS_SQL), {"n": args.records})
            conn.execute(text(INCIDENTS_SQL), {"n": args.incidents})
        vacuum(single)
        with db.use_database(single).connect() as conn:
            bounds = province_ranges(conn, PARTITIONS)
            communes = conn.execute(text("SELECT array_agg(code) FROM admin_unit WHERE structure = '2025' AND parent_code = :p"),
                                    {"p": OFFICER_PROVINCE}).scalar()
            some = conn.execute(text("SELECT instance_id::text FROM survey_record_key ORDER BY instance_id LIMIT 1")).scalar()
            per_part = conn.execute(text("""
                SELECT count(*) FILTER (WHERE province_code < :b1), count(*) FILTER (WHERE province_code >= :b1 AND province_code < :b2),
                       count(*) FILTER (WHERE province_code >= :b2 AND province_code < :b3), count(*) FILTER (WHERE province_code >= :b3)
                FROM survey_record"""), {"b1": bounds[0], "b2": bounds[1], "b3": bounds[2]}).one()
        loaded = time.perf_counter() - started
        split = migrated(admin, "scale_partitioned")
        partitions = set(partition(split, bounds))
        copy_tables(single, split, ["survey_record", "survey_record_key", "incident"])
        vacuum(split)
        print(f"{args.records:,} records and {args.incidents:,} incidents (synthetic) in {loaded:.1f} s; "
              f"partitions by province code from {', '.join(bounds)}: records per partition {', '.join(f'{n:,}' for n in per_part)}")
        params = {"p": OFFICER_PROVINCE, "communes": communes, "i": some}
        figures, lines = [], []
        for name, sql in QUERIES.items():
            one_ms, _, _, rows = measure(single, sql, params, partitions, args.repeats)
            part_ms, read, slowest_ms, part_rows = measure(split, sql, params, partitions, args.repeats)
            assert rows == part_rows, f"{name}: {rows} rows on one table, {part_rows} partitioned"
            lines.append(f"{name:42} {rows:>6,} {read:>4}/{PARTITIONS} {one_ms:9.2f} {part_ms:11.2f} {slowest_ms:11.2f}")
            goal = name in ONE_SHARD
            figures += [
                {"name": f"{name}: partitions read", "value": float(read), "unit": f"of {PARTITIONS}",
                 "goal": "1" if goal else None, "met": (read == 1) if goal else None},
                {"name": f"{name}: one table", "value": round(one_ms, 3), "unit": "ms", "goal": None, "met": None},
                {"name": f"{name}: partitioned", "value": round(part_ms, 3), "unit": "ms", "goal": None, "met": None},
                {"name": f"{name}: slowest partition's scan", "value": round(slowest_ms, 3), "unit": "ms", "goal": None,
                 "met": None},
            ]
        print(f"\n{'query':42} {'rows':>6} {'read':>6} {'one table':>9} {'partitioned':>11} {'slowest scan':>11}   (ms)")
        print("\n".join(lines))
        print(f"\n(median of {args.repeats} EXPLAIN ANALYZE runs each; goal: the officer's province named and a record "
              "read through its key read 1 partition)")
        print("BENCH-RESULT " + json.dumps({"bench": "scale_out", "figures": figures}, ensure_ascii=False))
        return 0
    finally:
        remove_cluster(folder, pg)


if __name__ == "__main__":
    raise SystemExit(main())
