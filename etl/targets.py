"""Yearly targets (chỉ tiêu) of units: imported from CSV or XLSX, or set by officers through the API.

A target belongs to a unit of one boundary structure, a year and an
indicator (``departures``, ``surveyed_people``). Its kind is ``absolute``
(this many), ``minimum`` (at least this many) or ``growth_percent`` (from
``value`` to ``value_max`` percent more than the previous year's actual).
Columns of the file other than the target's own (a unit name, the source
document, a note) are kept as the target's notes. A file is imported whole
or not at all; importing it again updates, never duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, text

from etl.tables import Problem, TableImportError, TableResult, check_rows, read_table, refuse_if_any, require_columns
from geodata.errors import InvalidInput
from geodata.structures import Structure
from geodata.units import resolve_codes

Indicator = Literal["departures", "surveyed_people"]
TargetKind = Literal["absolute", "minimum", "growth_percent"]
COLUMNS = ("unit_code", "structure", "year", "indicator", "kind", "value", "value_max")


class TargetIn(BaseModel):
    """One target as a file row or an API item (the unit code as written; resolved against the structure)."""

    model_config = ConfigDict(extra="forbid")

    unit_code: str = Field(min_length=1, max_length=10, pattern=r"^[0-9]+(\.0+)?$")
    structure: Structure
    year: int = Field(ge=2000, le=2100)
    indicator: Indicator = "departures"
    kind: TargetKind
    value: Decimal = Field(ge=0, le=10_000_000, max_digits=12, decimal_places=2)
    value_max: Decimal | None = Field(default=None, ge=0, le=10_000_000, max_digits=12, decimal_places=2)
    notes: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _range(self) -> TargetIn:
        self.unit_code = self.unit_code.split(".")[0]  # Excel's 183.0
        if self.kind == "growth_percent":
            if self.value_max is None:
                self.value_max = self.value
            if self.value_max < self.value:
                raise ValueError(f"value_max {self.value_max} is below value {self.value}: a growth range runs from value to value_max")
        elif self.value_max is not None:
            raise ValueError(f"value_max is only for growth_percent targets (a range); this one is {self.kind}")
        return self


@dataclass
class TargetImportResult(TableResult):
    padded: list[tuple[int, str, str]] = field(default_factory=list)  # (row, as written, as stored)


def _resolve(conn: Connection, targets: list[TargetIn], rows: list[int]) -> tuple[list[Problem], list[tuple[int, str, str]]]:
    """Give every target its unit code as stored (zero-padded where a spreadsheet dropped zeros)."""
    problems, padded = [], []
    by_structure: dict[str, set[str]] = {}
    for t in targets:
        by_structure.setdefault(t.structure.value, set()).add(t.unit_code)
    found = {s: resolve_codes(conn, s, sorted(codes)) for s, codes in by_structure.items()}
    for n, t in zip(rows, targets, strict=True):
        options = found[t.structure.value][t.unit_code]
        if len(options) == 1:
            if options[0] != t.unit_code:
                padded.append((n, t.unit_code, options[0]))
            t.unit_code = options[0]
        elif not options:
            problems.append(Problem(n, "unit_code", f"no unit {t.unit_code} in the {t.structure.value} structure"))
        else:
            problems.append(Problem(n, "unit_code", f"{t.unit_code} could be any of {', '.join(options)}: write the code "
                                                    "with its leading zeros"))
    return problems, padded


UPSERT_SQL = text("""
INSERT INTO target (structure, unit_code, year, indicator, kind, value, value_max, notes, source, updated_by)
SELECT structure, unit_code, year, indicator, kind, value, value_max, notes, :source, :who
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS t(structure text, unit_code text, year smallint, indicator text, kind text,
                                                   value numeric, value_max numeric, notes jsonb)
ON CONFLICT (structure, unit_code, year, indicator) DO UPDATE SET
    kind = excluded.kind, value = excluded.value, value_max = excluded.value_max, notes = excluded.notes,
    source = excluded.source, updated_by = excluded.updated_by, updated_at = now()
RETURNING (xmax = 0) AS inserted
""")


def store_targets(conn: Connection, targets: list[TargetIn], *, source: str, who: str | None = None) -> tuple[int, int]:
    """Insert or update targets in one statement; returns (inserted, updated). Codes must be resolved already."""
    if not targets:
        return 0, 0
    import json

    rows = json.dumps([t.model_dump(mode="json") for t in targets], ensure_ascii=False)
    flags = conn.execute(UPSERT_SQL, {"rows": rows, "source": source, "who": who}).scalars().all()
    return sum(flags), len(flags) - sum(flags)


def repeated(targets: list[TargetIn], rows: list[int], what: str) -> list[Problem]:
    """A problem for each target that repeats an earlier one's unit, structure, year and indicator (one statement
    cannot set one target twice, and which value was meant cannot be told)."""
    problems, seen = [], {}
    for n, t in zip(rows, targets, strict=True):
        key = (t.structure, t.unit_code, t.year, t.indicator)
        if key in seen:
            problems.append(Problem(n, "unit_code", f"repeats {what} {seen[key]} (same unit, structure, year and indicator)"))
        seen.setdefault(key, n)
    return problems


def set_targets(conn: Connection, targets: list[TargetIn], *, source: str, who: str | None = None) -> tuple[int, int]:
    """Resolve and store targets sent through the API; raises :class:`InvalidInput` naming the item and field."""
    problems, _ = _resolve(conn, targets, list(range(len(targets))))
    problems += repeated(targets, list(range(len(targets))), "item")
    if problems:
        p = problems[0]
        raise InvalidInput(f"{p.message}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                           loc=("body", p.row, p.field))
    return store_targets(conn, targets, source=source, who=who)


def import_targets(conn: Connection, path: Path, who: str | None = None) -> TargetImportResult:
    """Import a targets file (CSV or XLSX) in the caller's transaction; all rows or none.

    Example (needs a database)::

        import_targets(conn, Path("targets_from_plans.csv"))
        # TargetImportResult(path='targets_from_plans.csv', rows=9, inserted=9, updated=0, ...)
    """
    path = Path(path)
    frame, how = read_table(path)
    require_columns(path, frame, ("unit_code", "structure", "year", "kind", "value"), how)
    note_columns = [c for c in frame.columns if c not in COLUMNS]

    def convert(row: dict[str, Any]) -> dict[str, Any]:
        notes = {c: row.pop(c) for c in note_columns if row.get(c) is not None}
        for c in note_columns:
            row.pop(c, None)
        return {k: v for k, v in row.items() if v is not None} | {"notes": notes}

    checked, problems = check_rows(path, frame, TargetIn, convert)
    rows = [n for n, _ in checked]
    targets = [t for _, t in checked]
    unresolved, padded = _resolve(conn, targets, rows)
    problems += unresolved
    problems += repeated(targets, rows, "row")
    refuse_if_any(path, sorted(problems, key=lambda p: p.row))
    inserted, updated = store_targets(conn, targets, source=f"file:{path.name}", who=who)
    return TargetImportResult(str(path), how, len(targets), inserted, updated, padded)


__all__ = ["TableImportError", "TargetIn", "import_targets", "set_targets", "store_targets"]
