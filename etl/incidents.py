"""Incidents: reports of illegal brokerage, recruitment fraud, trafficking and irregular departure.

An incident has an id (given by the reporting system, or made when created
through the API), a type, a date, a place (a point, or only a commune), the
number of persons affected (a count: never a name), a status and a source.
Officers and police analysts create them (``POST /api/v1/incidents``) or
import them (``labour-atlas import incidents FILE``, CSV or XLSX; all rows or
none; importing the same ``incident_id`` again updates it).

Each incident is placed in the commune of the boundary structure in force on
its date (the point's commune, or the commune given), and carries the 2025
province it lies in.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Connection, text

from etl.places import PLACED_CTES, PROVINCE_2025, unplaced
from etl.tables import Problem, TableResult, check_rows, read_table, refuse_if_any, require_columns
from geodata.errors import InvalidInput
from geodata.vietnam import in_vietnam

IncidentType = Literal["illegal_brokerage", "recruitment_fraud", "trafficking", "irregular_departure", "other"]
IncidentStatus = Literal["reported", "verified", "closed"]
INCIDENT_TYPES: tuple[str, ...] = get_args(IncidentType)
DAY_FIRST = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


def day(value: Any) -> Any:
    """A date as ISO (2025-03-04) or as Vietnamese write it (4/3/2025, day first)."""
    if isinstance(value, str):
        m = DAY_FIRST.match(value.strip())
        if m:
            try:
                return dt.date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
            except ValueError as exc:
                raise ValueError(f"{value.strip()} is not a date (day first: {exc})") from None
        return value.strip()[:10] if re.match(r"^\d{4}-\d{2}-\d{2}[T ]", value.strip()) else value
    return value


Day = Annotated[dt.date, BeforeValidator(day)]


def decimal(value: Any) -> Any:
    """Decimal commas, as Excel writes them on Vietnamese regional settings."""
    return value.replace(",", ".") if isinstance(value, str) else value


Coordinate = Annotated[float, BeforeValidator(decimal), Field(allow_inf_nan=False)]


class IncidentIn(BaseModel):
    """One incident as a file row or an API body."""

    model_config = ConfigDict(extra="forbid")

    incident_id: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:/-]+$")
    type: IncidentType
    occurred_on: Day
    lon: Coordinate | None = None
    lat: Coordinate | None = None
    commune_code: str | None = Field(default=None, pattern=r"^[0-9]{1,5}$")
    persons_affected: int = Field(default=0, ge=0, le=100_000)
    status: IncidentStatus = "reported"
    source: str = Field(default="", max_length=200)

    @field_validator("occurred_on")
    @classmethod
    def _not_in_the_future(cls, value: dt.date) -> dt.date:
        if value > dt.date.today() + dt.timedelta(days=1):
            raise ValueError(f"{value} is in the future")
        return value

    @model_validator(mode="after")
    def _place(self) -> IncidentIn:
        if (self.lon is None) != (self.lat is None):
            raise ValueError("give both lon and lat, or neither (and a commune_code)")
        if self.lon is None and self.commune_code is None:
            raise ValueError("give the place: lon and lat, or commune_code")
        if self.lon is not None and not in_vietnam(self.lon, self.lat):
            swapped = " (latitude and longitude seem swapped)" if in_vietnam(self.lat, self.lon) else ""
            raise ValueError(f"lon={self.lon}, lat={self.lat} is outside Viet Nam{swapped}")
        if self.commune_code is not None:
            self.commune_code = self.commune_code.zfill(5)  # a spreadsheet's 4 is commune 00004
        return self


# Each incident placed in the structure of its date: the commune covering its
# point, else the commune given; the 2025 province through the crosswalk.
PLACE_SQL = f"""
WITH given AS (
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS i(
        n int, incident_id text, type text, occurred_on date, lon float8, lat float8, commune_code text,
        persons_affected int, status text, source text)
),{PLACED_CTES}
SELECT c.n, c.incident_id, c.type, c.occurred_on, c.pt, c.structure, c.commune, c.persons_affected, c.status, c.source,
       {PROVINCE_2025} AS province_code
FROM c
"""

UPSERT_SQL = f"""
WITH placed AS ({PLACE_SQL}),
moved AS (
    -- An incident re-imported in another province: its old row goes (unique keys hold the province).
    DELETE FROM incident o USING placed p
    WHERE o.incident_id = p.incident_id AND o.province_code IS DISTINCT FROM p.province_code
    RETURNING o.incident_id
)
INSERT INTO incident (province_code, incident_id, type, occurred_on, geom, structure, commune_code, persons_affected,
                      status, source, created_by)
SELECT province_code, incident_id, type, occurred_on, pt, structure, commune, persons_affected, status, source, :who
FROM placed
ON CONFLICT (province_code, incident_id) DO UPDATE SET
    type = excluded.type, occurred_on = excluded.occurred_on, geom = excluded.geom, structure = excluded.structure,
    commune_code = excluded.commune_code, persons_affected = excluded.persons_affected, status = excluded.status,
    source = excluded.source, updated_at = now()
RETURNING incident_id, (xmax = 0) AS inserted
"""


def place_problems(conn: Connection, incidents: list[tuple[int, IncidentIn]]) -> list[Problem]:
    """Incidents that cannot be placed: no structure on their date, a point in no commune, an unknown commune."""
    rows = json.dumps([{"n": n, **i.model_dump(mode="json")} for n, i in incidents], ensure_ascii=False)

    def no_commune(r) -> tuple[str, str]:
        given = next(i for n, i in incidents if n == r.n)
        if given.lon is not None:
            return "lon", (f"the point lon={given.lon}, lat={given.lat} is in no commune of the {r.structure} "
                           "structure (at sea, or where no boundary is loaded)")
        return "commune_code", f"no commune {given.commune_code} in the {r.structure} structure in force on {r.occurred_on}"

    placed = conn.execute(text(PLACE_SQL), {"rows": rows})
    return [problem for r in placed if (problem := unplaced(r, no_commune)) is not None]


def store_incidents(conn: Connection, incidents: list[IncidentIn], who: str | None) -> tuple[int, int, list[str]]:
    """Insert or update incidents (placed already checked); returns (inserted, updated, ids)."""
    for i in incidents:
        if i.incident_id is None:
            i.incident_id = f"INC-{uuid.uuid4().hex[:12]}"
    rows = json.dumps([{"n": n, **i.model_dump(mode="json")} for n, i in enumerate(incidents)], ensure_ascii=False)
    done = conn.execute(text(UPSERT_SQL), {"rows": rows, "who": who}).all()
    inserted = sum(r.inserted for r in done)
    return inserted, len(done) - inserted, [r.incident_id for r in done]


def create_incident(conn: Connection, incident: IncidentIn, who: str) -> str:
    """Store one incident sent through the API; raises :class:`InvalidInput` naming the field. Returns its id."""
    problems = place_problems(conn, [(0, incident)])
    if problems:
        raise InvalidInput(problems[0].message, loc=("body", problems[0].field))
    _, _, (incident_id,) = store_incidents(conn, [incident], who)
    return incident_id


def import_incidents(conn: Connection, path: Path, who: str | None = None) -> TableResult:
    """Import an incidents file (CSV or XLSX) in the caller's transaction; all rows or none; the same id again updates.

    Example (needs a database)::

        import_incidents(conn, Path("vu_viec_2026.xlsx"))
        # TableResult(path='vu_viec_2026.xlsx', rows=120, inserted=118, updated=2)
    """
    path = Path(path)
    frame, how = read_table(path)
    require_columns(path, frame, ("incident_id", "type", "occurred_on"), how, one_of=[("lon", "commune_code")])
    frame = frame[[c for c in frame.columns if c in IncidentIn.model_fields]]
    checked, problems = check_rows(path, frame, IncidentIn)
    missing_id = [Problem(n, "incident_id", "an imported incident needs its id (importing again updates it)")
                  for n, i in checked if i.incident_id is None]
    seen: dict[str, int] = {}
    for n, i in checked:
        if i.incident_id in seen:
            problems.append(Problem(n, "incident_id", f"repeats row {seen[i.incident_id]}"))
        seen.setdefault(i.incident_id, n)
    problems += missing_id + (place_problems(conn, checked) if checked else [])
    refuse_if_any(path, sorted(problems, key=lambda p: p.row))
    inserted, updated, _ = store_incidents(conn, [i for _, i in checked], who)
    return TableResult(str(path), how, len(checked), inserted, updated)
