"""Logging of Labour Atlas: standard :mod:`logging`, one line per event, on standard error.

Every package logs under the ``labour_atlas`` logger (``labour_atlas.requests``
for the one line per HTTP request, ``labour_atlas.errors`` for unexpected
failures, ``labour_atlas.cli`` for the command line). Log lines never carry a
personal field or a token: requests are logged by route template, not by URL.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

LOGGER = "labour_atlas"
FORMATS = {
    # A server's log: when, how bad, where from, what.
    "server": "%(asctime)s %(levelname)s %(name)s: %(message)s",
    # A command typed by a person: "error: what went wrong".
    "cli": "%(levelname_lower)s: %(message)s",
}


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        # Not setStream(): it flushes the previous stream, which may be closed by now.
        self.stream = sys.stderr
        record.levelname_lower = record.levelname.lower()
        super().emit(record)


def get_logger(name: str) -> logging.Logger:
    """The logger ``labour_atlas.<name>``.

    >>> get_logger("requests").name
    'labour_atlas.requests'
    """
    return logging.getLogger(f"{LOGGER}.{name}")


def configure_logging(style: Literal["server", "cli"] = "server", level: int = logging.INFO,
                      also: tuple[str, ...] = ()) -> None:
    """Send Labour Atlas's log records to standard error in ``style`` (idempotent: one handler per logger).

    ``also`` names other loggers to write the same way (the server's own,
    ``uvicorn.error``). Records still propagate to the root logger, so a host
    that configures logging itself (uvicorn's ``--log-config``, pytest)
    receives them too.
    """
    for name in (LOGGER, *also):
        logger = logging.getLogger(name)
        handler = next((h for h in logger.handlers if isinstance(h, _StderrHandler)), None)
        if handler is None:
            handler = _StderrHandler()
            logger.addHandler(handler)
        handler.setFormatter(logging.Formatter(FORMATS[style]))
        logger.setLevel(level)
