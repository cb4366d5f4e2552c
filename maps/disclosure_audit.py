"""The intruder's linear programs: protection intervals of every hidden cell of a published table.

An intruder who holds a published table knows every shown count, every
additive relation between cells (a unit's kinds add up to its all-kinds
count, children add up to their parent), and that no count is negative. For
a hidden cell, the lowest and highest value it can take given all that is
its *protection interval*, the solution of two linear programs (HiGHS,
through scipy). A table passes the audit when, for every primary cell (a
count below ``k``, zero included, that is hidden), the interval contains 0
and ``k``:

1. model ``"plain"``: what the table shows, and non-negativity;
2. model ``"rule"``: the intruder also knows the method, which is public. It
   is assumed to tell apart every complementary cell (hidden although at
   least ``k``: bounded below by ``k``), and a shown total whose parts are
   all hidden and all primary would tell that they are all below ``k``
   (bounded above by ``k - 1``: :func:`implied_small`). The method never
   leaves such a total shown, so the second bound binds nothing in a table
   it made; the audit checks that too.

Releases of the same period are audited together (:func:`joint_audit`): the
intruder is assumed to know every record added between them (they may have
sent it themselves), so every release shows, in effect, cells of the first
one.

Each hidden component (cells linked by relations through other hidden cells)
is an independent program. Two programs per cell would take minutes on the
whole country, so cells are first cleared cheaply: by a short perturbation
through hidden cells (:class:`maps.suppression.Cycles`), or one handed in by
the chooser of complements and checked here, then by rounds of one
program pushing every remaining cell at once (minimise their sum; maximise
their sum, each capped at ``k``); only the cells those do not reach are
solved one by one, and a cell that fails fails for certain, with its exact
interval in the report.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from maps.suppression import COMPLEMENTARY, MIN_K, PRIMARY, SHOWN, STRUCTURAL, Cycles, HierarchicalTable, parts_and_totals

if TYPE_CHECKING:  # imported where used: see maps.suppression
    from scipy import sparse

TOLERANCE = 1e-6
MODELS = ("plain", "rule")
ROUNDS = 12


class AuditFailed(RuntimeError):
    """A table failed its disclosure audit: it must not be published. ``report`` says which cells and why."""

    def __init__(self, report: AuditReport) -> None:
        self.report = report
        super().__init__(report.summary())


@dataclass(frozen=True)
class Failure:
    """A primary cell whose interval is too narrow under ``model``: ``[low, high]`` (high None: unbounded)."""

    unit: str
    measure: str
    model: str
    low: float
    high: float | None
    reason: str


@dataclass(frozen=True)
class AuditReport:
    """What the audit checked and found; ``passed`` only if nothing failed."""

    k: int
    primary: int
    complementary: int
    components: int
    linear_programs: int
    seconds: float
    failures: tuple[Failure, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        """One line for logs and error messages."""
        head = (f"k={self.k}: {self.primary} primary and {self.complementary} complementary cells hidden, "
                f"{self.components} hidden components, {self.linear_programs} linear programs, {self.seconds:.2f} s")
        if self.passed:
            return f"audit passed ({head})"
        shown = "; ".join(f"{f.unit}/{f.measure} {f.model} [{f.low:g}, {'inf' if f.high is None else f'{f.high:g}'}]: {f.reason}"
                          for f in self.failures[:5])
        return f"audit FAILED for {len(self.failures)} cells ({head}): {shown}"

    def as_dict(self) -> dict:
        """The report as plain JSON values (stored with a release)."""
        return {"k": self.k, "passed": self.passed, "primary": self.primary, "complementary": self.complementary,
                "components": self.components, "linear_programs": self.linear_programs,
                "seconds": round(self.seconds, 3),
                "failures": [f.__dict__ for f in self.failures[:50]], "failure_count": len(self.failures)}


@dataclass
class _Component:
    cells: np.ndarray          # table cell indices (hidden)
    matrix: sparse.csr_matrix  # relations restricted to the component's cells
    rhs: np.ndarray
    positions: np.ndarray | None = None  # where its cells and relations are in the whole program
    rows: np.ndarray | None = None


def _components(table: HierarchicalTable, status: np.ndarray) -> tuple[_Component, list[_Component], np.ndarray]:
    """All hidden cells as one program, each hidden component as its own, and each hidden cell's component."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components
    hidden = np.flatnonzero(status >= PRIMARY)
    shown = np.flatnonzero(status < PRIMARY)
    relations = table.relations.tocsc()
    on_hidden = relations[:, hidden].tocsr()
    rhs_all = -(relations[:, shown] @ table.values[shown].astype(float))
    rows = np.flatnonzero(np.diff(on_hidden.indptr))
    on_hidden = on_hidden[rows]
    rhs_all = rhs_all[rows]
    whole = _Component(hidden, on_hidden, rhs_all)
    # Bipartite graph of hidden cells and the relations between them.
    n_cells, n_rows = len(hidden), len(rows)
    incidence = on_hidden.copy()
    incidence.data = np.ones_like(incidence.data)
    graph = sparse.bmat([[None, incidence.T], [incidence, None]], format="csr", dtype=float) if n_rows else \
        sparse.csr_matrix((n_cells, n_cells))
    count, labels = connected_components(graph, directed=False)
    cell_labels = labels[:n_cells]
    row_labels = labels[n_cells:]
    order = np.argsort(cell_labels, kind="stable")
    starts = np.searchsorted(cell_labels[order], np.arange(count + 1))
    row_order = np.argsort(row_labels, kind="stable")
    row_starts = np.searchsorted(row_labels[row_order], np.arange(count + 1))
    on_hidden_csc = on_hidden.tocsc()
    components = []
    of_cell = np.full(len(hidden), -1)
    for label in range(count):
        local = order[starts[label]:starts[label + 1]]
        if not len(local):
            continue
        local_rows = row_order[row_starts[label]:row_starts[label + 1]]
        matrix = on_hidden_csc[:, local][local_rows, :].tocsr() if len(local_rows) else sparse.csr_matrix((0, len(local)))
        of_cell[local] = len(components)
        components.append(_Component(hidden[local], matrix, rhs_all[local_rows], local, local_rows))
    return whole, components, of_cell


def _bounds(status: np.ndarray, cells: np.ndarray, k: int, model: str, small: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lower = np.zeros(len(cells))
    upper = np.full(len(cells), np.inf)
    if model == "rule":
        lower[status[cells] == COMPLEMENTARY] = k
        upper[small[cells]] = k - 1
    return lower, upper


def implied_small(table: HierarchicalTable, status: np.ndarray) -> np.ndarray:
    """Hidden cells the method tells are below k: every part of a shown total whose parts are all hidden and all primary.

    Such a total would tell "its parts are all small"; the method hides it instead
    (:func:`maps.suppression.hide_totals_of_small_parts`), so in a table it made this is empty.

    >>> from maps.suppression import hierarchical_table, primary_status
    >>> t = hierarchical_table({"c": None}, ["a", "r", "all"], {"all": ("a", "r")}, {("c", "a"): 4, ("c", "r"): 3, ("c", "all"): 7})
    >>> [t.key(c) for c in implied_small(t, primary_status(t, 5)).nonzero()[0]]
    [('c', 'a'), ('c', 'r')]
    """
    parts, totals = parts_and_totals(table)
    hidden = (status >= PRIMARY).astype(float)
    told = (hidden[totals.indices] == 0) & ((parts @ hidden) == parts.sum(axis=1).A1) & \
        ((parts @ (status == COMPLEMENTARY).astype(float)) == 0)
    small = np.zeros(table.size, dtype=bool)
    small[parts[np.flatnonzero(told)].indices] = True
    return small & (status == PRIMARY)


def _solve(objective: np.ndarray, component: _Component, lower: np.ndarray, upper: np.ndarray,
           extra: tuple[sparse.csr_matrix, np.ndarray] | None = None):
    from scipy.optimize import linprog
    kwargs = {}
    if extra is not None:
        kwargs = {"A_ub": extra[0], "b_ub": extra[1]}
    eq = {"A_eq": component.matrix, "b_eq": component.rhs} if component.matrix.shape[0] else {}
    result = linprog(objective, bounds=np.column_stack([lower, upper]), method="highs", **eq, **kwargs)
    if result.status not in (0, 3):
        # The true counts are a solution, so this is a table whose shown counts do not add up.
        raise RuntimeError(f"the intruder's program has no solution ({result.message}): the published table is inconsistent")
    return result


def _certified(table: HierarchicalTable, relations: sparse.csc_matrix, status: np.ndarray, k: int, small: np.ndarray,
               cell: int, side: str, certificate: tuple[np.ndarray, np.ndarray] | None) -> bool:
    """Whether a perturbation handed in (by whoever chose the complements) proves that ``cell`` reaches 0 / k.

    It must keep every relation, move ``cell`` by exactly what it needs, and move only hidden cells, each
    within what the intruder knows of it in model ``rule`` (so in ``plain`` too): nothing is taken on trust.
    """
    if certificate is None:
        return False
    cells, change = certificate
    v = int(table.values[cell])
    shift = -v if side == "low" else k - v
    at = np.flatnonzero(cells == cell)
    if len(at) != 1 or abs(change[at[0]] - shift) > TOLERANCE:
        return False
    if np.abs(relations[:, cells] @ change).max(initial=0.0) > 1e-6:
        return False
    others = cells != cell
    moved, new = cells[others], table.values[cells[others]] + change[others]
    st = status[moved]
    return bool((st >= PRIMARY).all() and (new >= -TOLERANCE).all() and (new[st == COMPLEMENTARY] >= k - TOLERANCE).all()
                and (new[small[moved]] <= k - 1 + TOLERANCE).all())


class _CheckedCertificates(dict):
    """``checked[cell, side]``: whether the certificate handed in for it holds (checked once, whatever the model)."""

    def __init__(self, table, status, k, small, certificates) -> None:
        super().__init__()
        self.args = (table, table.relations.tocsc(), status, k, small)
        self.certificates = certificates

    def __missing__(self, key: tuple[int, str]) -> bool:
        found = _certified(*self.args, key[0], key[1], self.certificates.get(key))
        self[key] = found
        return found


def _unreached(table: HierarchicalTable, status: np.ndarray, k: int, whole: _Component, components: Sequence[_Component],
               model: str, cycles: Cycles, small: np.ndarray, checked: _CheckedCertificates) -> tuple[list[int], list[int], int]:
    """Primary cells (table indices) that neither a short cycle nor programs pushing many at once take to 0 / to the goal.

    First, cells with a short perturbation through hidden cells (:class:`maps.suppression.Cycles`,
    starting from the true table, which is one the intruder cannot rule out) are done. Then each round is one program over every component that still has cells to push (they are
    independent blocks of it): minimise the sum of those cells, or maximise their sum with each
    capped at its goal (capping only narrows what the program may do, so a cell it takes to
    the goal can get there). The cells a round reaches are done; the others go to the next
    round, until a round reaches none.
    """
    goal = k
    lps = 0
    result: list[list[int]] = []
    for side in ("low", "high"):
        active = []
        for c in components:
            t = np.flatnonzero(status[c.cells] == PRIMARY)
            if len(t):
                values = table.values[c.cells[t]]
                shifts = -values if side == "low" else goal - values
                t = t[~((shifts == 0) | cycles.certify(status, k, c.cells[t], model, shifts))]
                if checked.certificates and len(t):
                    t = t[[not checked[int(c.cells[i]), side] for i in t]]
            if len(t):
                active.append((c, t))
        for _ in range(ROUNDS):
            if not active:
                break
            rows = np.concatenate([c.rows for c, _ in active])
            matrix = whole.matrix[rows][:, np.concatenate([c.positions for c, _ in active])]
            rhs = whole.rhs[rows]
            sizes = [len(c.cells) for c, _ in active]
            offsets = np.concatenate([[0], np.cumsum(sizes)])
            cells = np.concatenate([c.cells for c, _ in active])
            lower, upper = _bounds(status, cells, k, model, small)
            pushed = np.concatenate([o + t for o, (_, t) in zip(offsets, active, strict=False)])
            objective = np.zeros(len(cells))
            if side == "low":
                objective[pushed] = 1.0
            else:
                upper[pushed] = np.minimum(upper[pushed], goal)
                objective[pushed] = -1.0
            lps += 1
            r = _solve(objective, _Component(cells, matrix, rhs), lower, upper)
            reached_any = False
            still = []
            for o, (c, t) in zip(offsets, active, strict=False):
                x = r.x[o + t]
                reached = x <= TOLERANCE if side == "low" else x >= goal - TOLERANCE
                reached_any |= bool(reached.any())
                if not reached.all():
                    still.append((c, t[~reached]))
            active = still
            if not reached_any:
                break
        result.append([int(c.cells[i]) for c, t in active for i in t])
    return result[0], result[1], lps


def _interval(status: np.ndarray, k: int, component: _Component, cell: int, model: str,
              small: np.ndarray) -> tuple[float, float | None]:
    """The exact interval of one hidden cell under ``model`` (high None: unbounded)."""
    t = int(np.flatnonzero(component.cells == cell)[0])
    lower, upper = _bounds(status, component.cells, k, model, small)
    objective = np.zeros(len(component.cells))
    objective[t] = 1.0
    low = float(_solve(objective, component, lower, upper).x[t])
    r = _solve(-objective, component, lower, upper)
    return low, None if r.status == 3 else float(r.x[t])


def _status_problems(table: HierarchicalTable, status: np.ndarray, k: int) -> list[Failure]:
    problems = []
    small = (table.values < k) & ~table.structural
    m = len(table.measures)
    for c in np.flatnonzero(small & (status != PRIMARY)):
        problems.append(Failure(table.units[c // m], table.measures[c % m], "status", float(table.values[c]),
                                float(table.values[c]), "a count below k is not hidden as primary"))
    for c in np.flatnonzero(~small & (status == PRIMARY)):
        problems.append(Failure(table.units[c // m], table.measures[c % m], "status", float(table.values[c]),
                                float(table.values[c]), "a count of k or more is marked primary"))
    for c in np.flatnonzero(table.structural != (status == STRUCTURAL)):
        problems.append(Failure(table.units[c // m], table.measures[c % m], "status", 0.0, 0.0,
                                "structural zeros, and only they, are shown as structural"))
    return problems


def failing_cells(table: HierarchicalTable, status: np.ndarray, k: int) -> tuple[dict[int, list[str]], int]:
    """Primary cells that may lack protection, with what they need: ``{cell: ["up"] | ["down"] | ["down", "up"]}``; LPs used.

    Cells the joint programs do not reach are returned without being solved one by one: some
    may be fine, which the chooser of complements finds at no cost.

    >>> from maps.suppression import hierarchical_table, primary_status
    >>> t = hierarchical_table({"d": None, "a": "d", "b": "d"}, ["n"], {}, {("d", "n"): 40, ("a", "n"): 3, ("b", "n"): 37})
    >>> need, _ = failing_cells(t, primary_status(t, 5), 5)
    >>> {t.key(c): d for c, d in need.items()}
    {('a', 'n'): ['down', 'up']}
    """
    whole, components, _ = _components(table, status)
    small = implied_small(table, status)
    cycles = Cycles(table, small)
    none = _CheckedCertificates(table, status, k, small, {})
    need: dict[int, set[str]] = {}
    lps = 0
    for model in MODELS:
        low, high, used = _unreached(table, status, k, whole, components, model, cycles, small, none)
        lps += used
        for cell in low:
            need.setdefault(cell, set()).add("down")
        for cell in high:
            need.setdefault(cell, set()).add("up")
    return {c: sorted(d) for c, d in need.items()}, lps


def audit(table: HierarchicalTable, status: np.ndarray, k: int,
          certificates: Mapping[tuple[int, str], tuple[np.ndarray, np.ndarray]] | None = None) -> AuditReport:
    """Audit the table that ``status`` publishes of ``table`` for threshold ``k`` (see the module's description).

    Parameters
    ----------
    table:
        The true counts (hidden cells' values are used only to check the statuses, never as
        intruder knowledge).
    status:
        A status per cell (:data:`maps.suppression.STATUS_NAMES`).
    k:
        The threshold the table was suppressed for.
    certificates:
        Optional perturbations ``{(cell, "low" | "high"): (cells, changes)}`` that the chooser of
        complements found; each is checked (:func:`_certified`) and spares the programs of that
        cell and side. A wrong one is not believed: the cell is then solved like the others.

    >>> from maps.suppression import hierarchical_table, primary_status
    >>> t = hierarchical_table({"d": None, "a": "d", "b": "d"}, ["n"], {}, {("d", "n"): 40, ("a", "n"): 3, ("b", "n"): 37})
    >>> r = audit(t, primary_status(t, 5), 5)  # only the 3 hidden: 40 - 37 gives it back
    >>> r.passed, [(f.unit, f.model, f.low, f.high) for f in r.failures]
    (False, [('a', 'plain', 3.0, 3.0), ('a', 'rule', 3.0, 3.0)])
    """
    if k < MIN_K:
        raise ValueError(f"k must be at least {MIN_K}, not {k}")
    started = time.perf_counter()
    whole, components, of_cell = _components(table, status)
    small = implied_small(table, status)
    cycles = Cycles(table, small)
    checked = _CheckedCertificates(table, status, k, small, certificates or {})
    position = {int(c): i for i, c in enumerate(whole.cells)}
    m = len(table.measures)
    failures = _status_problems(table, status, k)
    lps = 0
    for model in MODELS:
        goal = k
        low, high, used = _unreached(table, status, k, whole, components, model, cycles, small, checked)
        lps += used
        for cell in sorted(set(low) | set(high)):
            lo, hi = _interval(status, k, components[of_cell[position[cell]]], cell, model, small)
            lps += 2
            reasons = [r for r, bad in (("excludes 0", lo > TOLERANCE),
                                        (f"stays below {goal}", hi is not None and hi < goal - TOLERANCE)) if bad]
            if reasons:
                failures.append(Failure(table.units[cell // m], table.measures[cell % m], model, lo, hi, " and ".join(reasons)))
    return AuditReport(k, int((status == PRIMARY).sum()), int((status == COMPLEMENTARY).sum()), len(components), lps,
                       time.perf_counter() - started, tuple(failures))


def joint_audit(tables: Sequence[HierarchicalTable], statuses: Sequence[np.ndarray], k: int) -> AuditReport:
    """Audit releases of one period together: what their differences tell an intruder who knows every later record.

    ``tables[0]`` and ``statuses[0]`` are the first release (the true counts then, and what it
    published), the others later releases of the same period and cells, in order. With
    the records added in between known, a cell shown by any release is a cell of the first
    release shown; so the releases together are the first table with every cell any of
    them showed, audited under the first release's statuses. A count shown earlier that
    falls below k later would be given away by the difference: that fails too.

    >>> from maps.suppression import hierarchical_table, protect
    >>> parents = {"d": None, "a": "d", "b": "d", "c": "d"}
    >>> first = hierarchical_table(parents, ["n"], {}, {("d", "n"): 30, ("a", "n"): 3, ("b", "n"): 12, ("c", "n"): 15})
    >>> later = hierarchical_table(parents, ["n"], {}, {("d", "n"): 31, ("a", "n"): 4, ("b", "n"): 12, ("c", "n"): 15})
    >>> p1 = protect(first, 5)
    >>> joint_audit([first, later], [p1.status, p1.status], 5).passed  # the same cells hidden: nothing new
    True
    >>> [first.key(c) for c in p1.hidden.nonzero()[0]]
    [('a', 'n'), ('b', 'n')]
    >>> p2 = p1.status.copy()  # had the later release hidden the 15 instead of the 12...
    >>> p2[[first.cell("b", "n"), first.cell("c", "n")]] = [SHOWN, COMPLEMENTARY]
    >>> joint_audit([first, later], [p1.status, p2], 5).passed  # ... 31 - 1 - 12 - 15 = 3 again
    False
    """
    base, first = tables[0], statuses[0]
    merged = first.copy()
    fell: list[Failure] = []
    m = len(base.measures)
    for table, status in zip(tables[1:], statuses[1:], strict=True):
        if table.units != base.units or table.measures != base.measures:
            raise ValueError("releases audited together must have the same units and measures")
        shown = status < PRIMARY
        merged[shown & (first >= PRIMARY)] = SHOWN
        for c in np.flatnonzero((status == PRIMARY) & (first < PRIMARY)):
            fell.append(Failure(base.units[c // m], base.measures[c % m], "joint", float(table.values[c]), float(table.values[c]),
                                "shown in an earlier release, below k now: the difference gives it away"))
    report = audit(base, merged, k)
    if fell:
        report = AuditReport(report.k, report.primary, report.complementary, report.components, report.linear_programs,
                             report.seconds, (*report.failures, *fell))
    return report
