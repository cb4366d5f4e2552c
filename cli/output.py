"""What the command line prints: results on standard output, errors through logging, progress bars."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from geodata.logs import get_logger

# soft_wrap: messages are not broken into lines by rich (the terminal wraps
# them), so a file path or an error can be copied whole, and the output does
# not depend on the width of the terminal or the length of the path.
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
log = get_logger("cli")


def fail(message: str) -> NoReturn:
    """Log ``message`` as an error and end the command with exit status 1."""
    log.error(message)
    raise typer.Exit(1)


def warn(message: str) -> None:
    log.warning(message)


@contextlib.contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on standard error; yields a ``(done, total)`` callback for long work."""
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True) as p:
        task = p.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            p.update(task, completed=done, total=total)

        yield update
