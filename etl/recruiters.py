"""The register of licensed recruitment enterprises, and the events where recruiters (or others) recruited.

``labour-atlas import recruiters FILE``: licence number, enterprise name,
status, licence valid from/to, markets, head-office point. Importing again
updates by licence number.

``labour-atlas import recruitment-events FILE``: a licence number or a
free-text name (the unregistered actors that enforcement is after), date,
point or commune, kind, attendees. An ``event_id`` column keys re-imports;
without one an event is keyed by what it is (actor, date, place, kind), so a
file imported twice stores each event once.

Both are all-or-nothing per file, every problem named with its row and field.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from sqlalchemy import Connection, text

from etl.incidents import Coordinate, Day
from etl.places import PLACED_CTES, PROVINCE_2025, unplaced
from etl.tables import Problem, TableResult, check_rows, read_table, refuse_if_any, require_columns
from geodata.vietnam import in_vietnam
from survey.definition import MARKETS

RecruiterStatus = Literal["active", "suspended", "revoked", "expired"]
EventKind = Literal["seminar", "counselling", "selection", "other"]
MARKET_CODES = {c.value for c in MARKETS}
# How registers write a licence's state in Vietnamese.
STATUS_WORDS = {"đang hoạt động": "active", "hoạt động": "active", "còn hiệu lực": "active", "tạm đình chỉ": "suspended",
                "đình chỉ": "suspended", "thu hồi": "revoked", "bị thu hồi": "revoked", "hết hạn": "expired"}
KIND_WORDS = {"hội thảo": "seminar", "tư vấn": "counselling", "tuyển chọn": "selection", "sơ tuyển": "selection", "khác": "other"}


def _word(table: dict[str, str]):
    return lambda v: table.get(v.strip().lower(), v.strip().lower()) if isinstance(v, str) else v


def _markets(value: Any) -> Any:
    """Markets as codes, written with spaces, commas or semicolons ("JP, KR"); names of markets too."""
    if not isinstance(value, str):
        return value
    names = {c.vi.lower(): c.value for c in MARKETS} | {c.en.lower(): c.value for c in MARKETS}
    out = []
    for part in re.split(r"[,;/]|\s{2,}|\s(?=[A-Z]{2}\b)", value):
        part = part.strip()
        if part:
            out.append(names.get(part.lower(), part.upper()))
    return out


# A licence number as the ministry writes them (123/LĐTBXH-GP, 05/2024/GP-DOLAB): letters, digits and / . - _ : and spaces,
# starting with a letter or digit; so never a formula (=HYPERLINK(...)) nor a sentence of SQL.
LICENCE_PATTERN = r"^[0-9A-Za-zÀ-ỹĐđ][0-9A-Za-zÀ-ỹĐđ/._: -]*$"


class RecruiterIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    licence_number: str = Field(min_length=1, max_length=60, pattern=LICENCE_PATTERN)
    name: str = Field(min_length=1, max_length=300)
    status: Annotated[RecruiterStatus, BeforeValidator(_word(STATUS_WORDS))] = "active"
    valid_from: Day | None = None
    valid_to: Day | None = None
    markets: Annotated[list[str], BeforeValidator(_markets)] = Field(default_factory=list)
    lon: Coordinate | None = None
    lat: Coordinate | None = None

    @model_validator(mode="after")
    def _check(self) -> RecruiterIn:
        unknown = [m for m in self.markets if m not in MARKET_CODES]
        if unknown:
            raise ValueError(f"markets {', '.join(unknown)} are not in the list ({', '.join(sorted(MARKET_CODES))})")
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError(f"valid_to {self.valid_to} is before valid_from {self.valid_from}")
        if (self.lon is None) != (self.lat is None):
            raise ValueError("give both lon and lat of the head office, or neither")
        if self.lon is not None and not in_vietnam(self.lon, self.lat):
            swapped = " (latitude and longitude seem swapped)" if in_vietnam(self.lat, self.lon) else ""
            raise ValueError(f"the head office lon={self.lon}, lat={self.lat} is outside Viet Nam{swapped}")
        return self


class EventIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event_id: str | None = Field(default=None, max_length=100)
    licence_number: str | None = Field(default=None, max_length=60, pattern=LICENCE_PATTERN)
    actor_name: str | None = Field(default=None, max_length=300)
    occurred_on: Day
    kind: Annotated[EventKind, BeforeValidator(_word(KIND_WORDS))] = "other"
    attendees: int | None = Field(default=None, ge=0, le=100_000)
    lon: Coordinate | None = None
    lat: Coordinate | None = None
    commune_code: str | None = Field(default=None, pattern=r"^[0-9]{1,5}$")

    @model_validator(mode="after")
    def _check(self) -> EventIn:
        if not self.licence_number and not self.actor_name:
            raise ValueError("give the recruiter's licence_number, or the name of whoever held the event (actor_name)")
        if (self.lon is None) != (self.lat is None):
            raise ValueError("give both lon and lat, or neither (and a commune_code)")
        if self.lon is None and self.commune_code is None:
            raise ValueError("give the place: lon and lat, or commune_code")
        if self.lon is not None and not in_vietnam(self.lon, self.lat):
            raise ValueError(f"lon={self.lon}, lat={self.lat} is outside Viet Nam")
        if self.commune_code:
            self.commune_code = self.commune_code.zfill(5)
        return self

    def key(self) -> str:
        """The event's identity for re-imports: its id, or what it is."""
        if self.event_id:
            return self.event_id
        what = json.dumps([self.licence_number, self.actor_name, str(self.occurred_on), self.kind, self.lon, self.lat,
                           self.commune_code], ensure_ascii=False)
        return "h:" + hashlib.sha256(what.encode()).hexdigest()[:24]


def import_recruiters(conn: Connection, path: Path) -> TableResult:
    """Import the recruiter register (CSV or XLSX) in the caller's transaction; all rows or none; updates by licence number."""
    path = Path(path)
    frame, how = read_table(path)
    require_columns(path, frame, ("licence_number", "name"), how)
    checked, problems = check_rows(path, frame, RecruiterIn)
    seen: dict[str, int] = {}
    for n, r in checked:
        if r.licence_number in seen:
            problems.append(Problem(n, "licence_number", f"repeats row {seen[r.licence_number]}"))
        seen.setdefault(r.licence_number, n)
    refuse_if_any(path, sorted(problems, key=lambda p: p.row))
    done = conn.execute(text("""
        INSERT INTO recruiter (licence_number, name, status, valid_from, valid_to, markets, head_office, source)
        SELECT licence_number, name, status, valid_from, valid_to, markets,
               CASE WHEN lon IS NOT NULL THEN ST_SetSRID(ST_MakePoint(lon, lat), 4326) END, :source
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(licence_number text, name text, status text, valid_from date,
                                                          valid_to date, markets text[], lon float8, lat float8)
        ON CONFLICT (licence_number) DO UPDATE SET name = excluded.name, status = excluded.status,
            valid_from = excluded.valid_from, valid_to = excluded.valid_to, markets = excluded.markets,
            head_office = excluded.head_office, source = excluded.source, updated_at = now()
        RETURNING (xmax = 0)"""), {"rows": json.dumps([r.model_dump(mode="json") for _, r in checked], ensure_ascii=False),
                                    "source": f"file:{path.name}"}).scalars().all()
    return TableResult(str(path), how, len(checked), sum(done), len(done) - sum(done))


PLACE_EVENTS_SQL = f"""
WITH given AS (
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS e(
        n int, event_key text, licence_number text, actor_name text, occurred_on date, kind text, attendees int,
        lon float8, lat float8, commune_code text)
),{PLACED_CTES}
SELECT c.*, r.licence_number IS NOT NULL AS registered,
       {PROVINCE_2025} AS province_code
FROM c LEFT JOIN recruiter r ON r.licence_number = c.licence_number
"""


def import_events(conn: Connection, path: Path) -> TableResult:
    """Import recruitment events (CSV or XLSX) in the caller's transaction; all rows or none; each event stored once."""
    path = Path(path)
    frame, how = read_table(path)
    require_columns(path, frame, ("occurred_on",), how, one_of=[("licence_number", "actor_name"), ("lon", "commune_code")])
    checked, problems = check_rows(path, frame, EventIn)
    rows = [{"n": n, "event_key": e.key(), **e.model_dump(mode="json", exclude={"event_id"})} for n, e in checked]
    placed = conn.execute(text(PLACE_EVENTS_SQL), {"rows": json.dumps(rows, ensure_ascii=False)}).all() if rows else []
    seen: dict[str, int] = {}
    for r in placed:
        problem = unplaced(r, lambda r: ("lon" if r.lon is not None else "commune_code",
                                         f"the place is in no commune of the {r.structure} structure"),
                           " in the crosswalk: load the reference data first")
        if problem is not None:
            problems.append(problem)
        if r.licence_number and not r.registered:
            problems.append(Problem(r.n, "licence_number", f"licence {r.licence_number} is not in the register: import the "
                                                           "register first, or give the name as actor_name"))
        if r.event_key in seen:
            problems.append(Problem(r.n, "event_id", f"the same event as row {seen[r.event_key]}"))
        seen.setdefault(r.event_key, r.n)
    refuse_if_any(path, sorted(problems, key=lambda p: p.row))
    done = conn.execute(text(f"""
        WITH placed AS ({PLACE_EVENTS_SQL})
        INSERT INTO recruitment_event (province_code, event_key, licence_number, actor_name, occurred_on, kind, attendees, geom,
                                       structure, commune_code, source)
        SELECT p.province_code, p.event_key, p.licence_number,
               coalesce(p.actor_name, (SELECT name FROM recruiter WHERE licence_number = p.licence_number)),
               p.occurred_on, p.kind, p.attendees, p.pt, p.structure, p.commune, :source
        FROM placed p
        ON CONFLICT (province_code, event_key) DO UPDATE SET licence_number = excluded.licence_number,
            actor_name = excluded.actor_name, occurred_on = excluded.occurred_on, kind = excluded.kind,
            attendees = excluded.attendees, geom = excluded.geom, structure = excluded.structure,
            commune_code = excluded.commune_code, source = excluded.source, imported_at = now()
        RETURNING (xmax = 0)"""), {"rows": json.dumps(rows, ensure_ascii=False), "source": f"file:{path.name}"}).scalars().all()
    return TableResult(str(path), how, len(checked), sum(done), len(done) - sum(done))
