"""Where an import spends its time: wall and CPU seconds per stage, ours and the database's.

The stages of a big import run at once in threads and in two database
backends, so the wall time of the whole says little about which to make
faster. Each stage adds up its wall time, the CPU time of the thread that
runs it (``time.thread_time``) and, when PostgreSQL runs on this machine,
the CPU time of the backend serving it (``/proc/<pid>/stat``): CPU seconds
are steadier than wall seconds on a shared machine.

>>> clock = StageClock()
>>> with clock.measure("validate"):
...     _ = sum(range(1000))
>>> sorted(clock.stages), clock.stages["validate"].calls
(['validate'], 1)
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process on this machine, or None if it cannot be read.

    >>> process_cpu_seconds(os.getpid()) >= 0
    True
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the command: state is field 3, utime 14 and stime 15 (1-based) of proc(5).
    return (int(fields[11]) + int(fields[12])) / _TICKS


def backend_pid(conn) -> int | None:
    """The process id of the PostgreSQL backend behind ``conn``, if it runs on this machine."""
    from sqlalchemy import text

    pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    try:
        with open(f"/proc/{pid}/comm", encoding="ascii") as f:
            return pid if f.read().strip().startswith("postgres") else None
    except OSError:
        return None


@dataclass
class Stage:
    wall: float = 0.0
    cpu: float = 0.0  # this process, the thread running the stage
    db_cpu: float = 0.0  # the database backend serving it (0 when not measurable)
    calls: int = 0


class StageClock:
    """Seconds per named stage; safe to use from several threads (one stage per thread at a time)."""

    def __init__(self) -> None:
        self.stages: dict[str, Stage] = {}
        self._lock = threading.Lock()

    @contextmanager
    def measure(self, name: str, backend: int | None = None) -> Iterator[None]:
        db0 = process_cpu_seconds(backend) if backend else None
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
            db1 = process_cpu_seconds(backend) if backend else None
            with self._lock:
                s = self.stages.setdefault(name, Stage())
                s.wall += wall
                s.cpu += cpu
                s.db_cpu += (db1 - db0) if db0 is not None and db1 is not None else 0.0
                s.calls += 1

    def table(self) -> str:
        """The stages as text lines: wall, CPU here, CPU in the database."""
        lines = [f"{'stage':<22} {'wall s':>8} {'cpu s':>8} {'db cpu s':>9} {'calls':>6}"]
        for name, s in self.stages.items():
            lines.append(f"{name:<22} {s.wall:8.1f} {s.cpu:8.1f} {s.db_cpu:9.1f} {s.calls:6}")
        return "\n".join(lines)
