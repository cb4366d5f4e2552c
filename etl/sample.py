"""Sample survey records for the demo: synthetic people at random points in real communes.

Everything here is made up and says so: the records carry the source
``sample (synthetic)`` and the surveyor "Dữ liệu mẫu (giả lập)". They go
through the same validation and store statement as real submissions, so the
demo's maps, counts and suppression behave as they would with real data.
Twelve thousand records over the last twelve months: counts per commune and
month vary from 0 to a few dozen, so that leaders' monthly releases show
some and hide the small ones.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid

from sqlalchemy import Connection, text

from survey.definition import FORM
from survey.ingest import Incoming, ingest
from survey.store import Sender

SOURCE = "sample (synthetic)"
SURVEYOR = "Dữ liệu mẫu (giả lập)"
SAMPLE_PROVINCES = ("42", "40", "38")  # Hà Tĩnh, Nghệ An, Thanh Hóa (2025 codes): big senders of workers
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý")
MIDDLE = ("Văn", "Thị", "Hữu", "Đức", "Ngọc", "Minh", "Thu", "Quang", "Thanh", "Xuân")
GIVEN = ("An", "Bình", "Cường", "Dũng", "Hà", "Hải", "Hạnh", "Hòa", "Hùng", "Lan", "Linh", "Long", "Mai", "Nam",
         "Nga", "Nhung", "Phương", "Quân", "Sơn", "Tâm", "Thảo", "Thắng", "Trang", "Tuấn", "Vân", "Yến")

POINTS_SQL = """
SELECT u.code, ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat
FROM admin_unit u
CROSS JOIN LATERAL (SELECT (ST_Dump(ST_GeneratePoints(u.geom, :per_commune, :seed))).geom) p
WHERE u.structure = '2025' AND u.level = 'commune' AND u.parent_code = ANY(:provinces) AND u.geom IS NOT NULL
ORDER BY u.code
"""


def sample_payloads(points: list[tuple[str, float, float]], n: int, rng: random.Random, today: dt.date) -> list[dict]:
    """``n`` valid payloads at some of ``points`` (code, lon, lat); communes get uneven shares."""
    weight = {code: rng.choice((0, 0, 1, 1, 2, 4, 8)) for code, _, _ in points}
    chosen = rng.choices(points, weights=[weight[c] for c, _, _ in points], k=n)
    tz = dt.timezone(dt.timedelta(hours=7))
    # The last twelve months (not before the 2025 structure, whose communes the points are in): the last
    # closed month, which leaders read from its release, always has records.
    start = dt.datetime.combine(max(today - dt.timedelta(days=365), dt.date(2025, 7, 1)), dt.time(8), tz)
    span = max(1, (dt.datetime.combine(today, dt.time(8), tz) - start).days)
    markets = [c.value for c in FORM.choices["market"]]
    skills = [c.value for c in FORM.choices["skills"]]
    payloads = []
    for code, lon, lat in chosen:
        kind = rng.choices(("aspirant", "returnee", "departure"), weights=(6, 3, 2))[0]
        sex = rng.choice(("male", "female"))
        middle = "Thị" if sex == "female" and rng.random() < 0.7 else rng.choice(MIDDLE)
        collected = start + dt.timedelta(days=rng.randrange(span), minutes=rng.randrange(600))
        p = {
            "form_id": FORM.form_id, "form_version": FORM.version, "instance_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "kind": kind, "collected_at": collected.isoformat(), "surveyor": SURVEYOR, "consent": True,
            "commune_code": code, "location": {"lon": lon, "lat": lat, "accuracy": round(rng.uniform(4, 40), 1)},
            "full_name": f"{rng.choice(FAMILY)} {middle} {rng.choice(GIVEN)}",
            "national_id": f"0{rng.randrange(10**10, 10**11)}", "birth_year": rng.randrange(today.year - 45, today.year - 18),
            "sex": sex, "ethnicity": "01" if rng.random() < 0.9 else rng.choice(("02", "03", "04", "05", "06")),
            "household_status": rng.choices(("poor", "near_poor", "none"), weights=(1, 2, 7))[0],
        }
        if kind == "aspirant":
            p |= {"markets_wanted": rng.sample(markets[:6], rng.randint(1, 2)), "sector": rng.choice(skills)}
        elif kind == "returnee":
            back = collected.date() - dt.timedelta(days=rng.randrange(30, 900))
            p |= {"return_country": rng.choice(markets[:6]), "return_date": back.isoformat(),
                  "contract_outcome": rng.choices(("completed", "ended_early", "overstayed"), weights=(8, 2, 1))[0],
                  "job_status": rng.choice([c.value for c in FORM.choices["job_status"]])}
        else:
            left = collected.date() - dt.timedelta(days=rng.randrange(0, 60))
            p |= {"departure_date": left.isoformat(), "market": rng.choice(markets[:6]),
                  "recruiter_licence": f"{rng.randrange(1, 500):03d}/LĐTBXH-GP", "contract_months": rng.choice((12, 24, 36, 60))}
        payloads.append(p)
    return payloads


def load_sample_surveys(conn: Connection, n: int = 12000, seed: int = 2026, today: dt.date | None = None) -> int:
    """Store ``n`` synthetic records in communes of three provinces, over the last twelve months; returns how many were stored.

    Example (needs a database)::

        load_sample_surveys(conn, n=100)
        # 100
    """
    rng = random.Random(seed)
    points = [(r.code, r.lon, r.lat) for r in conn.execute(
        text(POINTS_SQL), {"per_commune": 3, "seed": seed, "provinces": list(SAMPLE_PROVINCES)})]
    if not points:
        return 0
    payloads = sample_payloads(points, n, rng, today or dt.date.today())
    items = [Incoming(json.dumps(p, ensure_ascii=False), p) for p in payloads]
    outcomes = []
    for i in range(0, len(items), 1000):
        outcomes += ingest(conn, items[i:i + 1000], source=SOURCE, sender=Sender("demo-sample"))
    return sum(o.status == "created" for o in outcomes)


def sample_is_loaded(conn: Connection) -> bool:
    return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM survey_record WHERE source = :s)"), {"s": SOURCE}).scalar())
