"""Suppression of small counts, with complementary suppression.

A count of one or two people in a commune can point at those people. Every
aggregate served to a leader, planner or police analyst therefore hides
counts from 1 to ``k - 1`` (primary suppression). Hiding them is not enough
when a total is shown: a district total minus its visible communes gives the
hidden commune back. So, for every additive relation ``total = part1 + part2
+ ...`` (a unit and its children, a unit's all-kinds count and its counts per
kind), one hidden cell is never left alone: the smallest other non-zero cell
of the relation is hidden too (complementary suppression), repeated until no
relation has exactly one hidden cell.

Zero counts are shown: they point at nobody. The pattern depends only on the
whole table and k, so compute it on the whole table (e.g. the country) and
then cut out what a user may see: users with different areas then see the
same cells hidden and cannot combine their views.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TypeVar

from geodata.roles import Role
from geodata.settings import get_settings

K = TypeVar("K", bound=Hashable)

MIN_K = 3


def suppression_k(role: Role) -> int | None:
    """The threshold below which counts served to ``role`` are hidden (None: not suppressed).

    Officers see the personal records of their area, so their counts are not
    hidden; every role that sees aggregates only gets them suppressed
    (settings ``suppress_below_*``).

    >>> suppression_k(Role.officer) is None
    True
    """
    s = get_settings()
    return {Role.leader: s.suppress_below_leader, Role.planner: s.suppress_below_planner,
            Role.police_analyst: s.suppress_below_police}.get(role)


def suppressed_cells(counts: Mapping[K, int], relations: Iterable[tuple[K, Sequence[K]]], k: int) -> set[K]:
    """The cells to hide: primary (``0 < count < k``) and complementary.

    Parameters
    ----------
    counts:
        Every cell of the table and its count.
    relations:
        ``(total, parts)`` pairs where ``counts[total] == sum(counts[p] for p in parts)``.
    k:
        The threshold (at least 3).

    Example: a district of 12 with communes 2, 4 and 6, k = 5. The 2 and the
    4 are hidden (primary); the table is then safe (12 - 6 = 6 is the sum of
    two hidden cells, not one of them). With communes 3, 9 and 0, the 3 is
    hidden and, alone in its relation, it takes the 9 with it:

    >>> sorted(suppressed_cells({"d": 12, "a": 3, "b": 9, "c": 0}, [("d", ["a", "b", "c"])], 5))
    ['a', 'b']
    """
    if k < MIN_K:
        raise ValueError(f"k must be at least {MIN_K}, not {k}")
    hidden = {c for c, n in counts.items() if 0 < n < k}
    groups = [(t, [p for p in parts if p in counts]) for t, parts in relations if t in counts]
    changed = True
    while changed:
        changed = False
        for total, parts in groups:
            members = [total, *parts]
            if sum(m in hidden for m in members) != 1:
                continue
            visible_parts = [p for p in parts if p not in hidden and counts[p] > 0]
            if visible_parts:
                pick = min(visible_parts, key=lambda p: (counts[p], str(p)))
            elif total not in hidden and counts[total] > 0:
                pick = total
            else:  # every other member is zero: the hidden cell equals 0 + ... and is not recoverable as a count > 0
                continue
            hidden.add(pick)
            changed = True
    return hidden
