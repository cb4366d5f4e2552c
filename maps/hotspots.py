"""Hot spots of incidents: Getis-Ord Gi* with permutation inference and a false-discovery-rate correction.

Method, stated in every answer (:class:`HotspotLayer`):

- **What is tested**: incidents per unit (communes, or coarser) of the
  asked structure and area over a date range, each incident placed in that
  structure (:mod:`maps.placement`); or, where a population denominator is
  loaded for every unit, their rates smoothed by Empirical Bayes (esda).
- **Neighbours**: queen contiguity on the unit polygons — two units are
  neighbours when their polygons touch or lie within :data:`CONTIGUITY_M`
  of each other (official polygons of neighbours do not share vertices) —
  and a unit with none (an island) joined to its nearest unit. Binary
  weights; Gi* includes each unit in its own neighbourhood.
- **Inference**: esda's ``G_Local`` (star) with conditional permutations
  (``permutations``, ``seed``), pseudo p-values corrected across units by
  Benjamini-Hochberg (``p_fdr``). Classes: hot or cold at 99, 95 and 90 %
  by ``p_fdr`` and the sign of ``z``, else not significant.
- **Guards**: fewer than :data:`MIN_UNITS` units or :data:`MIN_INCIDENTS`
  incidents is refused (a map of noise would mislead), saying which filter
  to widen.
- A second view counts incidents on a regular hexagon grid instead of units.

Results are cached per parameters and data version (incidents, boundaries).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
from sqlalchemy import Connection, text

from geodata.data_versions import versions
from geodata.errors import InvalidInput
from geodata.scopes import Reader, scope_condition
from maps.incidents import FILTER_SQL, IncidentFilter
from maps.placed_incidents import placed_incidents

MIN_UNITS = 30
MIN_INCIDENTS = 30
CONTIGUITY_M = 50
CONTIGUITY_DEGREES = CONTIGUITY_M / 111_000
CACHE_SIZE = 64
Klass = Literal["hot_99", "hot_95", "hot_90", "not_significant", "cold_90", "cold_95", "cold_99"]
LEVELS_OF_CONFIDENCE = ((0.01, "99"), (0.05, "95"), (0.10, "90"))


class TooLittleData(InvalidInput):
    """Too few units or incidents for a hot-spot map that means anything; the message says which filter to widen."""


def klass_of(z: float, p: float) -> Klass:
    """The class of a unit from its Gi* z-score and its corrected p-value.

    >>> klass_of(3.1, 0.004), klass_of(-2.2, 0.03), klass_of(1.8, 0.2)
    ('hot_99', 'cold_95', 'not_significant')
    """
    for alpha, level in LEVELS_OF_CONFIDENCE:
        if p <= alpha:
            return f"hot_{level}" if z > 0 else f"cold_{level}"  # type: ignore[return-value]
    return "not_significant"


@dataclass
class Weights:
    """Contiguity weights of a set of areas, as neighbour lists, and what was done to islands."""

    ids: list[str]
    neighbours: dict[str, list[str]]
    islands_joined: int

    @cached_property
    def libpysal(self):
        """The libpysal ``W`` (built once: cached weights are reused for every new question on the same units)."""
        from libpysal.weights import W

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # libpysal's notes on disconnected components
            return W(self.neighbours, id_order=self.ids, silence_warnings=True)


def weights_from_pairs(ids: list[str], pairs: list[tuple[str, str]], nearest: dict[str, str]) -> Weights:
    """Symmetric neighbour lists from contiguous pairs, each island joined to its nearest area (both ways)."""
    neighbours: dict[str, set[str]] = {i: set() for i in ids}
    for a, b in pairs:
        neighbours[a].add(b)
        neighbours[b].add(a)
    joined = 0
    for i in ids:
        if not neighbours[i] and i in nearest:
            neighbours[i].add(nearest[i])
            neighbours[nearest[i]].add(i)
            joined += 1
    return Weights(ids, {i: sorted(n) for i, n in neighbours.items()}, joined)


UNIT_AREA_SQL = """
SELECT u.code, u.name, u.geom_quality FROM admin_unit u
WHERE u.structure = :structure AND u.level = :level AND u.geom IS NOT NULL
  AND (CAST(:parent AS text) IS NULL OR u.parent_code = :parent OR u.code = :parent
       OR u.parent_code IN (SELECT code FROM admin_unit WHERE structure = :structure AND parent_code = :parent))
  AND (CAST(:scope_user_id AS uuid) IS NULL OR {scope})
ORDER BY u.code
"""

# Straight on the subdivided parts, not a CTE of whole polygons: the parts'
# GiST index answers ST_DWithin, where a CTE self-join compares every pair
# (37 s for the 3,321 communes of 2025, 3 minutes for the 10,047 before).
UNIT_PAIRS_SQL = """
SELECT DISTINCT a.code AS a, b.code AS b
FROM admin_unit_part a JOIN admin_unit_part b
  ON b.structure = a.structure AND a.code < b.code AND ST_DWithin(a.geom, b.geom, :tolerance)
WHERE a.structure = :structure AND a.code = ANY(:codes) AND b.code = ANY(:codes)
"""

UNIT_NEAREST_SQL = """
SELECT a.code, (SELECT b.code FROM admin_unit b
                WHERE b.structure = a.structure AND b.code = ANY(:codes) AND b.code <> a.code AND b.geom IS NOT NULL
                ORDER BY b.geom <-> a.geom, b.code LIMIT 1) AS nearest
FROM admin_unit a WHERE a.structure = :structure AND a.code = ANY(:islands)
"""

POPULATION_SQL = """
SELECT unit_code, population FROM unit_population
WHERE structure = :structure AND year = :year AND unit_code = ANY(:codes) AND population > 0
"""


@dataclass(frozen=True)
class HotspotRequest:
    structure: str
    level: str
    parent: str | None
    incidents: IncidentFilter
    permutations: int = 999
    seed: int = 12345
    view: Literal["units", "hexagons"] = "units"
    hexagon_m: int = 5000


@dataclass
class HotspotRow:
    code: str
    name: str
    incidents: int
    rate: float | None
    z: float
    p: float
    p_fdr: float
    klass: Klass
    geom_quality: str | None


@dataclass
class HotspotLayer:
    request: HotspotRequest
    rows: list[HotspotRow]
    statistic: str
    weights: str
    inference: str
    caveats: list[str] = field(default_factory=list)


def _guard(n_units: int, n_incidents: int, req: HotspotRequest) -> None:
    if n_units < MIN_UNITS:
        widen = ("choose a larger area (parent) or a finer level" if req.view == "units"
                 else "choose a larger area (parent) or smaller hexagons (hexagon_m)")
        raise TooLittleData(f"only {n_units} {'units' if req.view == 'units' else 'hexagons'} in the area: at least {MIN_UNITS} "
                            f"are needed for a hot-spot analysis; {widen}", loc=("query", "parent"))
    if n_incidents < MIN_INCIDENTS:
        raise TooLittleData(f"only {n_incidents} incidents match: at least {MIN_INCIDENTS} are needed for a hot-spot analysis; "
                            "widen the dates (from, to) or the types", loc=("query", "from"))


def gi_star(y: np.ndarray, weights: Weights, permutations: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gi* z-scores and conditional-permutation pseudo p-values (esda ``G_Local``, binary weights, star)."""
    from esda import G_Local

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # esda's notes on islands and numba
        g = G_Local(y.astype(float), weights.libpysal, transform="B", permutations=permutations, star=True,
                    seed=seed, n_jobs=1, keep_simulations=False)
    return np.asarray(g.Zs, dtype=float), np.asarray(g.p_sim, dtype=float)


def warm() -> None:
    """Import esda and libpysal ahead of the first question (about 3 s of imports, done at server start-up)."""
    import esda  # noqa: F401
    import libpysal.weights  # noqa: F401
    import scipy.stats  # noqa: F401


def corrected(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg false-discovery-rate adjusted p-values (scipy)."""
    from scipy.stats import false_discovery_control

    return false_discovery_control(p, method="bh") if len(p) else p


def smoothed_rates(counts: np.ndarray, population: np.ndarray) -> np.ndarray:
    """Empirical Bayes rates (esda): small populations pulled toward the overall rate."""
    from esda.smoothing import Empirical_Bayes

    return np.asarray(Empirical_Bayes(counts.astype(float), population.astype(float)).r, dtype=float).ravel()


_cache: OrderedDict[tuple, HotspotLayer] = OrderedDict()
_cache_lock = threading.Lock()


def hotspots(conn: Connection, req: HotspotRequest, reader: Reader) -> HotspotLayer:
    """The hot-spot layer for ``req`` over the reader's area (cached per parameters and data version).

    Example (needs a database)::

        flt = IncidentFilter(dt.date(2025, 1, 1), dt.date(2025, 12, 31))
        layer = hotspots(conn, HotspotRequest("2025", "commune", "42", flt), Reader())
        [r.klass for r in layer.rows][:3]
        # ['hot_95', 'not_significant', 'not_significant']
    """
    key = (req, reader, versions(conn, "incident", "admin_unit", "unit_population"))
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    layer = _hexagon_hotspots(conn, req, reader) if req.view == "hexagons" else _unit_hotspots(conn, req, reader)
    with _cache_lock:
        _cache[key] = layer
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return layer


_weights: OrderedDict[tuple, Weights] = OrderedDict()


def unit_weights(conn: Connection, structure: str, codes: list[str]) -> Weights:
    """The contiguity weights of these units (cached per units and boundary version: they change only with the boundaries)."""
    key = (structure, tuple(codes), versions(conn, "admin_unit"))
    with _cache_lock:
        if key in _weights:
            _weights.move_to_end(key)
            return _weights[key]
    pairs = conn.execute(text(UNIT_PAIRS_SQL), {"structure": structure, "codes": codes, "tolerance": CONTIGUITY_DEGREES}).all()
    linked = {a for a, _ in pairs} | {b for _, b in pairs}
    islands = [c for c in codes if c not in linked]
    nearest = dict(conn.execute(text(UNIT_NEAREST_SQL), {"structure": structure, "codes": codes,
                                                          "islands": islands}).all()) if islands else {}
    w = weights_from_pairs(codes, [(a, b) for a, b in pairs], nearest)
    with _cache_lock:
        _weights[key] = w
        while len(_weights) > CACHE_SIZE:
            _weights.popitem(last=False)
    return w


def unit_counts(conn: Connection, req: HotspotRequest, reader: Reader) -> tuple[list[Any], np.ndarray]:
    """The units of the request's area and their incident counts (the array Gi* is computed on)."""
    units = conn.execute(text(UNIT_AREA_SQL.format(scope=scope_condition("u.code", "u.structure"))), {
        "structure": req.structure, "level": req.level, "parent": req.parent, **reader.params()}).all()
    codes = [u.code for u in units]
    return units, placed_incidents(conn, req.structure).counts(req.incidents, codes)


def _unit_hotspots(conn: Connection, req: HotspotRequest, reader: Reader) -> HotspotLayer:
    units, y = unit_counts(conn, req, reader)
    codes = [u.code for u in units]
    _guard(len(codes), int(y.sum()), req)
    w = unit_weights(conn, req.structure, codes)
    population = dict(conn.execute(text(POPULATION_SQL), {"structure": req.structure, "year": req.incidents.start.year,
                                                         "codes": codes}).all())
    use_rates = len(population) == len(codes)
    values = smoothed_rates(y, np.array([float(population[c]) for c in codes])) if use_rates else y.astype(float)
    z, p = gi_star(values, w, req.permutations, req.seed)
    p_fdr = corrected(p)
    rows = [HotspotRow(u.code, u.name, int(y[i]), float(values[i]) if use_rates else None, float(z[i]), float(p[i]),
                       float(p_fdr[i]), klass_of(float(z[i]), float(p_fdr[i])), u.geom_quality) for i, u in enumerate(units)]
    statistic = ("Getis-Ord Gi* on incident rates per person, Empirical Bayes smoothed (esda.smoothing.Empirical_Bayes), "
                 f"population of {req.incidents.start.year}") if use_rates else "Getis-Ord Gi* on incident counts per unit"
    caveats = []
    if any(u.geom_quality == "approximate" for u in units):
        caveats.append("approximate commune polygons (Voronoi cells of commune centres) give the neighbours and place "
                       "incidents where no official polygon was imported")
    if not use_rates:
        caveats.append("counts, not rates: no population denominator is loaded for every unit, so populous units weigh more")
    return HotspotLayer(
        req, rows, statistic,
        f"queen contiguity (polygons touching or within {CONTIGUITY_M} m), binary, {w.islands_joined} island(s) joined to "
        f"their nearest unit; {len(codes)} units",
        f"{req.permutations} conditional permutations (seed {req.seed}), pseudo p-values corrected by Benjamini-Hochberg "
        "(false discovery rate); classes at 90, 95 and 99 %", caveats)


HEX_SQL = f"""
WITH area AS (
    SELECT ST_Transform(ST_Union(u.geom), 3405) AS geom FROM admin_unit u
    WHERE u.structure = :structure AND u.level = 'province'
      AND (CAST(:province AS text) IS NULL OR u.code = :province)
      AND (CAST(:scope_user_id AS uuid) IS NULL OR {{scope}})
),
hex AS (
    SELECT h.i, h.j, h.geom FROM area, ST_HexagonGrid(:size, area.geom) AS h WHERE ST_Intersects(h.geom, area.geom)
),
pts AS (
    SELECT ST_Transform(coalesce(i.geom, ST_PointOnSurface(c.geom)), 3405) AS geom
    FROM incident i LEFT JOIN admin_unit c ON c.structure = i.structure AND c.code = i.commune_code
    WHERE {FILTER_SQL}
)
SELECT hex.i || ':' || hex.j AS code, count(pts.geom) AS n, ST_AsGeoJSON(ST_Transform(hex.geom, 4326), 5) AS geometry
FROM hex LEFT JOIN pts ON ST_Intersects(hex.geom, pts.geom)
GROUP BY hex.i, hex.j, hex.geom ORDER BY hex.i, hex.j
"""


def _hexagon_hotspots(conn: Connection, req: HotspotRequest, reader: Reader) -> HotspotLayer:
    province = req.parent[:2] if req.parent else None
    cells = conn.execute(text(HEX_SQL.format(scope=scope_condition("u.code", "u.structure"))), {
        "structure": req.structure, "province": province, "size": req.hexagon_m, **req.incidents.params(), **reader.params(),
    }).all()
    codes = [c.code for c in cells]
    y = np.array([c.n for c in cells])
    _guard(len(codes), int(y.sum()), req)
    index = {tuple(map(int, c.split(":"))): c for c in codes}
    # Hexagon grid neighbours by index (PostGIS's flat-topped columns: odd columns are shifted up).
    pairs = []
    for (i, j), code in index.items():
        for di, dj in ((1, 0), (0, 1), (1, -1 if i % 2 == 0 else 1)):
            other = index.get((i + di, j + dj))
            if other:
                pairs.append((code, other))
    w = weights_from_pairs(codes, pairs, {})
    z, p = gi_star(y.astype(float), w, req.permutations, req.seed)
    p_fdr = corrected(p)
    rows = [HotspotRow(code, f"hexagon {code}", int(y[i]), None, float(z[i]), float(p[i]), float(p_fdr[i]),
                       klass_of(float(z[i]), float(p_fdr[i])), None) for i, code in enumerate(codes)]
    layer = HotspotLayer(
        req, rows, f"Getis-Ord Gi* on incident counts per hexagon of {req.hexagon_m:,} m (VN-2000 / UTM 48N)",
        "hexagon contiguity (six neighbours), binary",
        f"{req.permutations} conditional permutations (seed {req.seed}), pseudo p-values corrected by Benjamini-Hochberg "
        "(false discovery rate); classes at 90, 95 and 99 %",
        ["incidents reported without a point are counted at their commune's point"])
    layer.geometries = {c.code: json.loads(c.geometry) for c in cells}  # type: ignore[attr-defined]
    return layer


def hexagon_geometries(layer: HotspotLayer) -> dict[str, Any]:
    return getattr(layer, "geometries", {})


def parse_dates(start: dt.date | None, end: dt.date | None, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The date range of a layer: the last 12 months by default.

    >>> parse_dates(None, dt.date(2024, 2, 29))  # no 29 February a year before: from 1 March
    (datetime.date(2023, 3, 1), datetime.date(2024, 2, 29))
    >>> parse_dates(None, dt.date(1, 1, 1))
    Traceback (most recent call last):
    ...
    geodata.errors.InvalidInput: no year before to 0001-01-01 to start from: give from
    """
    today = today or dt.date.today()
    end = end or today
    if start is None:
        if end.year == dt.MINYEAR:
            raise InvalidInput(f"no year before to {end} to start from: give from", loc=("query", "to"))
        # A year back, then a day on; 29 February of a leap year goes back to 28 February.
        start = end.replace(year=end.year - 1, day=min(end.day, 28 if end.month == 2 else end.day)) + dt.timedelta(days=1)
    if start > end:
        raise InvalidInput(f"from {start} is after to {end}", loc=("query", "from"))
    return start, end
