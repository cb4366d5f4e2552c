"""How survey CSV files are really written, and how their columns map to the form.

The files come from KoboToolbox (formpack: every field quoted, ``;`` as the
separator by default, CRLF; headers as XML names or as question labels, group
paths joined by ``/``; multiple choices as one column and one column per
option), ODK Central (``,``, group paths joined by ``-``, geopoints split
into ``-Latitude`` ... columns), Excel (``;`` and decimal commas on a PC with
Vietnamese regional settings, sometimes Windows-1258 instead of UTF-8, a
UTF-8 BOM, UTF-16 for "Unicode text") and Labour Atlas itself.

:func:`sniff` finds the encoding and separator, :func:`column_map` maps the
header to the form's fields (names or labels, in Vietnamese or English), and
:func:`answers_from_labels` turns a labels export's answers back into values.
"""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from geodata.text import fold, nfc
from survey.definition import FORM, FormDefinition

if TYPE_CHECKING:
    import pandas as pd

SEPARATORS = (",", ";", "\t")
SEPARATOR_NAMES = {",": "comma (,)", ";": "semicolon (;)", "\t": "tab"}
GEO_PARTS = {"latitude": "lat", "longitude": "lon", "altitude": "altitude", "accuracy": "accuracy", "precision": "accuracy",
             "lat": "lat", "lon": "lon"}
INSTANCE_COLUMNS = ("instance_id", "instanceID", "meta-instanceID", "meta/instanceID", "_uuid", "KEY")
# The columns a file must have, with the names it may give them.
ESSENTIAL = {"instance_id": "instance_id, meta/instanceID, _uuid or KEY", "kind": "kind (or its label)"}


class CsvFormatError(ValueError):
    """The file cannot be read as a survey CSV; the message says why and what was found."""


@dataclass(frozen=True)
class Dialect:
    """How a file is written: its encoding, separator and decimal mark."""

    encoding: str
    separator: str
    decimal_comma: bool

    def describe(self) -> str:
        return f"encoding {self.encoding}, separator {SEPARATOR_NAMES[self.separator]}"


def _first_undecodable(path: Path) -> tuple[int, int]:
    """(line number from 1, byte) of the first line that is not UTF-8 (read again on the error path only)."""
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return n, line[exc.start]
    return 0, 0


def sniff(path: Path) -> tuple[Dialect, list[str], int]:
    """The dialect of a CSV file, its header and its number of data rows (the file is read once, and checked).

    The encoding: a BOM says UTF-8 or UTF-16 (Excel's "Unicode text");
    otherwise the whole file must be UTF-8. A file in another encoding is
    refused, not guessed: Windows-1258 (Excel's plain "CSV" on a Vietnamese
    Windows) decodes any bytes, so a guess would store wrong names without a
    word. The separator: the one of ``,``, ``;`` and tab that splits the
    header into the most columns. Decimal commas are read in numbers when the
    separator is ``;`` (Excel writes both on regional settings that use the
    comma as decimal mark).
    """
    with path.open("rb") as f:
        head = f.read(4)
    if head.startswith(b"PK\x03\x04"):
        raise CsvFormatError(f"{path}: a ZIP file, not text: an Excel workbook (.xlsx) saved with a .csv name? Import it "
                             "named .xlsx, or save the sheet as \"CSV UTF-8 (Comma delimited)\"")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"  # with or without its BOM
    try:
        with path.open(encoding=encoding, newline="") as f:
            first = f.readline()
        if not first.strip():
            raise CsvFormatError(f"{path}: the file is empty (no header line)")
        best = max(SEPARATORS, key=lambda sep: (len(next(csv.reader([first], delimiter=sep))), -SEPARATORS.index(sep)))
        header = [nfc(h).strip() for h in next(csv.reader([first], delimiter=best))]
        # The one pass over the whole file: every byte decoded, every row's cells counted.
        rows = check_shape(path, encoding, best, len(header))
    except UnicodeDecodeError:
        line, byte = _first_undecodable(path)
        raise CsvFormatError(
            f"{path}: not UTF-8 text (byte 0x{byte:02x} on line {line}). Excel's plain \"CSV\" on a "
            "Vietnamese Windows writes Windows-1258: save the sheet as \"CSV UTF-8 (Comma delimited)\" and import it again"
        ) from None
    return Dialect(encoding, best, best == ";"), header, rows


def check_shape(path: Path, encoding: str, separator: str, width: int) -> int:
    """The number of data rows of a CSV file; refuses a file whose rows cannot be told apart: a quoted cell never
    closed (a file cut off), or a row with more cells than the header has columns (which column is which cannot
    be known).

    >>> import tempfile
    >>> cut = Path(tempfile.mkdtemp()) / "cut.csv"
    >>> _ = cut.write_text('a,b\\n1,"Lê', encoding="utf-8")
    >>> _ = (cut.parent / "ok.csv").write_text('a,b\\n1,2\\n"3, 4",5\\n', encoding="utf-8")
    >>> check_shape(cut.parent / "ok.csv", "utf-8", ",", 2)
    2
    >>> check_shape(cut, "utf-8", ",", 2)
    Traceback (most recent call last):
    ...
    etl.survey_csv.CsvFormatError: .../cut.csv: row 2 (from line 2) cannot be read (unexpected end of data): a quoted cell is never closed, ...
    """
    def too_long(row: int, line: int, cells: int) -> CsvFormatError:
        return CsvFormatError(f"{path}: row {row} (line {line}) has {cells} cells, the header {width} columns: "
                              "which cell belongs to which column cannot be told")

    # Most exports quote nothing: then a line is a row, and counting separators is enough (four times faster
    # than the csv module on a million rows). The first quote sends the whole file to the csv module.
    with path.open(encoding=encoding, newline="") as f:
        next(f, None)
        rows = 0
        for rows, line in enumerate(f, start=1):  # the count is the answer when the loop ends
            if '"' in line:
                break
            if line.count(separator) >= width:
                raise too_long(rows + 1, rows + 1, line.count(separator) + 1)
        else:
            return rows
    with path.open(encoding=encoding, newline="") as f:
        reader = csv.reader(f, delimiter=separator, strict=True)
        next(reader, None)
        row, starts = 1, 2
        try:
            for cells in reader:
                row += 1
                if len(cells) > width:
                    raise too_long(row, starts, len(cells))
                starts = reader.line_num + 1
        except csv.Error as exc:
            raise CsvFormatError(f"{path}: row {row + 1} (from line {starts}) cannot be read ({exc}): a quoted cell is never "
                                 "closed, or has text after its closing quote; is the file cut off?") from None
    return row - 1


@dataclass
class ColumnMap:
    """Which column of the file holds which answer.

    ``fields`` maps a file column to a field name (or ``<geopoint>_lat`` ...);
    ``option_columns`` maps a select_multiple field to its per-option columns
    (column -> choice value), which Kobo fills with 1 or 0; ``labelled``
    says the headers are question labels, so answers may be choice labels.
    """

    fields: dict[str, str] = field(default_factory=dict)
    option_columns: dict[str, dict[str, str]] = field(default_factory=dict)
    labelled: bool = False

    def found(self, name: str) -> bool:
        return name in self.fields.values() or name in self.option_columns


def _names(defn: FormDefinition) -> dict[str, list[str]]:
    """Every way a header may name a field (its name, its labels, folded) -> the fields so named, in form order.

    Two questions may share a label ("Nhu cầu hỗ trợ" is asked of aspirants
    and of returnees): a labels export then repeats the header, and the
    repeats are taken in the form's order.
    """
    out: dict[str, list[str]] = {}
    for f in defn.fields:
        for alias in {fold(f.name), fold(f.vi), fold(f.en)}:
            out.setdefault(alias, []).append(f.name)
    return out


def _field_of(text: str, names: dict[str, list[str]], taken: set[str] = frozenset()) -> tuple[str, bool] | None:
    """(field name, named by a label?) of a header or header part, dropping leading groups; None if none."""
    for s in _suffixes(text):
        free = [n for n in names.get(fold(s), ()) if n not in taken]
        if free:
            return free[0], fold(s) != free[0]
    return None


def unique_headers(headers: list[str]) -> list[str]:
    """The header with repeated names numbered (``Nhu cầu hỗ trợ``, ``Nhu cầu hỗ trợ (2)``), as columns must be unique.

    >>> unique_headers(["a", "b", "a"])
    ['a', 'b', 'a (2)']
    """
    seen: dict[str, int] = {}
    out = []
    for h in headers:
        seen[h] = seen.get(h, 0) + 1
        out.append(h if seen[h] == 1 else f"{h} ({seen[h]})")
    return out


def _suffixes(header: str) -> list[str]:
    """The header, then the header without each leading group (``group/sub/q`` -> ``sub/q``, ``q``).

    Labels may themselves hold ``/`` ("Xã/phường nơi khảo sát"), so a header
    is matched whole first and then by dropping groups from the left.
    """
    parts = re.split(r"([/-])", header)
    return ["".join(parts[i:]).strip() for i in range(0, len(parts), 2)]


def column_map(headers: list[str], defn: FormDefinition = FORM) -> ColumnMap:
    """Map a file's header to the form's fields.

    Example::

        >>> m = column_map(["start", "Loại phiếu", "_Vị trí GPS_latitude", "Thị trường muốn đi/Nhật Bản", "meta/instanceID"])
        >>> m.fields["Loại phiếu"], m.fields["_Vị trí GPS_latitude"], m.fields["start"], m.fields["meta/instanceID"]
        ('kind', 'location_lat', 'collected_at', 'instance_id')
        >>> m.option_columns["markets_wanted"], m.labelled
        ({'Thị trường muốn đi/Nhật Bản': 'JP'}, True)
    """
    names = _names(defn)
    by_name = {f.name: f for f in defn.fields}
    geo = {f.name for f in defn.fields if f.type == "geopoint"}
    out = ColumnMap()
    for h in unique_headers(headers):
        # A repeated header is its first occurrence's name again, for the next field of that name.
        base = re.sub(r" \(\d+\)$", "", h) if h not in headers else h
        # Geopoint parts: ours (location_lat), Kobo's (_location_latitude, _<label>_latitude), ODK's (location-Latitude).
        part = re.match(r"^_?(.+?)[_/-](latitude|longitude|altitude|accuracy|precision|lat|lon)$", h, re.IGNORECASE)
        owner = _field_of(part.group(1), names) if part else None
        if owner and owner[0] in geo:
            out.fields[h] = f"{owner[0]}_{GEO_PARTS[part.group(2).lower()]}"
            out.labelled |= owner[1]
            continue
        match = _field_of(base, names, set(out.fields.values()))
        if match:
            out.fields[h] = match[0]
            out.labelled |= match[1]
            continue
        option = _option_column(h, defn, names, by_name)
        if option:
            name, value, labelled = option
            out.option_columns.setdefault(name, {})[h] = value
            out.labelled |= labelled
    if not out.found("instance_id"):
        candidate = next((c for c in INSTANCE_COLUMNS if c in headers), None)
        if candidate:
            out.fields[candidate] = "instance_id"
    if not out.found("collected_at") and "start" in headers:
        out.fields["start"] = "collected_at"
    return out


def _option_column(header: str, defn: FormDefinition, names: dict[str, str], by_name) -> tuple[str, str, bool] | None:
    """(field, choice value, by label?) of a multiple choice's per-option column: ``markets_wanted/JP``,
    ``<question label>/<option label>``."""
    for cut in [m.start() for m in re.finditer("/", header)]:
        question, option = header[:cut], header[cut + 1:]
        found = _field_of(question, names)
        f = by_name.get(found[0]) if found else None
        if f is None or f.type != "select_multiple":
            continue
        value = next((c.value for c in defn.choices[f.choices] if fold(option) in (fold(c.value), fold(c.vi), fold(c.en))), None)
        if value:
            return f.name, value, found[1] or fold(option) != fold(value)
    return None


def missing_columns_message(path: Path, mapping: ColumnMap, headers: list[str], dialect: Dialect) -> str | None:
    """Why the header cannot be used (the essential columns it lacks, what it has, how it was read), or None."""
    missing = [what for name, what in ESSENTIAL.items() if not mapping.found(name)]
    if not missing:
        return None
    shown = ", ".join(repr(h) for h in headers[:25]) + (f" and {len(headers) - 25} more" if len(headers) > 25 else "")
    hint = ""
    if len(headers) == 1 and any(sep in headers[0] for sep in SEPARATORS if sep != dialect.separator):
        hint = " The header is one column: is the file written with another separator?"
    return (f"{path}: no column for {' and '.join(missing)}. Expected the form's field names or labels "
            f"(as Labour Atlas, ODK Central and KoboToolbox write them: e.g. instance_id or meta/instanceID or _uuid, kind, "
            f"collected_at or start, commune_code, location or location_lat/location_lon, full_name, ...); "
            f"found {len(headers)} columns: {shown}; read with {dialect.describe()}.{hint}")


def answers_from_labels(frame: pd.DataFrame, defn: FormDefinition = FORM) -> pd.DataFrame:
    """A labels export's choice answers as values (``Nhật Bản`` -> ``JP``), whole columns at a time.

    Single choices map label to value; a multiple choice's summary column
    joins labels with spaces, which is ambiguous for labels of several words,
    so labels are matched longest first. Values that are already values, or
    that match no label, are left for validation to report.
    """
    out = {}
    for f in defn.fields:
        if f.name not in frame or f.type not in ("select_one", "select_multiple") or f.choices not in defn.choices:
            continue
        choices = defn.choices[f.choices]
        lookup = {fold(label): c.value for c in choices for label in (c.vi, c.en)}
        lookup.update({fold(c.value): c.value for c in choices})
        col = frame[f.name].astype("string")
        if f.type == "select_one":
            translate = {v: lookup.get(fold(v), v) for v in col.dropna().unique()}
        else:
            pattern = re.compile("|".join(re.escape(label) for label in sorted(lookup, key=len, reverse=True)))
            translate = {v: _multiple(v, lookup, pattern) for v in col.dropna().unique()}
        # Each distinct answer is translated once (a million rows hold a few hundred distinct answers).
        out[f.name] = col.map(translate)
    return frame.assign(**out) if out else frame


def _multiple(value: str, lookup: dict[str, str], pattern: re.Pattern) -> str:
    if not isinstance(value, str) or not value.strip():
        return value
    if all(fold(v) in lookup and lookup[fold(v)] == v for v in value.split()):
        return value  # already values
    folded = fold(value)
    found = [lookup[m.group()] for m in pattern.finditer(folded)]
    rest = pattern.sub("", folded).strip(" ,;")
    return " ".join(found) if found and not rest else value


def options_as_values(raw: pd.DataFrame, mapping: ColumnMap) -> dict[str, pd.Series]:
    """A multiple choice's answer rebuilt from its per-option columns (1 = chosen), where the file has no summary column."""
    import pandas as pd  # imported when a table is read (not by every server)
    out = {}
    for name, columns in mapping.option_columns.items():
        if name in mapping.fields.values():
            continue
        chosen = pd.DataFrame({value: raw[col].astype("string").str.strip().isin(["1", "1.0", "True", "true"])
                               for col, value in columns.items()})
        out[name] = chosen.apply(lambda row: " ".join(v for v, yes in row.items() if yes), axis=1).mask(lambda s: s == "")
    return out
