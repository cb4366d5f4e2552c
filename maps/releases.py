"""Frozen, audited releases: the only way suppressed roles get aggregates.

Leaders, planners and police never read a live table: a table that changes
as records arrive can be subtracted from itself an hour later. They read
*releases*: the whole country's table of a closed period (a month by
default, ``LABOUR_ATLAS_RELEASE_PERIOD``) for one boundary structure,
suppressed for every k of the roles that read it (:mod:`maps.suppression`),
audited (:mod:`maps.disclosure_audit`) and stored append-only.

When releases are made. A period is *due* ``LABOUR_ATLAS_RELEASE_GRACE_DAYS``
(3) after it ends, when phones that were offline have sent what they held.
From then on, release *rounds* come at every later due date. At a round, a
period with no release gets its first one, and a released period whose
records changed (late records) gets a new *revision*. The server makes them
itself, lazily: the first suppressed reader who asks for a period after a
round makes the release in its request (an advisory lock makes concurrent
requests wait for one release instead of making several), and
``labour-atlas release`` makes every due one from the command line. So no
scheduler is needed, the content of a release depends only on what was
stored when it was made, and every release of a period stays readable.

Revisions. A revision keeps every cell hidden that any earlier release of
the period hid (patterns only grow) and is audited together with every
earlier release (:func:`maps.disclosure_audit.joint_audit`): the intruder
is assumed to know every record added in between. A table that fails an
audit is refused: nothing is stored, the earlier release stays in force.

One mechanism for every aggregate: a dataset (:class:`maps.aggregates.Dataset`)
is registered in :data:`DATASETS`, and every route, layer and export reads
it through :func:`aggregate_view`, which gives officers live counts and
every other role the published cells of the latest release.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from geodata.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unavailable
from geodata.logs import get_logger
from geodata.roles import Role
from geodata.scopes import Reader, scope_condition
from geodata.settings import get_settings
from geodata.structures import Structure
from geodata.vietnam import VIETNAM_TZ
from maps.aggregates import AggregateRow, AggregateView, Dataset, ReleaseInfo
from maps.departures import DEPARTURES
from maps.disclosure_audit import AuditFailed, AuditReport, audit, joint_audit
from maps.incidents import INCIDENT_COUNTS
from maps.periods import EXAMPLES, Period
from maps.report_counts import REPORT_DATASETS
from maps.suppression import (
    PRIMARY,
    STATUS_NAMES,
    HierarchicalTable,
    hierarchical_table,
    protect,
    roll_up,
    suppression_k,
)
from maps.survey_counts import SURVEY_COUNTS

log = get_logger("releases")

DATASETS: dict[str, Dataset] = {d.name: d for d in (SURVEY_COUNTS, DEPARTURES, INCIDENT_COUNTS, *REPORT_DATASETS)}
"""Every dataset suppressed roles can read; new aggregate layers register theirs here."""

METHOD = "cell suppression with audited protection intervals"
METHOD_VERSION = 1

UNITS_SQL = """
SELECT u.code, u.parent_code, u.level,
       u.valid_from < :period_end AND (u.valid_to IS NULL OR u.valid_to > :period_start) AS in_period
FROM admin_unit u WHERE u.structure = :structure
"""

RELEASE_COLUMNS = "id, dataset, structure, period, revision, made_at, made_by, records, ks, method"


# -- the schedule -------------------------------------------------------------------------
def release_due_at(period: Period) -> dt.datetime:
    """When ``period`` is closed and its first release is due: its end plus the grace days (Viet Nam time).

    >>> release_due_at(Period.parse("2026-10")).isoformat()
    '2026-11-04T00:00:00+07:00'
    """
    return period.ends_at + dt.timedelta(days=get_settings().release_grace_days)


def release_rounds(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The last release round at or before ``now`` and the next one after it.

    >>> last, upcoming = release_rounds(dt.datetime(2026, 11, 30, 12, tzinfo=VIETNAM_TZ))
    >>> last.date().isoformat(), upcoming.date().isoformat()
    ('2026-11-04', '2026-12-04')
    """
    closed = last_closed_period(now)
    return release_due_at(closed), release_due_at(closed.next())


def last_closed_period(now: dt.datetime) -> Period:
    """The most recent period (of the release length) whose release is due at ``now``.

    >>> last_closed_period(dt.datetime(2026, 11, 3, 23, tzinfo=VIETNAM_TZ)).label  # 2026-10 closes on the 4th
    '2026-09'
    """
    p = Period.containing(now.astimezone(VIETNAM_TZ).date(), get_settings().release_period)
    while release_due_at(p) > now:
        p = p.previous()
    return p


def _now(conn: Connection, now: dt.datetime | None) -> dt.datetime:
    # The database's clock, so that every server process and the command line agree.
    return now if now is not None else conn.execute(text("SELECT now()")).scalar_one()


# -- the tables ---------------------------------------------------------------------------
def count_table(conn: Connection, dataset: Dataset, structure: Structure | str, period: Period) -> HierarchicalTable:
    """The whole country's live table of ``dataset`` for ``period`` in ``structure`` (true counts).

    Units that did not exist in the period hold structural zeros (shown: zero by
    definition), unless records were placed in them.

    Example (needs a database)::

        t = count_table(conn, SURVEY_COUNTS, "2025", Period.parse("2026-10"))
        t.values[t.cell("42", "departure")]
        # 137
    """
    structure = Structure(structure).value
    units = conn.execute(text(UNITS_SQL), {"structure": structure, "period_start": period.start,
                                           "period_end": period.end}).all()
    if not units:
        raise NotFound(f"no units of the {structure} structure are loaded (labour-atlas db seed)")
    parents = {u.code: u.parent_code for u in units}
    leaves = dataset.leaf_counts(conn, structure, period)
    counts = roll_up(parents, dataset.measures, dataset.parts_of, leaves)
    if dataset.levels is not None:
        parents, counts = _only_levels(units, parents, counts, dataset.levels)
    used = {u for u, m in counts if counts[u, m]}
    structural = [u.code for u in units if u.code in parents and not u.in_period and u.code not in used]
    return hierarchical_table(parents, dataset.measures, dataset.parts_of, counts, structural)


def _only_levels(units: list[Any], parents: dict[str, str | None], counts: dict[tuple[str, str], int],
                 levels: tuple[str, ...]) -> tuple[dict[str, str | None], dict[tuple[str, str], int]]:
    """The table cut to ``levels``: each kept unit's parent is its nearest kept ancestor."""
    kept = {u.code for u in units if u.level in levels}

    def kept_parent(code: str) -> str | None:
        p = parents[code]
        while p is not None and p not in kept:
            p = parents[p]
        return p

    return {c: kept_parent(c) for c in kept}, {key: n for key, n in counts.items() if key[0] in kept}


@dataclass(frozen=True)
class Release:
    """A stored release (its identity and method; cells are read with :func:`release_cells`)."""

    id: int
    dataset: str
    structure: str
    period: Period
    revision: int
    made_at: dt.datetime
    made_by: str
    records: int
    ks: tuple[int, ...]
    method: Mapping[str, Any]

    def info(self) -> ReleaseInfo:
        return ReleaseInfo(self.id, self.dataset, self.structure, self.period.label, self.revision, self.made_at,
                           self.made_by, self.records)


def _release(row: Any) -> Release:
    return Release(row.id, row.dataset, row.structure, Period.parse(row.period), row.revision, row.made_at, row.made_by,
                   row.records, tuple(row.ks), row.method)


def releases_of(conn: Connection, dataset: str | None = None, structure: str | None = None,
                period: Period | None = None) -> list[Release]:
    """Stored releases, oldest first, optionally of one dataset, structure and period.

    Example (needs a database)::

        [r.revision for r in releases_of(conn, "survey_counts", "2025", Period.parse("2026-10"))]
        # [1, 2]
    """
    rows = conn.execute(text(
        f"""SELECT {RELEASE_COLUMNS} FROM aggregate_release
            WHERE (CAST(:dataset AS text) IS NULL OR dataset = :dataset)
              AND (CAST(:structure AS text) IS NULL OR structure = :structure)
              AND (CAST(:period AS text) IS NULL OR period = :period)
            ORDER BY period_start, dataset, structure, revision"""),
        {"dataset": dataset, "structure": structure, "period": period.label if period else None}).all()
    return [_release(r) for r in rows]


def get_release(conn: Connection, release_id: int) -> Release:
    """One stored release; :class:`NotFound` if there is none with that id.

    Example (needs a database)::

        get_release(conn, 12).period.label
        # '2026-10'
    """
    row = conn.execute(text(f"SELECT {RELEASE_COLUMNS} FROM aggregate_release WHERE id = :id"), {"id": release_id}).one_or_none()
    if row is None:
        raise NotFound(f"no release {release_id}")
    return _release(row)


def release_cells(conn: Connection, release: Release, k: int, like: HierarchicalTable) -> tuple[HierarchicalTable, np.ndarray]:
    """A stored release's true counts and statuses for ``k``, laid out like ``like`` (the same units and measures).

    Raises :class:`Conflict` when the release's cells are not those of ``like`` (units were added or
    removed since): such releases cannot be audited together.

    Example (needs a database)::

        like = count_table(conn, SURVEY_COUNTS, "2025", release.period)
        table, status = release_cells(conn, release, 5, like)
        audit(table, status, 5).passed
        # True
    """
    rows = conn.execute(text(
        "SELECT unit_code, measure, count, status FROM aggregate_release_cell WHERE release_id = :id AND k = :k"),
        {"id": release.id, "k": k}).all()
    if len(rows) != like.size:
        raise Conflict(f"release {release.id} has {len(rows)} cells for k={k}, the table now has {like.size}: "
                       "the units changed since; its period cannot be revised")
    values = np.zeros(like.size, dtype=np.int64)
    status = np.zeros(like.size, dtype=np.uint8)
    names = {n: i for i, n in enumerate(STATUS_NAMES)}
    for unit, measure, count, st in rows:
        try:
            c = like.cell(unit, measure)
        except (KeyError, ValueError):
            raise Conflict(f"release {release.id} holds unit {unit}, which the table no longer has: the units changed since; "
                           "its period cannot be revised") from None
        values[c] = count
        status[c] = names[st]
    return dataclasses.replace(like, values=values), status


# -- making releases ------------------------------------------------------------------------
@dataclass(frozen=True)
class ReleaseOutcome:
    """What :func:`make_release` did: ``made`` a new release, or found ``release`` current already."""

    release: Release
    made: bool
    reason: str


_LOCK = "labour-atlas release {dataset} {structure} {period}"


def make_release(
    conn: Connection,
    dataset: Dataset,
    structure: Structure | str,
    period: Period,
    *,
    made_by: str,
    now: dt.datetime | None = None,
    fresh_since: dt.datetime | None = None,
) -> ReleaseOutcome:
    """Release ``period`` of ``dataset`` in ``structure``: suppress, audit, store; or say why nothing new was needed.

    Parameters
    ----------
    conn:
        A connection in a transaction; the release is stored when it commits. An advisory lock
        on the period is held until then, so concurrent callers make one release.
    made_by:
        Who asked (``"server"``, ``"cli:<user>"``), stored with the release.
    now:
        The time of the release (default: the database's clock).
    fresh_since:
        If a release of the period made at or after this time exists, return it (another
        request made it while this one waited for the lock).

    Nothing new is stored when the period is not closed (:class:`InvalidInput`), when the
    counts equal those of the latest release, or when a table fails its audit
    (:class:`maps.disclosure_audit.AuditFailed`: the transaction must be rolled back).

    Example (needs a database)::

        with get_engine().begin() as conn:
            outcome = make_release(conn, SURVEY_COUNTS, "2025", Period.parse("2026-10"), made_by="cli:lan")
        outcome.release.revision, outcome.made
        # (1, True)
    """
    structure = Structure(structure).value
    settings = get_settings()
    now = _now(conn, now)
    if period.length != settings.release_period:
        raise InvalidInput(f"releases cover one {settings.release_period} each (LABOUR_ATLAS_RELEASE_PERIOD): ask for a "
                           f"{settings.release_period} such as {EXAMPLES[settings.release_period]}, not {period.label}",
                           loc=("query", "period"))
    if release_due_at(period) > now:
        raise InvalidInput(f"{period.label} is not closed yet: its first release is due on {release_due_at(period).isoformat()}",
                           loc=("query", "period"))
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                 {"key": _LOCK.format(dataset=dataset.name, structure=structure, period=period.label)})
    overlapping = conn.execute(text(
        """SELECT period FROM aggregate_release WHERE dataset = :dataset AND structure = :structure AND period <> :period
           AND period_start < :end AND period_end > :start LIMIT 1"""),
        {"dataset": dataset.name, "structure": structure, "period": period.label, "start": period.start,
         "end": period.end}).scalar()
    if overlapping:
        # Two overlapping periods could be subtracted from each other (a year minus eleven months).
        raise Conflict(f"{period.label} overlaps {overlapping}, which is already released; releases of overlapping "
                       "periods are refused (was LABOUR_ATLAS_RELEASE_PERIOD changed?)")
    earlier = releases_of(conn, dataset.name, structure, period)
    latest = earlier[-1] if earlier else None
    if latest is not None and fresh_since is not None and latest.made_at >= fresh_since:
        return ReleaseOutcome(latest, False, f"release {latest.revision} was made at {latest.made_at.isoformat()}")
    table = count_table(conn, dataset, structure, period)
    ks = sorted({k for role in dataset.readers if (k := suppression_k(role)) is not None})
    stored = {(r.id, k): release_cells(conn, r, k, table) for r in earlier for k in r.ks}
    if latest is not None:
        previous, _ = stored[latest.id, latest.ks[0]]
        if np.array_equal(previous.values, table.values) and set(ks) == set(latest.ks):
            return ReleaseOutcome(latest, False, f"no record changed since revision {latest.revision}")
    layers: dict[int, np.ndarray] = {}
    method: dict[str, Any] = {"method": METHOD, "version": METHOD_VERSION, "cost": settings.suppression_cost,
                              "models": ["plain", "rule"], "grace_days": settings.release_grace_days, "layers": {}}
    # Patterns only grow: what any earlier release of the period hid (for any k), or a smaller k
    # hides now, stays hidden, so that no view shows a cell an earlier or stricter view hid.
    hidden_before = np.zeros(table.size, dtype=bool)
    for _, st in stored.values():
        hidden_before |= st >= PRIMARY
    smaller = np.zeros(table.size, dtype=bool)
    for k in ks:
        earlier_cells = [stored[r.id, k] for r in earlier if k in r.ks]
        forced = hidden_before | smaller
        pattern = protect(table, k, forced_hidden=forced & ~table.structural, cost=settings.suppression_cost)
        report = pattern.report
        assert report is not None and report.passed
        joint: AuditReport | None = None
        if earlier_cells:
            joint = joint_audit([t for t, _ in earlier_cells] + [table], [s for _, s in earlier_cells] + [pattern.status], k)
            if not joint.passed:
                raise AuditFailed(joint)
        layers[k] = pattern.status
        smaller = smaller | pattern.hidden
        method["layers"][str(k)] = {**pattern.counts(), "seconds": round(pattern.seconds, 3),
                                    "linear_programs": pattern.linear_programs, "audit": report.as_dict(),
                                    "joint_audit": joint.as_dict() if joint else None}
    revision = latest.revision + 1 if latest else 1
    records = int(sum(table.values[table.cell(u, m)] for u in _top_units(table)
                      for m in dataset.measures if m not in dataset.parts_of))
    row = conn.execute(text(
        f"""INSERT INTO aggregate_release (dataset, structure, period, period_start, period_end, revision, made_at, made_by,
                                           ks, records, method)
            VALUES (:dataset, :structure, :period, :start, :end, :revision, :made_at, :made_by, :ks, :records,
                    CAST(:method AS jsonb))
            RETURNING {RELEASE_COLUMNS}"""),
        {"dataset": dataset.name, "structure": structure, "period": period.label, "start": period.start, "end": period.end,
         "revision": revision, "made_at": now, "made_by": made_by, "ks": ks, "records": records,
         "method": json.dumps(method)}).one()
    units = [table.units[c // len(table.measures)] for c in range(table.size)]
    measures = [table.measures[c % len(table.measures)] for c in range(table.size)]
    for k, status in layers.items():
        conn.execute(text(
            """INSERT INTO aggregate_release_cell (release_id, k, unit_code, measure, count, status)
               SELECT :id, :k, u, m, n, s
               FROM unnest(CAST(:units AS text[]), CAST(:measures AS text[]), CAST(:counts AS integer[]),
                           CAST(:statuses AS text[])) AS c(u, m, n, s)"""),
            {"id": row.id, "k": k, "units": units, "measures": measures, "counts": table.values.tolist(),
             "statuses": [STATUS_NAMES[s] for s in status]})
    release = _release(row)
    log.info("release made: dataset=%s structure=%s period=%s revision=%d ks=%s by=%s", dataset.name, structure,
             period.label, revision, ks, made_by)
    return ReleaseOutcome(release, True, "first release" if revision == 1 else "records changed since the last release")


def _top_units(table: HierarchicalTable) -> Iterable[str]:
    return [u for i, u in enumerate(table.units) if table.parent[i] < 0]


# Per process: the last round at which a period was found current (no release needed), so
# that readers between rounds do not recount the period on every request.
_checked: dict[tuple[str, str, str, str], dt.datetime] = {}
_checked_lock = threading.Lock()


def current_release(conn: Connection, dataset: Dataset, structure: Structure | str, period: Period,
                    now: dt.datetime | None = None) -> Release:
    """The release a suppressed reader gets for ``period``: the latest one, made first if a round is due.

    A period not closed yet, or not of the release length, is refused with a message saying when
    its first release is due. A release that fails its audit is not made (:class:`Unavailable`;
    the details are logged for the operators, never shown: they hold true counts).

    Example (needs a database)::

        current_release(conn, SURVEY_COUNTS, "2025", Period.parse("2026-10")).revision
        # 1 (made now if nobody had asked since the period closed)
    """
    structure = Structure(structure).value
    now = _now(conn, now)
    settings = get_settings()
    if period.length != settings.release_period:
        raise InvalidInput(f"counts for your role come from releases of one {settings.release_period} each: ask for a "
                           f"{settings.release_period} such as {EXAMPLES[settings.release_period]}, not {period.label}",
                           loc=("query", "period"))
    due = release_due_at(period)
    if due > now:
        raise NotFound(f"{period.label} is not released yet: the period closes and its first release is due on "
                       f"{due.isoformat()}")
    last_round, _ = release_rounds(now)
    key = (str(conn.engine.url), dataset.name, structure, period.label)
    latest = next(reversed(releases_of(conn, dataset.name, structure, period)), None)
    if latest is not None:
        with _checked_lock:
            checked = _checked.get(key)
        if latest.made_at >= last_round or (checked is not None and checked >= last_round):
            return latest
    try:
        with conn.begin_nested():
            outcome = make_release(conn, dataset, structure, period, made_by="server", now=now, fresh_since=last_round)
    except (AuditFailed, Conflict) as exc:
        # Logged for the operators, never shown: an audit's failures hold true counts.
        log.error("release refused: dataset=%s structure=%s period=%s: %s", dataset.name, structure, period.label, exc)
        if latest is not None:
            return latest
        raise Unavailable(f"the release of {period.label} could not be made, so nothing was published; the operators "
                          "have the details in the server's log") from None
    with _checked_lock:
        _checked[key] = last_round
    return outcome.release


def due_releases(conn: Connection, now: dt.datetime | None = None) -> list[tuple[Dataset, str, Period]]:
    """Every (dataset, structure, period) a release round would release at ``now``.

    The last closed period of every structure in force during it, and every released period whose
    latest release is older than the last round (it may have late records: :func:`make_release`
    says whether they changed anything).

    Example (needs a database)::

        [(d.name, s, p.label) for d, s, p in due_releases(conn)]
        # [('survey_counts', '2025', '2026-10'), ('survey_counts', '2025', '2026-09')]
    """
    now = _now(conn, now)
    last_round, _ = release_rounds(now)
    period = last_closed_period(now)
    structures = conn.execute(text(
        "SELECT name FROM boundary_structure WHERE valid_from < :end AND (valid_to IS NULL OR valid_to > :start) ORDER BY name"),
        {"start": period.start, "end": period.end}).scalars().all()
    due: list[tuple[Dataset, str, Period]] = [(d, s, period) for d in DATASETS.values() for s in structures]
    latest: dict[tuple[str, str, Period], Release] = {}
    for r in releases_of(conn):
        latest[r.dataset, r.structure, r.period] = r  # oldest first: the last one kept is the latest
    for (name, structure, p), r in latest.items():
        item = (DATASETS[name], structure, p) if name in DATASETS else None
        if item and item not in due and r.made_at < last_round and p.length == get_settings().release_period:
            due.append(item)
    return due


def verify_release(conn: Connection, release: Release) -> dict[int, AuditReport]:
    """Audit a stored release again from its stored cells, with every earlier release of its period; per k.

    Example (needs a database)::

        {k: r.passed for k, r in verify_release(conn, get_release(conn, 12)).items()}
        # {5: True}
    """
    dataset = DATASETS[release.dataset]
    like = count_table(conn, dataset, release.structure, release.period)
    earlier = [r for r in releases_of(conn, release.dataset, release.structure, release.period) if r.revision < release.revision]
    reports = {}
    for k in release.ks:
        table, status = release_cells(conn, release, k, like)
        reports[k] = audit(table, status, k)
        before = [release_cells(conn, r, k, like) for r in earlier if k in r.ks]
        if before:
            joint = joint_audit([t for t, _ in before] + [table], [s for _, s in before] + [status], k)
            if not joint.passed:
                reports[k] = joint
    return reports


# -- reading ------------------------------------------------------------------------------
RELEASED_ROWS_SQL = f"""
SELECT u.code, u.name, u.level, u.parent_code, u.geom_quality, c.measure, c.published, c.status IN ('primary', 'complementary') AS hidden
FROM aggregate_release_cell c
JOIN admin_unit u ON u.structure = :structure AND u.code = c.unit_code
WHERE c.release_id = :release_id AND c.k = :k
  AND (CAST(:level AS text) IS NULL OR u.level = :level)
  AND (CAST(:parent AS text) IS NULL OR u.parent_code = :parent)
  AND (CAST(:scope_user_id AS uuid) IS NULL OR {scope_condition("u.code", "u.structure")})
ORDER BY u.code
"""

UNITS_IN_VIEW_SQL = f"""
SELECT u.code, u.name, u.level, u.parent_code, u.geom_quality FROM admin_unit u
WHERE u.structure = :structure
  AND (CAST(:level AS text) IS NULL OR u.level = :level)
  AND (CAST(:parent AS text) IS NULL OR u.parent_code = :parent)
  AND (CAST(:scope_user_id AS uuid) IS NULL OR {scope_condition("u.code", "u.structure")})
ORDER BY u.code
"""


def aggregate_view(
    conn: Connection,
    dataset: Dataset,
    role: Role,
    structure: Structure | str,
    period: Period,
    reader: Reader,
    *,
    level: str | None = None,
    parent: str | None = None,
    now: dt.datetime | None = None,
) -> AggregateView:
    """What ``role`` may see of ``dataset`` for ``period``: the one way every aggregate is produced.

    Officers (no k) get live, unsuppressed counts for any period; every other role that reads
    the dataset gets the published cells of the period's latest release (made first if due),
    for its k. Rows are the units of ``structure`` (at ``level``, under ``parent``) in the
    reader's area, limited in SQL; the pattern is the whole country's, so users with
    different areas see the same cells hidden.

    Example (needs a database)::

        view = aggregate_view(conn, SURVEY_COUNTS, Role.leader, "2025", Period.parse("2026-10"), Reader(area_of=uid))
        view.release.revision, view.rows[0].cell("departure")
        # (1, {'count': None, 'suppressed': True})
    """
    structure = Structure(structure).value
    now = _now(conn, now)
    k = suppression_k(role)
    params = {"structure": structure, "level": level, "parent": parent, **reader.params()}
    if k is None:
        if role is not Role.officer:
            raise PermissionDenied(f"the role {role.value} gets no aggregates")
        parents = dict(conn.execute(text("SELECT code, parent_code FROM admin_unit WHERE structure = :s"), {"s": structure}).all())
        counts = roll_up(parents, dataset.measures, dataset.parts_of, dataset.leaf_counts(conn, structure, period))
        rows = []
        for u in conn.execute(text(UNITS_IN_VIEW_SQL), params):
            values = {mm: counts[u.code, mm] for mm in dataset.measures}
            rows.append(AggregateRow(u.code, u.name, u.level, u.parent_code, structure, period.label, values, frozenset(),
                                     u.geom_quality))
        return AggregateView(dataset.name, structure, period.label, period.start, period.end, "live", None, rows, None, None, now)
    if role not in dataset.readers:
        raise PermissionDenied(f"the role {role.value} does not read {dataset.name}")
    release = current_release(conn, dataset, structure, period, now)
    if k not in release.ks:
        raise Unavailable(f"release {release.revision} of {period.label} was made for k = {list(release.ks)}, not for your "
                          f"k = {k} (the setting changed since): it is released again at the next round")
    cells: dict[str, dict[str, Any]] = {}
    for r in conn.execute(text(RELEASED_ROWS_SQL), {**params, "release_id": release.id, "k": k}):
        unit = cells.setdefault(r.code, {"meta": r, "values": {}, "hidden": set()})
        unit["values"][r.measure] = r.published
        if r.hidden:
            unit["hidden"].add(r.measure)
    rows = [AggregateRow(code, u["meta"].name, u["meta"].level, u["meta"].parent_code, structure, period.label,
                         u["values"], frozenset(u["hidden"]), u["meta"].geom_quality) for code, u in cells.items()]
    _, upcoming = release_rounds(now)
    return AggregateView(dataset.name, structure, period.label, period.start, period.end, "release", k, rows, release.info(),
                         upcoming, now)
