"""Emerging hot spots: Gi* in every time step, a Mann-Kendall trend per unit, and a label.

The labels are those of ArcGIS's Emerging Hot Spot Analysis (PySAL computes
the statistics but gives no labels); the rules, as implemented here, for a
unit with ``n`` time steps, each step classed hot or cold when its Gi*
p-value, corrected for the false discovery rate across units in that step,
is at most 0.10 (:func:`emerging_label`):

- **new**: hot in the final step and never hot before;
- **consecutive**: one uninterrupted run of at least two hot steps ending in
  the final step, never hot before that run, hot in fewer than 90 % of steps;
- **intensifying**: hot in at least 90 % of steps, the final included, and a
  significant upward Mann-Kendall trend of the Gi* z-scores;
- **persistent**: hot in at least 90 % of steps, the final included, and no
  significant trend;
- **diminishing**: as intensifying, with a significant downward trend;
- **sporadic**: hot in the final step, hot in fewer than 90 % of steps, on
  and off, never cold;
- **oscillating**: hot in the final step, cold in some earlier step, hot in
  fewer than 90 % of steps;
- **historical**: not hot in the final step, hot in at least 90 % of steps;
- **no pattern**: none of these.

The same rules with cold for hot give the cold labels (``new cold``...).
The trend test is two-sided at 5 % (:data:`TREND_ALPHA`), with the
variance corrected for ties.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sqlalchemy import Connection, text

from geodata.errors import InvalidInput
from geodata.scopes import Reader, scope_condition
from maps.hotspots import MIN_INCIDENTS, MIN_UNITS, UNIT_AREA_SQL, TooLittleData, corrected, gi_star, unit_weights
from maps.incidents import IncidentFilter
from maps.placed_incidents import placed_incidents

Step = Literal["month", "quarter"]
SIGNIFICANT = 0.10
SHARE_FOR_MOST = 0.9
TREND_ALPHA = 0.05
MIN_STEPS = 4
LABELS = ("new", "consecutive", "intensifying", "persistent", "diminishing", "sporadic", "oscillating", "historical")


def mann_kendall(series: list[float] | np.ndarray) -> tuple[float, float]:
    """The Mann-Kendall trend test: (z, two-sided p). Positive z: an upward trend.

    >>> z, p = mann_kendall([1, 2, 3, 4, 5, 6, 7, 8])
    >>> round(z, 2), p < 0.01
    (3.34, True)
    """
    x = np.asarray(series, dtype=float)
    n = len(x)
    if n < 3:
        return 0.0, 1.0
    s = sum(np.sign(x[j] - x[i]) for i in range(n - 1) for j in range(i + 1, n))
    _, ties = np.unique(x, return_counts=True)
    var = (n * (n - 1) * (2 * n + 5) - sum(t * (t - 1) * (2 * t + 5) for t in ties)) / 18
    if var <= 0:
        return 0.0, 1.0
    z = (s - 1) / math.sqrt(var) if s > 0 else (s + 1) / math.sqrt(var) if s < 0 else 0.0
    p = math.erfc(abs(z) / math.sqrt(2))
    return float(z), float(p)


def emerging_label(hot: list[bool], cold: list[bool], trend_z: float, trend_p: float) -> str:
    """The label of one unit's series of hot (and cold) steps and its trend (see the module's rules).

    >>> emerging_label([False, False, False, True], [False] * 4, 1.0, 0.3)
    'new hot spot'
    >>> emerging_label([False, True, False, True, True], [False] * 5, 0.5, 0.6)
    'sporadic hot spot'
    """
    for side, own, other, up in (("hot", hot, cold, 1), ("cold", cold, hot, -1)):
        label = _label(own, other, trend_z * up, trend_p)
        if label:
            return f"{label} {side} spot"
    return "no pattern"


def _label(own: list[bool], other: list[bool], trend: float, p: float) -> str | None:
    n = len(own)
    share = sum(own) / n
    final = own[-1]
    most = share >= SHARE_FOR_MOST
    if not final:
        return "historical" if most else None
    before = own[:-1]
    if not any(before):
        return "new"
    run = 0
    for flag in reversed(own):
        if not flag:
            break
        run += 1
    if run >= 2 and not any(own[: n - run]) and not most:
        return "consecutive"
    if most:
        if p <= TREND_ALPHA and trend > 0:
            return "intensifying"
        if p <= TREND_ALPHA and trend < 0:
            return "diminishing"
        return "persistent"
    if any(other):
        return "oscillating"
    return "sporadic"


def steps_between(start: dt.date, end: dt.date, step: Step) -> list[tuple[dt.date, dt.date]]:
    """The time steps (first day, last day) covering [start, end], whole months or quarters.

    >>> steps_between(dt.date(2025, 2, 10), dt.date(2025, 7, 3), "quarter")[0]
    (datetime.date(2025, 1, 1), datetime.date(2025, 3, 31))
    """
    months = 1 if step == "month" else 3
    first_month = (start.month - 1) // months * months + 1
    cursor = dt.date(start.year, first_month, 1)
    out = []
    while cursor <= end:
        m = cursor.month - 1 + months
        nxt = dt.date(cursor.year + m // 12, m % 12 + 1, 1)
        out.append((cursor, nxt - dt.timedelta(days=1)))
        cursor = nxt
    return out


@dataclass
class EmergingRow:
    code: str
    name: str
    label: str
    trend_z: float
    trend_p: float
    hot_steps: int
    cold_steps: int
    final_class: str
    geom_quality: str | None


@dataclass
class EmergingLayer:
    rows: list[EmergingRow]
    steps: list[tuple[dt.date, dt.date]]
    method: str
    caveats: list[str]


def emerging_hotspots(conn: Connection, *, structure: str, level: str, parent: str | None, incidents: IncidentFilter,
                      step: Step, reader: Reader, permutations: int = 999, seed: int = 12345) -> EmergingLayer:
    """Label every unit of the area by how its hot- or cold-spot status developed over the time steps.

    Example (needs a database)::

        layer = emerging_hotspots(conn, structure="2025", level="commune", parent="40",
                                  incidents=IncidentFilter(dt.date(2024, 1, 1), dt.date(2025, 12, 31)), step="quarter", reader=Reader())
    """
    steps = steps_between(incidents.start, incidents.end, step)
    if len(steps) < MIN_STEPS:
        raise TooLittleData(f"only {len(steps)} {step}s between {incidents.start} and {incidents.end}: at least {MIN_STEPS} are "
                            "needed for a trend; widen the dates (from, to) or use step=month", loc=("query", "from"))
    units = conn.execute(text(UNIT_AREA_SQL.format(scope=scope_condition("u.code", "u.structure"))), {
        "structure": structure, "level": level, "parent": parent, **reader.params()}).all()
    codes = [u.code for u in units]
    if len(codes) < MIN_UNITS:
        raise TooLittleData(f"only {len(codes)} units in the area: at least {MIN_UNITS} are needed; choose a larger area "
                            "(parent) or a finer level", loc=("query", "parent"))
    flt = IncidentFilter(steps[0][0], steps[-1][1], incidents.types, incidents.statuses)
    y = placed_incidents(conn, structure).counts_by_step(flt, codes, [a for a, _ in steps]).astype(float)
    if y.sum() < MIN_INCIDENTS:
        raise TooLittleData(f"only {int(y.sum())} incidents match: at least {MIN_INCIDENTS} are needed; widen the dates or the types",
                            loc=("query", "from"))
    w = unit_weights(conn, structure, codes)
    z = np.zeros_like(y)
    hot = np.zeros_like(y, dtype=bool)
    cold = np.zeros_like(y, dtype=bool)
    for t in range(len(steps)):
        if y[t].sum() == 0:
            continue  # nothing happened: no unit is hot or cold in this step
        z[t], p = gi_star(y[t], w, permutations, seed + t)
        p_fdr = corrected(p)
        hot[t] = (p_fdr <= SIGNIFICANT) & (z[t] > 0)
        cold[t] = (p_fdr <= SIGNIFICANT) & (z[t] < 0)
    rows = []
    for i, u in enumerate(units):
        tz, tp = mann_kendall(z[:, i])
        label = emerging_label(list(hot[:, i]), list(cold[:, i]), tz, tp)
        final = "hot" if hot[-1, i] else "cold" if cold[-1, i] else "not_significant"
        rows.append(EmergingRow(u.code, u.name, label, round(tz, 4), round(tp, 4), int(hot[:, i].sum()), int(cold[:, i].sum()),
                                final, u.geom_quality))
    caveats = []
    if len(steps) < 10:
        caveats.append(f"{len(steps)} time steps: the Mann-Kendall trend has little power below 10")
    if any(u.geom_quality == "approximate" for u in units):
        caveats.append("approximate commune polygons give the neighbours and place incidents where no official polygon was imported")
    method = (f"Getis-Ord Gi* per {step} ({len(steps)} steps, {permutations} conditional permutations, seeds {seed}.., "
              f"Benjamini-Hochberg per step, hot or cold at 90 %); Mann-Kendall trend of the z-scores per unit "
              f"(two-sided, 5 %); labels after ArcGIS's Emerging Hot Spot Analysis (rules in maps/emerging.py)")
    return EmergingLayer(rows, steps, method, caveats)


def check_step_range(start: dt.date, end: dt.date) -> None:
    if (end - start).days > 366 * 10:
        raise InvalidInput("at most ten years of time steps", loc=("query", "from"))
