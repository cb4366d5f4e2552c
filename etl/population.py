"""Population (or households) per unit and year: the denominators of incident rates.

``labour-atlas import population FILE`` (CSV or XLSX: ``unit_code, structure,
year, population`` and optionally ``households``); all rows or none; importing
again updates. With a denominator for every unit of an area, hot spots are
computed on Empirical-Bayes-smoothed rates instead of counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, text

from etl.tables import Problem, check_rows, read_table, refuse_if_any, require_columns
from geodata.structures import Structure
from geodata.units import resolve_codes


class PopulationIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    unit_code: str = Field(pattern=r"^[0-9]{1,5}$")
    structure: Structure
    year: int = Field(ge=2000, le=2100)
    population: int | None = Field(default=None, ge=0, le=200_000_000)
    households: int | None = Field(default=None, ge=0, le=100_000_000)


@dataclass
class PopulationImportResult:
    path: str
    read_as: str
    rows: int = 0


def import_population(conn: Connection, path: Path) -> PopulationImportResult:
    """Import denominators in the caller's transaction; all rows or none."""
    path = Path(path)
    frame, how = read_table(path)
    require_columns(path, frame, ("unit_code", "structure", "year"), how, one_of=[("population", "households")])
    checked, problems = check_rows(path, frame, PopulationIn)
    for structure in {r.structure.value for _, r in checked}:
        rows = [(n, r) for n, r in checked if r.structure.value == structure]
        found = resolve_codes(conn, structure, sorted({r.unit_code for _, r in rows}))
        for n, r in rows:
            options = found[r.unit_code]
            if len(options) == 1:
                r.unit_code = options[0]
            else:
                problems.append(Problem(n, "unit_code", f"no unit {r.unit_code} in the {structure} structure" if not options
                                        else f"{r.unit_code} could be any of {', '.join(options)}: write its leading zeros"))
    refuse_if_any(path, sorted(problems, key=lambda p: p.row))
    conn.execute(text("""
        INSERT INTO unit_population (structure, unit_code, year, population, households, source)
        SELECT structure, unit_code, year, population, households, :source
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS p(structure text, unit_code text, year smallint, population int, households int)
        ON CONFLICT (structure, unit_code, year) DO UPDATE SET population = excluded.population,
            households = excluded.households, source = excluded.source"""),
        {"rows": json.dumps([r.model_dump(mode="json") for _, r in checked]), "source": f"file:{path.name}"})
    return PopulationImportResult(str(path), how, len(checked))
