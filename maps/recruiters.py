"""Recruiters and their activity: where each recruiter worked, its activity area, and the flags that enforcement needs.

For the events of a period (in the reader's area):

- **communes worked in**: the distinct communes of a recruiter's events,
  placed in the asked structure;
- **activity area**: the concave hull of its event points in a metric CRS
  (VN-2000 / UTM 48N), or, with :data:`KERNEL_FROM` events or more, the
  region holding :data:`KERNEL_MASS` of a Gaussian kernel density of them
  (the core of a busy recruiter's area, not its every outlier);
- **flags**: an event on a day the recruiter's licence was not valid (before
  it started, after it ended, or while the register says revoked or
  suspended without an end date); an event by a name that is not in the
  register; a commune where :data:`UNREGISTERED_CLUSTER` or more different
  unregistered actors were active.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from geodata.scopes import Reader, scope_condition
from maps.placement import ancestors_sql, commune_in

KERNEL_FROM = 50
KERNEL_MASS = 0.9
KERNEL_GRID = 60
UNREGISTERED_CLUSTER = 2


def licence_valid_sql(recruiter: str, day: str) -> str:
    """SQL: the licence of the register row ``recruiter`` (an alias, NULL when there is none) was valid on ``day``.

    Valid on a day: within its dates, and not revoked or suspended with no end date.

    >>> "valid_from" in licence_valid_sql("r", "e.occurred_on")
    True
    """
    return f"""({recruiter}.licence_number IS NOT NULL
         AND ({recruiter}.valid_from IS NULL OR {recruiter}.valid_from <= {day})
         AND ({recruiter}.valid_to IS NULL OR {day} <= {recruiter}.valid_to)
         AND NOT ({recruiter}.status IN ('revoked', 'suspended') AND {recruiter}.valid_to IS NULL))"""


EVENTS_SQL = f"""
SELECT e.event_key, e.licence_number, e.actor_name, e.actor_folded, e.occurred_on, e.kind, e.attendees,
       ST_X(ST_Transform(coalesce(e.geom, ST_PointOnSurface(c.geom)), 3405)) AS x,
       ST_Y(ST_Transform(coalesce(e.geom, ST_PointOnSurface(c.geom)), 3405)) AS y,
       {commune_in(":structure", "e.structure", "e.commune_code", "e.geom")} AS commune,
       r.licence_number IS NOT NULL AS registered,
       {licence_valid_sql("r", "e.occurred_on")} AS licence_valid,
       -- A free-text name that matches a registered enterprise is that enterprise, not an unregistered actor.
       e.licence_number IS NULL AND NOT EXISTS (SELECT 1 FROM recruiter x WHERE x.name_folded = e.actor_folded) AS unregistered
FROM recruitment_event e
LEFT JOIN recruiter r ON r.licence_number = e.licence_number
LEFT JOIN admin_unit c ON c.structure = e.structure AND c.code = e.commune_code
WHERE e.occurred_on BETWEEN :start AND :end
  AND (CAST(:scope_user_id AS uuid) IS NULL OR {scope_condition("e.commune_code", "e.structure")})
"""


@dataclass
class Actor:
    """A recruiter of the register, or an unregistered actor known by name, with its events of the period."""

    key: str
    name: str
    licence_number: str | None
    events: list[Any] = field(default_factory=list)

    @property
    def registered(self) -> bool:
        return self.licence_number is not None


@dataclass
class ActivityLayer:
    actors: list[Actor]
    areas: dict[str, dict | None]
    area_method: dict[str, str]
    communes: dict[str, list[str]]
    flags: dict[str, list[dict[str, Any]]]
    unregistered_clusters: dict[str, list[str]]


def _actors(rows: list[Any]) -> list[Actor]:
    actors: dict[str, Actor] = {}
    for r in rows:
        key = r.licence_number or f"name:{r.actor_folded}"
        actor = actors.setdefault(key, Actor(key, r.actor_name, r.licence_number))
        actor.events.append(r)
    return sorted(actors.values(), key=lambda a: (not a.registered, a.key))


def activity_area(conn: Connection, xs: np.ndarray, ys: np.ndarray) -> tuple[dict | None, str]:
    """The activity area of a set of points (metres, EPSG:3405) as GeoJSON (WGS 84), and how it was made."""
    if len(xs) < 3:
        return None, "fewer than 3 events: no area"
    if len(xs) < KERNEL_FROM:
        row = conn.execute(text("""
            SELECT ST_AsGeoJSON(ST_Transform(ST_SetSRID(ST_ConcaveHull(ST_Collect(ST_MakePoint(x, y)), 0.5), 3405), 4326), 5)
            FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) AS p(x, y)"""), {"xs": list(xs), "ys": list(ys)}).scalar()
        return json.loads(row), "concave hull of the events (ratio 0.5, in VN-2000 / UTM 48N)"
    return _kernel_area(conn, xs, ys), f"region holding {KERNEL_MASS:.0%} of a Gaussian kernel density of the events (Scott's bandwidth)"


def _kernel_area(conn: Connection, xs: np.ndarray, ys: np.ndarray) -> dict | None:
    from scipy.stats import gaussian_kde

    points = np.vstack([xs, ys])
    if np.linalg.matrix_rank(np.cov(points)) < 2:
        return None  # all on a line (or one place): no density
    kde = gaussian_kde(points)
    pad = 3 * np.sqrt(np.diag(kde.covariance))
    gx = np.linspace(xs.min() - pad[0], xs.max() + pad[0], KERNEL_GRID)
    gy = np.linspace(ys.min() - pad[1], ys.max() + pad[1], KERNEL_GRID)
    mx, my = np.meshgrid(gx, gy)
    density = kde(np.vstack([mx.ravel(), my.ravel()]))
    order = np.sort(density)[::-1]
    threshold = order[np.searchsorted(np.cumsum(order) / order.sum(), KERNEL_MASS)]
    inside = density >= threshold
    dx, dy = gx[1] - gx[0], gy[1] - gy[0]
    cells = [(x - dx / 2, y - dy / 2, x + dx / 2, y + dy / 2) for x, y, keep in zip(mx.ravel(), my.ravel(), inside, strict=True)
             if keep]
    row = conn.execute(text("""
        SELECT ST_AsGeoJSON(ST_Transform(ST_SetSRID(ST_Union(ST_MakeEnvelope(a, b, c, d)), 3405), 4326), 5)
        FROM unnest(CAST(:a AS float8[]), CAST(:b AS float8[]), CAST(:c AS float8[]), CAST(:d AS float8[])) AS e(a, b, c, d)"""),
        {"a": [c[0] for c in cells], "b": [c[1] for c in cells], "c": [c[2] for c in cells], "d": [c[3] for c in cells]}).scalar()
    return json.loads(row) if row else None


WITHIN_SQL = f"""
SELECT * FROM ({EVENTS_SQL}) ev
WHERE CAST(:within AS text) IS NULL OR ev.commune IN (SELECT commune FROM ({ancestors_sql(":structure")}) up WHERE unit = :within)
"""


def recruiter_activity(conn: Connection, *, structure: str, start: dt.date, end: dt.date, reader: Reader,
                       within: str | None = None) -> ActivityLayer:
    """Every actor's events of [start, end] in the reader's area, with communes, activity areas and flags.

    ``within``: only the events placed in that unit of ``structure`` (a report's unit).

    Example (needs a database)::

        layer = recruiter_activity(conn, structure="2025", start=dt.date(2026, 1, 1), end=dt.date(2026, 12, 31), reader=Reader())
        layer.flags["01/LĐTBXH-GPHĐ"]
        # [{'flag': 'licence_not_valid', 'event': 'h:...', 'occurred_on': '2026-03-02', 'commune': '18073'}]
    """
    rows = conn.execute(text(WITHIN_SQL), {"structure": structure, "start": start, "end": end, "within": within,
                                           **reader.params()}).all()
    actors = _actors(rows)
    areas, methods, communes, flags = {}, {}, {}, defaultdict(list)
    unregistered_by_commune: dict[str, set[str]] = defaultdict(set)
    for a in actors:
        xs = np.array([e.x for e in a.events if e.x is not None])
        ys = np.array([e.y for e in a.events if e.y is not None])
        areas[a.key], methods[a.key] = activity_area(conn, xs, ys)
        communes[a.key] = sorted({e.commune for e in a.events if e.commune})
        for e in a.events:
            if a.registered and not e.licence_valid:
                flags[a.key].append({"flag": "licence_not_valid", "event": e.event_key, "occurred_on": e.occurred_on.isoformat(),
                                     "commune": e.commune})
            if e.unregistered:
                flags[a.key].append({"flag": "not_in_register", "event": e.event_key, "occurred_on": e.occurred_on.isoformat(),
                                     "commune": e.commune})
                if e.commune:
                    unregistered_by_commune[e.commune].add(e.actor_folded)
    clusters = {c: sorted(names) for c, names in unregistered_by_commune.items() if len(names) >= UNREGISTERED_CLUSTER}
    return ActivityLayer(actors, areas, methods, communes, dict(flags), clusters)


RECRUITERS_SQL = """
SELECT r.licence_number, r.name, r.status, r.valid_from, r.valid_to, r.markets,
       ST_AsGeoJSON(r.head_office, 6) AS geometry
FROM recruiter r ORDER BY r.licence_number
"""


def register(conn: Connection) -> list[Any]:
    """The recruiter register (public information: licensed enterprises and their head offices)."""
    return conn.execute(text(RECRUITERS_SQL)).all()
