"""Target coverage: how far each unit is from its yearly target, and whether the year is on track.

For a boundary structure, a level and a period (a year, or a half-year such
as ``2025-H1``), each unit gets:

- its **target**: its own, or one carried over from the other structure
  (:func:`carried_targets`), as a range ``target_lower``..``target_upper``
  (an absolute target is one number; a minimum has no upper bound; a growth
  target is the previous year's actual times 1 + the percentages). For a
  half-year, half the yearly target.
- its **actual**: departure records whose departure date falls in the
  period, each placed in the asked structure (:mod:`maps.placement`), so a
  year that straddles the 2025 reform is counted in one structure.
- the **ratio** actual / ``target_lower`` and its class (:mod:`maps.classification`).
- for the current year, a **projection** of the year's total and a plain label.

The projection divides the departures so far by the share of a year's
departures that earlier years had reached by the same day (their seasonal
profile, from every departure record of the asked structure's territory
before this year, if there are at least :data:`SEASONAL_MIN_RECORDS`);
otherwise by the share of the year elapsed (linear). Labels: **on track**
when the projection reaches the target's lower bound, **at risk** when it
reaches :data:`AT_RISK_SHARE` of it, **off track** below.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, text

from geodata.errors import InvalidInput
from geodata.roles import Role
from geodata.scopes import Reader, scope_condition
from geodata.structures import Structure
from maps import periods
from maps.aggregates import AggregateRow, ReleaseInfo
from maps.classification import Classification, Method, classify
from maps.departures import DEPARTURES, MEASURE, departures_by_unit
from maps.period_sums import summed_view
from maps.placement import ancestors_sql, commune_in

AT_RISK_SHARE = 0.8
SEASONAL_MIN_RECORDS = 100
# A unit takes a target carried from the other structure only if the targeted units cover this share of it.
CARRIED_COVERAGE = 0.95
# Below this many departures the year before, a unit's target is shared out by area, not by departures.
SHARE_BY_DEPARTURES_FROM = 30
NEVER = 2**62
Status = Literal["on_track", "at_risk", "off_track"]
STATUS_LABELS = {"on_track": {"vi": "Đúng tiến độ", "en": "On track"},
                 "at_risk": {"vi": "Có nguy cơ chậm", "en": "At risk"},
                 "off_track": {"vi": "Chậm tiến độ", "en": "Off track"}}


@dataclass(frozen=True)
class Period:
    """A reporting period: a calendar year or one of its halves (Viet Nam time)."""

    label: str
    year: int
    start: dt.date
    end: dt.date  # exclusive

    @property
    def share_of_year(self) -> float:
        return (self.end - self.start).days / (dt.date(self.year + 1, 1, 1) - dt.date(self.year, 1, 1)).days


def parse_period(year: int | None = None, half: str | None = None) -> Period:
    """The period of ``year`` or of ``half`` (``2025-H1``, ``2025-H2``).

    >>> parse_period(half="2025-H2")
    Period(label='2025-H2', year=2025, start=datetime.date(2025, 7, 1), end=datetime.date(2026, 1, 1))
    """
    if half is not None:
        try:
            y, h = half.upper().split("-H")
            y, h = int(y), int(h)
            if h not in (1, 2) or not 2000 <= y <= 2100:
                raise ValueError
        except ValueError:
            raise InvalidInput(f"half {half!r}: write YEAR-H1 or YEAR-H2, e.g. 2025-H1", loc=("query", "half")) from None
        start = dt.date(y, 1 if h == 1 else 7, 1)
        return Period(f"{y}-H{h}", y, start, dt.date(y, 7, 1) if h == 1 else dt.date(y + 1, 1, 1))
    if year is None:
        raise InvalidInput("give a year (e.g. year=2025) or a half-year (e.g. half=2025-H1)", loc=("query", "year"))
    return Period(str(year), year, dt.date(year, 1, 1), dt.date(year + 1, 1, 1))


@dataclass(frozen=True)
class Released:
    """Actuals for a role that reads suppressed counts: summed from releases, never counted live."""

    role: Role
    reader: Reader
    now: dt.datetime | None = None


@dataclass
class ReleasedActuals:
    """Departures per unit summed over the released periods of a date range (None where any of them hid it)."""

    actuals: dict[str, int | None]
    periods: list[str]
    releases: list[ReleaseInfo]
    as_of: dt.date | None  # the last day the released periods cover


def released_departures(conn: Connection, released: Released, structure: str, level: str | None,
                        start: dt.date, end: dt.date) -> ReleasedActuals:
    """Departures per unit of [start, end) for a suppressed role: the sum of the released periods inside it.

    Read through :func:`maps.period_sums.summed_view` (the one way a longer
    period is summed from releases): a unit hidden in any released period is
    hidden in the sum, and periods not yet released are not counted
    (``as_of`` says how far the sum goes).

    Example (needs a database)::

        got = released_departures(conn, Released(Role.leader, Reader()), "2025", "province", dt.date(2026, 1, 1), dt.date(2027, 1, 1))
        got.periods[-1], got.actuals["42"]
        # ('2026-10', 512)
    """
    got = summed_view(conn, DEPARTURES, released.role, structure, periods.Period.spanning(start, end), released.reader,
                      level=level, now=released.now)
    return ReleasedActuals({code: r.values[MEASURE] for code, r in got.rows.items()}, got.periods, got.releases, got.as_of)


@dataclass(frozen=True)
class Target:
    """A target as a range for the period, and where it comes from."""

    lower: float
    upper: float | None
    kind: str
    method: str  # "own", or how it was carried from the other structure
    sources: tuple[str, ...] = ()


def _own_targets(conn: Connection, structure: str, year: int, indicator: str) -> list[Any]:
    return conn.execute(text("""SELECT unit_code, kind, value::float8 AS value, value_max::float8 AS value_max, notes
                                FROM target WHERE structure = :s AND year = :y AND indicator = :i"""),
                        {"s": structure, "y": year, "i": indicator}).all()


def _as_range(row: Any, previous: dict[str, int | None]) -> tuple[float, float | None] | None:
    """The target range of a target row; a growth target needs the previous year's actual (else None)."""
    if row.kind == "absolute":
        return row.value, row.value
    if row.kind == "minimum":
        return row.value, None
    base = previous.get(row.unit_code)
    if not base:
        return None
    return base * (1 + row.value / 100), base * (1 + row.value_max / 100)


def own_targets(conn: Connection, structure: str, year: int, indicator: str, released: Released | None = None) -> dict[str, Target]:
    """The targets set on units of ``structure`` for ``year`` (growth targets made absolute from last year).

    A growth target grows from last year's departures: counted live, or for
    a suppressed role (``released``) summed from last year's releases, so
    that the target does not give back a hidden count (none where it is hidden).
    """
    rows = _own_targets(conn, structure, year, indicator)
    previous: dict[str, int | None] = {}
    if any(r.kind == "growth_percent" for r in rows):
        last_year = (dt.date(year - 1, 1, 1), dt.date(year, 1, 1))
        previous = dict(departures_by_unit(conn, structure, *last_year)) if released is None else \
            released_departures(conn, released, structure, None, *last_year).actuals
    out = {}
    for r in rows:
        bounds = _as_range(r, previous)
        if bounds is None:
            continue  # a growth target with no actual the year before: no number to grow from
        what = "growth_percent" if r.kind == "growth_percent" else r.kind
        out[r.unit_code] = Target(bounds[0], bounds[1], what, "own", (r.unit_code,))
    return out


CARRY_SQL = f"""
WITH t AS (
    SELECT * FROM jsonb_to_recordset(CAST(:targets AS jsonb)) AS t(unit_code text, lower float8, upper float8)
),
tu AS (
    SELECT t.*, u.level, u.geom FROM t JOIN admin_unit u ON u.structure = :source AND u.code = t.unit_code
    WHERE u.geom IS NOT NULL
),
v AS (
    SELECT code, geom FROM admin_unit WHERE structure = :structure AND level = :level AND geom IS NOT NULL
      AND (CAST(:parent AS text) IS NULL OR parent_code = :parent OR code = :parent)
),
overlap AS (
    SELECT v.code AS v, tu.unit_code AS u, tu.level AS u_level, tu.lower, tu.upper,
           ST_Area(ST_Intersection(v.geom, tu.geom)::geography) AS a_uv,
           ST_Area(tu.geom::geography) AS a_u, ST_Area(v.geom::geography) AS a_v
    FROM v JOIN tu ON ST_Intersects(v.geom, tu.geom)
),
-- Last year's departures, each placed in both structures: how a source unit's departures spread over the asked units.
rec AS (
    SELECT {commune_in(":source", "r.structure", "coalesce(r.assigned_commune_code, r.declared_commune_code)", "r.geom")} AS cs,
           {commune_in(":structure", "r.structure", "coalesce(r.assigned_commune_code, r.declared_commune_code)", "r.geom")} AS cv
    FROM survey_record r
    WHERE r.kind = 'departure' AND r.departure_date >= :prev_start AND r.departure_date < :prev_end
),
up_s AS ({ancestors_sql(":source")}),
up_v AS ({ancestors_sql(":structure")}),
moved AS (
    SELECT us.unit AS u, uv.unit AS v, count(*) AS n FROM rec
    JOIN up_s us ON us.commune = rec.cs JOIN up_v uv ON uv.commune = rec.cv
    WHERE us.unit IN (SELECT unit_code FROM t) AND uv.unit IN (SELECT code FROM v)
    GROUP BY 1, 2
),
moved_total AS (SELECT u, sum(n) AS n FROM moved GROUP BY u)
SELECT o.v, o.u, o.u_level, o.lower, o.upper, o.a_uv / nullif(o.a_v, 0) AS covers,
       CASE WHEN mt.n >= :by_departures THEN 'departures' ELSE 'area' END AS weight,
       CASE WHEN mt.n >= :by_departures THEN coalesce(m.n, 0)::float8 / mt.n ELSE o.a_uv / nullif(o.a_u, 0) END AS share
FROM overlap o
LEFT JOIN moved m ON m.u = o.u AND m.v = o.v
LEFT JOIN moved_total mt ON mt.u = o.u
"""

LEVEL_ORDER = {"commune": 0, "district": 1, "province": 2}


def carried_targets(conn: Connection, structure: str, level: str, year: int, indicator: str,
                    parent: str | None = None, released: Released | None = None) -> dict[str, Target]:
    """Targets set in the other structure, carried to the units of ``structure`` at ``level``.

    A source unit's target is shared among the asked units by last year's
    departures (each record placed in both structures) where the unit had at
    least :data:`SHARE_BY_DEPARTURES_FROM` of them, else by the area of
    overlap. An asked unit takes the sum of its shares from the targets of
    one source level — the same level for a province, the finest that covers
    it for a commune — and only if those targeted units cover at least
    :data:`CARRIED_COVERAGE` of its area (a district's target says nothing
    of the rest of a merged province). For a suppressed role (``released``)
    by area only: shares of live departures would give counts back.
    """
    source = next(s.value for s in Structure if s.value != structure)
    sources = own_targets(conn, source, year, indicator, released)
    if not sources:
        return {}
    targets = json.dumps([{"unit_code": u, "lower": t.lower, "upper": t.upper} for u, t in sources.items()])
    rows = conn.execute(text(CARRY_SQL), {
        "targets": targets, "source": source, "structure": structure, "level": level, "parent": parent,
        "prev_start": dt.date(year - 1, 1, 1), "prev_end": dt.date(year, 1, 1),
        "by_departures": SHARE_BY_DEPARTURES_FROM if released is None else NEVER,
    }).all()
    by_unit_level: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for r in rows:
        by_unit_level[r.v, r.u_level].append(r)
    out: dict[str, Target] = {}
    order = sorted(LEVEL_ORDER, key=LEVEL_ORDER.get, reverse=(level == "province"))
    for v in {r.v for r in rows}:
        for u_level in order:
            parts = by_unit_level.get((v, u_level))
            if not parts or sum(p.covers or 0 for p in parts) < CARRIED_COVERAGE:
                continue
            lower = sum(p.lower * p.share for p in parts)
            upper = None if any(p.upper is None for p in parts) else sum(p.upper * p.share for p in parts)
            weights = {p.weight for p in parts}
            how = "departures the year before" if weights == {"departures"} else "area" if weights == {"area"} else \
                "departures the year before and area"
            kinds = {sources[p.u].kind for p in parts}
            kind = kinds.pop() if len(kinds) == 1 else "mixed"
            units = tuple(sorted(p.u for p in parts))
            out[v] = Target(lower, upper, kind, f"carried from {source} {u_level} {', '.join(units)} by shares of {how}", units)
            break
    return out


@dataclass
class CoverageRow:
    row: AggregateRow
    target: Target | None
    status: Status | None
    klass: str
    geometry: dict | None


@dataclass
class CoverageLayer:
    """The coverage layer: rows, the classification, and the method in words."""

    structure: str
    level: str
    period: Period
    indicator: str
    classification: Classification
    rows: list[CoverageRow] = field(default_factory=list)
    projection: str | None = None
    caveats: list[str] = field(default_factory=list)
    source: str = "live"  # or "releases": summed from the releases of `released_periods`
    released_periods: list[str] = field(default_factory=list)
    releases: list[ReleaseInfo] = field(default_factory=list)


SEASONAL_SQL = f"""
WITH placed AS (
    SELECT r.departure_date,
           {commune_in(":structure", "r.structure", "coalesce(r.assigned_commune_code, r.declared_commune_code)", "r.geom")} AS commune
    FROM survey_record r WHERE r.kind = 'departure' AND r.departure_date < make_date(:y, 1, 1)
),
up AS ({ancestors_sql(":structure")})
SELECT count(*) AS n,
       count(*) FILTER (WHERE (extract(month FROM p.departure_date), extract(day FROM p.departure_date)) <= (:m, :d)) AS reached
FROM placed p
WHERE CAST(:parent AS text) IS NULL OR p.commune IN (SELECT commune FROM up WHERE unit = :parent)
"""


def _seasonal_share(conn: Connection, structure: str, year: int, today: dt.date, parent: str | None) -> tuple[float, str]:
    """The share of a year's departures reached by ``today`` in earlier years, and how it was found.

    The profile is that of the layer's area (under ``parent``, or the whole
    structure), from its departures of every earlier year.
    """
    linear = ((today - dt.date(year, 1, 1)).days + 1) / (366 if calendar.isleap(year) else 365)
    row = conn.execute(text(SEASONAL_SQL), {"structure": structure, "y": year, "m": today.month, "d": today.day,
                                            "parent": parent}).one()
    if row.n >= SEASONAL_MIN_RECORDS and row.reached > 0:
        return row.reached / row.n, (f"seasonal profile of {row.n:,} departures of earlier years: "
                                     f"{row.reached / row.n:.0%} of a year's departures by {today:%d/%m}")
    return linear, f"linear: {linear:.0%} of the year elapsed (too few departures in earlier years for a seasonal profile)"


def status_of(projected: float, lower: float) -> Status:
    """The plain label of a projection against the target's lower bound.

    >>> status_of(100, 90), status_of(80, 90), status_of(60, 90)
    ('on_track', 'at_risk', 'off_track')
    """
    if projected >= lower:
        return "on_track"
    return "at_risk" if projected >= AT_RISK_SHARE * lower else "off_track"


UNITS_SQL = """
SELECT u.code, u.name, u.level, u.parent_code, u.geom_quality,
       CASE WHEN :with_geometry THEN ST_AsGeoJSON(u.geom_web, 5) END AS geometry
FROM admin_unit u
WHERE u.structure = :structure AND u.level = :level
  AND (CAST(:parent AS text) IS NULL OR u.parent_code = :parent OR u.code = :parent)
  AND (CAST(:scope_user_id AS uuid) IS NULL OR {scope})
ORDER BY u.code
"""


def coverage_by_unit(
    conn: Connection,
    *,
    structure: str,
    level: str,
    period: Period,
    reader: Reader,
    parent: str | None = None,
    indicator: str = "departures",
    method: Method = "fixed",
    classes: int = 5,
    today: dt.date | None = None,
    released: Released | None = None,
    with_geometry: bool = True,
) -> CoverageLayer:
    """The coverage layer of the units of ``structure`` at ``level`` (under ``parent``) that ``reader`` may see.

    ``released`` (leaders, planners) takes the actuals from the releases of
    the period's closed months (:func:`released_departures`), never the live
    table: a unit whose actual is hidden has no ratio, no class and no
    status (they would give the count back); targets carried over are shared
    by area; growth targets grow from last year's released sums; and the
    projection is linear to the last released month (a seasonal profile
    would move with earlier years' daily counts).

    Example (needs a database)::

        layer = coverage_by_unit(conn, structure="2025", level="province", period=parse_period(2026), reader=Reader())
        layer.rows[0].row.values
        # {'target_lower': 2100.0, 'target_upper': 2100.0, 'actual': 512, 'ratio': 0.2438, 'projected': 2250.0}
    """
    if indicator != "departures":
        raise InvalidInput("coverage of targets is computed for departures; use view=surveys for survey coverage",
                           loc=("query", "indicator"))
    today = today or dt.date.today()
    units = conn.execute(text(UNITS_SQL.format(scope=scope_condition("u.code", "u.structure"))), {
        "structure": structure, "level": level, "parent": parent, "with_geometry": with_geometry, **reader.params(),
    }).all()
    targets = own_targets(conn, structure, period.year, indicator, released)
    carried = carried_targets(conn, structure, level, period.year, indicator, parent, released)
    live = released is None
    current = period.start <= today < period.end and period.share_of_year == 1.0
    share, projection, caveats = None, None, []
    if live:
        actuals: dict[str, int | None] = dict(departures_by_unit(conn, structure, period.start, period.end))
        if current:
            share, projection = _seasonal_share(conn, structure, period.year, today, parent)
    else:
        got = released_departures(conn, released, structure, level, period.start, period.end)
        actuals = got.actuals
        caveats.append(f"actual departures are the sums of the released months ({', '.join(got.periods) or 'none yet'}): "
                       "a unit hidden in any month is hidden in the sum; targets carried over are shared by area")
        if level != "province":
            caveats.append("departures are released per province only (communes and districts hold too few to show): "
                           "below the province every actual is hidden")
        if current and got.as_of is not None:
            share = ((got.as_of - period.start).days + 1) / ((period.end - period.start).days)
            projection = f"linear: {share:.0%} of the year to {got.as_of:%d/%m}, the end of the last released month"
        elif current:
            projection = "no month of the year is released yet: no projection"
    if any(u.geom_quality == "approximate" for u in units):
        caveats.append("approximate commune polygons (Voronoi cells of commune centres) place records and carry targets "
                       "where no official polygon was imported")
    if period.share_of_year < 1:
        caveats.append("a half-year's target is half the yearly target")
    rows = []
    for u in units:
        target = targets.get(u.code) or carried.get(u.code)
        if target is not None and period.share_of_year < 1:
            f = period.share_of_year
            target = Target(target.lower * f, None if target.upper is None else target.upper * f, target.kind,
                            f"{target.method}; half of the yearly target", target.sources)
        actual = actuals.get(u.code, 0) if live else actuals.get(u.code)
        hidden = not live and actual is None
        ratio = actual / target.lower if target and not hidden and target.lower > 0 else None
        projected = actual / share if current and share and not hidden else None
        status = status_of(projected, target.lower) if projected is not None and target else None
        values = {
            "target_lower": None if target is None else round(target.lower, 2),
            "target_upper": None if target is None or target.upper is None else round(target.upper, 2),
            "actual": actual,
            "ratio": None if ratio is None else round(ratio, 4),
            "projected": None if projected is None else round(projected, 1),
        }
        suppressed = frozenset({"actual", "ratio", "projected"}) if hidden else frozenset()
        row = AggregateRow(u.code, u.name, u.level, u.parent_code, structure, period.label, values, suppressed, u.geom_quality)
        rows.append(CoverageRow(row, target, status, "", json.loads(u.geometry) if u.geometry else None))
    klasses = classify([r.row.values["ratio"] for r in rows], method, classes)
    for r in rows:
        r.klass = klasses.of(r.row.values["ratio"])
    layer = CoverageLayer(structure, level, period, indicator, klasses, rows, projection, caveats)
    if not live:
        layer.source, layer.released_periods, layer.releases = "releases", got.periods, got.releases
    return layer


SURVEY_COVERAGE_SQL = f"""
WITH surveyed AS (
    SELECT DISTINCT {commune_in(":structure", "r.structure", "coalesce(r.assigned_commune_code, r.declared_commune_code)", "r.geom")}
           AS commune
    FROM survey_record r
    WHERE r.collected_at >= make_timestamptz(:y0, :m0, 1, 0, 0, 0, 'Asia/Ho_Chi_Minh')
      AND r.collected_at < make_timestamptz(:y1, :m1, 1, 0, 0, 0, 'Asia/Ho_Chi_Minh')
),
planned AS (
    SELECT unit_code AS commune FROM target
    WHERE structure = :structure AND year = :year AND indicator = 'surveyed_people' AND value > 0
),
up AS ({ancestors_sql(":structure")}),
any_plan AS (SELECT count(*) > 0 AS yes FROM planned)
SELECT up.unit,
       count(*) FILTER (WHERE up.commune IN (SELECT commune FROM surveyed)
                         AND (NOT (SELECT yes FROM any_plan) OR up.commune IN (SELECT commune FROM planned))) AS surveyed,
       count(*) FILTER (WHERE NOT (SELECT yes FROM any_plan) OR up.commune IN (SELECT commune FROM planned)) AS planned
FROM up GROUP BY up.unit
"""


def survey_coverage_by_unit(conn: Connection, *, structure: str, level: str, period: Period, reader: Reader,
                            parent: str | None = None, method: Method = "fixed", classes: int = 5,
                            with_geometry: bool = True) -> CoverageLayer:
    """Communes surveyed against communes planned, per unit.

    A commune is surveyed when at least one record (any kind) collected in
    the period lies in it. Planned communes are those with a
    ``surveyed_people`` target for the year; where no commune of the
    structure has one, every commune is planned (every commune surveys).
    """
    units = conn.execute(text(UNITS_SQL.format(scope=scope_condition("u.code", "u.structure"))), {
        "structure": structure, "level": level, "parent": parent, "with_geometry": with_geometry, **reader.params(),
    }).all()
    y1, m1 = (period.end.year, period.end.month)
    counts = {r.unit: r for r in conn.execute(text(SURVEY_COVERAGE_SQL), {
        "structure": structure, "year": period.year, "y0": period.start.year, "m0": period.start.month, "y1": y1, "m1": m1})}
    rows = []
    for u in units:
        c = counts.get(u.code)
        surveyed, planned = (c.surveyed, c.planned) if c else (0, 0)
        ratio = surveyed / planned if planned else None
        values = {"communes_surveyed": surveyed, "communes_planned": planned, "ratio": None if ratio is None else round(ratio, 4)}
        row = AggregateRow(u.code, u.name, u.level, u.parent_code, structure, period.label, values, frozenset(), u.geom_quality)
        rows.append(CoverageRow(row, None, None, "", json.loads(u.geometry) if u.geometry else None))
    klasses = classify([r.row.values["ratio"] for r in rows], method, classes)
    for r in rows:
        r.klass = klasses.of(r.row.values["ratio"])
    caveats = ["counts communes, not people: a commune with one record counts as surveyed"]
    return CoverageLayer(structure, level, period, "surveyed_communes", klasses, rows, None, caveats)
