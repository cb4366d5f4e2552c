"""Targets and the coverage layer, against numbers computed by hand.

The fixtures use Huế (province 46 in both structures, one province before and
after the 2025 merger), which no other test writes records into, so every
count below is exactly what the test stored.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app as cli_app
from geodata.scopes import Reader
from maps.coverage import coverage_by_unit, parse_period
from survey.ingest import Incoming, ingest
from tests.payloads import aspirant

DATA = Path(__file__).resolve().parent.parent / "geodata" / "reference" / "targets_from_plans.csv"
PROVINCE = "46"


@pytest.fixture(scope="module")
def hue(seeded_url):
    """Points in communes of Huế (2025), one per commune, from the polygons."""
    from geodata.db import use_database

    engine = use_database(seeded_url)
    with engine.connect() as conn:
        rows = conn.execute(text("""SELECT code, ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat
                                    FROM admin_unit WHERE structure = '2025' AND parent_code = :p AND geom IS NOT NULL
                                    ORDER BY code LIMIT 6"""), {"p": PROVINCE}).all()
        old = {}
        for r in rows:
            old[r.code] = conn.execute(text("""SELECT code FROM admin_unit_part WHERE structure = 'pre2025' AND level = 'commune'
                                               AND ST_Covers(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) LIMIT 1"""),
                                       {"x": r.lon, "y": r.lat}).scalar()
    return [{"code": r.code, "lon": r.lon, "lat": r.lat, "old": old[r.code]} for r in rows]


def departure(place: dict, departed: dt.date, collected: dt.datetime, old: bool = False) -> dict:
    p = aspirant({"code": place["old"] if old else place["code"], "lon": place["lon"], "lat": place["lat"]},
                 kind="departure", markets_wanted=None, sector=None, aspirant_needs=None,
                 collected_at=collected.isoformat(), departure_date=departed.isoformat(), market="JP",
                 recruiter_licence="01/LĐTBXH-GPHĐ", contract_months=36, full_name=f"Xuất Cảnh {uuid.uuid4().hex[:6]}")
    return p


def store(engine, payloads: list[dict]) -> None:
    with engine.begin() as conn:
        outcomes = ingest(conn, [Incoming(json.dumps(p, ensure_ascii=False), p) for p in payloads], source="test-coverage")
    assert all(o.status == "created" for o in outcomes), [o.errors for o in outcomes if o.status != "created"]


def vn(y, m, d, h=9):
    return dt.datetime(y, m, d, h, tzinfo=dt.timezone(dt.timedelta(hours=7)))


@pytest.fixture(scope="module")
def huế_departures(seeded_url, hue):
    """2025: 3 departures January-June (recorded in the old structure) and 5 July-December (in the new one)."""
    from geodata.db import use_database

    engine = use_database(seeded_url)
    store(engine, [departure(hue[i], dt.date(2025, 3, 1 + i), vn(2025, 3, 10), old=True) for i in range(3)])
    store(engine, [departure(hue[i % len(hue)], dt.date(2025, 8, 1 + i), vn(2025, 8, 20)) for i in range(5)])
    return engine


def layer(conn, structure, year, level="province", parent=None, **kw):
    return coverage_by_unit(conn, structure=structure, level=level, period=parse_period(year), reader=Reader(), parent=parent,
                            with_geometry=False, **kw)


def row_of(result, code):
    return next(r for r in result.rows if r.row.unit_code == code)


def test_a_year_that_straddles_the_merger_is_counted_in_the_structure_asked_for(huế_departures, seeded):
    with seeded.connect() as conn:
        new = row_of(layer(conn, "2025", 2025), PROVINCE)
        old = row_of(layer(conn, "pre2025", 2025), PROVINCE)
        half = coverage_by_unit(conn, structure="2025", level="province", period=parse_period(half="2025-H1"), reader=Reader(),
                                with_geometry=False)
    # All 8 departures in one structure or the other, never split 3 / 5.
    assert new.row.values["actual"] == 8 and old.row.values["actual"] == 8
    assert row_of(half, PROVINCE).row.values["actual"] == 3


def test_real_targets_import_and_are_carried_to_the_other_structure(huế_departures, seeded):
    result = CliRunner().invoke(cli_app, ["import", "targets", str(DATA)])
    assert result.exit_code == 0, result.output
    assert "9 targets" in result.output
    with seeded.connect() as conn:
        notes = conn.execute(text("SELECT notes FROM target WHERE structure = 'pre2025' AND unit_code = '004' AND year = 2025")).scalar()
        old = row_of(layer(conn, "pre2025", 2025), PROVINCE)
        new = row_of(layer(conn, "2025", 2025), PROVINCE)
    assert notes["source_document"].startswith("Kế hoạch 59/KH-UBND 2025") and notes["unit_name"] == "Long Biên"
    # Own target in the old structure: 2,100 in 2025; 8 departures.
    assert old.target.method == "own" and old.row.values["target_lower"] == 2100
    assert old.row.values["ratio"] == pytest.approx(8 / 2100, abs=1e-4) and old.klass == "0–50 %"
    # Carried to new province 46, which is old province 46 whole: all of it, by area (no departures in 2024).
    assert new.target.method == "carried from pre2025 province 46 by shares of area"
    assert new.row.values["target_lower"] == pytest.approx(2100, rel=1e-3)
    # Importing again updates, never duplicates.
    again = CliRunner().invoke(cli_app, ["import", "targets", str(DATA)])
    assert again.exit_code == 0 and "0 new, 9 updated" in again.output


def commune_layer(conn, year, place, today):
    return row_of(coverage_by_unit(conn, structure="2025", level="commune", period=parse_period(year), reader=Reader(),
                                   parent=place["code"], with_geometry=False, today=today), place["code"])


def test_a_growth_target_is_a_range_over_last_years_actual(huế_departures, seeded, hue):
    """The first commune had 2 departures in 2025 (one recorded in each structure); 10-15 % more in 2026."""
    place = hue[0]
    store(seeded, [departure(place, dt.date(2026, 2, 1 + i), vn(2026, 2, 20)) for i in range(4)])
    with seeded.begin() as conn:
        conn.execute(text("""INSERT INTO target (structure, unit_code, year, indicator, kind, value, value_max, source)
                             VALUES ('2025', :c, 2026, 'departures', 'growth_percent', 10, 15, 'test')"""), {"c": place["code"]})
        try:
            r = commune_layer(conn, 2026, place, dt.date(2027, 1, 15))
        finally:
            conn.execute(text("DELETE FROM target WHERE source = 'test'"))
    assert r.row.values["target_lower"] == pytest.approx(2.2) and r.row.values["target_upper"] == pytest.approx(2.3)
    assert r.row.values["actual"] == 4 and r.row.values["ratio"] == pytest.approx(4 / 2.2, abs=1e-4)
    assert r.target.kind == "growth_percent" and r.klass == "≥ 100 %"


def test_on_track_projection_from_the_seasonal_profile(seeded, hue):
    """2022 and 2023: five departures a month, so half a year's by 30 June. 2026 by 30 June: 60, so 120 projected."""
    place = hue[5]
    store(seeded, [departure(place, dt.date(y, m, 5), vn(2025, 2, 1)) for y in (2022, 2023) for m in range(1, 13) for _ in range(5)])
    store(seeded, [departure(place, dt.date(2026, 1 + i % 6, 3), vn(2026, 7, 1)) for i in range(60)])
    labels = {}
    with seeded.begin() as conn:
        conn.execute(text("""INSERT INTO target (structure, unit_code, year, indicator, kind, value, source)
                             VALUES ('2025', :c, 2026, 'departures', 'absolute', 110, 'test')"""), {"c": place["code"]})
        try:
            for target in (110, 140, 200):
                conn.execute(text("UPDATE target SET value = :v WHERE source = 'test'"), {"v": target})
                r = commune_layer(conn, 2026, place, dt.date(2026, 6, 30))
                labels[target] = (r.row.values["projected"], r.status)
            linear = commune_layer(conn, 2026, hue[4], dt.date(2026, 6, 30))
        finally:
            conn.execute(text("DELETE FROM target WHERE source = 'test'"))
    # 120 projected: at least 110 is on track; at least 80 % of 140 (112) is at risk; below 80 % of 200 is off track.
    assert labels == {110: (120.0, "on_track"), 140: (120.0, "at_risk"), 200: (120.0, "off_track")}
    assert linear.status is None  # no target there: a projection, but nothing to be on track for


def test_classification_methods(huế_departures, seeded):
    with seeded.connect() as conn:
        fixed = layer(conn, "2025", 2025, level="province")
        quantiles = layer(conn, "2025", 2025, level="province", method="quantiles", classes=4)
    assert [b.label for b in fixed.classification.classes] == ["0–50 %", "50–80 %", "80–100 %", "≥ 100 %"]
    no_target = next(r for r in fixed.rows if r.target is None)
    assert no_target.klass == "no data" and no_target.row.values["ratio"] is None
    assert quantiles.classification.description.startswith("quantiles")


def test_targets_file_with_bad_rows_is_refused_whole(seeded, tmp_path):
    path = tmp_path / "chi_tieu.csv"
    path.write_text("unit_code;structure;year;kind;value;value_max\n42;2025;2026;absolute;100;\n"
                    "99;2025;2026;absolute;5;\n1;pre2025;2026;minimum;5;\n42;2025;2026;growth_percent;15;10\n", encoding="utf-8")
    with seeded.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM target")).scalar()
    result = CliRunner().invoke(cli_app, ["import", "targets", str(path)])
    assert result.exit_code == 1 and "nothing was imported" in result.output
    assert "row 3, field unit_code: no unit 99 in the 2025 structure" in result.output
    assert "row 4, field unit_code: 1 could be any of 01, 001, 00001" in result.output
    assert "row 5: value_max 10 is below value 15" in result.output
    with seeded.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM target")).scalar() == before
