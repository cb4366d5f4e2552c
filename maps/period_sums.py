"""Counts of a half-year or a year: live for officers; for every other role, the sum of the released periods in it.

Suppressed roles read only releases (:func:`maps.releases.aggregate_view`), and
a release covers one period of ``LABOUR_ATLAS_RELEASE_PERIOD`` (a month by
default). A longer period is the sum of the released periods that lie in it:
a cell hidden in any of them is hidden in the sum (the other months would not
say how much is missing), and periods not released yet (the current month,
the grace days after it) are not counted; ``periods`` and ``as_of`` say how
far the sum goes. Officers get one live count of the whole period.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from geodata.roles import Role
from geodata.scopes import Reader
from geodata.settings import get_settings
from maps.aggregates import AggregateRow, Dataset, ReleaseInfo
from maps.periods import Period
from maps.releases import aggregate_view, release_due_at
from maps.suppression import suppression_k


@dataclass
class SummedView:
    """What a role gets of a dataset over a period: rows per unit, and where they come from.

    ``source`` is ``"live"`` or ``"releases"``; ``periods`` are the periods
    summed (the whole period when live); ``releases`` identify every release
    read; ``as_of`` is the last day the sum covers (None: nothing released yet).
    A row's ``suppressed`` names the measures hidden in any summed period.
    """

    dataset: str
    structure: str
    period: str
    source: str
    k: int | None
    rows: dict[str, AggregateRow] = field(default_factory=dict)
    periods: list[str] = field(default_factory=list)
    releases: list[ReleaseInfo] = field(default_factory=list)
    as_of: dt.date | None = None


def summed_view(
    conn: Connection,
    dataset: Dataset,
    role: Role,
    structure: str,
    period: Period,
    reader: Reader,
    *,
    level: str | None = None,
    parent: str | None = None,
    now: dt.datetime | None = None,
) -> SummedView:
    """The counts of ``dataset`` that ``role`` may see for ``period``, per unit (at ``level``, under ``parent``).

    Example (needs a database)::

        got = summed_view(conn, DEPARTURES, Role.leader, "2025", Period.parse("2026-H1"), Reader(area_of=uid),
                          level="province")
        got.periods, got.rows["42"].cell("departures")
        # (['2026-01', ..., '2026-06'], {'count': 512, 'suppressed': False})
    """
    k = suppression_k(role)
    if k is None:
        view = aggregate_view(conn, dataset, role, structure, period, reader, level=level, parent=parent, now=now)
        return SummedView(dataset.name, view.structure, period.label, "live", None, {r.unit_code: r for r in view.rows},
                          [period.label], [], period.end - dt.timedelta(days=1))
    now = now or conn.execute(text("SELECT now()")).scalar_one()
    got = SummedView(dataset.name, structure, period.label, "releases", k)
    sums: dict[str, dict[str, int | None]] = {}
    seen: dict[str, int] = defaultdict(int)
    first: dict[str, AggregateRow] = {}
    p = Period.containing(period.start, get_settings().release_period)
    while p.end <= period.end:
        if p.start >= period.start and release_due_at(p) <= now:
            view = aggregate_view(conn, dataset, role, structure, p, reader, level=level, parent=parent, now=now)
            for r in view.rows:
                first.setdefault(r.unit_code, r)
                seen[r.unit_code] += 1
                acc = sums.setdefault(r.unit_code, dict.fromkeys(dataset.measures, 0))
                for m in dataset.measures:
                    # A measure missing from a release (made before the dataset had it) is as good as hidden.
                    n = None if m in r.suppressed else r.values.get(m)
                    acc[m] = None if n is None or acc[m] is None else acc[m] + n
            got.periods.append(p.label)
            if view.release is not None:
                got.releases.append(view.release)
            got.as_of = p.end - dt.timedelta(days=1)
        p = p.next()
    for code, values in sums.items():
        if seen[code] < len(got.periods):  # not in every release: its sum would be short
            values = dict.fromkeys(values)
        r = first[code]
        got.rows[code] = AggregateRow(code, r.unit_name, r.level, r.parent_code, structure, period.label, values,
                                      frozenset(m for m, v in values.items() if v is None), r.geom_quality)
    return got
