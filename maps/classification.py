"""Classes of a choropleth: fixed bands, quantiles or natural breaks (mapclassify), and a no-data class.

>>> c = classify([0.2, 0.6, 0.9, 1.4, None], "fixed")
>>> [x.label for x in c.classes], c.of(0.9), c.of(1.0), c.of(None)
(['0–50 %', '50–80 %', '80–100 %', '≥ 100 %'], '80–100 %', '≥ 100 %', 'no data')
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Method = Literal["fixed", "quantiles", "natural_breaks"]
NO_DATA = "no data"
# Share of the target reached: the bands leaders read the plans in.
FIXED_BANDS = (0.5, 0.8, 1.0, math.inf)


@dataclass(frozen=True)
class Band:
    label: str
    upper: float  # inclusive; the last is infinite


@dataclass(frozen=True)
class Classification:
    """Classes of ratios (1.0 = the target) and how they were made."""

    method: Method
    classes: tuple[Band, ...]
    description: str

    def of(self, ratio: float | None) -> str:
        if ratio is None or not math.isfinite(ratio):
            return NO_DATA
        # Fixed bands are half-open, [50 %, 80 %): the target met is "≥ 100 %". Computed
        # breaks are mapclassify's, whose upper bounds are inclusive.
        if self.method == "fixed":
            return next(b.label for b in self.classes if ratio < b.upper)
        return next(b.label for b in self.classes if ratio <= b.upper)


def _percent(x: float) -> str:
    return f"{x * 100:.0f} %"


def _bands(uppers: Sequence[float], first: float = 0.0) -> tuple[Band, ...]:
    out, lower = [], first
    for upper in uppers:
        label = f"≥ {_percent(lower)}" if math.isinf(upper) else f"{_percent(lower)[:-2]}–{_percent(upper)}"
        out.append(Band(label, upper))
        lower = upper
    return tuple(out)


def classify(ratios: Sequence[float | None], method: Method = "fixed", k: int = 5) -> Classification:
    """Classes for ``ratios`` (None: no target, the no-data class).

    ``fixed``: 0–50–80–100 % and more, each band from its lower bound up to
    but not including its upper one (the target met is "≥ 100 %"). ``quantiles`` and
    ``natural_breaks`` (Fisher-Jenks, exact and deterministic) come from
    mapclassify with ``k`` classes, fewer when there are fewer distinct values.
    """
    if method == "fixed":
        return Classification("fixed", _bands(FIXED_BANDS), "fixed bands 0–50–80–100 %")
    values = np.array([r for r in ratios if r is not None and math.isfinite(r)], dtype=float)
    distinct = len(np.unique(values))
    if distinct == 0:
        return Classification(method, (), f"{method}: no unit has a target")
    k = max(1, min(k, distinct))
    import mapclassify

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mapclassify's note that numba is not installed
        scheme = mapclassify.Quantiles(values, k=k) if method == "quantiles" else mapclassify.FisherJenks(values, k=k)
    uppers = [float(b) for b in scheme.bins]
    uppers[-1] = math.inf
    name = "quantiles" if method == "quantiles" else "natural breaks (Fisher-Jenks)"
    return Classification(method, _bands(uppers, first=float(values.min()) if values.min() < 0 else 0.0),
                          f"{name}, {len(uppers)} classes (mapclassify)")
