"""Import survey CSV files: ODK Central and KoboToolbox exports, and our own CSV.

The file is validated as a batch (pandera, :mod:`survey.batch`); valid rows
are COPYed into a staging table and stored by the same set-based statement as
every other channel (:data:`survey.ingest.STORE_SQL`: declared commune check,
commune assignment, idempotency); every rejected row goes to the quarantine
with its row number. One transaction per file: all of it or nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import text

from geodata.db import get_engine
from survey.batch import validate_frame
from survey.definition import FORM, FormDefinition
from survey.identity import national_id_hash
from survey.ingest import (
    COLUMNS,
    NOT_IN_ANSWERS,
    ROW_TYPES,
    store_rows,
)
from survey.quarantine import Rejected, quarantine_rows

CHUNK = 50_000
GEO_PARTS = {"latitude": "lat", "longitude": "lon", "altitude": "altitude", "accuracy": "accuracy", "precision": "accuracy"}
INSTANCE_COLUMNS = ("instance_id", "instanceID", "meta-instanceID", "meta/instanceID", "_uuid", "KEY")

Progress = Callable[[int, int], None]


class SurveyImportError(ValueError):
    """The file cannot be read at all (nothing was imported)."""


@dataclass
class SurveyImportResult:
    path: str
    rows: int = 0
    counts: Counter = field(default_factory=Counter)
    # (row number in the file, header = row 1; field; message)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)


def column_map(headers: list[str], defn: FormDefinition = FORM) -> dict[str, str]:
    """Map the file's headers to form fields.

    ODK Central writes group paths with '-' (``person-full_name``) and splits
    geopoints into ``location-Latitude`` ...; KoboToolbox writes '/' paths and
    ``_location_latitude`` ...; our own CSV uses the field names.
    """
    fields = {f.name for f in defn.fields}
    geo = {f.name for f in defn.fields if f.type == "geopoint"}
    out: dict[str, str] = {}
    for h in headers:
        kobo = re.match(r"^_(.+)_(latitude|longitude|altitude|precision)$", h)
        parts = re.split(r"[/-]", h.strip())
        last = parts[-1]
        own = re.match(r"^(.+)_(lat|lon|altitude|accuracy)$", h)
        if own and own.group(1) in geo:
            out[h] = h
        elif kobo and kobo.group(1) in geo:
            out[h] = f"{kobo.group(1)}_{GEO_PARTS[kobo.group(2)]}"
        elif len(parts) > 1 and last.lower() in GEO_PARTS and parts[-2] in geo:
            out[h] = f"{parts[-2]}_{GEO_PARTS[last.lower()]}"
        elif last in fields and last not in out.values():
            out[h] = last
    # The instance id: our column, else ODK's meta/instanceID, else Kobo's _uuid or ODK's KEY.
    if "instance_id" not in out.values():
        for candidate in INSTANCE_COLUMNS:
            if candidate in headers:
                out[candidate] = "instance_id"
                break
    if "collected_at" not in out.values() and "start" in headers:
        out["start"] = "collected_at"
    return out


def frame_for_validation(raw: pd.DataFrame, mapping: dict[str, str], defn: FormDefinition) -> pd.DataFrame:
    """Rename mapped columns and split combined "lat lon alt acc" geopoints."""
    frame = raw[list(mapping)].rename(columns=mapping)
    for f in defn.fields:
        if f.type == "geopoint" and f.name in frame and f"{f.name}_lat" not in frame:
            parts = frame[f.name].str.split(expand=True).reindex(columns=range(4))
            for i, part in enumerate(("lat", "lon", "altitude", "accuracy")):
                frame[f"{f.name}_{part}"] = parts[i]
    return frame


def db_rows(typed: pd.DataFrame, row_numbers: pd.Series, source: str, defn: FormDefinition) -> pd.DataFrame:
    """The staging rows (columns of :data:`survey.ingest.ROW_TYPES`) of valid typed rows."""
    answer_fields = [f.name for f in defn.fields if f.name not in NOT_IN_ANSWERS and f.type != "geopoint"]
    answers = typed[answer_fields].copy()
    for f in defn.fields:
        if f.name in answers and f.type == "date":
            answers[f.name] = answers[f.name].map(_iso)
    ids = typed["national_id"]
    return pd.DataFrame(
        {
            "n": row_numbers.to_numpy(),
            "instance_id": typed["instance_id"].to_numpy(),
            "form_id": defn.form_id,
            "form_version": defn.version,
            "kind": typed["kind"].to_numpy(),
            "collected_at": typed["collected_at"].map(lambda t: t.isoformat()).to_numpy(),
            "surveyor": typed["surveyor"].to_numpy(),
            "source": source,
            "commune_code": typed["commune_code"].to_numpy(),
            "lon": typed["location_lon"].to_numpy(dtype="float64"),
            "lat": typed["location_lat"].to_numpy(dtype="float64"),
            "accuracy": typed["location_accuracy"].astype("float64").to_numpy(),
            "mock_location": typed["mock_location"].fillna(False).to_numpy(dtype=bool),
            "id_hash": [national_id_hash(v) if isinstance(v, str) else None for v in ids],
            **{c: typed[c].map(_iso).to_numpy() if c in typed else None for c in COLUMNS},
            "answers": answers.to_json(orient="records", lines=True, force_ascii=False).splitlines(),
        }
    )


def _iso(value):
    """Dates as ISO text; missing values (None, NA, NaT) as None."""
    if value is None or (not isinstance(value, (list, str)) and pd.isna(value)):
        return None
    return value.isoformat() if isinstance(value, dt.date) else value


STAGE_COLUMNS = [c.strip().split()[0] for c in ROW_TYPES.split(",")]


def _copy_stage(conn, csv_text: str) -> None:
    conn.execute(text(f"CREATE TEMP TABLE IF NOT EXISTS survey_stage ({ROW_TYPES}) ON COMMIT DROP"))
    conn.execute(text("TRUNCATE survey_stage"))
    # With the points indexed, PostGIS assigns communes polygon by polygon
    # instead of one index probe per row (several times faster on big files).
    conn.execute(text(
        "CREATE INDEX IF NOT EXISTS survey_stage_point ON survey_stage USING gist (ST_SetSRID(ST_MakePoint(lon, lat), 4326))"
    ))
    cursor = conn.connection.dbapi_connection.cursor()
    with cursor.copy(f"COPY survey_stage ({', '.join(STAGE_COLUMNS)}) FROM STDIN WITH (FORMAT csv)") as copy:
        copy.write(csv_text)
    # The planner needs the row count and the spread of the points, not
    # statistics of every answer.
    conn.execute(text("ANALYZE survey_stage (n, lon, lat, commune_code)"))


@dataclass
class PreparedChunk:
    """One chunk of the file, validated: its rejected rows and its valid rows as COPY text."""

    rows: int
    frame: pd.DataFrame  # the rows as read, columns named by form field (for quarantine)
    row_numbers: pd.Series
    errors: dict[int, list[dict[str, str]]]
    stage_csv: str | None


def prepare_chunk(chunk: pd.DataFrame, mapping: dict[str, str], source: str, defn: FormDefinition,
                  now: dt.datetime | None) -> PreparedChunk:
    """Validate a chunk and build the COPY text of its valid rows (Python only: no database)."""
    # Row numbers as a spreadsheet shows them: the header is row 1.
    row_numbers = pd.Series(chunk.index + 2, index=chunk.index)
    typed, errors = validate_frame(frame_for_validation(chunk, mapping, defn), defn, now)
    found = {i: [e.as_dict() for e in errs] for i, errs in errors.items()}
    good = typed.drop(index=list(errors))
    # The same instance_id twice in one file: only the first is considered.
    repeated = good["instance_id"].duplicated()
    for i in good.index[repeated]:
        found[i] = [{"field": "instance_id", "message": "repeats an earlier row of this file"}]
    good = good[~repeated]
    stage_csv = None
    if not good.empty:
        rows = db_rows(good, row_numbers[good.index], source, defn)
        # One CSV text for the whole chunk: far faster than a Python call per
        # value. Missing values are written unquoted and empty: NULL to COPY.
        stage_csv = rows[STAGE_COLUMNS].to_csv(header=False, index=False, na_rep="", date_format="%Y-%m-%d")
    return PreparedChunk(len(chunk), chunk.rename(columns=mapping), row_numbers, found, stage_csv)


def import_surveys(
    path: Path,
    *,
    defn: FormDefinition = FORM,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
) -> SurveyImportResult:
    """Import one survey CSV; returns counts per outcome and the rejected rows.

    Chunks are validated one ahead in a second thread while PostgreSQL stores
    the previous one, so that the two cores work at the same time.

    Example::

        >>> r = import_surveys(Path("kobo_export.csv"))      # doctest: +SKIP
        >>> dict(r.counts)
        {'created': 980, 'rejected': 20}
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            headers = next(csv.reader(f))
            total = sum(1 for _ in f)
    except (OSError, UnicodeDecodeError, StopIteration) as exc:
        raise SurveyImportError(f"{path}: cannot read as a UTF-8 CSV file ({exc})") from exc
    mapping = column_map(headers, defn)
    if "instance_id" not in mapping.values() or "kind" not in mapping.values():
        raise SurveyImportError(
            f"{path}: no column for {'instance_id' if 'instance_id' not in mapping.values() else 'kind'} "
            f"(columns: {', '.join(headers[:30])})"
        )
    result = SurveyImportResult(str(path))
    source = f"csv:{path.name}"
    chunks = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", chunksize=CHUNK)
    prepared = (prepare_chunk(c, mapping, source, defn, now) for c in chunks)
    with get_engine().begin() as conn, ThreadPoolExecutor(max_workers=1, thread_name_prefix="survey-import") as ahead:
        # Sorting and hashing big chunks in memory, not in temporary files.
        conn.execute(text("SET LOCAL work_mem = '256MB'"))
        # Within a chunk, probable duplicates are found by hashing the new
        # rows, not by sorting them four times (the planner cannot size them).
        conn.execute(text("SET LOCAL enable_mergejoin = off"))
        pending = ahead.submit(next, prepared, None)
        while (chunk := pending.result()) is not None:
            pending = ahead.submit(next, prepared, None)
            _store_chunk(conn, chunk, result, source, path.name, defn)
            result.rows += chunk.rows
            if progress:
                progress(result.rows, total)
    return result


def _store_chunk(conn, chunk: PreparedChunk, result: SurveyImportResult, source: str, file_name: str,
                 defn: FormDefinition) -> None:
    rejected: list[Rejected] = []

    def reject(i: int, row_number: int, reasons: list[dict[str, str]], count: bool = True) -> None:
        raw = dict(chunk.frame.loc[i].items())
        rejected.append(Rejected(source, json.dumps(raw, ensure_ascii=False), raw, reasons, file_name, row_number))
        if count:
            result.counts["rejected"] += 1
        result.rejected.extend((row_number, r["field"], r["message"]) for r in reasons)

    for i, reasons in chunk.errors.items():
        reject(i, int(chunk.row_numbers[i]), reasons)
    if chunk.stage_csv is not None:
        _copy_stage(conn, chunk.stage_csv)
        for r in store_rows(conn, [], source_sql="survey_stage s"):
            i = r.n - 2
            if r.error_field:
                reject(i, r.n, [{"field": r.error_field, "message": r.error_message}])
            elif r.inserted:
                result.counts["created"] += 1
            elif r.stored_hash == r.payload_hash:
                result.counts["exists"] += 1
            else:
                result.counts["conflict"] += 1
                reject(i, r.n, [{"field": "instance_id", "message": "already used by a different submission"}], count=False)
    quarantine_rows(conn, rejected, defn)
