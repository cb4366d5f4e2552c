"""The result type every aggregate layer shares: values per unit and period, with what is hidden.

Survey counts use it today; the coverage, recruiter-activity and hot-spot
layers will too. Routes, tiles, OGC collections and exports read these rows,
so a suppressed value is ``None`` in one place and stays hidden in every
format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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
