"""Cell suppression of count tables with audited protection intervals.

A count of one or two people in a commune can point at those people, and so
can a zero (it says that nobody there was surveyed, or left): told apart
from small counts, a zero shown next to a hidden cell says the hidden one is
at least 1. Every aggregate served to a leader, planner or police analyst
therefore hides every count below ``k``, zero included, unless it is a
*structural* zero, one that holds by definition (a unit that did not exist
in the period). That is primary suppression.

Hiding them is not enough: the published table has additive relations (a
unit's all-kinds count is the sum of its kinds, a parent's count the sum of
its children's), and an intruder can compute the lowest and highest value a
hidden cell can take given everything shown (a linear program). Complementary
suppression hides further cells until, for every primary cell, that interval
contains both 0 and ``k``, also for an intruder who knows the method and so
is taken to tell every complementary cell (at least ``k``) from a primary one
(:mod:`maps.disclosure_audit`, model ``"rule"``).

How complements are chosen, for each primary cell ``c`` of value ``v`` that
the audit does not clear: a linear program looks for a *perturbation* of the
table that keeps every relation, keeps every cell non-negative and every
complement at least ``k``, moves ``c`` to ``k`` (or to 0), and costs as little
as possible, where changing a hidden cell is free and changing a shown one
costs its weight (``cost="cells"``: about one per cell, so the fewest cells,
higher levels a little dearer so that totals stay visible; ``cost="total"``:
its value, so the smallest total hidden). The shown cells the perturbation
moves are hidden: it is then a table the intruder cannot rule out in which
``c`` is ``k`` (or 0), which is exactly the protection asked for, and hiding
more cells later never takes it away. The search starts among ``c``'s
siblings with the parent held fixed and widens up the hierarchy only when
that has no solution. Last, a shown total whose parts are all hidden and
all primary is hidden too (:func:`hide_totals_of_small_parts`): knowing the
method, it would say "all these are small". The audit then checks the whole
table independently; a release refuses a table that fails it.

The pattern depends only on the whole table and ``k``: compute it on the
whole country and then cut out what a user may see, so that users with
different areas see the same cells hidden and cannot combine their views.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from geodata.roles import Role
from geodata.settings import get_settings

if TYPE_CHECKING:  # scipy is imported where a table is solved (about 50 MB a server need not hold until then)
    from scipy import sparse

    from maps.disclosure_audit import AuditReport

MIN_K = 3

SHOWN, STRUCTURAL, PRIMARY, COMPLEMENTARY = 0, 1, 2, 3
STATUS_NAMES = ("shown", "structural", "primary", "complementary")
"""A cell's status as stored in a release: shown, shown because it is zero by
definition, hidden because it is below k, hidden to protect other cells."""

Cost = Literal["cells", "total"]
TOLERANCE = 1e-6
# Cells per program when perturbations of disjoint areas are solved together: one call
# instead of hundreds (scipy's overhead per call is milliseconds), not so large that the
# solver slows down.
BATCH_CELLS = 10000
# Reward per unit of a target's move in a joint program; far above any cost of the cells it
# moves (weights are at most 1), so a block falls short of its shift only if it cannot make it.
ELASTIC_REWARD = 1e4
# Siblings in the first search area of a commune with many siblings (a 2025 province has
# up to some hundred communes): small programs first, all siblings if need be.
SIBLINGS = 30
SIBLING_UNITS = 4


def suppression_k(role: Role) -> int | None:
    """The threshold below which counts served to ``role`` are hidden (None: not suppressed).

    Officers see the personal records of their area, so their counts are not
    hidden; every role that sees aggregates only gets them suppressed
    (settings ``suppress_below_*``).

    >>> suppression_k(Role.officer) is None
    True
    >>> suppression_k(Role.leader)
    5
    """
    s = get_settings()
    return {Role.leader: s.suppress_below_leader, Role.planner: s.suppress_below_planner,
            Role.police_analyst: s.suppress_below_police}.get(role)


@dataclass(frozen=True)
class HierarchicalTable:
    """Counts per unit and measure, where units form a hierarchy and some measures are sums of others.

    Cells are numbered ``unit_index * len(measures) + measure_index``, units
    in depth-first order (every unit's subtree is a contiguous range). The
    relations are every ``(unit, total) = sum of (unit, part)`` of
    ``parts_of`` and every ``(parent, measure) = sum of (child, measure)``.
    Build one with :func:`hierarchical_table`.
    """

    units: tuple[str, ...]
    parent: np.ndarray            # index of each unit's parent, -1 at the top
    subtree_end: np.ndarray       # units[i:subtree_end[i]] is unit i and everything below it
    measures: tuple[str, ...]
    parts_of: Mapping[str, tuple[str, ...]]
    values: np.ndarray            # int64 per cell
    structural: np.ndarray        # bool per cell: zero by definition, always shown
    relations: sparse.csr_matrix  # one row per relation: +1 at the total, -1 at each part
    levels: np.ndarray = field(repr=False)  # depth of each unit (0 at the top)

    @property
    def size(self) -> int:
        return len(self.values)

    def cell(self, unit: str, measure: str) -> int:
        """The index of the cell of ``unit`` and ``measure``."""
        return self._unit_index[unit] * len(self.measures) + self.measures.index(measure)

    def key(self, cell: int) -> tuple[str, str]:
        """``(unit, measure)`` of a cell index."""
        u, m = divmod(int(cell), len(self.measures))
        return self.units[u], self.measures[m]

    @property
    def _unit_index(self) -> dict[str, int]:
        cached = self.__dict__.get("_unit_index_cache")
        if cached is None:
            cached = {u: i for i, u in enumerate(self.units)}
            object.__setattr__(self, "_unit_index_cache", cached)
        return cached


def hierarchical_table(
    parents: Mapping[str, str | None],
    measures: Sequence[str],
    parts_of: Mapping[str, Sequence[str]],
    counts: Mapping[tuple[str, str], int],
    structural_units: Iterable[str] = (),
) -> HierarchicalTable:
    """Build the table of ``counts`` over the units of ``parents`` (unit -> parent, None at the top).

    Parameters
    ----------
    parents:
        Every unit and its parent unit (None for a top unit).
    measures:
        Every measure, e.g. ``("aspirant", "returnee", "departure", "all")``.
    parts_of:
        Measures that are sums of others, e.g. ``{"all": ("aspirant", "returnee", "departure")}``.
    counts:
        ``(unit, measure) -> count``; a missing cell is 0. Parents must equal the sum of their children
        and totals the sum of their parts (checked).
    structural_units:
        Units whose counts are zero by definition (not in existence during the period); they are
        shown. A unit all of whose children are structural is structural too.

    >>> t = hierarchical_table({"d": None, "a": "d", "b": "d"}, ["n"], {}, {("d", "n"): 7, ("a", "n"): 3, ("b", "n"): 4})
    >>> t.units, t.values.tolist(), t.relations.toarray().tolist()
    (('d', 'a', 'b'), [7, 3, 4], [[1.0, -1.0, -1.0]])
    """
    from scipy import sparse
    children: dict[str, list[str]] = {u: [] for u in parents}
    tops = []
    for u, p in parents.items():
        if p is None:
            tops.append(u)
        else:
            if p not in children:
                raise ValueError(f"unit {u!r} has parent {p!r}, which is not a unit of the table")
            children[p].append(u)
    order: list[str] = []
    depth: dict[str, int] = {}
    end: dict[str, int] = {}

    def visit(root: str) -> None:
        # Iterative depth-first order: a province has hundreds of communes, no recursion limit to mind.
        stack: list[tuple[str, bool]] = [(root, False)]
        depth[root] = 0
        while stack:
            u, done = stack.pop()
            if done:
                end[u] = len(order)
                continue
            order.append(u)
            stack.append((u, True))
            for ch in sorted(children[u], reverse=True):
                depth[ch] = depth[u] + 1
                stack.append((ch, False))

    for top in sorted(tops):
        visit(top)
    if len(order) != len(parents):
        raise ValueError("the units' parents form a cycle")
    index = {u: i for i, u in enumerate(order)}
    measures = tuple(measures)
    parts = {t: tuple(ps) for t, ps in parts_of.items()}
    m = len(measures)
    values = np.zeros(len(order) * m, dtype=np.int64)
    for (u, meas), n in counts.items():
        values[index[u] * m + measures.index(meas)] = int(n)
    if (values < 0).any():
        raise ValueError("counts cannot be negative")

    structural_set = set(structural_units)
    for u in reversed(order):  # children before parents
        if children[u] and all(ch in structural_set for ch in children[u]):
            structural_set.add(u)
    structural = np.zeros(len(values), dtype=bool)
    for u in structural_set:
        structural[index[u] * m:(index[u] + 1) * m] = True

    rows, cols, data = [], [], []
    r = 0
    for u in order:
        base = index[u] * m
        for total, ps in parts.items():
            rows += [r] * (len(ps) + 1)
            cols += [base + measures.index(total), *(base + measures.index(p) for p in ps)]
            data += [1.0] + [-1.0] * len(ps)
            r += 1
        for mi in range(m):
            if children[u]:
                rows += [r] * (len(children[u]) + 1)
                cols += [base + mi, *(index[ch] * m + mi for ch in children[u])]
                data += [1.0] + [-1.0] * len(children[u])
                r += 1
    relations = sparse.csr_matrix((data, (rows, cols)), shape=(r, len(values)))
    wrong = np.flatnonzero(relations @ values)
    if len(wrong):
        row = relations.getrow(wrong[0])
        cells = [f"{order[c // m]}/{measures[c % m]}" for c in row.indices]
        raise ValueError(f"the counts do not add up: {' , '.join(cells)} (the first is not the sum of the others)")
    if values[structural].any():
        raise ValueError("a structural cell (a unit not in existence in the period) has a count above zero")
    parent_index = np.array([index[parents[u]] if parents[u] is not None else -1 for u in order], dtype=np.int64)
    return HierarchicalTable(
        tuple(order), parent_index, np.array([end[u] for u in order], dtype=np.int64), measures, parts, values,
        structural, relations, np.array([depth[u] for u in order], dtype=np.int64),
    )


def roll_up(
    parents: Mapping[str, str | None],
    measures: Sequence[str],
    parts_of: Mapping[str, Sequence[str]],
    leaf_counts: Mapping[str, Mapping[str, int]],
) -> dict[tuple[str, str], int]:
    """Every cell of a hierarchical table from the counts of its bottom units: parents and sums added up.

    >>> c = roll_up({"p": None, "a": "p", "b": "p"}, ["x", "y", "all"], {"all": ("x", "y")},
    ...             {"a": {"x": 2}, "b": {"x": 1, "y": 4}})
    >>> c["p", "x"], c["p", "all"], c["a", "y"]
    (3, 7, 0)
    """
    totals = {t: tuple(p) for t, p in parts_of.items()}
    plain = [m for m in measures if m not in totals]
    unknown = set(leaf_counts) - set(parents)
    if unknown:
        raise ValueError(f"counts for units that are not in the table: {', '.join(sorted(unknown)[:5])}")
    children: dict[str, list[str]] = {u: [] for u in parents}
    for u, p in parents.items():
        if p is not None:
            children[p].append(u)
    counts: dict[tuple[str, str], int] = {}
    # Children before parents: repeat over the units in an order where every parent comes after its children.
    order: list[str] = []
    stack = [u for u, p in parents.items() if p is None]
    while stack:
        u = stack.pop()
        order.append(u)
        stack.extend(children[u])
    for u in reversed(order):
        for m in plain:
            if children[u]:
                if leaf_counts.get(u, {}).get(m):
                    raise ValueError(f"counts for unit {u}, which is not a bottom unit (it has units below it)")
                counts[u, m] = sum(counts[c, m] for c in children[u])
            else:
                counts[u, m] = int(leaf_counts.get(u, {}).get(m, 0))
        for t, ps in totals.items():
            counts[u, t] = sum(counts[u, p] for p in ps)
    return counts


@dataclass(frozen=True)
class Pattern:
    """What to publish of a table for one ``k``: a status per cell (:data:`STATUS_NAMES`), and what it took."""

    k: int
    status: np.ndarray  # uint8 per cell
    seconds: float = 0.0
    linear_programs: int = 0
    report: AuditReport | None = None  # the audit it passed

    @property
    def hidden(self) -> np.ndarray:
        return self.status >= PRIMARY

    @property
    def primary(self) -> np.ndarray:
        return self.status == PRIMARY

    @property
    def complementary(self) -> np.ndarray:
        return self.status == COMPLEMENTARY

    def counts(self) -> dict[str, int]:
        """How many cells have each status."""
        return {name: int((self.status == i).sum()) for i, name in enumerate(STATUS_NAMES)}


def primary_status(table: HierarchicalTable, k: int) -> np.ndarray:
    """Statuses after primary suppression only: every non-structural count below ``k`` (zero too) is primary.

    >>> t = hierarchical_table({"d": None, "a": "d", "b": "d"}, ["n"], {}, {("d", "n"): 9, ("a", "n"): 9})
    >>> [STATUS_NAMES[s] for s in primary_status(t, 5)]
    ['shown', 'shown', 'primary']
    """
    if k < MIN_K:
        raise ValueError(f"k must be at least {MIN_K}, not {k}")
    status = np.full(table.size, SHOWN, dtype=np.uint8)
    status[table.structural] = STRUCTURAL
    status[(table.values < k) & ~table.structural] = PRIMARY
    return status


def protect(
    table: HierarchicalTable,
    k: int,
    *,
    forced_hidden: np.ndarray | None = None,
    cost: Cost = "cells",
) -> Pattern:
    """Primary and complementary suppression of ``table`` for threshold ``k``, audited.

    Parameters
    ----------
    table:
        The whole table (e.g. the country), see :func:`hierarchical_table`.
    k:
        Counts below it (zero included, structural zeros excepted) are primary; at least 3.
    forced_hidden:
        Cells that must be hidden whatever their value (bool per cell): the pattern of an earlier
        release of the same period, or of a smaller ``k``, so that patterns only grow.
    cost:
        ``"cells"`` hides the fewest cells, ``"total"`` the smallest total.

    Raises :class:`maps.disclosure_audit.AuditFailed` if the result does not pass
    :func:`maps.disclosure_audit.audit` (it should always pass: the audit is the check).

    Example: a district of 12 whose communes have 2, 4 and 6 (k = 5): the 2 and the 4
    are hidden; each could be anything from 0 to 6 (= 12 - 6). With 3, 12 and 25 under
    40, the 3 alone would be 40 - 12 - 25: a complement goes with it (the 12, the
    smaller total to hide):

    >>> t = hierarchical_table({"d": None, "a": "d", "b": "d", "c": "d"}, ["n"], {},
    ...                        {("d", "n"): 12, ("a", "n"): 2, ("b", "n"): 4, ("c", "n"): 6})
    >>> [STATUS_NAMES[s] for s in protect(t, 5).status]
    ['shown', 'primary', 'primary', 'shown']
    >>> t = hierarchical_table({"d": None, "a": "d", "b": "d", "c": "d"}, ["n"], {},
    ...                        {("d", "n"): 40, ("a", "n"): 3, ("b", "n"): 12, ("c", "n"): 25})
    >>> [STATUS_NAMES[s] for s in protect(t, 5, cost="total").status]
    ['shown', 'primary', 'complementary', 'shown']
    """
    from maps.disclosure_audit import AuditFailed, audit, failing_cells  # the audit builds on this module's types

    started = time.perf_counter()
    status = primary_status(table, k)
    if forced_hidden is not None:
        status[forced_hidden & (status == SHOWN)] = COMPLEMENTARY
        if (forced_hidden & (status == STRUCTURAL)).any():
            raise ValueError("a structural cell cannot be forced hidden")
    chooser = _ComplementChooser(table, k, status, cost)
    # The audit finds primary cells whose interval is too narrow, a
    # perturbation for each picks complements; hiding more cells never
    # narrows another cell's interval, so a cell once fixed stays fixed and
    # the audit after one round of fixes should pass (it is the check).
    need, lps = failing_cells(table, status, k)
    report = None
    for _ in range(3):
        chooser.protect_cells(need)
        hide_totals_of_small_parts(table, status)
        report = audit(table, status, k, certificates=chooser.certificates)
        lps += chooser.linear_programs + report.linear_programs
        chooser.linear_programs = 0
        if report.passed:
            break
        need = {}
        for f in report.failures:
            if f.model in ("plain", "rule"):
                need.setdefault(table.cell(f.unit, f.measure), set()).update(
                    (["down"] if "excludes 0" in f.reason else []) + (["up"] if "below" in f.reason else []))
        need = {c: sorted(d) for c, d in need.items()}
        if not need:
            break
    assert report is not None
    if not report.passed:
        raise AuditFailed(report)
    return Pattern(k, status, time.perf_counter() - started, lps, report)


def parts_and_totals(table: HierarchicalTable) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """The table's relations split in two 0/1 matrices, a row per relation: its parts, and its total."""
    relations = table.relations.tocsr()
    parts = relations.copy()
    parts.data = (parts.data < 0).astype(float)
    totals = relations.copy()
    totals.data = (totals.data > 0).astype(float)
    totals.eliminate_zeros()
    return parts, totals


def hide_totals_of_small_parts(table: HierarchicalTable, status: np.ndarray) -> int:
    """Hide the shown total of every relation whose parts are all hidden and all primary; returns how many.

    Knowing the method, an intruder who sees a total with every part hidden and knew that all
    of them were below k would know more than their sum (three hidden kinds under an
    all-kinds count of 12 would each be 4 for k = 5). So among the hidden parts of a shown
    total there is always a complementary cell (at least k, the intruder cannot tell which),
    or the total itself is hidden (it is at least k: a complement). Hiding it never creates
    a relation in the same state: it is a complementary part wherever it is a part.

    >>> t = hierarchical_table({"c": None}, ["a", "r", "all"], {"all": ("a", "r")}, {("c", "a"): 4, ("c", "r"): 3, ("c", "all"): 7})
    >>> status = primary_status(t, 5)
    >>> hide_totals_of_small_parts(t, status), STATUS_NAMES[status[t.cell("c", "all")]]
    (1, 'complementary')
    """
    parts, totals = parts_and_totals(table)
    total = totals.indices  # one total per relation, in order
    hidden = (status >= PRIMARY).astype(float)
    all_hidden = (parts @ hidden) == parts.sum(axis=1).A1
    no_complement = (parts @ (status == COMPLEMENTARY).astype(float)) == 0
    exposed = np.unique(total[(hidden[total] == 0) & all_hidden & no_complement])
    status[exposed] = COMPLEMENTARY
    return len(exposed)


class _ComplementChooser:
    """Chooses complements for primary cells, by perturbations (see the module's description).

    A perturbation of cell ``c`` is a change ``y`` of the table with every relation kept
    (``relations @ y == 0``), ``c`` moved by its shift, and every other cell kept within
    what the intruder knows of it. It is written as ``y = up - down`` with both parts
    non-negative, so that the constraint matrix of an area does not depend on which cells
    are hidden: only bounds and costs do.
    """

    def __init__(self, table: HierarchicalTable, k: int, status: np.ndarray, cost: Cost) -> None:
        self.table = table
        self.k = k
        self.status = status  # changed in place
        self.relations_by_cell = table.relations.tocsc()
        m = len(table.measures)
        if cost == "cells":
            # Higher levels cost more: a province's totals are what leaders read first.
            weight = 1.0 + 0.25 * (table.levels.max() - np.repeat(table.levels, m))
        elif cost == "total":
            weight = np.maximum(table.values.astype(float), 1.0)
        else:
            raise ValueError(f"cost must be 'cells' or 'total', not {cost!r}")
        self.weight = weight / weight.max()
        self.linear_programs = 0
        # (cell, "low" | "high") -> (cells, changes): the perturbation that protects it.
        self.certificates: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
        self.cycles = Cycles(table)
        self.children = self.cycles.children
        self.leaf = self.cycles.leaf
        self._areas: dict[tuple[int, int, int], tuple[np.ndarray, sparse.csc_matrix]] = {}

    # -- where to search -------------------------------------------------------------------
    def neighbourhoods(self, cell: int) -> list[tuple[int, int, int]]:
        """``(first unit, end unit, held unit)`` to search in, smallest first; ``held`` is -1 when none is held.

        Going up from the cell's unit, at each level: first a run of siblings (about
        :data:`SIBLINGS` communes, or :data:`SIBLING_UNITS` districts, with everything below
        them), then all siblings, in both cases with the parent's counts held (the siblings'
        changes cancel out); at the top, the top unit's subtree with nothing held (no relation
        goes above it). Runs are fixed cuts of the siblings, the same for every cell, so that
        the areas of one step do not overlap.
        """
        t = self.table
        found = []
        node = cell // len(t.measures)
        while t.parent[node] >= 0:
            parent = int(t.parent[node])
            kids = self.children[parent]
            size = SIBLINGS if self.leaf[kids].all() else SIBLING_UNITS
            if len(kids) > 2 * size:
                runs = len(kids) // size
                bounds = [i * len(kids) // runs for i in range(runs + 1)]
                i = int(np.searchsorted(bounds, np.searchsorted(kids, node), side="right")) - 1
                last = int(kids[bounds[i + 1] - 1])
                found.append((int(kids[bounds[i]]), int(t.subtree_end[last]), parent))
            found.append((parent, int(t.subtree_end[parent]), parent))
            node = parent
        found.append((int(node), int(t.subtree_end[node]), -1))
        return found

    def _area(self, area: tuple[int, int, int]) -> tuple[np.ndarray, sparse.csc_matrix]:
        """The cells of an area that may move, and the relations over their up and down parts (cached)."""
        from scipy import sparse
        if area not in self._areas:
            t = self.table
            m = len(t.measures)
            first, end, held = area
            cells = np.arange(first * m, end * m)
            keep = ~t.structural[cells]
            if held >= 0:
                keep &= (cells < held * m) | (cells >= (held + 1) * m)
            cells = cells[keep]
            sub = self.relations_by_cell[:, cells]
            sub = sub[np.unique(sub.indices), :]
            self._areas[area] = (cells, sparse.hstack([sub, -sub], format="csc"))
        return self._areas[area]

    def _bounds(self, cells: np.ndarray, target: int, model: str, shift: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Upper bounds of the up and down parts of each cell, and their costs (lower bounds are 0)."""
        k = self.k
        values = self.table.values[cells].astype(float)
        status = self.status[cells]
        ruled = model == "rule"
        up = np.full(len(cells), np.inf)
        # A hidden or newly hidden complement stays at least k in the rule's eyes; every cell at least 0.
        down = values - k if ruled else values.copy()
        primary = status == PRIMARY
        down[primary] = values[primary]
        price = np.where(status == SHOWN, self.weight[cells], 0.0)
        up[target], down[target] = (float(shift), 0.0) if shift > 0 else (0.0, float(-shift))
        price = price.copy()
        price[target] = 0.0
        return np.maximum(up, 0.0), np.maximum(down, 0.0), price

    # -- choosing ----------------------------------------------------------------------------
    def protect_cells(self, need: Mapping[int, Sequence[str]]) -> None:
        """Protect every cell of ``need`` (``{cell: directions}``), top levels first.

        Within a level, cells are grouped by search area; areas of one level and step do not
        overlap, so the next cell of every area is solved in one program of independent
        blocks, and cells of one area in turn, each seeing the complements of those before
        it. A cell that cannot be protected in its area goes on to the next, wider one.
        """
        t = self.table
        m = len(t.measures)
        levels: dict[int, list[tuple[int, str, str, int]]] = {}
        for cell in sorted(need):
            for direction in need[cell]:
                for model, shift in self.demands(cell, direction):
                    levels.setdefault(int(t.levels[cell // m]), []).append((cell, direction, model, shift))
        for level in sorted(levels):
            pending = levels[level]
            step = 0
            while pending:
                groups: dict[tuple[int, int, int], list[tuple[int, str, str, int]]] = {}
                for item in pending:
                    areas = self.neighbourhoods(item[0])
                    # Past the last area nothing was found even over the whole top unit: the audit
                    # will say so, and the table is refused.
                    if step < len(areas):
                        groups.setdefault(areas[step], []).append(item)
                pending = self._protect_groups(groups)
                step += 1

    def _protect_groups(self, groups: Mapping[tuple[int, int, int], list[tuple[int, str, str, int]]]) -> list:
        """Round-robin over disjoint areas, one program per round; returns the items no area could protect."""
        queues = [(area, list(reversed(items))) for area, items in groups.items()]
        left = []
        while any(q for _, q in queues):
            batch = []
            for area, queue in queues:
                while queue:
                    cell, direction, model, shift = queue.pop()
                    found = self._rectangle(cell, model, shift)
                    if found is not None and not len(found):
                        continue  # already protected
                    batch.append((area, cell, direction, model, shift))
                    break
            failed = set(self._solve_batch(batch))
            left += [(cell, direction, model, shift) for _, cell, direction, model, shift in batch if (cell, direction) in failed]
        return left

    def _solve_batch(self, batch: Sequence[tuple[tuple[int, int, int], int, str, str, int]]) -> list[tuple[int, str]]:
        """Solve perturbations in disjoint areas as one program; hide what they move; return those it could not do."""
        left: list[tuple[int, str]] = []
        # Split into programs of bounded size: a solver's time grows faster than its size.
        chunks, chunk, size = [], [], 0
        for item in batch:
            n = len(self._area(item[0])[0])
            if chunk and size + n > BATCH_CELLS:
                chunks.append(chunk)
                chunk, size = [], 0
            chunk.append(item)
            size += n
        if chunk:
            chunks.append(chunk)
        for chunk in chunks:
            left += self._solve_chunk(chunk)
        return left

    def _solve_chunk(self, chunk: Sequence[tuple[tuple[int, int, int], int, str, str, int]]) -> list[tuple[int, str]]:
        from scipy import sparse
        from scipy.optimize import linprog
        matrices, uppers, prices, targets, cells_of = [], [], [], [], []
        offset = 0
        for area, cell, _, model, shift in chunk:
            cells, matrix = self._area(area)
            target = int(np.searchsorted(cells, cell))
            up, down, price = self._bounds(cells, target, model, shift)
            # The target's move is rewarded instead of fixed, so that a block that cannot make it
            # does not make the whole program infeasible; blocks short of their shift are redone alone.
            reward = np.zeros(len(cells))
            reward[target] = -ELASTIC_REWARD
            matrices.append(matrix)
            uppers.append(np.concatenate([up, down]))
            prices.append(np.concatenate([price + (reward if shift > 0 else 0), price + (reward if shift < 0 else 0)]))
            targets.append((offset + target if shift > 0 else offset + len(cells) + target, abs(shift)))
            cells_of.append((offset, cells))
            offset += 2 * len(cells)
        matrix = sparse.block_diag(matrices, format="csc")
        upper = np.concatenate(uppers)
        self.linear_programs += 1
        result = linprog(np.concatenate(prices), A_eq=matrix, b_eq=np.zeros(matrix.shape[0]),
                         bounds=np.column_stack([np.zeros(len(upper)), upper]), method="highs")
        if result.status != 0:
            return [(cell, direction) for _, cell, direction, _, _ in chunk]
        left = []
        for (_, cell, direction, _, signed), (position, shift), (start, cells) in zip(chunk, targets, cells_of, strict=True):
            if result.x[position] < shift - TOLERANCE:
                left.append((cell, direction))
                continue
            n = len(cells)
            up, down = result.x[start:start + n], result.x[start + n:start + 2 * n]
            moved = (up + down) > TOLERANCE
            self.status[cells[moved & (self.status[cells] == SHOWN)]] = COMPLEMENTARY
            # Kept for the audit, which checks it and then needs no program for this cell and side.
            change = up - down
            self.certificates[cell, "high" if signed > 0 else "low"] = (cells[moved], change[moved])
        return left

    def demands(self, cell: int, direction: str) -> list[tuple[str, int]]:
        """The perturbations a primary cell needs: ``(model, shift)`` pairs.

        To ``k`` (up) or to 0 (down), every complementary cell staying at least ``k`` (model
        ``rule``, which implies ``plain``, where cells only stay non-negative).
        """
        v = int(self.table.values[cell])
        shift = self.k - v if direction == "up" else -v
        return [("rule", shift)] if shift else []

    def _rectangle(self, cell: int, model: str, shift: int) -> np.ndarray | None:
        if self.cycles.certify(self.status, self.k, np.array([cell]), model, np.array([shift]))[0]:
            return np.array([], dtype=np.int64)
        return None


class Cycles:
    """Short perturbations found without a linear program: certificates that a hidden cell can move.

    A perturbation that keeps every relation and moves only hidden cells, each within what
    the intruder knows of it, is a table the intruder cannot rule out. Two shapes cover most
    cells of a hierarchical table:

    - a *rectangle* (bottom units): the cell and another of its measures move opposite ways,
      and the same two cells of a sibling unit the other way round (or the cell and its
      unit's total, with the sibling's); the parent does not change;
    - a *chain*: the cell, its unit's total (or a part, for a total), and the same cells of
      every ancestor up to the top, all by the same amount.

    Used by the chooser (a cell with a certificate needs nothing hidden) and by the audit
    (a cell with certificates both ways needs no program).
    """

    def __init__(self, table: HierarchicalTable, small: np.ndarray | None = None) -> None:
        self.table = table
        self.small = small  # cells the rule tells are below k (see maps.disclosure_audit.implied_small)
        kids: list[list[int]] = [[] for _ in table.units]
        for u, p in enumerate(table.parent):
            if p >= 0:
                kids[p].append(u)
        self.children = [np.array(c, dtype=np.int64) for c in kids]
        self.leaf = np.array([not c for c in kids], dtype=bool)
        m = len(table.measures)
        # For each measure: the other cells of a unit that move with it in a chain (its total, or
        # one part of it when it is a total: the first), as measure indices; -1 when none.
        partner = np.full(m, -1)
        for total, parts in table.parts_of.items():
            ti = table.measures.index(total)
            for part in parts:
                partner[table.measures.index(part)] = ti
            partner[ti] = table.measures.index(parts[0])
        self.partner = partner
        depth = int(table.levels.max()) + 1 if len(table.levels) else 1
        # Ancestors of every unit, itself first, padded with -1.
        chain = np.full((len(table.units), depth), -1, dtype=np.int64)
        chain[:, 0] = np.arange(len(table.units))
        for d in range(1, depth):
            above = chain[:, d - 1]
            chain[:, d] = np.where(above >= 0, table.parent[np.maximum(above, 0)], -1)
        self.ancestors = chain

    def movable(self, status: np.ndarray, k: int, cells: np.ndarray, delta: np.ndarray | int, model: str) -> np.ndarray:
        """Whether each cell can move by ``delta`` within what the intruder knows of it under ``model``."""
        t = self.table
        new = t.values[cells] + delta
        st = status[cells]
        ok = new >= 0
        if model == "rule":
            ok &= (st == PRIMARY) | (new >= k)
            if self.small is not None:
                ok &= ~self.small[cells] | (new <= k - 1)
        return ok & ~t.structural[cells]

    def chains(self, status: np.ndarray, k: int, cells: np.ndarray, model: str, shifts: np.ndarray) -> np.ndarray:
        """Whether a chain moves each cell by its shift through hidden cells only."""
        t = self.table
        m = len(t.measures)
        units, mi = np.divmod(cells, m)
        # A unit with units below it cannot move alone: its children would have to follow.
        ok = self.leaf[units].copy()
        partner = self.partner[mi]
        for d in range(self.ancestors.shape[1]):
            a = self.ancestors[units, d]
            present = a >= 0
            for col in (mi, partner):
                use = present & (col >= 0) & ~((d == 0) & (col == mi))
                c = np.where(use, np.maximum(a, 0) * m + np.maximum(col, 0), 0)
                fine = (status[c] >= PRIMARY) & self.movable(status, k, c, shifts, model)
                ok &= ~use | fine
        return ok

    def _patterns(self, mi: int) -> list[list[tuple[str, int, int]]]:
        """Rectangles of measure ``mi``: (own unit or sibling, measure, sign of the move relative to the shift)."""
        t = self.table
        measure = t.measures[mi]
        patterns: list[list[tuple[str, int, int]]] = []
        for total, parts in t.parts_of.items():
            ti = t.measures.index(total)
            if measure in parts:
                for other in parts:
                    if other != measure:
                        oi = t.measures.index(other)
                        patterns.append([("own", oi, -1), ("sib", mi, -1), ("sib", oi, 1)])
                patterns.append([("own", ti, 1), ("sib", mi, -1), ("sib", ti, -1)])
            elif measure == total:
                for other in parts:
                    oi = t.measures.index(other)
                    patterns.append([("own", oi, 1), ("sib", mi, -1), ("sib", oi, -1)])
        return patterns or [[("sib", mi, -1)]]

    def rectangles(self, status: np.ndarray, k: int, cells: np.ndarray, model: str, shifts: np.ndarray) -> np.ndarray:
        """Whether a rectangle through hidden cells alone moves each cell by its shift (cells grouped by family)."""
        t = self.table
        m = len(t.measures)
        ok = np.zeros(len(cells), dtype=bool)
        units, mi = np.divmod(cells, m)
        parents = np.where(units >= 0, t.parent[units], -1)
        usable = (parents >= 0) & self.leaf[units]
        groups: dict[tuple[int, int], list[int]] = {}
        for i in np.flatnonzero(usable):
            groups.setdefault((int(parents[i]), int(mi[i])), []).append(int(i))
        for (parent, measure), members in groups.items():
            idx = np.array(members)
            siblings = self.children[parent]
            siblings = siblings[self.leaf[siblings]]
            own = units[idx]
            shift = shifts[idx][:, None]
            not_self = siblings[None, :] != own[:, None]
            for pattern in self._patterns(measure):
                fine = not_self.copy()
                for who, mj, sign in pattern:
                    grid = (np.broadcast_to(own[:, None] * m + mj, fine.shape) if who == "own"
                            else np.broadcast_to(siblings[None, :] * m + mj, fine.shape))
                    fine &= (status[grid] >= PRIMARY) & self.movable(status, k, grid, sign * shift, model)
                ok[idx] |= fine.any(axis=1)
        return ok

    def certify(self, status: np.ndarray, k: int, cells: np.ndarray, model: str, shifts: np.ndarray) -> np.ndarray:
        """Whether each cell can move by its shift through hidden cells alone (a chain or a rectangle)."""
        ok = self.chains(status, k, cells, model, shifts)
        rest = np.flatnonzero(~ok)
        if len(rest):
            ok[rest] = self.rectangles(status, k, cells[rest], model, shifts[rest])
        return ok


def hidden_keys(table: HierarchicalTable, pattern: Pattern) -> set[tuple[str, str]]:
    """The ``(unit, measure)`` of every hidden cell.

    >>> t = hierarchical_table({"d": None, "a": "d", "b": "d"}, ["n"], {}, {("d", "n"): 40, ("a", "n"): 3, ("b", "n"): 37})
    >>> sorted(hidden_keys(t, protect(t, 5)))
    [('a', 'n'), ('b', 'n')]
    """
    return {table.key(c) for c in np.flatnonzero(pattern.hidden)}
