"""Import survey CSV files: ODK Central and KoboToolbox exports, and our own CSV.

The file is validated as a batch (pandera, :mod:`survey.batch`); valid rows
are COPYed into a staging table and stored by the same set-based statements as
every other channel (:mod:`survey.store`: declared commune check, commune
assignment, idempotency, probable duplicates); every rejected row goes to the
quarantine with its row number. One transaction per file: all of it or nothing.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import text

from etl.stage_clock import StageClock, backend_pid
from etl.survey_csv import (
    ColumnMap,
    CsvFormatError,
    Dialect,
    answers_from_labels,
    column_map,
    missing_columns_message,
    options_as_values,
    sniff,
    unique_headers,
)
from geodata.db import get_engine
from geodata.settings import get_settings
from geodata.vietnam import VIETNAM_TZ
from survey.batch import validate_frame
from survey.definition import FORM, FormDefinition
from survey.identity import national_id_hashes
from survey.ingest import COLUMNS, NOT_IN_ANSWERS
from survey.quarantine import Rejected, quarantine_rows
from survey.store import ROW_COLUMNS, ROW_TYPES, check_into, commune_problems, insert_checked, link_bulk_load

CHUNK = 50_000

Progress = Callable[[int, int], None]


class SurveyImportError(ValueError):
    """The file cannot be read at all (nothing was imported)."""


@dataclass
class SurveyImportResult:
    path: str
    dialect: str = ""  # how the file was read (encoding, separator)
    rows: int = 0
    counts: Counter = field(default_factory=Counter)
    # (row number in the file, header = row 1; field; message)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)
    stages: StageClock = field(default_factory=StageClock)  # where the time went (see etl.stage_clock)


NUMERIC_COLUMNS = ("location_lat", "location_lon", "location_accuracy", "location_altitude")


def frame_for_validation(raw: pd.DataFrame, mapping: ColumnMap, dialect: Dialect, defn: FormDefinition) -> pd.DataFrame:
    """The file's columns as form fields, ready for :func:`survey.batch.validate_frame`.

    Renames mapped columns, rebuilds multiple choices from per-option columns,
    splits combined "lat lon alt acc" geopoints, reads decimal commas where the
    file uses them, turns a labels export's answers into values, and restores
    the leading zeros Excel strips from commune codes ("436" is commune 00436).
    """
    frame = raw[list(mapping.fields)].rename(columns=mapping.fields)
    frame = frame.assign(**options_as_values(raw, mapping))
    for f in defn.fields:
        if f.type == "geopoint" and f.name in frame and f"{f.name}_lat" not in frame:
            text = frame[f.name].astype("string")
            if dialect.decimal_comma:
                text = text.str.replace(",", ".", regex=False)
            parts = text.str.split(expand=True).reindex(columns=range(4))
            for i, part in enumerate(("lat", "lon", "altitude", "accuracy")):
                frame[f"{f.name}_{part}"] = parts[i]
    if dialect.decimal_comma:
        numbers = [c for c in (*NUMERIC_COLUMNS, *(f.name for f in defn.fields if f.type == "integer")) if c in frame]
        frame = frame.assign(**{c: frame[c].astype("string").str.replace(",", ".", regex=False) for c in numbers})
    if mapping.labelled:
        frame = answers_from_labels(frame, defn)
    for f in defn.fields:
        if f.type == "commune" and f.name in frame:
            code = frame[f.name].astype("string").str.strip()
            frame[f.name] = code.where(~code.str.fullmatch(r"[0-9]{1,4}").fillna(False), code.str.zfill(5))
    return frame


def db_rows(typed: pd.DataFrame, row_numbers: pd.Series, source: str, defn: FormDefinition) -> pa.Table:
    """The staging rows (columns of :data:`survey.store.ROW_TYPES`) of valid typed rows.

    Whole columns at a time: a call per value would cost more than storing the row.
    """
    answer_fields = [f.name for f in defn.fields if f.name not in NOT_IN_ANSWERS and f.type != "geopoint"]
    answers = typed[answer_fields].copy()
    for f in defn.fields:
        if f.type == "date" and f.name in typed:
            # JSON and COPY both want ISO dates, not timestamps.
            day = typed[f.name].dt.strftime("%Y-%m-%d")
            if f.name in answers:
                answers[f.name] = day
            typed = typed.assign(**{f.name: day})
    n = len(typed)

    def column(name: str) -> pa.Array:
        # Arrow-backed pandas columns hand their arrays over as they are (no Python object per value).
        return pa.array(typed[name], from_pandas=True) if name in typed else pa.nulls(n)

    columns = {
        "n": pa.array(row_numbers.to_numpy(dtype="int64")),
        "instance_id": column("instance_id"),
        "form_id": pa.array([defn.form_id] * n, pa.string()),
        "form_version": pa.array([defn.version] * n, pa.string()),
        "kind": column("kind"),
        # The collection time as an instant (UTC): COPY reads the trailing Z.
        "collected_at": column("collected_at").cast(pa.timestamp("us", tz="UTC")),
        "surveyor": column("surveyor"),
        "source": pa.array([source] * n, pa.string()),
        "commune_code": column("commune_code"),
        "lon": column("location_lon").cast(pa.float64()),
        "lat": column("location_lat").cast(pa.float64()),
        "accuracy": column("location_accuracy").cast(pa.float64()),
        "mock_location": pa.array(typed["mock_location"].fillna(False).to_numpy(dtype=bool)),
        "id_hash": pa.array(national_id_hashes(typed["national_id"].to_numpy()), pa.string()),
        **{c: column(c) for c in COLUMNS},
        "answers": pa.array(answers.to_json(orient="records", lines=True, force_ascii=False).splitlines(), pa.string()),
    }
    table = pa.table([columns[c] for c in ROW_COLUMNS], names=ROW_COLUMNS)
    # Neighbours in the file, neighbours on the map: the staging table's
    # spatial index is built faster and the point-in-polygon join reads each
    # commune's rows from a few pages.
    return table.take(pa.array(spatial_order(table["lon"].to_numpy(zero_copy_only=False),
                                             table["lat"].to_numpy(zero_copy_only=False))))


def spatial_order(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The positions of points sorted along a Z-order curve (about 100 m cells over Viet Nam); no point last.

    >>> spatial_order(np.array([105.0, 102.0, np.nan, 105.001]), np.array([21.0, 10.0, 1.0, 21.0])).tolist()
    [1, 0, 3, 2]
    """
    def spread(v: np.ndarray) -> np.ndarray:
        # The bits of a 16-bit number, one apart (for interleaving).
        v = (v | (v << 8)) & 0x00FF00FF
        v = (v | (v << 4)) & 0x0F0F0F0F
        v = (v | (v << 2)) & 0x33333333
        return (v | (v << 1)) & 0x55555555

    missing = np.isnan(lon) | np.isnan(lat)
    x = np.nan_to_num((lon - 100.0) * 1000.0).clip(0, 65535).astype(np.uint64)
    y = np.nan_to_num(lat * 1000.0).clip(0, 65535).astype(np.uint64)
    key = spread(x) | (spread(y) << np.uint64(1))
    key[missing] = np.iinfo(np.uint64).max
    return np.argsort(key, kind="stable")


def copy_text(rows: pa.Table) -> bytes:
    """The COPY text of staging rows: strings quoted, missing values empty and unquoted (NULL)."""
    sink = io.BytesIO()
    pa_csv.write_csv(rows, sink, pa_csv.WriteOptions(include_header=False))
    return sink.getvalue()


def _copy_stage(conn, csv_bytes: bytes) -> None:
    """COPY the rows of one chunk into the session's staging table, indexed by point."""
    conn.execute(text(f"CREATE TEMP TABLE survey_stage ({ROW_TYPES}) ON COMMIT DROP"))
    cursor = conn.connection.dbapi_connection.cursor()
    with cursor.copy(f"COPY survey_stage ({', '.join(ROW_COLUMNS)}) FROM STDIN WITH (FORMAT csv)") as copy:
        copy.write(csv_bytes)
    # With the points indexed, PostGIS assigns communes polygon by polygon
    # instead of one index probe per row (several times faster on big files);
    # built after the COPY, in one sorted pass, rather than row by row.
    conn.execute(text("CREATE INDEX ON survey_stage USING gist (ST_SetSRID(ST_MakePoint(lon, lat), 4326))"))
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
    staged: int  # valid rows, in stage_csv
    stage_csv: bytes | None
    checked_table: str | None = None  # where the database checked them (see survey.store.check_into)
    declared: list[tuple[int, str, dt.date]] = field(default_factory=list)  # communes of rejected rows, to check


def prepare_chunk(chunk: pd.DataFrame, mapping: ColumnMap, dialect: Dialect, source: str, defn: FormDefinition,
                  now: dt.datetime | None, clock: StageClock | None = None) -> PreparedChunk:
    """Validate a chunk and build the COPY text of its valid rows (Python only: no database)."""
    clock = clock or StageClock()
    # Row numbers as a spreadsheet shows them: the header is row 1.
    row_numbers = pd.Series(chunk.index + 2, index=chunk.index)
    with clock.measure("validate"):
        typed, errors = validate_frame(frame_for_validation(chunk, mapping, dialect, defn), defn, now)
    found = {i: [e.as_dict() for e in errs] for i, errs in errors.items()}
    # Rejected rows are told of their commune too (checked in the database when stored).
    declared = []
    for i, errs in errors.items():
        code, at = typed.at[i, "commune_code"], typed.at[i, "collected_at"]
        if isinstance(code, str) and len(code) == 5 and code.isdigit() and "commune_code" not in {e.field for e in errs}:
            day = (at if pd.notna(at) else pd.Timestamp(now or dt.datetime.now(dt.UTC))).tz_convert(VIETNAM_TZ).date()
            declared.append((i, code, day))
    good = typed.drop(index=list(errors))
    # The same instance_id twice in one file: only the first is considered.
    repeated = good["instance_id"].duplicated()
    for i in good.index[repeated]:
        found[i] = [{"field": "instance_id", "message": "repeats an earlier row of this file"}]
    good = good[~repeated]
    csv_bytes = None
    if not good.empty:
        with clock.measure("staging rows"):
            csv_bytes = copy_text(db_rows(good, row_numbers[good.index], source, defn))
    return PreparedChunk(len(chunk), chunk.rename(columns=mapping.fields), row_numbers, found, len(good), csv_bytes,
                         declared=declared)


# Work tables of a running import are named survey_import_<tag>_<chunk>; the
# import holds a transaction-level advisory lock on its tag, so a table whose
# tag nobody holds was left by an import that died, and is dropped.
WORK_TABLE_PREFIX = "survey_import_"
WORK_LOCK_CLASS = 4242


def drop_orphan_work_tables(conn) -> list[str]:
    """Drop work tables (with personal data) left by imports that were killed."""
    dropped = []
    for (table,) in conn.execute(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE :p"
    ), {"p": WORK_TABLE_PREFIX + "%"}):
        tag = table.removeprefix(WORK_TABLE_PREFIX).split("_")[0]
        if conn.execute(text("SELECT pg_try_advisory_xact_lock(:k, hashtext(:t))"), {"k": WORK_LOCK_CLASS, "t": tag}).scalar():
            conn.execute(text(f'DROP TABLE IF EXISTS "{table}"'))
            dropped.append(table)
    return dropped


def import_surveys(
    path: Path,
    *,
    defn: FormDefinition = FORM,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
) -> SurveyImportResult:
    """Import one survey CSV; returns counts per outcome and the rejected rows.

    Three stages work at once, a chunk apart: Python validates a chunk; a
    second database connection checks the one before (declared commune,
    commune of the point, fingerprint) into a work table; the import's own
    transaction stores the one before that. Only that transaction writes
    records, so the file is imported all or nothing.

    Example::

        r = import_surveys(Path("kobo_export.csv"))
        dict(r.counts)
        # {'created': 980, 'rejected': 20}
    """
    path = Path(path)
    try:
        dialect, headers, total = sniff(path)
    except OSError as exc:
        raise SurveyImportError(f"{path}: cannot read the file ({exc})") from exc
    except CsvFormatError as exc:
        raise SurveyImportError(str(exc)) from None
    mapping = column_map(headers, defn)
    problem = missing_columns_message(path, mapping, headers, dialect)
    if problem:
        raise SurveyImportError(problem)
    result = SurveyImportResult(str(path), dialect=dialect.describe())
    source = f"csv:{path.name}"
    engine = get_engine()
    tag = uuid.uuid4().hex[:16]
    tables: list[str] = []
    columns = unique_headers(headers)
    chunks = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=dialect.encoding, sep=dialect.separator,
                         chunksize=CHUNK, header=0, names=columns)
    clock = result.stages

    def prepare_each() -> Iterator[PreparedChunk]:
        while True:
            with clock.measure("read csv"):
                chunk = next(chunks, None)
            if chunk is None:
                return
            yield prepare_chunk(chunk, mapping, dialect, source, defn, now, clock)

    prepared = prepare_each()

    validating = ThreadPoolExecutor(max_workers=1, thread_name_prefix="survey-validate")
    checking = ThreadPoolExecutor(max_workers=1, thread_name_prefix="survey-check")
    checker = engine.connect()
    with checker.begin():
        checker_pid = backend_pid(checker)

    def check(validated: Future) -> PreparedChunk | None:
        chunk = validated.result()
        if chunk is not None and chunk.stage_csv is not None:
            chunk.checked_table = f"{WORK_TABLE_PREFIX}{tag}_{len(tables)}"
            tables.append(chunk.checked_table)
            with checker.begin():
                with clock.measure("copy to stage", checker_pid):
                    _copy_stage(checker, chunk.stage_csv)
                with clock.measure("check", checker_pid):
                    check_into(checker, "survey_stage s", chunk.checked_table)
            chunk.stage_csv = None
        return chunk

    try:
        with engine.connect() as conn, conn.begin() as transaction:
            pid = backend_pid(conn)
            conn.execute(text("SELECT pg_advisory_xact_lock(:k, hashtext(:t))"), {"k": WORK_LOCK_CLASS, "t": tag})
            drop_orphan_work_tables(conn)
            # Sorting and hashing big chunks in memory, not in temporary files.
            conn.execute(text("SET LOCAL work_mem = '256MB'"))
            # Within a chunk, probable duplicates are found by hashing the new
            # rows, not by sorting them four times (the planner cannot size them).
            conn.execute(text("SET LOCAL enable_mergejoin = off"))
            with clock.measure("defer indexes", pid):
                bulk = is_bulk_load(conn, total)
                deferred = defer_indexes(conn) if bulk else []
            checked = checking.submit(check, validating.submit(next, prepared, None))
            ahead = validating.submit(next, prepared, None)
            while (chunk := checked.result()) is not None:
                checked = checking.submit(check, ahead)
                ahead = validating.submit(next, prepared, None)
                _store_chunk(conn, chunk, result, source, path.name, defn, pid, bulk=bulk)
                result.rows += chunk.rows
                if progress:
                    progress(result.rows, total)
            if bulk:
                with clock.measure("link duplicates", pid):
                    link_bulk_load(conn)
            with clock.measure("rebuild indexes", pid):
                for definition in deferred:
                    conn.execute(text(definition))
            with clock.measure("commit", pid):
                transaction.commit()
    finally:
        validating.shutdown(cancel_futures=True)
        checking.shutdown(cancel_futures=True)
        # The import's transaction is over: its work tables can go.
        with checker.begin():
            for table in tables:
                checker.execute(text(f'DROP TABLE IF EXISTS "{table}"'))
        checker.close()
    return result


# Indexes of survey_record that no statement of a bulk load reads: ON CONFLICT
# uses the primary key (a constraint, kept) and survey_record_key's; the
# duplicate indexes (survey_record_id_hash, survey_record_person) serve the
# per-chunk probes, which a bulk load replaces by one pass at the end
# (survey.store.link_bulk_load).
DEFERRABLE_INDEXES = ("survey_record_commune", "survey_record_declared", "survey_record_review",
                      "survey_record_submitted_by", "survey_record_no_location", "survey_record_departures",
                      "survey_record_id_hash", "survey_record_person")


def is_bulk_load(conn, file_rows: int) -> bool:
    """Is the file bigger than the table (a first load, a national migration)?

    A bulk load links probable duplicates once after its last chunk (by hash
    joins over the table, in the order of collection: survey.store.link_bulk_load)
    instead of probing the duplicate indexes chunk by chunk: less work, and no
    statement whose plan depends on the planner's idea of the table's size
    (statistics taken while the table was empty, by autovacuum after a
    truncate, once made those probes quadratic). A smaller file is linked
    chunk by chunk: one pass over a big table would cost more than its probes.
    """
    stored = conn.execute(text("SELECT count(*) FROM (SELECT FROM survey_record LIMIT :n) r"), {"n": file_rows}).scalar()
    return stored < file_rows


def defer_indexes(conn) -> list[str]:
    """For a bulk load: drop the indexes no statement of it reads; return how to build them again.

    Kept up row by row, these indexes cost about half of storing a row; built
    once at the end (by the caller, in the same transaction: nobody ever
    sees the table without them) they cost a fraction of that. Only for a
    bulk load: for a file smaller than the table rebuilding would cost more
    than it saves. Dropping an index locks the table until the import
    commits, so that other readers and writers of records wait for a bulk
    load (a request waiting past the statement timeout is answered 503 with
    Retry-After); the setting ``bulk_load_locks_records`` (on by default)
    keeps the indexes, and the table open.
    """
    if not get_settings().bulk_load_locks_records:
        return []  # the operator keeps the table open to submissions (see the setting)
    definitions = [d for (d,) in conn.execute(text(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'survey_record' "
        "AND indexname = ANY(:names) ORDER BY indexname"), {"names": list(DEFERRABLE_INDEXES)})]
    for name in DEFERRABLE_INDEXES:
        conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
    return definitions


def _insert_chunk(conn, checked_table: str, bulk: bool = False) -> list:
    """Store a chunk's checked rows; return those not stored now.

    ``bulk``: without linking probable duplicates (done once after the last
    chunk). Every import into an empty table is a bulk load, so no chunk
    probes a table the planner believes empty (any index then costs nothing,
    and a probe on the wrong one walks every row written so far: quadratic).
    """
    return insert_checked(conn, checked_table, unlinked=bulk)


def _store_chunk(conn, chunk: PreparedChunk, result: SurveyImportResult, source: str, file_name: str,
                 defn: FormDefinition, pid: int | None = None, bulk: bool = False) -> None:
    clock = result.stages
    rejected: list[Rejected] = []
    rows_as_read: dict[int, dict[str, str]] = {}

    def reject(i: int, row_number: int, reasons: list[dict[str, str]], count: bool = True) -> None:
        raw = rows_as_read[i] if i in rows_as_read else dict(chunk.frame.loc[i].items())
        rejected.append(Rejected(source, json.dumps(raw, ensure_ascii=False), raw, reasons, file_name, row_number))
        if count:
            result.counts["rejected"] += 1
        result.rejected.extend((row_number, r["field"], r["message"]) for r in reasons)

    with clock.measure("store: rejected", pid):
        for i, problem in commune_problems(conn, chunk.declared).items():
            chunk.errors[i].append(problem)
        # The rejected rows as read, all at once (a row at a time costs 100 µs each).
        if chunk.frame.columns.is_unique:
            rows_as_read.update(chunk.frame.loc[list(chunk.errors)].to_dict("index"))
        for i, reasons in chunk.errors.items():
            reject(i, int(chunk.row_numbers[i]), reasons)
    if chunk.checked_table is not None:
        with clock.measure("store: insert", pid):
            not_stored = _insert_chunk(conn, chunk.checked_table, bulk)
        if created := chunk.staged - len(not_stored):
            result.counts["created"] += created
        for r in not_stored:
            i = r.n - 2
            if r.error_field:
                reject(i, r.n, [{"field": r.error_field, "message": r.error_message}])
            elif r.stored_hash == r.payload_hash:
                result.counts["exists"] += 1
            else:
                result.counts["conflict"] += 1
                reject(i, r.n, [{"field": "instance_id", "message": "already used by a different submission"}], count=False)
    with clock.measure("store: quarantine", pid):
        quarantine_rows(conn, rejected, defn)
