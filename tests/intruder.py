"""The intruder of the disclosure tests, written from the outside: only what a published table shows.

It knows every shown count, every additive relation of the table (a unit's
kinds add up to its all-kinds count, children add up to their parent), that
no count is negative, and, when it is told the method's statuses, that
primary cells are below k and complementary ones at least k. For every hidden
cell it solves two programs, the least and the greatest value the cell can
take (HiGHS through scipy; with ``integer=True`` as integer programs). It
shares no code with maps.disclosure_audit, which it checks.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import csr_matrix

Cell = Hashable


def table_relations(parents: Mapping[str, str | None], measures: Sequence[str],
                    parts_of: Mapping[str, Sequence[str]]) -> list[tuple[Cell, list[Cell]]]:
    """Every ``(total, parts)`` relation a reader of a unit-by-measure table knows."""
    relations: list[tuple[Cell, list[Cell]]] = []
    children: dict[str, list[str]] = {}
    for unit, parent in parents.items():
        for total, parts in parts_of.items():
            relations.append(((unit, total), [(unit, p) for p in parts]))
        if parent is not None:
            children.setdefault(parent, []).append(unit)
    for parent, kids in children.items():
        for m in measures:
            relations.append(((parent, m), [(c, m) for c in kids]))
    return relations


class Intruder:
    """Protection intervals of the hidden cells of a published table.

    ``published`` maps every cell to its shown count, or None where hidden. ``small`` and
    ``big`` are hidden cells known to be below ``k`` and at least ``k``.
    """

    def __init__(self, published: Mapping[Cell, int | None], relations: Iterable[tuple[Cell, Sequence[Cell]]],
                 *, small: Iterable[Cell] = (), big: Iterable[Cell] = (), k: int | None = None, integer: bool = False) -> None:
        self.published = dict(published)
        self.relations = [(t, list(ps)) for t, ps in relations]
        self.small, self.big = set(small), set(big)
        if (self.small or self.big) and k is None:
            raise ValueError("say k when telling the intruder which cells are small or big")
        self.k = k
        self.integer = integer
        self.hidden = [c for c, v in self.published.items() if v is None]
        # Components: hidden cells linked by relations (union-find).
        parent = {c: c for c in self.hidden}

        def find(c):
            while parent[c] != c:
                parent[c] = parent[parent[c]]
                c = parent[c]
            return c

        for total, parts in self.relations:
            members = [m for m in [total, *parts] if self.published.get(m, 0) is None]
            for m in members[1:]:
                parent[find(m)] = find(members[0])
        self.component_of = {c: find(c) for c in self.hidden}
        self._programs: dict[Cell, tuple] = {}

    def _program(self, root: Cell):
        if root not in self._programs:
            cells = [c for c in self.hidden if self.component_of[c] == root]
            index = {c: i for i, c in enumerate(cells)}
            rows, cols, data, rhs = [], [], [], []
            for total, parts in self.relations:
                members = [(total, 1.0), *((p, -1.0) for p in parts)]
                if not any(m in index for m, _ in members):
                    continue
                r = len(rhs)
                known = 0.0
                for m, sign in members:
                    if m in index:
                        rows.append(r)
                        cols.append(index[m])
                        data.append(sign)
                    else:
                        known += sign * self.published[m]
                rhs.append(-known)
            matrix = csr_matrix((data, (rows, cols)), shape=(len(rhs), len(cells)))
            lower = np.array([float(self.k) if c in self.big else 0.0 for c in cells])
            upper = np.array([float(self.k - 1) if c in self.small else np.inf for c in cells])
            self._programs[root] = (index, matrix, np.array(rhs), lower, upper)
        return self._programs[root]

    def interval(self, cell: Cell) -> tuple[float, float]:
        """The least and greatest value of a hidden cell (``inf`` when unbounded)."""
        index, matrix, rhs, lower, upper = self._program(self.component_of[cell])
        n = len(index)
        found = []
        for sense in (1.0, -1.0):
            c = np.zeros(n)
            c[index[cell]] = sense
            if self.integer:
                r = milp(c, constraints=[LinearConstraint(matrix, rhs, rhs)] if matrix.shape[0] else [],
                         integrality=np.ones(n), bounds=Bounds(lower, upper))
                if r.status == 0:
                    found.append(float(r.x[index[cell]]))
                elif sense < 0 and r.status in (3, 4):  # unbounded above
                    found.append(np.inf)
                else:
                    raise AssertionError(f"the intruder's program failed: {r.message}")
            else:
                r = linprog(c, A_eq=matrix if matrix.shape[0] else None, b_eq=rhs if matrix.shape[0] else None,
                            bounds=np.column_stack([lower, upper]), method="highs")
                if r.status == 0:
                    found.append(float(r.x[index[cell]]))
                elif sense < 0 and r.status == 3:
                    found.append(np.inf)
                else:
                    raise AssertionError(f"the intruder's program failed: {r.message}")
        return found[0], found[1]


def narrow_cells(intruder: Intruder, sensitive: Iterable[Cell], goal: float) -> dict[Cell, tuple[float, float]]:
    """Sensitive hidden cells whose interval excludes 0 or stays below ``goal``, with their intervals."""
    bad = {}
    for cell in sensitive:
        lo, hi = intruder.interval(cell)
        if lo > 1e-6 or hi < goal - 1e-6:
            bad[cell] = (lo, hi)
    return bad


def told_small(published: Mapping[Cell, int | None], relations: Iterable[tuple[Cell, Sequence[Cell]]],
               complementary: Iterable[Cell]) -> set[Cell]:
    """Hidden cells that knowing the method tells are below k: the parts of a shown total that are all hidden, none complementary."""
    big = set(complementary)
    small: set[Cell] = set()
    for total, parts in relations:
        if published[total] is not None and all(published[p] is None for p in parts) and not big & set(parts):
            small.update(parts)
    return small
