"""Tables that officers prepare in Excel or export from other systems: read them, check every row, refuse whole.

Targets, the recruiter register, recruitment events and incidents come as
CSV (any of the dialects :func:`etl.survey_csv.sniff` knows) or XLSX. Each
importer checks every row with a pydantic model; a file with any bad row is
refused whole, listing every problem with its row and field, and nothing is
written (:class:`TableImportError`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from etl.survey_csv import CsvFormatError, sniff
from geodata.errors import InvalidInput
from geodata.text import nfc, text_problem

if TYPE_CHECKING:
    import pandas as pd

M = TypeVar("M", bound=BaseModel)
SHOWN_PROBLEMS = 25


class TableImportError(InvalidInput):
    """A table was refused; the message names the file and every bad row and field. Nothing was written."""


@dataclass(frozen=True)
class Problem:
    row: int  # as a spreadsheet shows it: the header is row 1
    field: str
    message: str

    def __str__(self) -> str:
        # A problem of the row as a whole (its place, given by two fields) names its fields in the message.
        return f"row {self.row}, field {self.field}: {self.message}" if self.field else f"row {self.row}: {self.message}"


@dataclass
class TableResult:
    """What an import did, as the CLI reports it: the file, how it was read, its rows, and the rows new and updated."""

    path: str
    read_as: str
    rows: int = 0
    inserted: int = 0
    updated: int = 0


def read_table(path: Path) -> tuple[pd.DataFrame, str]:
    """The rows of a CSV or XLSX file as text (NFC, stripped; empty cells are ""), and how the file was read.

    Header names are lower-cased and stripped, so ``Unit_Code`` and
    ``unit_code `` are the same column.
    """
    import pandas as pd  # imported when a table is read (not by every server)
    path = Path(path)
    if not path.exists():
        raise TableImportError(f"{path}: no such file")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        try:
            frame = pd.read_excel(path, dtype=str, keep_default_na=False, engine="openpyxl")
            formulas = formula_cells(path)
        except Exception as exc:  # a damaged or foreign file: openpyxl's reasons vary
            raise TableImportError(f"{path}: cannot read as an Excel workbook ({exc})") from None
        if formulas:
            raise TableImportError(
                f"{path}: {len(formulas)} cell(s) hold a formula, not a value (the file keeps no value for them, and a formula "
                "can be a link that sends the reader away); copy the sheet and paste it as values. Nothing was imported:\n"
                + "\n".join(f"  {p}" for p in formulas[:SHOWN_PROBLEMS]))
        how = "first sheet of an Excel workbook"
    else:
        try:
            dialect, _, _ = sniff(path)
        except CsvFormatError as exc:
            raise TableImportError(str(exc)) from None
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=dialect.encoding, sep=dialect.separator)
        how = dialect.describe()
    frame.columns = [nfc(str(c)).strip().lower() for c in frame.columns]
    frame = frame.map(lambda v: nfc(v).strip() if isinstance(v, str) else ("" if v is None else str(v)))
    return frame, how


def formula_cells(path: Path) -> list[Problem]:
    """The cells of the first sheet of a workbook that hold a formula, as problems naming row and column."""
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True)
    try:
        rows = book.worksheets[0].iter_rows()
        header = [str(c.value or "").strip().lower() for c in next(rows, ())]
        return [Problem(cell.row, header[i] if i < len(header) and header[i] else f"column {i + 1}",
                        f"a formula ({str(cell.value)[:60]})")
                for row in rows for i, cell in enumerate(row) if cell.data_type == "f"]
    finally:
        book.close()


def require_columns(path: Path, frame: pd.DataFrame, needed: Iterable[str], how: str, one_of: Iterable[tuple[str, ...]] = ()) -> None:
    """Refuse a table that lacks a needed column (or every column of a ``one_of`` group), saying what it has."""
    missing = [c for c in needed if c not in frame.columns]
    missing += [" or ".join(group) for group in one_of if not any(c in frame.columns for c in group)]
    if missing:
        raise TableImportError(
            f"{path}: no column {', '.join(missing)}; found {', '.join(repr(c) for c in frame.columns) or 'none'} "
            f"(read as {how}). Nothing was imported.")


def check_rows(path: Path, frame: pd.DataFrame, model: type[M],
               convert: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> tuple[list[tuple[int, M]], list[Problem]]:
    """Every row checked with ``model`` (empty cells are missing values); the good rows (with their row numbers)
    and every problem."""
    good: list[tuple[int, M]] = []
    problems: list[Problem] = []
    for i, row in enumerate(frame.to_dict("records")):
        n = i + 2
        values = {k: (v if v != "" else None) for k, v in row.items()}
        bad_text = [(k, text_problem(v)) for k, v in values.items() if isinstance(v, str) and text_problem(v)]
        if bad_text:
            problems += [Problem(n, k, p) for k, p in bad_text]
            continue
        try:
            good.append((n, model.model_validate(convert(values) if convert else values)))
        except ValidationError as exc:
            for e in exc.errors():
                field = ".".join(str(p) for p in e["loc"])
                problems.append(Problem(n, field, e["msg"].removeprefix("Value error, ")))
        except InvalidInput as exc:
            problems.append(Problem(n, ".".join(map(str, exc.loc)), str(exc)))
    return good, problems


def refuse_if_any(path: Path, problems: list[Problem]) -> None:
    """Refuse the file, listing its problems (the first few and how many), when there are any."""
    if not problems:
        return
    shown = "\n".join(f"  {p}" for p in problems[:SHOWN_PROBLEMS])
    more = f"\n  ... and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
    raise TableImportError(f"{path}: {len(problems)} problem(s); nothing was imported:\n{shown}{more}")
