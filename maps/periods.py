"""Reporting periods: a month, a quarter, a half or a year, counted in Viet Nam time.

Periods are written as the plans and reports write them: ``2026-10`` (a
month), ``2026-Q3``, ``2026-H1``, ``2026``. A period runs from the first
day it covers (00:00 Viet Nam time) to the first day after it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from geodata.errors import InvalidInput
from geodata.vietnam import VIETNAM_TZ

PeriodLength = Literal["month", "quarter", "half", "year"]
MONTHS: dict[str, int] = {"month": 1, "quarter": 3, "half": 6, "year": 12}
EXAMPLES = {"month": "2026-10", "quarter": "2026-Q3", "half": "2026-H1", "year": "2026"}
_PATTERNS = (
    (re.compile(r"^(\d{4})-(\d{2})$"), "month"),
    (re.compile(r"^(\d{4})-[Qq]([1-4])$"), "quarter"),
    (re.compile(r"^(\d{4})-[Hh]([12])$"), "half"),
    (re.compile(r"^(\d{4})$"), "year"),
)


@dataclass(frozen=True, order=True)
class Period:
    """A reporting period: its first day and its length.

    >>> p = Period.parse("2026-Q3")
    >>> p.start, p.end, p.label, p.next().label
    (datetime.date(2026, 7, 1), datetime.date(2026, 10, 1), '2026-Q3', '2026-Q4')
    >>> Period.containing(dt.date(2025, 12, 31), "half").label
    '2025-H2'
    """

    start: dt.date
    length: PeriodLength

    @classmethod
    def parse(cls, text: str, loc: tuple[str, ...] = ("query", "period")) -> Period:
        """Read ``2026-10``, ``2026-Q3``, ``2026-H1`` or ``2026``; :class:`InvalidInput` otherwise."""
        for pattern, length in _PATTERNS:
            found = pattern.match(text.strip())
            if not found:
                continue
            year = int(found.group(1))
            part = int(found.group(2)) if found.lastindex and found.lastindex > 1 else 1
            if length == "month" and not 1 <= part <= 12:
                break
            month = 1 + (part - 1) * MONTHS[length] if length != "month" else part
            if not 2000 <= year <= 2100:
                break
            return cls(dt.date(year, month, 1), length)
        raise InvalidInput(f"{text[:40]!r} is not a period: write a month (2026-10), a quarter (2026-Q3), a half (2026-H1) "
                           "or a year (2026)", loc=loc)

    @classmethod
    def containing(cls, day: dt.date, length: PeriodLength) -> Period:
        """The period of ``length`` that ``day`` falls in."""
        months = MONTHS[length]
        return cls(dt.date(day.year, 1 + (day.month - 1) // months * months, 1), length)

    @classmethod
    def spanning(cls, start: dt.date, end: dt.date) -> Period:
        """The period that runs from ``start`` to the day before ``end``; :class:`ValueError` if none does.

        >>> Period.spanning(dt.date(2025, 7, 1), dt.date(2026, 1, 1)).label
        '2025-H2'
        """
        for length in MONTHS:
            p = cls.containing(start, length)  # type: ignore[arg-type]
            if p.start == start and p.end == end:
                return p
        raise ValueError(f"{start}..{end} is not a month, a quarter, a half or a year")

    @property
    def end(self) -> dt.date:
        """The first day after the period."""
        month0 = self.start.month - 1 + MONTHS[self.length]
        return dt.date(self.start.year + month0 // 12, month0 % 12 + 1, 1)

    @property
    def label(self) -> str:
        y, m = self.start.year, self.start.month
        return {"month": f"{y}-{m:02d}", "quarter": f"{y}-Q{(m - 1) // 3 + 1}", "half": f"{y}-H{(m - 1) // 6 + 1}",
                "year": f"{y}"}[self.length]

    def next(self) -> Period:
        return Period(self.end, self.length)

    def previous(self) -> Period:
        before = self.start - dt.timedelta(days=1)
        return Period.containing(before, self.length)

    def overlaps(self, other: Period) -> bool:
        return self.start < other.end and other.start < self.end

    @property
    def starts_at(self) -> dt.datetime:
        """The first instant of the period (Viet Nam time)."""
        return dt.datetime.combine(self.start, dt.time(), VIETNAM_TZ)

    @property
    def ends_at(self) -> dt.datetime:
        """The first instant after the period (Viet Nam time)."""
        return dt.datetime.combine(self.end, dt.time(), VIETNAM_TZ)

    def __str__(self) -> str:
        return self.label
