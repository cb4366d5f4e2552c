"""The XLSForm and XForm of the survey, for ODK Collect and KoboCollect.

Generated from :data:`survey.definition.FORM`, like every other form of the
survey: :func:`xlsform_sheets` turns the definition into the rows of an
XLSForm (Vietnamese labels as the default language, and English),
:func:`xlsform_bytes` writes them as an .xlsx, and :func:`xform_xml` runs
pyxform on that very .xlsx to produce the XForm that phones download.

Field names are those of the definition, so an ODK submission maps back to
the API payload one to one (:mod:`survey.openrosa`). The ``instance_id``
field is not a question: ODK's ``meta/instanceID`` (added by pyxform) holds it.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from functools import lru_cache
from io import BytesIO
from typing import Any

from geodata.text import safe_cell
from survey.definition import FORM, Choice, Field, FormDefinition
from survey.schemas import EARLIEST_DATE

VI = "Tiếng Việt (vi)"
EN = "English (en)"
LANGUAGES = (("vi", VI), ("en", EN))

YES_NO_LIST = "yes_no"
YES_NO = (Choice("yes", "Có", "Yes"), Choice("no", "Không", "No"))
# Long lists get a search box on the phone.
AUTOCOMPLETE_FROM = 16

SURVEY_COLUMNS = (
    "type", "name", f"label::{VI}", f"label::{EN}", f"hint::{VI}", f"hint::{EN}", "required",
    f"required_message::{VI}", f"required_message::{EN}", "relevant", "constraint",
    f"constraint_message::{VI}", f"constraint_message::{EN}", "appearance", "calculation",
)
CHOICES_COLUMNS = ("list_name", "name", f"label::{VI}", f"label::{EN}")
SETTINGS_COLUMNS = ("form_title", "form_id", "version", "default_language", "name")

# The ODK type of each field type of the definition (special cases in _question).
ODK_TYPES = {
    "text": "text",
    "integer": "integer",
    "date": "date",
    "datetime": "dateTime",
    "geopoint": "geopoint",
    "commune": "text",
}


def _both(key: str, vi: str | None, en: str | None) -> dict[str, str]:
    out = {}
    if vi:
        out[f"{key}::{VI}"] = vi
    if en:
        out[f"{key}::{EN}"] = en
    return out


def _relevant(defn: FormDefinition, f: Field) -> str | None:
    """Kind-specific questions are asked only for their kinds."""
    kinds = defn.choice_values("kind") if "kind" in defn.choices else []
    if not kinds or set(kinds) <= set(f.kinds):
        return None
    return " or ".join(f"${{kind}} = '{k}'" for k in kinds if k in f.kinds)


def _integer_constraint(f: Field) -> tuple[str | None, str | None, str | None]:
    """(constraint, message vi, message en) from ``minimum`` / ``maximum``."""
    if f.minimum is None and f.maximum is None:
        return None, None, None
    if f.range_of == "age":
        # The bounds are ages at collection (survey.schemas.check_rules): a range of years relative to this year.
        year = "int(format-date(today(), '%Y'))"
        parts = []
        if f.maximum is not None:
            parts.append(f". >= {year} - {f.maximum}")
        if f.minimum is not None:
            parts.append(f". <= {year} - {f.minimum}")
        return (
            " and ".join(parts),
            f"Tuổi phải từ {f.minimum} đến {f.maximum}",
            f"The person must be {f.minimum} to {f.maximum} years old",
        )
    parts = []
    if f.minimum is not None:
        parts.append(f". >= {f.minimum}")
    if f.maximum is not None:
        parts.append(f". <= {f.maximum}")
    return " and ".join(parts), f"Giá trị từ {f.minimum} đến {f.maximum}", f"A value from {f.minimum} to {f.maximum}"


def _question(defn: FormDefinition, f: Field) -> dict[str, Any] | None:
    """The survey row of one field (None: not a question)."""
    row: dict[str, Any] = {"name": f.name}
    if f.type == "uuid":
        if f.name == "instance_id":
            return None  # ODK's meta/instanceID, added by pyxform
        row |= {"type": "calculate", "calculation": "uuid()"}
        return row
    if f.type == "datetime" and f.name == "collected_at":
        row["type"] = "start"  # recorded by the phone when the form is opened
        return row
    if f.type in ("select_one", "select_multiple"):
        row["type"] = f"{f.type} {f.choices}"
        if len(defn.choices[f.choices]) >= AUTOCOMPLETE_FROM:
            row["appearance"] = "autocomplete"
    elif f.type == "boolean":
        row["type"] = f"select_one {YES_NO_LIST}"
    else:
        row["type"] = ODK_TYPES[f.type]
    row |= _both("label", f.vi, f.en)
    row |= _both("hint", f.hint_vi, f.hint_en)
    # A question whose blank answer may be explained (the GPS) is not required itself: its reason is, when it is blank.
    if f.required and defn.reason_field(f.name) is None:
        row["required"] = "yes"
        row |= _both("required_message", f"Phải trả lời: {f.vi}", f"Required: {f.en}")
    relevant = _relevant(defn, f)
    if f.reason_for is not None:
        blank = f"string-length(${{{f.reason_for}}}) = 0"
        relevant = f"({relevant}) and {blank}" if relevant else blank
    if relevant:
        row["relevant"] = relevant
    constraint = msg_vi = msg_en = None
    if f.name == "consent":
        constraint = ". = 'yes'"
        msg_vi = "Không có sự đồng ý thì không được ghi phiếu"
        msg_en = "Without consent, nothing may be recorded"
    elif f.type == "commune":
        constraint = "regex(., '^[0-9]{5}$')"
        msg_vi, msg_en = "Mã xã gồm 5 chữ số", "A commune code has 5 digits"
        row["appearance"] = "numbers"
    elif f.type == "integer":
        constraint, msg_vi, msg_en = _integer_constraint(f)
    elif f.format is not None:
        # The same check as the server's: the pattern, after the ignored characters are removed.
        constraint = f"regex(translate(., '{f.format.ignore}', ''), '^({f.format.pattern})$')"
        msg_vi, msg_en = f.format.vi, f.format.en
    elif f.type == "date":
        # Server rules: not after the survey, not before 1980.
        constraint = f". >= date('{EARLIEST_DATE.isoformat()}') and . <= today()"
        msg_vi, msg_en = "Ngày từ năm 1980 đến hôm nay", "A date from 1980 to today"
    if constraint:
        row["constraint"] = constraint
        row |= _both("constraint_message", msg_vi, msg_en)
    return row


def xlsform_sheets(defn: FormDefinition = FORM) -> dict[str, list[dict[str, Any]]]:
    """The rows of the XLSForm sheets ``survey``, ``choices`` and ``settings``.

    Example::

        >>> sheets = xlsform_sheets()
        >>> sheets["settings"][0]["default_language"]
        'Tiếng Việt (vi)'
        >>> next(r for r in sheets["survey"] if r["name"] == "consent")["type"]
        'select_one yes_no'
    """
    survey = [row for f in defn.fields if (row := _question(defn, f)) is not None]
    used = {r["type"].split()[1] for r in survey if r["type"].startswith(("select_one ", "select_multiple "))}
    lists = dict(defn.choices)
    lists.setdefault(YES_NO_LIST, YES_NO)
    choices = [
        {"list_name": name, "name": c.value, f"label::{VI}": c.vi, f"label::{EN}": c.en}
        for name, items in lists.items() if name in used
        for c in items
    ]
    settings = [{
        "form_title": defn.title_vi,
        "form_id": defn.form_id,
        "version": defn.version,
        "default_language": VI,
        "name": defn.form_id,  # the root element of submissions
    }]
    return {"survey": survey, "choices": choices, "settings": settings}


def xlsform_bytes(defn: FormDefinition = FORM) -> bytes:
    """The XLSForm as an .xlsx file (for Kobo / ODK Central upload, or to read)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    sheets = xlsform_sheets(defn)
    columns = {"survey": SURVEY_COLUMNS, "choices": CHOICES_COLUMNS, "settings": SETTINGS_COLUMNS}
    wb = Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        header = [c for c in columns[name] if any(c in r for r in rows)]
        header += [k for r in rows for k in r if k not in header]
        ws.append([safe_cell(c) for c in header])
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for r in rows:
            # Through safe_cell like every cell the app writes: openpyxl stores text starting with "=" as a formula.
            ws.append([safe_cell(r.get(c)) for c in header])
        ws.freeze_panes = "A2"
    # Same definition, same file (no "created now" timestamp).
    stamp = dt.datetime.combine(defn.published, dt.time())
    wb.properties.created = stamp
    wb.properties.modified = stamp
    wb.properties.title = defn.title_vi
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


@lru_cache(maxsize=16)
def xform_xml(defn: FormDefinition = FORM) -> str:
    """The XForm (ODK XML) that pyxform makes of :func:`xlsform_bytes`."""
    from pyxform.xls2xform import convert

    result = convert(xlsform=xlsform_bytes(defn), file_type=".xlsx", form_name=defn.form_id, pretty_print=True)
    return result.xform


def validate_xform(xml: str) -> list[str]:
    """Run ODK Validate (shipped with pyxform; needs Java) on an XForm.

    Returns its warnings; raises ``ODKValidateError`` if the form is invalid.
    """
    from pyxform.validators import odk_validate

    fd, path = tempfile.mkstemp(suffix=".xml", prefix="xform-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(xml)
        return odk_validate.check_xform(path)
    finally:
        os.unlink(path)
