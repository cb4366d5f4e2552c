"""Formats that need a file to seek in (GeoPackage, shapefile): written in a private temporary directory, sent in
blocks, and the directory removed after, also when the download breaks off."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BLOCK_BYTES = 1 << 20


@contextmanager
def scratch() -> Iterator[Path]:
    """A fresh temporary directory, removed with everything in it on leaving."""
    path = Path(tempfile.mkdtemp(prefix="labour-atlas-export-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def blocks(path: Path) -> Iterator[bytes]:
    """The bytes of ``path`` in blocks of :data:`BLOCK_BYTES`."""
    with open(path, "rb") as f:
        while block := f.read(BLOCK_BYTES):
            yield block
