"""The periodic progress report of a unit for a half-year or a year: data only (rendering: :mod:`etl.report_files`).

A report is made of the layers' own functions, so that its totals are the
layers' totals: targets and actuals from :func:`maps.coverage.coverage_by_unit`,
incident counts from :func:`maps.incidents.incident_counts` (live) or the
:data:`maps.incidents.INCIDENT_COUNTS` releases, recruiter flags from
:func:`maps.recruiters.recruiter_activity`, and the breakdowns of
:mod:`maps.report_counts`. What a role gets follows the layers:

- officers: live counts of their area;
- leaders and planners: numbers only from frozen releases, summed over the
  released months of the period (:mod:`maps.period_sums`); a count hidden in
  any month is hidden in the report, and below the province (departures and
  the breakdowns are released per province only) every count is hidden;
- police analysts: incident counts (live, as on their layer) and recruiter
  flags; no count built from survey records (those are personal data);
- nobody: a personal record. Every row is a unit, a market, a status, a
  group or a recruiter of the public register.

Every section says its method, period, source (live, or the releases read)
and caveats.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from geodata.errors import InvalidInput, NotFound, PermissionDenied
from geodata.roles import Role
from geodata.scopes import Reader, scope_condition
from geodata.structures import LEVELS, Level, Structure
from maps import periods
from maps.aggregates import AggregateRow, Dataset
from maps.coverage import STATUS_LABELS, CoverageLayer, Released, coverage_by_unit, parse_period
from maps.departures import DEPARTURES, MEASURE
from maps.incidents import INCIDENT_COUNTS, IncidentFilter, incident_counts
from maps.period_sums import SummedView, summed_view
from maps.placement import ancestors_sql, commune_in
from maps.recruiters import licence_valid_sql, recruiter_activity
from maps.report_counts import (
    DEPARTURES_BY_LICENCE,
    DEPARTURES_BY_MARKET,
    JOB_STATUSES,
    LICENCE_STATES,
    MARKETS,
    PRIORITY_DEPARTURES,
    PRIORITY_GROUPS,
    RETURNEES_BY_JOB,
)
from maps.suppression import suppression_k
from maps.survey_counts import SURVEY_COUNTS
from survey.definition import FORM

REPORT_ROLES = (Role.officer, Role.leader, Role.planner, Role.police_analyst)
RELEASED_ROLES = (Role.leader, Role.planner)


class Hidden:
    """A count the reader may not see (below k in a release, or protecting such a count): shown as text, never a number.

    >>> str(HIDDEN)
    'ẩn (hidden)'
    """

    def __str__(self) -> str:
        return "ẩn (hidden)"

    __repr__ = __str__


HIDDEN = Hidden()

_CHOICE = {name: {c.value: c for c in FORM.choices[name]} for name in ("market", "job_status", "household_status")}
LABELS = {
    "licence_valid": "Giấy phép còn hiệu lực (licence valid on the departure day)",
    "licence_not_valid": "Giấy phép không hiệu lực (licence not valid on the departure day)",
    "not_in_register": "Không có trong danh sách doanh nghiệp (not in the register)",
    "not_stated": "Không ghi (not stated)",
    "poor": "Hộ nghèo (poor household)",
    "near_poor": "Hộ cận nghèo (near-poor household)",
    "ethnic_minority": "Người dân tộc thiểu số (ethnic minority)",
    "demobilised_soldier": "Bộ đội xuất ngũ (demobilised soldier)",
}
APPROXIMATE = ("approximate commune polygons (Voronoi cells of commune centres) are used where no official polygon was "
               "imported: records without a point, and maps, place such communes only approximately")


def label(kind: str, code: str) -> str:
    """A code's name in Vietnamese (and English).

    >>> label("market", "JP"), label("job_status", "not_stated")
    ('Nhật Bản (Japan)', 'Không ghi (not stated)')
    """
    choice = _CHOICE.get(kind, {}).get(code)
    return f"{choice.vi} ({choice.en})" if choice else LABELS.get(code, code)


@dataclass
class Section:
    """One table of the report, with how it was made: method, period, source (live or releases) and caveats.

    ``rows`` hold text, numbers, None (no value, e.g. no target) or :data:`HIDDEN`.
    ``available`` is False when the reader's role gets nothing of it (``note`` says why).
    """

    key: str
    title: str
    method: str
    period: str
    source: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)
    available: bool = True
    note: str | None = None


@dataclass
class MapShape:
    code: str
    name: str
    geometry: dict | None
    klass: str
    filled: bool = True  # False: drawn as a boundary line only


@dataclass
class CoverageMap:
    """The sub-units of the report's unit classed by coverage ratio (rendered as an image by :mod:`etl.report_map`)."""

    title: str
    classes: list[str]  # the classification's labels, lowest first; "no data" is the class of a missing ratio
    shapes: list[MapShape]
    caveats: list[str]


@dataclass
class Report:
    unit_code: str
    unit_name: str
    unit_level: str
    structure: str
    period: str
    role: str
    k: int | None
    generated_at: dt.datetime
    sections: list[Section]
    map: CoverageMap | None

    def section(self, key: str) -> Section:
        return next(s for s in self.sections if s.key == key)


UNIT_SQL = f"""
SELECT u.code, u.name, u.level, u.parent_code, u.geom_quality,
       CAST(:scope_user_id AS uuid) IS NULL OR {scope_condition("u.code", "u.structure")} AS in_area
FROM admin_unit u WHERE u.structure = :structure AND u.code = :code
"""


def report_period(label_: str, loc: tuple[str, ...] = ("query", "period")) -> periods.Period:
    """The period of a report: a half-year (``2025-H1``) or a year (``2025``); :class:`InvalidInput` otherwise.

    >>> report_period("2025-h2").label
    '2025-H2'
    """
    p = periods.Period.parse(label_, loc=loc)
    if p.length not in ("half", "year"):
        raise InvalidInput(f"a report covers a half-year or a year (the plans' six-month and yearly reports): write "
                           f"2025-H1, 2025-H2 or 2025, not {label_!r}", loc=loc)
    return p


def _source(view: SummedView | None, live_at: dt.datetime) -> str:
    if view is None or view.source == "live":
        return f"live: records as stored at {live_at:%Y-%m-%d %H:%M} UTC"
    if not view.releases:
        return "releases: no month of the period is released yet"
    ids = ", ".join(f"{r.id} (rev. {r.revision})" for r in view.releases)
    return f"releases of {view.dataset} for {', '.join(view.periods)} (k = {view.k}): release ids {ids}"


def _coverage_source(layer: CoverageLayer, live_at: dt.datetime) -> str:
    if layer.source == "live":
        return f"live: records as stored at {live_at:%Y-%m-%d %H:%M} UTC"
    ids = ", ".join(f"{r.id} (rev. {r.revision})" for r in layer.releases)
    return (f"releases of departures for {', '.join(layer.released_periods) or 'no month yet'}: "
            f"release ids {ids or 'none'}")


class ReportBuilder:
    """Assembles a report; one per request (holds the connection, the reader and the unit)."""

    def __init__(self, conn: Connection, *, unit_code: str, structure: str, period: str, role: Role, reader: Reader,
                 today: dt.date | None = None, now: dt.datetime | None = None) -> None:
        self.conn, self.role, self.reader = conn, role, reader
        self.structure = Structure(structure).value
        if role not in REPORT_ROLES:
            raise PermissionDenied(f"reports are for officers, leaders, planners and police analysts; your role is {role.value}")
        self.period = report_period(period)
        half = self.period.label if self.period.length == "half" else None
        self.coverage_period = parse_period(self.period.start.year if half is None else None, half)
        unit = conn.execute(text(UNIT_SQL), {"structure": self.structure, "code": unit_code, **reader.params()}).one_or_none()
        if unit is None:
            raise NotFound(f"no unit {unit_code} in the {self.structure} structure")
        if not unit.in_area:
            raise PermissionDenied(f"unit {unit_code} ({unit.name}) is outside your area")
        self.unit = unit
        levels = LEVELS[Structure(self.structure)]
        i = levels.index(Level(unit.level))
        self.child_level = levels[i + 1].value if i + 1 < len(levels) else None
        self.k = suppression_k(role)
        self.released = role in RELEASED_ROLES
        self.now = (now or conn.execute(text("SELECT now()")).scalar_one()).astimezone(dt.UTC)
        self.today = today or dt.date.today()
        self.label = self.period.label

    # -- shared pieces ------------------------------------------------------------------------
    def summed(self, dataset: Dataset) -> tuple[SummedView, AggregateRow | None]:
        """The dataset's counts of the unit for the period: live for officers, released months for leaders and planners."""
        if self.released:
            view = summed_view(self.conn, dataset, self.role, self.structure, self.period, self.reader, level="province",
                               now=self.now)
        else:
            view = summed_view(self.conn, dataset, self.role, self.structure, self.period, self.reader,
                               level=self.unit.level, parent=self.unit.parent_code, now=self.now)
        return view, view.rows.get(self.unit.code)

    def value(self, row: AggregateRow | None, measure: str) -> int | Hidden:
        return HIDDEN if row is None or measure in row.suppressed or row.values.get(measure) is None else row.values[measure]

    def released_caveats(self, view: SummedView) -> list[str]:
        if view.source == "live":
            return []
        out = [(f"sums of the released months ({', '.join(view.periods) or 'none yet'}); a count hidden in any month "
               f"is hidden in the sum; counts below {view.k}, zero included, and the counts protecting them are hidden")]
        if self.unit.level != "province":
            out.append("released per province only (communes and districts hold too few to show): every count of this "
                       "unit is hidden")
        if view.as_of is not None and view.as_of < self.period.end - dt.timedelta(days=1):
            out.append(f"the released months reach {view.as_of:%d/%m/%Y}, not the end of the period")
        return out

    def unavailable(self, key: str, title: str, method: str, why: str) -> Section:
        return Section(key, title, method, self.label, "none", [], available=False, note=why)

    def breakdown(self, key: str, title: str, method: str, dataset: Dataset, codes: tuple[str, ...], kind: str,
                  total: str | None, same_total: tuple[Dataset, str] | None = None) -> Section:
        """A table of the unit's counts by ``codes`` (and their total), from ``dataset``.

        When the total is hidden, every part is hidden too. The same total is
        released in another dataset (``same_total``: departures, or the survey
        counts' returnees), and each dataset is suppressed on its own: parts
        shown against a total that one release hid could be subtracted from the
        total the other shows, and a total shown here could give back a cell
        the other hid. So for suppressed roles the breakdown shows only where
        both releases show the total.
        """
        view, row = self.summed(dataset)
        total_value = self.value(row, total) if total else None
        source = _source(view, self.now)
        if same_total is not None and self.released and total_value is not HIDDEN:
            other, measure = same_total
            other_view, other_row = self.summed(other)
            if self.value(other_row, measure) is HIDDEN:
                total_value = HIDDEN
            source += f"; total checked against {_source(other_view, self.now)}"
        rows, hidden_names = [], []
        for code in codes:
            n = HIDDEN if total_value is HIDDEN else self.value(row, code)
            if n is HIDDEN and self.released:
                hidden_names.append(label(kind, code))
            elif n is HIDDEN or n:
                rows.append([code, label(kind, code), n])
        if hidden_names:
            rows.append(["", "; ".join(hidden_names), HIDDEN])
        if total:
            rows.append(["", "Tổng (total)", total_value])
        caveats = self.released_caveats(view)
        if hidden_names:
            caveats.append("the categories of the row marked hidden are listed together: each is below k (zero included) "
                           "or protects such a count")
        if total is not None and total_value is HIDDEN and self.released:
            caveats.append("the total is hidden (here or where it is released too), so every part is hidden with it")
        return Section(key, title, method, self.label, source, ["Mã (code)", "Tên (name)", "Số (count)"], rows, caveats)

    # -- the sections -----------------------------------------------------------------------
    def coverage(self) -> tuple[Section, CoverageLayer | None, CoverageLayer | None]:
        title = "Chỉ tiêu và kết quả theo đơn vị (targets and actual departures by sub-unit)"
        method = ("departure records by departure date, each placed in the asked structure by its point (else its commune "
                  "through the crosswalk), against the unit's target for the period (its own, or carried from the other "
                  "structure); ratio = actual / target; status from the year's projection (coverage layer)")
        if self.role is Role.police_analyst:
            return self.unavailable("coverage", title, method, "police analysts do not read departure counts"), None, None
        released = Released(self.role, self.reader, self.now) if self.released else None
        common = {"structure": self.structure, "period": self.coverage_period, "reader": self.reader,
                  "released": released, "today": self.today}
        own = coverage_by_unit(self.conn, level=self.unit.level, parent=self.unit.code, **common)
        subs = coverage_by_unit(self.conn, level=self.child_level, parent=self.unit.code, **common) if self.child_level else None
        columns = ["Mã (code)", "Tên (name)", "Chỉ tiêu (target)", "Thực hiện (actual)", "Tỷ lệ % (ratio %)", "Tình trạng (status)",
                   "Lớp (class)", "Ranh giới (polygon)"]
        rows, empty = [], []
        for r in [*own.rows, *(subs.rows if subs else [])]:
            v, hidden = r.row.values, r.row.suppressed
            if r.row.unit_code != self.unit.code and "actual" in hidden and r.target is None:
                empty.append(r.row.unit_name)  # nothing to show but its name: listed together below
                continue
            lower, upper = v["target_lower"], v["target_upper"]
            target = lower if lower is None or upper == lower else f"≥ {lower}" if upper is None else f"{lower}–{upper}"
            rows.append([r.row.unit_code, r.row.unit_name, target, HIDDEN if "actual" in hidden else v["actual"],
                         HIDDEN if "ratio" in hidden else None if v["ratio"] is None else round(100 * v["ratio"], 1),
                         STATUS_LABELS[r.status]["vi"] + f" ({STATUS_LABELS[r.status]['en']})" if r.status else None,
                         r.klass, r.row.geom_quality])
        if empty:
            rows.append(["", f"{len(empty)} đơn vị (sub-units): {', '.join(empty)}", None, HIDDEN, HIDDEN, None, "no data", None])
        caveats = list(dict.fromkeys(own.caveats + (subs.caveats if subs else [])))
        if empty:
            caveats.append("sub-units with no target and a hidden actual are listed together in the last row")
        if own.projection:
            caveats.append(f"projection: {own.projection}")
        section = Section("coverage", title, method, self.label, _coverage_source(own, self.now), columns, rows, caveats)
        return section, own, subs

    def markets(self) -> Section:
        title = "Người đi làm việc theo thị trường (departures by market)"
        method = "departure records by departure date in the period, by destination market, placed as the coverage actuals"
        if self.role is Role.police_analyst:
            return self.unavailable("markets", title, method, "police analysts do not read departure counts")
        return self.breakdown("markets", title, method, DEPARTURES_BY_MARKET, MARKETS, "market", "departures",
                              (DEPARTURES, MEASURE))

    def licences(self) -> Section:
        title = "Người đi làm việc theo giấy phép doanh nghiệp (departures by the recruiter's licence)"
        method = ("departure records by departure date, by the licence of the recruiter given on the record: valid on the "
                  "departure day (within its dates, not revoked or suspended), not valid, or not in the register")
        if self.role is Role.police_analyst:
            return self.unavailable("licences", title, method, "police analysts do not read departure counts")
        return self.breakdown("licences", title, method, DEPARTURES_BY_LICENCE, LICENCE_STATES, "licence", "departures",
                              (DEPARTURES, MEASURE))

    RECRUITER_SQL = f"""
    WITH placed AS (
        SELECT {commune_in(":structure", "r.structure", "coalesce(r.assigned_commune_code, r.declared_commune_code)", "r.geom")}
               AS commune, r.recruiter_licence, r.departure_date
        FROM survey_record r WHERE r.kind = 'departure' AND r.departure_date >= :start AND r.departure_date < :end
    ), up AS ({ancestors_sql(":structure")})
    SELECT p.recruiter_licence AS licence, rc.name, rc.licence_number IS NOT NULL AS registered, count(*)::int AS departures,
           count(*) FILTER (WHERE rc.licence_number IS NOT NULL AND NOT {licence_valid_sql("rc", "p.departure_date")})::int
               AS not_valid
    FROM placed p JOIN up ON up.commune = p.commune AND up.unit = :unit
    LEFT JOIN recruiter rc ON rc.licence_number = p.recruiter_licence
    GROUP BY p.recruiter_licence, rc.name, rc.licence_number
    ORDER BY departures DESC, licence
    """

    def recruiters(self) -> Section:
        title = "Người đi làm việc theo doanh nghiệp (departures by recruiter)"
        method = ("departure records by departure date, by the licence number on the record, with the register's name; "
                  "'licence not valid' counts departures on a day the licence was not valid")
        if self.role is not Role.officer:
            why = ("per-recruiter counts are given to officers only: a release holds a fixed table, and the register's "
                   "recruiters change; the licence section above gives the released counts by licence"
                   if self.released else "police analysts do not read departure counts")
            return self.unavailable("recruiters", title, method, why)
        rows = self.conn.execute(text(self.RECRUITER_SQL), {"structure": self.structure, "unit": self.unit.code,
                                                            "start": self.period.start, "end": self.period.end}).all()
        return Section("recruiters", title, method, self.label, _source(None, self.now),
                       ["Giấy phép (licence)", "Doanh nghiệp (recruiter)", "Trong danh sách (registered)",
                        "Số người đi (departures)", "Giấy phép không hiệu lực (licence not valid)"],
                       [[r.licence, r.name, "có (yes)" if r.registered else "không (no)", r.departures, r.not_valid]
                        for r in rows])

    def returnees(self) -> Section:
        title = "Người lao động về nước và việc làm (returnees and their job status)"
        method = "returnee records collected in the period (Viet Nam time), by the job status they gave, placed as the actuals"
        if self.role is Role.police_analyst:
            return self.unavailable("returnees", title, method, "police analysts do not read survey counts")
        return self.breakdown("returnees", title, method, RETURNEES_BY_JOB, JOB_STATUSES, "job_status", "returnees",
                              (SURVEY_COUNTS, "returnee"))

    def priority(self) -> Section:
        title = "Đối tượng ưu tiên (priority groups among departures)"
        method = ("departure records by departure date whose person is from a poor or near-poor household, of an ethnic "
                  "minority (any group but Kinh), or a demobilised soldier (the form's household_status, ethnicity and "
                  "demobilised_soldier); a person may be in several groups, so the rows do not add up")
        if self.role is Role.police_analyst:
            return self.unavailable("priority", title, method, "police analysts do not read survey counts")
        section = self.breakdown("priority", title, method, PRIORITY_DEPARTURES, PRIORITY_GROUPS, "group", None)
        section.caveats.append("records without the field count in no group")
        return section

    def licence_flags(self) -> Section:
        title = "Cảnh báo về giấy phép (recruiter-licence flags)"
        method = ("recruitment events in the period in the unit (recruiter layer): events on a day the recruiter's licence "
                  "was not valid, events by names not in the register, communes where two or more unregistered actors "
                  "were active")
        end = self.period.end - dt.timedelta(days=1)
        activity = recruiter_activity(self.conn, structure=self.structure, start=self.period.start, end=end, reader=self.reader,
                                      within=self.unit.code)
        rows = []
        for a in activity.actors:
            flags = activity.flags.get(a.key, [])
            rows.append([a.licence_number or "", a.name, "có (yes)" if a.registered else "không (no)", len(a.events),
                         sum(f["flag"] == "licence_not_valid" for f in flags), sum(f["flag"] == "not_in_register" for f in flags)])
        clusters = sorted(activity.unregistered_clusters)
        caveats = ["events of recruiters, not of people: shown as on the recruiter layer, not suppressed"]
        if clusters:
            caveats.append(f"communes with two or more unregistered actors: {', '.join(clusters)}")
        return Section("licence_flags", title, method, self.label, _source(None, self.now),
                       ["Giấy phép (licence)", "Tên (name)", "Trong danh sách (registered)", "Sự kiện (events)",
                        "Giấy phép không hiệu lực (licence not valid)", "Không có trong danh sách (not in register)"],
                       rows, caveats)

    def incidents(self) -> Section:
        title = "Vụ việc (incidents: illegal brokerage, fraud, trafficking, irregular departure)"
        method = ("incidents by date of occurrence, each placed in the asked structure by its point (else its commune "
                  "through the crosswalk); persons affected is a count, no names (incident-counts layer)")
        columns = ["Mã (code)", "Tên (name)", "Vụ việc (incidents)", "Người bị ảnh hưởng (persons affected)"]
        if self.released:
            view, row = self.summed(INCIDENT_COUNTS)
            rows = [[self.unit.code, self.unit.name, self.value(row, "incidents"), self.value(row, "persons_affected")]]
            return Section("incidents", title, method, self.label, _source(view, self.now), columns, rows,
                           self.released_caveats(view))
        counts = incident_counts(self.conn, self.structure, IncidentFilter(self.period.start, self.period.end - dt.timedelta(days=1)))
        units = [self.unit.code, *sorted(c for c, r in counts.items() if r.parent_code == self.unit.code and r.level == self.child_level)]
        rows = [[c, counts[c].unit_name, counts[c].values["incidents"], counts[c].values["persons_affected"]] for c in units]
        return Section("incidents", title, method, self.label, _source(None, self.now), columns, rows)

    def coverage_map(self, own: CoverageLayer | None, subs: CoverageLayer | None) -> CoverageMap | None:
        """The sub-units by class; when none of them has a ratio (no targets below the unit, or every actual
        hidden) but the unit has one, the unit by its class with its sub-units as lines."""
        if own is None:
            return None
        layer, caveats = subs or own, []
        shapes = [MapShape(r.row.unit_code, r.row.unit_name, r.geometry, r.klass) for r in layer.rows]
        ratios = [r.row.values["ratio"] for r in layer.rows]
        if subs is not None and all(x is None for x in ratios) and any(r.row.values["ratio"] is not None for r in own.rows):
            shapes = [MapShape(r.row.unit_code, r.row.unit_name, r.geometry, r.klass) for r in own.rows] + \
                     [MapShape(s.code, s.name, s.geometry, s.klass, filled=False) for s in shapes]
            caveats.append("no sub-unit has a ratio (no target below the unit, or its actual is hidden): the unit is "
                           "coloured by its own ratio, its sub-units are drawn as lines")
        if any(r.row.geom_quality == "approximate" for r in layer.rows):
            caveats.append(APPROXIMATE)
        if any("ratio" in r.row.suppressed for r in layer.rows):
            caveats.append("units whose actual is hidden have no ratio")
        return CoverageMap(f"Tỷ lệ hoàn thành chỉ tiêu {self.label} (coverage of the target), {self.unit.name}",
                           [c.label for c in layer.classification.classes], shapes, caveats)

    def build(self) -> Report:
        coverage, own, subs = self.coverage()
        sections = [coverage, self.markets(), self.licences(), self.recruiters(), self.returnees(), self.priority(),
                    self.licence_flags(), self.incidents()]
        approximate = self.conn.execute(text(
            f"""SELECT EXISTS (SELECT 1 FROM admin_unit c JOIN ({ancestors_sql(':structure')}) up ON up.commune = c.code
                WHERE c.structure = :structure AND up.unit = :unit AND c.geom_quality = 'approximate')"""),
            {"structure": self.structure, "unit": self.unit.code}).scalar()
        if approximate:
            for s in sections:
                if s.available and APPROXIMATE not in s.caveats:
                    s.caveats.append(APPROXIMATE)
        return Report(self.unit.code, self.unit.name, self.unit.level, self.structure, self.label, self.role.value, self.k,
                      self.now, sections, self.coverage_map(own, subs))


def unit_report(conn: Connection, *, unit_code: str, period: str, role: Role, reader: Reader, structure: str = "2025",
                today: dt.date | None = None, now: dt.datetime | None = None) -> Report:
    """The periodic report of ``unit_code`` for ``period`` (``2025-H1``, ``2025``) as ``role`` sees it within ``reader``'s area.

    Raises :class:`InvalidInput` for a period that is not a half-year or a year, :class:`NotFound` for an
    unknown unit, :class:`PermissionDenied` for a unit outside the area or a role that gets no reports.

    Example (needs a database)::

        report = unit_report(conn, unit_code="42", period="2025-H1", role=Role.leader, reader=Reader(area_of=uid))
        report.section("coverage").rows[0][:4]
        # ['42', 'Hà Tĩnh', 75.0, 273]
    """
    return ReportBuilder(conn, unit_code=unit_code, structure=structure, period=period, role=role, reader=reader,
                         today=today, now=now).build()

