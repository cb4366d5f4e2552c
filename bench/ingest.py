"""Benchmark: import a million survey CSV rows, against a naive per-row ORM insert.

    .venv/bin/python bench/ingest.py [--rows 1000000] [--sample 10000] [--few-names]

Starts a private PostGIS, loads the reference data and the 2025 approximate
communes, generates a CSV of aspirant records (about 2 % invalid: bad birth
year, unknown market, swapped coordinates, unknown commune; 1 % a person
surveyed again) at points near real commune centres, then times, in the same
run:

1. ``labour-atlas import surveys`` (``etl.surveys.import_surveys``): pandera
   batch validation, commune assignment and insert, set-based;
2. a naive loader on a sample: per row, pydantic validation, one locate query,
   an ORM ``session.add`` and a commit; scaled to the full row count.

Prints rows per second of each, the ratio, and checks that the import stored
exactly the valid rows.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("LABOUR_ATLAS_SECRET_KEY", "bench-only-R7kW2mQ9xT4vN8pL3cZ6aB5dE")

from geodata import db, migrate
from geodata.embedded import EmbeddedPostgres

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=10_000, help="rows for the naive per-row loader (scaled)")
    parser.add_argument("--few-names", action="store_true", help="seven names for everybody: many probable duplicates")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="labour-atlas-bench-"))
    folder.chmod(0o755)
    pg = None
    try:
        t = time.perf_counter()
        pg = start_database(folder)
        print(f"database ready in {time.perf_counter() - t:.1f} s")
        path = folder / "surveys.csv"
        t = time.perf_counter()
        valid = generate_csv(path, args.rows, few_names=args.few_names)
        print(f"generated {args.rows:,} rows ({valid:,} valid) in {time.perf_counter() - t:.1f} s, {path.stat().st_size / 1e6:.0f} MB")

        from etl.surveys import import_surveys

        t = time.perf_counter()
        result = import_surveys(path)
        bulk = time.perf_counter() - t
        print(f"import surveys: {bulk:.1f} s, outcomes {dict(result.counts)}", flush=True)
        with db.get_engine().connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM survey_record WHERE source LIKE 'csv:%'")).scalar()
            linked = conn.execute(text("SELECT count(*) FROM probable_duplicate")).scalar()
        naive = naive_per_row(path, min(args.sample, args.rows))
        naive_scaled = naive * args.rows / min(args.sample, args.rows)

        print(f"\nimport surveys (set-based): {bulk:8.1f} s  {args.rows / bulk:10,.0f} rows/s  outcomes {dict(result.counts)}")
        print(f"naive per-row ORM ({min(args.sample, args.rows):,} rows): {naive:6.1f} s  {min(args.sample, args.rows) / naive:10,.0f} rows/s"
              f"  -> {naive_scaled:,.0f} s for {args.rows:,}")
        print(f"ratio set-based / naive: {naive_scaled / bulk:.1f}x faster")
        print(f"goal: {args.rows:,} rows in under 60 s -> {'met' if bulk < 60 else 'NOT met'} ({bulk:.1f} s)")
        print(f"probable-duplicate links made: {linked:,}")
        print(f"stored rows {stored:,}; rows expected valid by the generator {valid:,} "
              f"(the difference is rows whose jittered point fell more than the tolerance outside Viet Nam, or none)")
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
