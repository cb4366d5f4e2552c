"""A layer's rows as Arrow record batches straight from PostgreSQL, for files of a million rows.

:func:`~maps.sources.base.sql_chunks` hands rows out as Python values: right
for a GeoJSON page, but at a million rows making a Python object of every
value takes as long as all of ``ogr2ogr`` (bench/exports.py). Here the same
select runs as ``COPY (...) TO STDOUT`` in CSV and Arrow's CSV reader (C++, on
its own threads) parses it into typed columns: no Python object per value.

- The columns are typed from the layer's :class:`~maps.sources.base.FieldSpec`\\ s,
  never guessed (a commune code stays text, ``"00123"``).
- NULL and the empty text differ: PostgreSQL writes NULL as nothing and an
  empty text as ``""``; only the first is read as null (and "NA" stays "NA").
- Geometry arrives as bytea text (``\\x0101...``) and is turned into WKB for
  the whole batch at once.
- The COPY's messages are gathered into blocks of whole rows and each block
  parsed at once, in the thread that reads the COPY: the connection is used by
  one thread only, and a reader that stops early cancels the COPY.
- The COPY is one statement for the whole download: it may run as long as the
  reader keeps reading, so the connection's statement timeout is lifted for
  its transaction (each FETCH of :func:`sql_chunks` is timed on its own).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from sqlalchemy import Connection, TextClause

from maps.sources.base import FieldSpec

GEOMETRY = "geometry"
BLOCK_BYTES = 1 << 20
"""CSV bytes per batch: about 8,000 survey records (a few MB in Arrow), few enough to keep memory flat."""

ARROW_TYPES: dict[str, pa.DataType] = {
    "text": pa.string(), "json": pa.string(), "integer": pa.int64(), "real": pa.float64(), "boolean": pa.bool_(),
    "date": pa.date32(), "datetime": pa.timestamp("us", tz="UTC"),
}


def wkb_from_bytea_text(column: pa.Array) -> pa.Array:
    """bytea as PostgreSQL writes it in text (``\\x`` and hex digits) to binary, for the whole column at once.

    >>> wkb_from_bytea_text(pa.array(["\\\\x0101", None, "\\\\xff"])).to_pylist()
    [b'\\x01\\x01', None, b'\\xff']
    """
    digits = pc.utf8_slice_codeunits(column, 2)  # without the "\\x"
    _, offsets, data = digits.buffers()
    starts = np.frombuffer(offsets, dtype=np.int32, count=len(digits) + 1, offset=4 * digits.offset)
    raw = bytes.fromhex(bytes(memoryview(data)[starts[0]:starts[-1]]).decode("ascii")) if data is not None else b""
    validity = pc.is_valid(digits).buffers()[1] if digits.null_count else None  # a bitmap of its own, from row 0
    halves = pa.py_buffer(((starts - starts[0]) // 2).astype(np.int32))
    return pa.Array.from_buffers(pa.binary(), len(digits), [validity, halves, pa.py_buffer(raw)], null_count=digits.null_count)


def sql_batches(conn: Connection, sql: TextClause, params: dict[str, Any], fields: Sequence[FieldSpec],
                wanted: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
    """The rows of ``sql`` (``fields`` in order, then the geometry as bytea WKB, as
    :func:`~maps.sources.base.geometry_sql` selects it) as Arrow batches of the ``wanted`` fields (all by default)
    and ``geometry`` (binary WKB)."""
    compiled = sql.compile(dialect=conn.dialect)
    names = [*(f.name for f in fields), GEOMETRY]
    keep = [*(wanted if wanted is not None else (f.name for f in fields)), GEOMETRY]
    types = {f.name: ARROW_TYPES[f.type] for f in fields} | {GEOMETRY: pa.string()}
    # One thread: the reading thread parses while the writer writes; Arrow's own threads would each keep a heap
    # of their own (tens of MB that stay with the process) for little gain.
    options = (pcsv.ReadOptions(column_names=names, use_threads=False),
               pcsv.ParseOptions(newlines_in_values=True),
               pcsv.ConvertOptions(column_types=types, include_columns=keep, null_values=[""], strings_can_be_null=True,
                                   quoted_strings_can_be_null=False, true_values=["t"], false_values=["f"]))

    def parsed(rows: list[Any]) -> pa.RecordBatch:
        table = pcsv.read_csv(pa.BufferReader(b"".join(rows)), *options)
        columns = [table.column(i).combine_chunks() for i in range(table.num_columns)]
        return pa.RecordBatch.from_arrays([*columns[:-1], wkb_from_bytea_text(columns[-1])], names=keep)

    conn.exec_driver_sql("SELECT set_config('statement_timeout', '0', true)")  # true: for this transaction only
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY ({compiled.string}) TO STDOUT (FORMAT csv)", compiled.construct_params(params)) as copy:
        # One message per row, so a block of whole messages is whole rows (a quoted value may hold a newline).
        block, size = [], 0
        for row in copy:
            block.append(row)
            size += len(row)
            if size >= BLOCK_BYTES:
                yield parsed(block)
                block, size = [], 0
        if block:
            yield parsed(block)
