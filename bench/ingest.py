"""Benchmark: import a million survey CSV rows, against a naive per-row ORM insert.

    .venv/bin/python bench/ingest.py [--rows 1000000] [--sample 10000] [--few-names]
    .venv/bin/python bench/ingest.py --against main --rounds 2   # and main's code, alternating
    .venv/bin/python bench/ingest.py --short                     # 100,000 rows

Starts a private PostGIS, loads the reference data and the 2025 approximate
communes, generates a CSV of aspirant records (about 2 % invalid: bad birth
year, unknown market, swapped coordinates, unknown commune; 1 % a person
surveyed again) at points near real commune centres, then times, in the same
run:

1. ``labour-atlas import surveys`` (``etl.surveys.import_surveys``): pandera
   batch validation, commune assignment and insert, set-based;
2. a naive loader on a sample: per row, pydantic validation, one locate query,
   an ORM ``session.add`` and a commit; scaled to the full row count.

Each import runs in a fresh Python process into emptied survey tables (its
peak memory, ``ru_maxrss``, is the import's own); its CPU time is that
process's plus the database cluster's. With ``--against REV`` the same file
is imported with the code of commit REV too, the two alternating for
``--rounds`` rounds; medians and ratios are printed.

Prints rows per second of each, the ratio, the seconds of each stage of the
import (wall, CPU in Python, CPU of the database backend: the stages run at
once, so wall seconds overlap), and checks that the import stored exactly
the valid rows.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("LABOUR_ATLAS_SECRET_KEY", "bench-only-R7kW2mQ9xT4vN8pL3cZ6aB5dE")

from _result import Figure, emit, judged  # bench/ is the script's folder, first on sys.path

from geodata import db, migrate
from geodata.embedded import EmbeddedPostgres

ROOT = Path(__file__).resolve().parent.parent

# Names drawn like real ones: family names with their rough frequencies in
# Viet Nam, common middle and given names. (Seven fixed names, as this
# benchmark first used, made 40 % of a million people "probable duplicates".)
FAMILY = {"Nguyễn": 31, "Trần": 11, "Lê": 9.5, "Phạm": 7, "Hoàng": 3, "Huỳnh": 2, "Phan": 4.5, "Vũ": 2, "Võ": 2,
          "Đặng": 2, "Bùi": 2, "Đỗ": 1.4, "Hồ": 1.3, "Ngô": 1.3, "Dương": 1, "Lý": 0.5}
MIDDLE = ["Văn", "Thị", "Hữu", "Đức", "Minh", "Ngọc", "Thanh", "Quốc", "Xuân", "Hoàng", "Thu", "Kim", "Công", "Bảo"]
GIVEN = ["An", "Anh", "Bình", "Bích", "Châu", "Cường", "Dũng", "Dung", "Duy", "Giang", "Hà", "Hải", "Hạnh", "Hiếu",
         "Hoa", "Hòa", "Hùng", "Hương", "Huy", "Khánh", "Khôi", "Lan", "Linh", "Long", "Mai", "Minh", "My", "Nam",
         "Nga", "Ngân", "Nhung", "Phong", "Phúc", "Phương", "Quân", "Quang", "Sơn", "Tâm", "Thảo", "Thắng", "Thành",
         "Thủy", "Tiến", "Trang", "Trung", "Tú", "Tuấn", "Uyên", "Vân", "Việt", "Vinh", "Yến"]
FEW_NAMES = ["Nguyễn Văn An", "Trần Thị Bích", "Lê Hoàng Cường", "Phạm Thị Dung", "Hoàng Văn Em", "Đỗ Thị Hạnh", "Vũ Minh Khôi"]
RESURVEYED = 0.01  # share of rows that record again a person of an earlier row (same ID): probable duplicates
MARKETS = ["JP", "KR", "TW", "DE"]
SECTORS = ["construction", "caregiving", "manufacturing", "agriculture"]


def start_database(folder: Path) -> EmbeddedPostgres:
    pg = EmbeddedPostgres(folder / "pgdata", durable=False)
    db.use_database(pg.start())
    migrate.upgrade()
    from etl.reference import seed_reference
    from geodata.approximate import approximate_communes
    from geodata.structures import Structure

    seed_reference()
    with db.get_engine().begin() as conn:
        approximate_communes(conn, Structure.v2025)
    return pg


def generate_csv(path: Path, rows: int, seed: int = 7, few_names: bool = False) -> int:
    """Write ``rows`` records; return how many are valid.

    ``few_names``: seven names for everybody, as the first version of this
    benchmark had (a worst case for duplicate linking: 40 % of rows linked).
    """
    with db.get_engine().connect() as conn:
        communes = conn.execute(
            text("SELECT code, ST_X(centre), ST_Y(centre) FROM admin_unit WHERE structure = '2025' AND level = 'commune' AND geom IS NOT NULL AND ST_Covers(geom, centre)")
        ).all()
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(communes), rows)
    bad = rng.random(rows) < 0.02
    how = rng.integers(0, 4, rows)
    jitter = rng.normal(0, 0.0005, (rows, 2))
    years = rng.integers(1970, 2007, rows)
    weights = np.array(list(FAMILY.values()))
    family = rng.choice(list(FAMILY), rows, p=weights / weights.sum())
    middle = rng.choice(MIDDLE, rows)
    given = rng.choice(GIVEN, rows)
    # A re-surveyed person: the same person as a random earlier row.
    again = np.where((rng.random(rows) < RESURVEYED) & (np.arange(rows) > 0),
                     (rng.random(rows) * np.arange(rows)).astype(int), np.arange(rows))
    fields = ["instance_id", "kind", "collected_at", "surveyor", "consent", "commune_code", "location_lat", "location_lon",
              "location_accuracy", "full_name", "national_id", "birth_year", "sex", "markets_wanted", "sector"]
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(fields)
        for i in range(rows):
            p = again[i]  # whose person this row records
            code, lon, lat = communes[pick[p]]
            lon, lat = lon + jitter[i, 0], lat + jitter[i, 1]
            year, market, commune = int(years[p]), MARKETS[i % 4], code
            if bad[i]:
                if how[i] == 0:
                    year = 1900
                elif how[i] == 1:
                    market = "XX"
                elif how[i] == 2:
                    lon, lat = lat, lon
                else:
                    commune = "99999"
            w.writerow([uuid.uuid4(), "aspirant", "2026-10-01T09:00:00+07:00", "Khảo sát viên", "yes", commune,
                        f"{lat:.6f}", f"{lon:.6f}", "8", FEW_NAMES[p % 7] if few_names else f"{family[p]} {middle[p]} {given[p]}", f"0{p:011d}", year,
                        "female" if p % 2 else "male", market, SECTORS[i % 4]])
    return int(rows - bad.sum())


def naive_per_row(path: Path, sample: int) -> float:
    """Per row: pydantic validation, one locate query, ORM add + commit. Returns seconds."""
    from sqlalchemy.ext.automap import automap_base
    from sqlalchemy.orm import Session

    from geodata.locate import locate
    from geodata.text import fold
    from survey.identity import national_id_hash
    from survey.schemas import validate_submission

    base = automap_base()
    base.prepare(autoload_with=db.get_engine())
    record_cls = base.classes.survey_record
    with open(path, encoding="utf-8") as f:
        rows = list(itertools.islice(csv.DictReader(f), sample))
    start = time.perf_counter()
    with Session(db.get_engine()) as session:
        for r in rows:
            payload = {k: v for k, v in r.items() if not k.startswith("location_")}
            payload["location"] = {"lat": r["location_lat"], "lon": r["location_lon"], "accuracy": r["location_accuracy"]}
            payload["markets_wanted"] = r["markets_wanted"].split()
            payload["consent"] = r["consent"] == "yes"
            payload["instance_id"] = str(uuid.uuid4())  # not to clash with the set-based run
            clean, errors = validate_submission(payload)
            if errors:
                continue
            loc = locate(session.connection(), clean["location"].lon, clean["location"].lat, clean["collected_at"].date())
            declared = session.execute(
                text("SELECT 1 FROM admin_unit WHERE structure = :s AND code = :c"), {"s": loc.structure, "c": clean["commune_code"]}
            ).scalar()
            if loc.commune is None or declared is None:
                continue
            session.add(record_cls(
                province_code=loc.province.code, instance_id=clean["instance_id"], form_id="labour_survey", form_version="1",
                kind=clean["kind"], collected_at=clean["collected_at"], surveyor=clean["surveyor"], source="naive",
                structure=loc.structure, declared_commune_code=clean["commune_code"], assigned_commune_code=loc.commune.code,
                geom=f"SRID=4326;POINT({clean['location'].lon} {clean['location'].lat})", consent=True,
                id_hash=national_id_hash(clean["national_id"]), full_name=clean["full_name"], name_folded=fold(clean["full_name"]),
                birth_year=clean["birth_year"], sex=clean["sex"], answers={"markets_wanted": clean["markets_wanted"]},
                payload_hash="naive",
            ))
            session.commit()
    return time.perf_counter() - start


# The import runs in a fresh Python process of the checkout it measures (its
# peak memory is its own; ``--against`` runs another commit's code the same
# way): it prints one JSON line.
CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, os.getcwd())
from geodata import db
db.use_database(os.environ["DATABASE_URL"])
from etl.surveys import import_surveys
t = time.perf_counter()
r = import_surveys(sys.argv[1])
seconds = time.perf_counter() - t
use = resource.getrusage(resource.RUSAGE_SELF)
stages = {n: vars(s) for n, s in getattr(r, "stages", None).stages.items()} if hasattr(r, "stages") else {}
print(json.dumps({"seconds": seconds, "cpu": use.ru_utime + use.ru_stime, "peak_mb": use.ru_maxrss / 1024,
                  "counts": dict(r.counts), "stages": stages}))
"""


def cluster_cpu(pg: EmbeddedPostgres) -> float:
    """CPU seconds used so far by the cluster: the postmaster, its ended children and its live ones."""
    from etl.stage_clock import process_cpu_seconds

    postmaster = int((pg.folder / "postmaster.pid").read_text().split()[0])
    ticks = os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{postmaster}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    total = sum(int(x) for x in fields[11:15]) / ticks  # utime, stime, cutime, cstime
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            rest = stat.read_text(encoding="ascii").rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(rest[1]) == postmaster:
            total += process_cpu_seconds(int(stat.parent.name)) or 0.0
    return total


def tree_of(rev: str, folder: Path) -> Path:
    """The files of commit ``rev`` of this repository, in a folder."""
    out = folder / f"tree-{rev}"
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


def empty_survey_tables() -> None:
    with db.get_engine().begin() as conn:
        conn.execute(text("TRUNCATE probable_duplicate, survey_record, survey_record_key, submission_quarantine"))
    # Statistics of the empty tables now: otherwise autovacuum, counting the
    # rows the last run wrote, analyses them while the next import has not yet
    # committed any, and the planner then takes the filling table for empty
    # (a duplicate probe on the wrong index: minutes per chunk).
    with db.get_engine().connect() as conn:
        conn.execute(text("ANALYZE probable_duplicate, survey_record, survey_record_key, submission_quarantine"))
        conn.commit()


def import_once(tree: Path, path: Path, url: str, pg: EmbeddedPostgres) -> dict:
    """Import ``path`` into empty survey tables with the code of ``tree``, in a child process."""
    empty_survey_tables()
    db_cpu = cluster_cpu(pg)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path)], cwd=tree, capture_output=True, text=True,
                          env=os.environ | {"DATABASE_URL": url})
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"import with the code of {tree} failed: {proc.stderr.strip()[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out |= {"process_seconds": wall, "db_cpu": cluster_cpu(pg) - db_cpu}
    with db.get_engine().connect() as conn:
        out["stored"] = conn.execute(text("SELECT count(*) FROM survey_record WHERE source LIKE 'csv:%'")).scalar()
        out["linked"] = conn.execute(text("SELECT count(*) FROM probable_duplicate")).scalar()
    return out


def stage_table(stages: dict[str, dict]) -> str:
    lines = [f"  {'stage':<20} {'wall s':>8} {'cpu s (python)':>15} {'cpu s (database)':>17}"]
    for name, s in stages.items():
        lines.append(f"  {name:<20} {s['wall']:8.1f} {s['cpu']:15.1f} {s['db_cpu']:17.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=10_000, help="rows for the naive per-row loader (scaled)")
    parser.add_argument("--few-names", action="store_true", help="seven names for everybody: many probable duplicates")
    parser.add_argument("--against", metavar="REV", help="also import with the code of this commit, alternating (e.g. main)")
    parser.add_argument("--rounds", type=int, default=1, help="imports of each version, alternated; medians are printed")
    parser.add_argument("--short", action="store_true", help="100,000 rows, a naive sample of 500 (about half a minute)")
    args = parser.parse_args(argv)
    if args.short:
        args.rows, args.sample = 100_000, min(args.sample, 500)
    folder = Path(tempfile.mkdtemp(prefix="labour-atlas-bench-"))
    folder.chmod(0o755)
    pg = None
    try:
        t = time.perf_counter()
        pg = start_database(folder)
        url = db.get_engine().url.render_as_string(hide_password=False)
        print(f"database ready in {time.perf_counter() - t:.1f} s")
        path = folder / "surveys.csv"
        path.parent.chmod(0o755)
        t = time.perf_counter()
        valid = generate_csv(path, args.rows, few_names=args.few_names)
        print(f"generated {args.rows:,} rows ({valid:,} valid) in {time.perf_counter() - t:.1f} s, {path.stat().st_size / 1e6:.0f} MB")

        trees = {"this checkout": ROOT}
        if args.against:
            trees[args.against] = tree_of(args.against, folder)
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        for r in range(args.rounds):
            order = list(trees) if r % 2 == 0 else list(reversed(trees))  # turns alternate
            for name in order:
                load = os.getloadavg()[0]
                out = import_once(trees[name], path, url, pg)
                runs[name].append(out)
                print(f"import surveys ({name}): {out['seconds']:.1f} s wall, CPU {out['cpu']:.1f} s python + "
                      f"{out['db_cpu']:.1f} s database, peak {out['peak_mb']:.0f} MB, outcomes {out['counts']} "
                      f"(load average before {load:.1f})", flush=True)
        mine = runs["this checkout"]
        bulk = statistics.median(o["seconds"] for o in mine)
        cpu = statistics.median(o["cpu"] + o["db_cpu"] for o in mine)
        peak = max(o["peak_mb"] for o in mine)
        last = mine[-1]
        stored, linked = last["stored"], last["linked"]
        naive = naive_per_row(path, min(args.sample, args.rows))
        naive_scaled = naive * args.rows / min(args.sample, args.rows)

        print("\nstages of the import (this checkout, last run; they overlap: three threads, two database backends):")
        print(stage_table(last["stages"]))
        print(f"\nimport surveys (set-based): {bulk:8.1f} s  {args.rows / bulk:10,.0f} rows/s  outcomes {last['counts']}; "
              f"CPU {cpu:.1f} s (python and database), peak {peak:.0f} MB (python process)")
        figures = [
            Figure(f"import {args.rows:,} rows", bulk, "s", "< 60 s for 1,000,000 rows", judged(bulk < 60, args.rows != 1_000_000)),
            Figure("import rows per second", args.rows / bulk, "rows/s"),
            Figure("import CPU (python + database)", cpu, "s"),
            Figure("import peak memory (python)", peak, "MB", "< 1,024 MB for 1,000,000 rows",
                   judged(peak < 1024, args.rows != 1_000_000)),
        ]
        for name, s in last["stages"].items():
            figures.append(Figure(f"stage {name} (CPU python + database)", s["cpu"] + s["db_cpu"], "s"))
        if args.against:
            base = runs[args.against]
            base_s = statistics.median(o["seconds"] for o in base)
            base_cpu = statistics.median(o["cpu"] + o["db_cpu"] for o in base)
            print(f"import surveys ({args.against}): links {base[-1]['linked']:,}, stored {base[-1]['stored']:,}; "
                  f"  {base_s:8.1f} s  CPU {base_cpu:.1f} s, peak {max(o['peak_mb'] for o in base):.0f} MB")
            print(f"this checkout / {args.against}: wall {bulk / base_s:.2f}, CPU {cpu / base_cpu:.2f} "
                  f"(medians of {args.rounds} alternated run{'s' if args.rounds > 1 else ''})")
            figures += [Figure(f"import wall, this checkout / {args.against}", bulk / base_s, "x"),
                        Figure(f"import CPU, this checkout / {args.against}", cpu / base_cpu, "x")]
        print(f"naive per-row ORM ({min(args.sample, args.rows):,} rows): {naive:6.1f} s  {min(args.sample, args.rows) / naive:10,.0f} rows/s"
              f"  -> {naive_scaled:,.0f} s for {args.rows:,}")
        print(f"ratio set-based / naive: {naive_scaled / bulk:.1f}x faster")
        print("goal: 1,000,000 rows in under 60 s, peak under 1 GB -> "
              + (f"{'met' if bulk < 60 and peak < 1024 else 'NOT met'} ({bulk:.1f} s, {peak:.0f} MB)" if args.rows == 1_000_000
                 else f"not judged ({args.rows:,} rows)"))
        print(f"probable-duplicate links made: {linked:,}")
        print(f"stored rows {stored:,}; rows expected valid by the generator {valid:,} "
              f"(the difference is rows whose jittered point fell more than the tolerance outside Viet Nam, or none)")
        figures.append(Figure("set-based / naive per-row ORM", naive_scaled / bulk, "x", ">= 10x", naive_scaled / bulk >= 10))
        figures.append(Figure("rows stored", stored, "rows", f"= {valid:,} valid rows generated", stored == valid))
        emit("ingest", figures)
    finally:
        if pg is not None:
            db.close_database()
            pg.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
