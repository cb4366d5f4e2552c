"""The last line of every benchmark: ``BENCH-RESULT {json}``, read by ``bench/run_all.py``.

A benchmark prints what it always printed, then one line::

    BENCH-RESULT {"bench": "ingest", "figures": [{"name": "import 1,000,000 rows", "value": 52.1,
                  "unit": "s", "goal": "< 60 s", "met": true}, ...]}

``goal`` is the goal in words (None: a figure without one, e.g. a baseline);
``met`` is None where the goal does not apply to this run (a short run is
measured on less data than the goal speaks of). A benchmark that cannot run
here (a tool is missing) prints the line with ``"skipped": "<why>"`` and no
figures. The file name starts with ``_``: ``run_all.py`` runs every
``bench/*.py`` except such helpers.

>>> line = result_line("demo", [Figure("ratio", 2.5, "x", ">= 2x", True)])
>>> line.startswith(PREFIX)
True
>>> parse(line)["figures"][0]["met"]
True
>>> parse("some other output") is None
True
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

PREFIX = "BENCH-RESULT "


@dataclass
class Figure:
    """One measured figure and, if it has one, its goal and whether this run met it."""

    name: str
    value: float
    unit: str
    goal: str | None = None
    met: bool | None = None


def judged(met: bool, short: bool) -> bool | None:
    """``met`` for a full run; None for a short one, whose size is not the one the goal speaks of."""
    return None if short else bool(met)


def result_line(bench: str, figures: list[Figure], skipped: str | None = None) -> str:
    body: dict = {"bench": bench, "figures": [asdict(f) | {"value": float(f.value)} for f in figures]}
    if skipped is not None:
        body["skipped"] = skipped
    return PREFIX + json.dumps(body, ensure_ascii=False)


def emit(bench: str, figures: list[Figure], skipped: str | None = None) -> None:
    """Print the result line (plain print, never wrapped: it must stay one line)."""
    print(result_line(bench, figures, skipped), flush=True)


def parse(line: str) -> dict | None:
    """The result of a ``BENCH-RESULT`` line, or None if the line is not one."""
    if not line.startswith(PREFIX):
        return None
    return json.loads(line[len(PREFIX):])
