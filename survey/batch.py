"""Batch validation with pandera, generated from the form definition.

Big files (a million rows) cannot be validated one pydantic object at a
time, so :func:`validate_frame` types the columns once (pandas) and checks
them with a pandera schema built from :data:`survey.definition.FORM`: the
same rules as :mod:`survey.schemas`, vectorised. The result names the failing
fields of every bad row.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict

import numpy as np
import pandas as pd
import pandera.pandas as pa

from geodata.text import text_problem
from geodata.vietnam import TIMEZONE_NAME, VIETNAM_BBOX
from survey.definition import FORM, NO_WORDS, YES_WORDS, FormDefinition
from survey.schemas import ACCURACY_MAX_M, CLOCK_SKEW, EARLIEST_DATE, TEXT_MAX_LENGTH, FieldError, with_article

UUID_RE = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
HAS_OFFSET = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$")
# What PostgreSQL text cannot hold, and control characters no answer needs (geodata.text.text_problem).
# (Lone surrogates cannot come from a decoded file.)
UNSTORABLE = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
# Combining marks: the only text NFC normalisation changes (a name typed as "e" plus accents).
COMBINING = "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"


def type_columns(raw: pd.DataFrame, defn: FormDefinition = FORM) -> tuple[pd.DataFrame, dict[int, list[FieldError]]]:
    """Typed columns from text columns; values that do not parse become errors.

    ``raw`` has one text column per field (empty string or NA for no answer)
    and ``location_lat``, ``location_lon``, ``location_accuracy`` for the GPS.
    """
    out = pd.DataFrame(index=raw.index)
    errors: dict[int, list[FieldError]] = defaultdict(list)

    def text_col(name: str) -> pd.Series:
        col = raw[name] if name in raw else pd.Series(pd.NA, index=raw.index, dtype="string")
        col = col.astype("string").str.strip()
        return col.mask(col == "")

    def flag(mask: pd.Series, field: str, message) -> None:
        for i in mask[mask].index:
            errors[i].append(FieldError(field, message(i) if callable(message) else message))

    # Text as Labour Atlas keeps it: NFC, and nothing PostgreSQL cannot store
    # (a bad cell is that row's error, never the whole file's).
    cleaned = {}
    for name in raw.columns:
        col = raw[name].astype("string")
        bad = col.str.contains(UNSTORABLE, regex=True).fillna(False).astype(bool)
        if bad.any():
            flag(bad, name.removesuffix("_lat").removesuffix("_lon").removesuffix("_accuracy"),
                 lambda i, c=col: text_problem(c[i]) or "contains a character that cannot be stored")
            col = col.mask(bad)
        # Only text with combining marks can change: normalised cell by cell, the rest left as read
        # (normalising every cell of a million rows costs more than the check).
        decomposed = col.str.contains(COMBINING, regex=True).fillna(False).astype(bool)
        if decomposed.any():
            col = col.mask(decomposed, col[decomposed].str.normalize("NFC"))
        cleaned[name] = col
    raw = pd.DataFrame(cleaned, index=raw.index)

    for f in defn.fields:
        if f.type == "geopoint":
            for part in ("lat", "lon", "accuracy"):
                col = text_col(f"{f.name}_{part}")
                num = pd.to_numeric(col, errors="coerce")
                bad = col.notna() & (num.isna() | ~np.isfinite(num.fillna(0)))
                flag(bad, f.name, lambda i, c=col, p=part: f"{p}: {c[i]!r} is not a finite number")
                out[f"{f.name}_{part}"] = num.where(~bad).astype("Float64")
            continue
        col = text_col(f.name)
        if f.type == "integer":
            num = pd.to_numeric(col, errors="coerce")
            bad = col.notna() & (num.isna() | (num % 1 != 0))
            flag(bad, f.name, lambda i, c=col, h=f.hashed: "is not a valid integer" if h else f"{c[i]!r} is not a valid integer")
            out[f.name] = num.where(~bad).astype("Int64")
        elif f.type == "boolean":
            low = col.str.lower()
            bad = col.notna() & ~low.isin(YES_WORDS | NO_WORDS)
            flag(bad, f.name, lambda i, c=col: f"{c[i]!r} is not yes/no")
            value = pd.Series(pd.NA, index=raw.index, dtype="boolean")
            value[low.isin(YES_WORDS).fillna(False).astype(bool)] = True
            value[low.isin(NO_WORDS).fillna(False).astype(bool)] = False
            out[f.name] = value
        elif f.type == "datetime":
            fixed = col.where(col.isna() | col.str.contains(HAS_OFFSET, regex=True), col + "+07:00")
            parsed = pd.to_datetime(fixed, errors="coerce", utc=True, format="ISO8601")
            bad = col.notna() & parsed.isna()
            flag(bad, f.name, lambda i, c=col: f"{c[i]!r} is not a valid date and time")
            out[f.name] = parsed
        elif f.type == "date":
            parsed = pd.to_datetime(col, errors="coerce", format="ISO8601")
            bad = col.notna() & parsed.isna()
            flag(bad, f.name, lambda i, c=col: f"{c[i]!r} is not a valid date")
            # A day, kept as a datetime64 column (whole-column operations downstream).
            out[f.name] = (parsed.dt.tz_localize(None) if parsed.dt.tz is not None else parsed).dt.normalize()
        elif f.type == "select_multiple":
            out[f.name] = col.map(lambda v: v.split() if isinstance(v, str) else None, na_action="ignore")
        elif f.type == "uuid":
            out[f.name] = col.str.lower().str.removeprefix("uuid:")
        else:
            out[f.name] = col
    for f in defn.fields:
        # A reason for a blank answer is not kept beside the answer (as the single-record path does).
        if f.reason_for is not None and f.name in out:
            target = defn.field(f.reason_for)
            given = out[f"{target.name}_lat"].notna() | out[f"{target.name}_lon"].notna() if target.type == "geopoint" \
                else out[target.name].notna()
            out[f.name] = out[f.name].mask(given.astype(bool))
    return out, errors


def _ok(fn):
    """A frame check whose unknowns (NA) pass: emptiness is the required-checks' job."""
    return lambda df: fn(df).astype("boolean").fillna(True).astype(bool)


def batch_schema(defn: FormDefinition = FORM, now: dt.datetime | None = None) -> pa.DataFrameSchema:
    """The pandera schema of a typed survey frame (see :func:`type_columns`)."""
    now = pd.Timestamp(now or dt.datetime.now(dt.UTC))
    kinds = defn.choice_values("kind")
    columns: dict[str, pa.Column] = {}
    checks: list[pa.Check] = []
    for f in defn.fields:
        if f.type == "geopoint":
            for part in ("lat", "lon", "accuracy"):
                columns[f"{f.name}_{part}"] = pa.Column("Float64", nullable=True, required=False)
            columns[f"{f.name}_accuracy"] = pa.Column("Float64", pa.Check.in_range(
                0, ACCURACY_MAX_M, error=f"{f.name}: accuracy must be from 0 to {ACCURACY_MAX_M:,} m"), nullable=True)
            required_cols = [f"{f.name}_lat", f"{f.name}_lon"]
        else:
            col_checks = []
            if f.type == "select_one":
                values = defn.choice_values(f.choices)
                col_checks.append(pa.Check.isin(values, error=f"{f.name}: not one of {', '.join(values)}"))
            elif f.type == "select_multiple":
                allowed = set(defn.choice_values(f.choices))
                # Vectorised: every value of every row, then all() per row.
                col_checks.append(pa.Check(lambda col, a=allowed: col.explode().isin(a).groupby(level=0).all(),
                                           error=f"{f.name}: contains a value not in the list ({', '.join(sorted(allowed))})"))
            elif f.type == "uuid":
                col_checks.append(pa.Check.str_matches(UUID_RE, error=f"{f.name}: not a UUID"))
            elif f.type == "commune":
                col_checks.append(pa.Check.str_matches(r"^[0-9]{5}$", error=f"{f.name}: not a 5-digit commune code"))
            elif f.type == "text":
                col_checks.append(pa.Check.str_length(1, TEXT_MAX_LENGTH, error=f"{f.name}: longer than {TEXT_MAX_LENGTH} characters"))
                if f.format is not None:
                    strip = "[" + re.escape(f.format.ignore) + "]"
                    col_checks.append(pa.Check(lambda col, fmt=f.format, s=strip: col.str.replace(s, "", regex=True)
                                               .str.fullmatch(fmt.pattern), error=f"{f.name}: {f.format.en}"))
            elif f.type == "integer" and f.range_of == "value" and f.minimum is not None:
                col_checks.append(pa.Check.in_range(f.minimum, f.maximum, error=f"{f.name}: out of range {f.minimum}-{f.maximum}"))
            columns[f.name] = pa.Column(None, col_checks, nullable=True, required=False)
            required_cols = [f.name]
        if f.required and f.reason_for is None:
            applies = [k for k in kinds if k in f.kinds]
            every_kind = len(applies) == len(kinds)
            reason = defn.reason_field(f.name)
            for col in required_cols:
                # A question of every kind is required whatever the kind says (even an unknown one).
                needed = (lambda df: pd.Series(True, index=df.index)) if every_kind else (lambda df, a=applies: df["kind"].isin(a))
                if reason is not None:
                    # Blank is allowed when the reason for it is given.
                    def needed(df, n=needed, r=reason.name):
                        return n(df) & (df[r].isna() if r in df else True)
                    message = FieldError.of("required_or_reason", f.name, reason=reason.name,
                                            choices=", ".join(defn.choice_values(reason.choices))).message
                else:
                    message = f"{f.en} is required" + ("" if every_kind else f" for {with_article('/'.join(applies))} record")
                checks.append(pa.Check(
                    _ok(lambda df, c=col, n=needed: ~(n(df) & df[c].isna()) if c in df else ~n(df)),
                    error=f"{f.name}: {message}",
                ))

    def local_year(df: pd.DataFrame) -> pd.Series:
        return df["collected_at"].dt.tz_convert(TIMEZONE_NAME).dt.year.fillna(now.year)

    minx, miny, maxx, maxy = VIETNAM_BBOX

    def in_vietnam(df: pd.DataFrame) -> pd.Series:
        return df["location_lon"].between(minx, maxx) & df["location_lat"].between(miny, maxy)

    def swapped(df: pd.DataFrame) -> pd.Series:
        return df["location_lat"].between(minx, maxx) & df["location_lon"].between(miny, maxy) & ~in_vietnam(df)

    checks += [
        pa.Check(_ok(lambda df: df["consent"].isna() | (df["consent"] == True)),  # noqa: E712
                 error="consent: the person did not consent: nothing personal may be recorded"),
        pa.Check(_ok(lambda df: df["collected_at"].isna() | (df["collected_at"] <= now + CLOCK_SKEW)),
                 error="collected_at: is in the future"),
        pa.Check(_ok(lambda df: df["collected_at"].isna()
                 | (df["collected_at"].dt.tz_convert(TIMEZONE_NAME).dt.date >= defn.published)),
                 error=f"collected_at: is before this form existed ({defn.published})"),
        pa.Check(_ok(lambda df: ~swapped(df)), error="location: latitude and longitude seem swapped"),
        pa.Check(_ok(lambda df: in_vietnam(df) | swapped(df)), error="location: is outside Viet Nam"),
    ]
    for f in defn.fields:
        if f.type == "integer" and f.range_of == "age":
            checks.append(pa.Check(
                _ok(lambda df, n=f.name, f=f: df[n].isna()
                    | df[n].between(local_year(df) - f.maximum, local_year(df) - f.minimum).fillna(True)),
                error=f"{f.name}: out of range: the person must be {f.minimum} to {f.maximum} years old",
            ))
        if f.type == "date":
            checks.append(pa.Check(
                _ok(lambda df, n=f.name: df[n].isna() | df["collected_at"].isna()
                    | (pd.to_datetime(df[n]) <= df["collected_at"].dt.tz_convert(TIMEZONE_NAME).dt.tz_localize(None).dt.normalize())),
                error=f"{f.name}: is after the survey date",
            ))
            checks.append(pa.Check(
                _ok(lambda df, n=f.name: df[n].isna() | (pd.to_datetime(df[n]) >= pd.Timestamp(EARLIEST_DATE))),
                error=f"{f.name}: is before {EARLIEST_DATE}",
            ))
    return pa.DataFrameSchema(columns, checks=checks, strict=False)


def validate_frame(
    raw: pd.DataFrame, defn: FormDefinition = FORM, now: dt.datetime | None = None
) -> tuple[pd.DataFrame, dict[int, list[FieldError]]]:
    """Validate a batch; return the typed frame and the errors of each bad row (by index).

    Example::

        >>> typed, errors = validate_frame(pd.DataFrame({"kind": ["aspirant"], "consent": ["no"], "birth_year": ["x"]}))
        >>> {e.field: e.message for e in errors[0]}["consent"]
        'the person did not consent: nothing personal may be recorded'
        >>> {e.field: e.message for e in errors[0]}["birth_year"]
        "'x' is not a valid integer"
        >>> sorted(e.field for e in errors[0])[:4]
        ['birth_year', 'collected_at', 'commune_code', 'consent']
    """
    typed, errors = type_columns(raw, defn)
    hashed = {f.name for f in defn.fields if f.hashed}
    try:
        batch_schema(defn, now).validate(typed, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases.dropna(subset=["index"])
        for context, column, check, index, value in cases[["schema_context", "column", "check", "index", "failure_case"]].itertuples(
                index=False):
            message = str(check)
            field, _, text = message.partition(": ")
            if column and column in typed and not text:
                field, text = column, message
            text = text or message
            # A column check failed on this cell: show what it held (the file's own value; never a hashed one).
            if context == "Column" and field not in hashed and isinstance(value, str | int | float | list) \
                    and not isinstance(value, bool) and column != "location_accuracy":
                text += f" (got {str(value)[:60]!r})"
            errors[int(index)].append(FieldError(field, text))
    # One message per field and row, as the single-record path gives.
    for i, errs in errors.items():
        seen: dict[str, FieldError] = {}
        for e in errs:
            seen.setdefault(e.field, e)
        errors[i] = list(seen.values())
    return typed, dict(errors)
