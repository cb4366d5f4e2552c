"""The types every aggregate layer shares: values per unit and period, with what is hidden, and where they come from.

Survey counts use them today; the coverage, recruiter-activity and hot-spot
layers will too. Routes, tiles, OGC collections and exports read these rows
(from :func:`maps.releases.aggregate_view`), so a suppressed value is
``None`` in one place and stays hidden in every format.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from geodata.roles import Role

if TYPE_CHECKING:
    from maps.periods import Period


@dataclass(frozen=True)
class AggregateRow:
    """One unit's values for one period.

    ``values`` maps a measure (``"aspirant"``, ``"all"``, ``"ratio"``...) to
    its value, ``None`` where it is hidden; ``suppressed`` names the hidden
    measures (a hidden value and a missing one are told apart by it).
    ``geom_quality`` says whether the unit's polygon is official or
    approximate, which every map and statistic must state.

    >>> row = AggregateRow("42", "Hà Tĩnh", "province", None, "2025", "2026", {"all": 12, "departure": None},
    ...                    frozenset({"departure"}), "official")
    >>> row.cell("departure"), row.cell("all")
    ({'count': None, 'suppressed': True}, {'count': 12, 'suppressed': False})
    """

    unit_code: str
    unit_name: str
    level: str
    parent_code: str | None
    structure: str
    period: str
    values: Mapping[str, Any]
    suppressed: frozenset[str] = field(default_factory=frozenset)
    geom_quality: str | None = None

    def cell(self, measure: str) -> dict[str, Any]:
        """A count as served: ``{"count": n, "suppressed": False}`` or ``{"count": None, "suppressed": True}``."""
        if measure in self.suppressed:
            return {"count": None, "suppressed": True}
        return {"count": self.values[measure], "suppressed": False}


LeafCounts = Callable[[Connection, str, "Period"], Mapping[str, Mapping[str, int]]]
"""``(conn, structure, period) -> {bottom unit code: {measure: count}}`` for the measures that are not sums."""


@dataclass(frozen=True)
class Dataset:
    """A table of counts per unit and period that suppressed roles read only through releases.

    ``measures`` are the table's columns; ``parts_of`` says which are sums of
    others (``{"all": ("aspirant", "returnee", "departure")}``); ``leaf_counts``
    counts the bottom units (communes) of a structure in a period, in SQL;
    parents and sums are added up from them. ``readers`` are the roles that
    read it suppressed: a release holds one pattern per distinct k of theirs.
    Register a dataset in :data:`maps.releases.DATASETS`; every route, layer and
    export then reads it through :func:`maps.releases.aggregate_view`.
    """

    name: str
    measures: tuple[str, ...]
    parts_of: Mapping[str, tuple[str, ...]]
    readers: tuple[Role, ...]
    leaf_counts: LeafCounts
    # The levels the released table holds (None: every level). Departures and incidents are released per
    # province only: their communes are nearly all below k, and a total whose parts are all hidden as small
    # is hidden too (it would say "all small"), so with communes in the table no province total would show.
    levels: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ReleaseInfo:
    """Which release a suppressed count comes from."""

    id: int
    dataset: str
    structure: str
    period: str
    revision: int
    made_at: dt.datetime
    made_by: str
    records: int


@dataclass(frozen=True)
class AggregateView:
    """What a reader gets of a dataset for a period: rows, and where they come from.

    ``source`` is ``"live"`` (officers: counted now, unsuppressed) or
    ``"release"`` (suppressed roles: the latest release of the period, whose
    ``k`` and identity are given); ``next_release_due`` is when the server
    makes the next release round (a period's first release, or a revision
    with late records).
    """

    dataset: str
    structure: str
    period: str
    period_start: dt.date
    period_end: dt.date
    source: str
    k: int | None
    rows: list[AggregateRow]
    release: ReleaseInfo | None
    next_release_due: dt.datetime | None
    generated_at: dt.datetime
