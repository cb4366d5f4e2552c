"""Run every benchmark under bench/ and print one table of their figures, goals and ratios.

    .venv/bin/python bench/run_all.py                 # short runs (each under about a minute)
    .venv/bin/python bench/run_all.py --full          # the full runs (an hour or more)
    .venv/bin/python bench/run_all.py ingest locate   # only these
    .venv/bin/python bench/run_all.py --list          # what would run

Every ``bench/*.py`` is a benchmark (this file and helpers whose name starts
with ``_`` excepted): new ones are found, not listed here. Each runs in its
own Python process, one after the other (they start their own PostgreSQL
clusters and servers and must not measure each other), with ``--short``
unless ``--full`` is given. Its output goes to ``bench/out/<name>.log``; its
last line ``BENCH-RESULT {json}`` (see ``bench/_result.py``) gives its
figures. A benchmark that fails, gives no such line or runs past
``--timeout`` is shown as failed with the end of its error output, and the
others still run; one that cannot run here (a tool is missing) says so and
is shown as skipped.

The exit status is 0 when every benchmark ran (skipped ones included) and
no goal that was judged was missed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _result import parse  # noqa: E402  (bench/ is not a package)

LOG_DIR = HERE / "out"


def discover(folder: Path = HERE) -> list[str]:
    """The benchmarks in ``folder``: every ``*.py`` but this runner and ``_`` helpers, by name.

    >>> "ingest" in discover() and "run_all" not in discover() and "_result" not in discover()
    True
    """
    me = Path(__file__).name
    return sorted(p.stem for p in folder.glob("*.py") if p.name != me and not p.name.startswith("_"))


@dataclass
class Outcome:
    """What one benchmark run gave."""

    bench: str
    seconds: float
    status: str  # ok, failed, skipped
    figures: list[dict] = field(default_factory=list)
    note: str = ""


def environment() -> dict[str, str]:
    """The benchmarks' environment: this checkout's packages first (not an installed copy's)."""
    path = os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))
    return os.environ | {"PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


def run_one(name: str, full: bool, timeout: float) -> Outcome:
    cmd = [sys.executable, str(HERE / f"{name}.py"), *([] if full else ["--short"])]
    LOG_DIR.mkdir(exist_ok=True)
    log = LOG_DIR / f"{name}.log"
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=out, text=True, timeout=timeout,
                                  cwd=HERE.parent, env=environment())
        except subprocess.TimeoutExpired as exc:
            stdout = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            out.write(stdout)
            return Outcome(name, time.perf_counter() - started, "failed", note=f"no result within {timeout:.0f} s")
        out.write("\n--- standard output ---\n" + proc.stdout)
    seconds = time.perf_counter() - started
    lines = proc.stdout.strip().splitlines()
    result = None
    try:
        result = parse(lines[-1]) if lines else None
    except ValueError as exc:
        return Outcome(name, seconds, "failed", note=f"unreadable BENCH-RESULT line: {exc}")
    if proc.returncode != 0 or result is None:
        err = log.read_text(encoding="utf-8", errors="replace").split("\n--- standard output ---\n")[0].strip()
        why = (err.splitlines() or lines or ["no output"])[-1]
        if result is None and proc.returncode == 0:
            why = "no BENCH-RESULT line at the end of its output"
        return Outcome(name, seconds, "failed", figures=(result or {}).get("figures", []),
                       note=f"exit status {proc.returncode}: {why}"[:300])
    if result.get("skipped"):
        return Outcome(name, seconds, "skipped", note=result["skipped"])
    return Outcome(name, seconds, "ok", figures=result.get("figures", []))


def value_text(value: float, unit: str) -> str:
    """A figure as read: 1,234 rows/s, 52.1 s, 3.20x, 0.0123 s.

    >>> value_text(52.123, "s"), value_text(1234.5, "rows/s"), value_text(3.2, "x"), value_text(0.01234, "s")
    ('52.1 s', '1,234 rows/s', '3.20x', '0.0123 s')
    """
    if unit == "x":
        return f"{value:.2f}x"
    if abs(value) >= 100:
        number = f"{value:,.0f}"
    elif abs(value) >= 1:
        number = f"{value:.1f}"
    else:
        number = f"{value:.3g}"
    return f"{number} {unit}".strip()


def table(outcomes: list[Outcome], full: bool) -> Table:
    t = Table(title=f"Benchmarks ({'full' if full else 'short'} runs)", show_lines=False)
    t.add_column("bench", style="bold")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_column("goal")
    t.add_column("met", justify="center")
    for o in outcomes:
        first = f"{o.bench}\n({o.seconds:.0f} s)"
        if o.status != "ok":
            style = "red" if o.status == "failed" else "yellow"
            t.add_row(first, f"[{style}]{o.status.upper()}[/]", "", o.note, "", end_section=not o.figures)
        for i, f in enumerate(o.figures):
            met = {True: "[green]yes[/]", False: "[red]NO[/]", None: "-" if f.get("goal") is None else "n/a (short)"}[f.get("met")]
            t.add_row(first if i == 0 and o.status == "ok" else "", f["name"], value_text(f["value"], f.get("unit", "")),
                      f.get("goal") or "", met, end_section=i == len(o.figures) - 1)
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="only these benchmarks (default: every bench/*.py)")
    parser.add_argument("--full", action="store_true", help="full runs (default: each with --short)")
    parser.add_argument("--timeout", type=float, help="seconds a benchmark may take (default 600 short, 7200 full)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks found and stop")
    args = parser.parse_args(argv)
    found = discover()
    unknown = [n for n in args.names if n not in found]
    if unknown:
        parser.error(f"no such benchmark: {', '.join(unknown)} (found: {', '.join(found)})")
    names = args.names or found
    # A terminal sets the width; a log or a pipe gets a table wide enough to read.
    console = Console(width=None if sys.stdout.isatty() else 150)
    if args.list:
        console.print("\n".join(names))
        return 0
    timeout = args.timeout or (7200 if args.full else 600)
    outcomes = []
    for name in names:
        console.print(f"running {name} ({'full' if args.full else 'short'}; log bench/out/{name}.log) ...")
        o = run_one(name, args.full, timeout)
        console.print(f"  {o.status} in {o.seconds:.0f} s" + (f": {o.note}" if o.note else ""), highlight=False)
        outcomes.append(o)
    console.print(table(outcomes, args.full))
    load = os.getloadavg()
    console.print(f"load average at the end {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f} on {os.cpu_count()} CPUs; "
                  "timings on a shared machine vary: compare the ratios, measured within each run")
    bad = [o for o in outcomes if o.status == "failed" or any(f.get("met") is False for f in o.figures)]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
