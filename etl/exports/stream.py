"""An opened export's rows on one connection, in the form each writer takes.

Text formats (GeoJSON, CSV, KML) write Python values chunk by chunk
(:meth:`Stream.chunks`); GeoPackage and shapefile hand GDAL Arrow batches
(:meth:`Stream.batches`), taken from the layer's own Arrow rows where it has
them. Either way the next piece is read (a background thread) while this one
is written, and ``progress(done, total)`` follows the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pyarrow as pa
from sqlalchemy import Connection

from etl.exports.arrow import from_chunks, from_layer
from etl.exports.prefetch import ahead
from etl.exports.target import Target
from maps.sources import Chunk, Rows

T = TypeVar("T", Chunk, pa.RecordBatch)


@dataclass
class Stream:
    rows: Rows
    conn: Connection
    progress: Callable[[int, int], None] | None = None

    def _counted(self, pieces: Iterable[T]) -> Iterator[T]:
        done = 0
        for piece in ahead(iter(pieces)):  # the next piece is read while this one is written
            yield piece
            done += len(piece)
            if self.progress:
                self.progress(done, self.rows.count)

    def chunks(self) -> Iterator[Chunk]:
        """The rows as chunks of Python values."""
        return self._counted(self.rows.chunks(self.conn))

    def batches(self, target: Target, out: pa.Schema, longest: list[int] | None = None) -> Iterator[pa.RecordBatch]:
        """The rows as record batches of ``out`` (see :mod:`etl.exports.arrow`)."""
        if self.rows.batches is None:
            return from_chunks(self.chunks(), target, out, longest)
        layer = self.rows.batches(self.conn, [f.name for f in target.fields])
        return self._counted(from_layer(layer, target, out, longest))
