"""Sample data for the demo's map layers: the real targets, and a synthetic register, events and incidents.

The targets are real (``geodata/reference/targets_from_plans.csv``); the
current year's targets of the three sample provinces, the recruiter register,
the recruitment events and the incidents are made up and say so: names carry
"(giả lập)" and every row's source is ``sample (synthetic)``. Incidents hold
a planted cluster in a few neighbouring communes of Hà Tĩnh, so the hot-spot
map has something to find.
"""

from __future__ import annotations

import datetime as dt
import json
import random

from sqlalchemy import Connection, text

from etl.sample import SAMPLE_PROVINCES, SOURCE
from etl.targets import TargetIn, import_targets, store_targets
from geodata.reference_data import REFERENCE_DIR
from geodata.structures import Structure

TYPES = ("illegal_brokerage", "recruitment_fraud", "trafficking", "irregular_departure", "other")
RECRUITERS = (
    ("MAU-001/LĐTBXH-GPHĐ", "Công ty mẫu Nhân lực Hồng Lam (giả lập)", "active", "2023-01-01", None, ["JP", "KR"]),
    ("MAU-002/LĐTBXH-GPHĐ", "Công ty mẫu Cung ứng Lao động Sông La (giả lập)", "active", "2024-06-01", None, ["TW", "JP"]),
    ("MAU-003/LĐTBXH-GPHĐ", "Công ty mẫu Xuất khẩu Lao động Bến Thủy (giả lập)", "active", "2022-03-01", "2026-03-31", ["DE", "RO"]),
    ("MAU-004/LĐTBXH-GPHĐ", "Công ty mẫu Nhân lực Lam Hồng (giả lập)", "revoked", "2021-01-01", "2026-02-28", ["KR"]),
    ("MAU-005/LĐTBXH-GPHĐ", "Công ty mẫu Hợp tác Lao động Xứ Thanh (giả lập)", "active", "2025-01-15", None, ["JP", "SA"]),
)
UNREGISTERED = ("Đối tượng mẫu Hai Môi Giới (giả lập)", "Đối tượng mẫu Ba Dẫn Đường (giả lập)", "Đối tượng mẫu Tư (giả lập)")

POINTS_SQL = """
SELECT u.code, u.parent_code, ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat
FROM admin_unit u CROSS JOIN LATERAL (SELECT (ST_Dump(ST_GeneratePoints(u.geom, 2, :seed))).geom) p
WHERE u.structure = '2025' AND u.level = 'commune' AND u.parent_code = ANY(:provinces) AND u.geom IS NOT NULL
ORDER BY u.code
"""


def sample_layers_loaded(conn: Connection) -> bool:
    return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM recruiter WHERE source = :s)"), {"s": SOURCE}).scalar())


def load_sample_layers(conn: Connection, seed: int = 2026, today: dt.date | None = None) -> dict[str, int]:
    """Load targets, a synthetic register, events and incidents for the demo; returns how many of each."""
    today = today or dt.date.today()
    rng = random.Random(seed)
    counts = {"targets": import_targets(conn, REFERENCE_DIR / "targets_from_plans.csv", who="demo").rows}
    this_year = [TargetIn(unit_code=p, structure=Structure.v2025, year=today.year, indicator="departures", kind="absolute",
                          value=v, notes={"note": "sample (synthetic) target for the demo"})
                 for p, v in zip(SAMPLE_PROVINCES, (150, 220, 180), strict=True)]
    store_targets(conn, this_year, source=SOURCE, who="demo")
    counts["targets"] += len(this_year)
    points = conn.execute(text(POINTS_SQL), {"seed": seed, "provinces": list(SAMPLE_PROVINCES)}).all()
    if not points:
        return counts
    offices = rng.sample(points, len(RECRUITERS))
    conn.execute(text("""
        INSERT INTO recruiter (licence_number, name, status, valid_from, valid_to, markets, head_office, source)
        SELECT licence_number, name, status, valid_from, valid_to, markets, ST_SetSRID(ST_MakePoint(lon, lat), 4326), :source
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(licence_number text, name text, status text, valid_from date,
                                                          valid_to date, markets text[], lon float8, lat float8)
        ON CONFLICT (licence_number) DO NOTHING"""), {"source": SOURCE, "rows": json.dumps([
        {"licence_number": r[0], "name": r[1], "status": r[2], "valid_from": r[3], "valid_to": r[4], "markets": r[5],
         "lon": o.lon, "lat": o.lat} for r, o in zip(RECRUITERS, offices, strict=True)], ensure_ascii=False)})
    counts["recruiters"] = len(RECRUITERS)
    start = max(today - dt.timedelta(days=365), dt.date(2025, 7, 1))  # the 2025 structure's communes
    span = (today - start).days
    events = []
    for i in range(160):
        where = rng.choice(points)
        unregistered = rng.random() < 0.12
        events.append({"key": f"sample-{i}", "licence": None if unregistered else rng.choice(RECRUITERS)[0],
                       "actor": rng.choice(UNREGISTERED) if unregistered else None, "day": str(start + dt.timedelta(days=rng.randrange(span))),
                       "kind": rng.choice(("seminar", "counselling", "selection")), "attendees": rng.randrange(5, 80),
                       "lon": where.lon, "lat": where.lat, "commune": where.code, "province": where.parent_code})
    conn.execute(text("""
        INSERT INTO recruitment_event (province_code, event_key, licence_number, actor_name, occurred_on, kind, attendees, geom,
                                       structure, commune_code, source)
        SELECT e.province, e.key, e.licence, coalesce(e.actor, r.name), e.day, e.kind, e.attendees,
               ST_SetSRID(ST_MakePoint(e.lon, e.lat), 4326), '2025', e.commune, :source
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS e(key text, licence text, actor text, day date, kind text, attendees int,
                                                          lon float8, lat float8, commune text, province text)
        LEFT JOIN recruiter r ON r.licence_number = e.licence
        ON CONFLICT DO NOTHING"""), {"source": SOURCE, "rows": json.dumps(events, ensure_ascii=False)})
    counts["events"] = len(events)
    # A cluster: the communes of Hà Tĩnh nearest one of them get many incidents; elsewhere few, scattered.
    ha_tinh = [p for p in points if p.parent_code == "42"]
    core = rng.choice(ha_tinh)
    cluster = sorted(ha_tinh, key=lambda p: (p.lon - core.lon) ** 2 + (p.lat - core.lat) ** 2)[:12]
    incidents = []
    for i in range(320):
        where = rng.choice(cluster) if i < 140 else rng.choice(points)
        incidents.append({"id": f"SAMPLE-{i:04d}", "type": rng.choices(TYPES, weights=(5, 3, 1, 4, 1))[0],
                          "day": str(start + dt.timedelta(days=rng.randrange(span))), "persons": rng.randrange(1, 12),
                          "status": rng.choices(("reported", "verified", "closed"), weights=(5, 3, 2))[0],
                          "lon": where.lon, "lat": where.lat, "commune": where.code, "province": where.parent_code})
    conn.execute(text("""
        INSERT INTO incident (province_code, incident_id, type, occurred_on, geom, structure, commune_code, persons_affected, status,
                              source, created_by)
        SELECT i.province, i.id, i.type, i.day, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326), '2025', i.commune, i.persons,
               i.status, :source, 'demo'
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS i(id text, type text, day date, persons int, status text,
                                                          lon float8, lat float8, commune text, province text)
        ON CONFLICT DO NOTHING"""), {"source": SOURCE, "rows": json.dumps(incidents, ensure_ascii=False)})
    counts["incidents"] = len(incidents)
    return counts
