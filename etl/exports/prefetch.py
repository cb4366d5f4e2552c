"""Reading the next chunk while the current one is written.

A layer's rows come from a server-side cursor: PostgreSQL makes the next
5,000 rows only when asked, so fetching and writing take turns and each waits
for the other. :func:`ahead` fetches in a thread of its own, one or two chunks
ahead (so memory still holds a few chunks, whatever the number of rows), and
hands them on in order. An error of the reader is raised in the writer; a
writer that stops early (a download broken off) stops the reader.

>>> list(ahead(iter([1, 2, 3])))
[1, 2, 3]
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
DEPTH = 2
_END = object()


def ahead(items: Iterator[T], depth: int = DEPTH) -> Iterator[T]:
    """``items``, produced by a background thread up to ``depth`` ahead of the consumer."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value: object) -> bool:
        while not stop.is_set():
            try:
                q.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="export-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
