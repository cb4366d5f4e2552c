"""Every incident placed in one boundary structure, held as columns for counting by any filter.

Placing an incident in the other structure is a point-in-polygon lookup
(:mod:`maps.placement`); for 45,000 incidents that is two seconds of PostGIS
on every new date range, more than the Gi* itself. The placement depends
only on the incidents and the boundaries, so it is done once per data
version and each question (dates, types, statuses, area) is then answered by
numpy over these columns in milliseconds.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, text

from geodata.data_versions import versions
from maps.incidents import IncidentFilter
from maps.placement import ancestors_sql, commune_in

CACHE_SIZE = 4

PLACED_SQL = f"""
SELECT {commune_in(":structure", "i.structure", "i.commune_code", "i.geom")} AS commune, i.occurred_on, i.type, i.status
FROM incident i
"""

UP_SQL = f"SELECT commune, unit FROM ({ancestors_sql(':structure')}) up"


@dataclass(frozen=True)
class PlacedIncidents:
    """The incidents of the database placed in one structure: one entry per incident in each array.

    ``commune`` indexes ``communes`` (-1 where the incident could not be
    placed); ``up`` gives for each commune the units it rolls up to (itself,
    its district, its province).
    """

    communes: tuple[str, ...]
    commune: np.ndarray
    day: np.ndarray
    type: np.ndarray
    status: np.ndarray
    up: dict[str, tuple[str, ...]]

    def mask(self, flt: IncidentFilter) -> np.ndarray:
        """Which incidents the filter keeps (dates inclusive, types and statuses when given, placed ones only)."""
        keep = (self.commune >= 0) & (self.day >= np.datetime64(flt.start)) & (self.day <= np.datetime64(flt.end))
        if flt.types:
            keep &= np.isin(self.type, flt.types)
        if flt.statuses:
            keep &= np.isin(self.status, flt.statuses)
        return keep

    def unit_of_commune(self, codes: list[str]) -> np.ndarray:
        """For each commune, the index in ``codes`` of the unit it falls in (-1 when none of them)."""
        index = {c: i for i, c in enumerate(codes)}
        return np.array([next((index[u] for u in self.up.get(c, ()) if u in index), -1) for c in self.communes] + [-1],
                        dtype=np.int64)

    def counts(self, flt: IncidentFilter, codes: list[str]) -> np.ndarray:
        """Incidents per unit of ``codes`` (communes, districts or provinces) that pass the filter.

        >>> p = PlacedIncidents(("01001", "01002"), np.array([0, 1, 1, -1]),
        ...     np.array(["2026-01-05", "2026-02-01", "2025-12-31", "2026-01-09"], dtype="datetime64[D]"),
        ...     np.array(["fraud"] * 4), np.array(["reported"] * 4),
        ...     {"01001": ("01001", "010"), "01002": ("01002", "010")})
        >>> import datetime as dt
        >>> p.counts(IncidentFilter(dt.date(2026, 1, 1), dt.date(2026, 12, 31)), ["01001", "01002"]).tolist()
        [1, 1]
        >>> p.counts(IncidentFilter(dt.date(2025, 1, 1), dt.date(2026, 12, 31)), ["010"]).tolist()
        [3]
        """
        unit = self.unit_of_commune(codes)[self.commune[self.mask(flt)]]
        return np.bincount(unit[unit >= 0], minlength=len(codes))

    def counts_by_step(self, flt: IncidentFilter, codes: list[str], step_starts: list) -> np.ndarray:
        """Incidents per time step (rows, steps starting at ``step_starts``) and unit (columns)."""
        keep = self.mask(flt)
        unit = self.unit_of_commune(codes)[self.commune[keep]]
        step = np.searchsorted(np.array(step_starts, dtype="datetime64[D]"), self.day[keep], side="right") - 1
        ok = (unit >= 0) & (step >= 0)
        flat = np.bincount(step[ok] * len(codes) + unit[ok], minlength=len(step_starts) * len(codes))
        return flat.reshape(len(step_starts), len(codes))


_cache: OrderedDict[tuple, PlacedIncidents] = OrderedDict()
_lock = threading.Lock()


def placed_incidents(conn: Connection, structure: str) -> PlacedIncidents:
    """All incidents placed in ``structure`` (cached per structure and version of the incidents and boundaries)."""
    key = (structure, versions(conn, "incident", "admin_unit"))
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    rows = conn.execute(text(PLACED_SQL), {"structure": structure}).all()
    communes = tuple(sorted({r.commune for r in rows if r.commune is not None}))
    index = {c: i for i, c in enumerate(communes)}
    up: dict[str, list[str]] = {}
    for commune, unit in conn.execute(text(UP_SQL), {"structure": structure}):
        up.setdefault(commune, []).append(unit)
    placed = PlacedIncidents(
        communes,
        np.array([index.get(r.commune, -1) for r in rows], dtype=np.int64),
        np.array([r.occurred_on for r in rows], dtype="datetime64[D]"),
        np.array([r.type for r in rows], dtype=object),
        np.array([r.status for r in rows], dtype=object),
        {c: tuple(u) for c, u in up.items()},
    )
    with _lock:
        _cache[key] = placed
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return placed
