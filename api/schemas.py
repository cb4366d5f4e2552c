"""The response models of the JSON API: the declared whitelist of what each answer may hold.

A route's ``response_model`` (or the model its body is built from) names
every field a caller can receive; anything else a query happens to return is
dropped. Personal fields appear only in the models of routes that officers
and senders may call (:class:`SurveyRecord`, :class:`QuarantineEntry`);
aggregates for leaders, planners and police carry counts only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from survey.definition import RecordKind
from survey.records import ReviewStatus


class Out(BaseModel):
    """A response model: fields not declared are dropped, never passed through."""

    model_config = ConfigDict(extra="ignore")


# -- health --------------------------------------------------------------------------
class Health(Out):
    status: Literal["ok", "unavailable"]
    database: str
    postgis: str | None = None
    admin_units: int | None = None


# -- units (GeoJSON) -------------------------------------------------------------------
class UnitProperties(Out):
    structure: str
    code: str
    name: str
    unit_type: str | None
    level: str
    parent_code: str | None
    valid_from: dt.date | None
    valid_to: dt.date | None
    geom_quality: Literal["official", "approximate"] | None = Field(
        description="official polygon, or approximate (a Voronoi cell of the commune centre); null: no polygon")
    geom_source: str | None


class UnitFeature(Out):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict[str, Any] | None = Field(description="GeoJSON geometry (WGS 84), or null")
    properties: UnitProperties


class UnitCollection(Out):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    numberMatched: int  # noqa: N815 (OGC API Features' name)
    numberReturned: int  # noqa: N815
    features: list[UnitFeature]


class LocatedUnit(Out):
    code: str
    name: str
    unit_type: str | None
    level: str
    geom_quality: str | None


class Location(Out):
    structure: str
    date: dt.date
    province: LocatedUnit | None = None
    district: LocatedUnit | None = None
    commune: LocatedUnit | None = None


# -- survey records ----------------------------------------------------------------------
class DuplicateLink(Out):
    instance_id: str
    reason: Literal["national_id", "name_birth_year_commune"]


class FieldProblem(Out):
    field: str
    message: str


class RecordSummary(Out):
    """What a sender is told about its stored record: flags and places, nothing personal."""

    kind: RecordKind
    structure: str
    declared_commune_code: str
    assigned_commune_code: str | None
    location_mismatch: bool
    mismatch_distance_m: float | None
    accuracy_flag: bool
    mock_location: bool
    probable_duplicates: list[DuplicateLink]
    review_status: ReviewStatus


class SubmissionOutcome(Out):
    """The answer to one submission: created, exists, conflict, rejected or forbidden."""

    status: Literal["created", "exists", "conflict", "rejected", "forbidden"]
    instance_id: str | None
    detail: str | list[dict[str, Any]] | None = Field(
        default=None, description="For errors: a message, or a list of {loc, msg, type} for rejected fields")
    errors: list[FieldProblem] | None = Field(default=None, description="Rejected fields with their messages")
    quarantine_id: int | None = None
    record: RecordSummary | None = None


class BatchItemOutcome(SubmissionOutcome):
    index: int = Field(description="Position of the submission in the batch, from 0")


class BatchOutcome(Out):
    counts: dict[str, int]
    results: list[BatchItemOutcome]


class SurveyRecord(Out):
    """A stored survey record with its personal fields (officers of its area and its sender only; audited)."""

    instance_id: str
    province_code: str | None
    kind: RecordKind
    form_id: str
    form_version: str
    collected_at: dt.datetime
    submitted_at: dt.datetime
    surveyor: str
    source: str
    structure: str
    declared_commune_code: str
    assigned_commune_code: str | None
    lat: float | None
    lon: float | None
    gps_accuracy_m: float | None
    accuracy_flag: bool
    location_mismatch: bool
    mismatch_distance_m: float | None
    mock_location: bool
    has_national_id: bool = Field(description="Whether a national ID was given (only its keyed hash is stored)")
    full_name: str | None
    birth_year: int | None
    sex: str | None
    departure_date: dt.date | None
    market: str | None
    recruiter_licence: str | None
    answers: dict[str, Any]
    review_status: ReviewStatus
    review_comment: str | None
    reviewed_by: str | None
    reviewed_at: dt.datetime | None
    probable_duplicates: list[DuplicateLink]


class QuarantineEntry(Out):
    """A rejected payload, kept verbatim (personal fields removed where consent was missing)."""

    id: int
    received_at: dt.datetime
    source: str
    file_name: str | None
    row_number: int | None
    instance_id: str | None
    payload_text: str
    reasons: list[dict[str, Any]]
    personal_removed: bool
    status: Literal["open", "resubmitted", "dismissed"]
    resolved_instance_id: str | None
    commune_code: str | None
    submitted_by: str | None


# -- data-subject rights -------------------------------------------------------------------
class QuarantinedForPerson(Out):
    id: int
    received_at: dt.datetime
    source: str
    file_name: str | None
    row_number: int | None
    payload_text: str
    reasons: list[dict[str, Any]]


class PersonExport(Out):
    records: list[SurveyRecord]
    quarantine: list[QuarantinedForPerson]


class PersonErasure(Out):
    erased_records: list[str]
    erased_quarantine: list[str]


# -- audit ---------------------------------------------------------------------------------
class AuditEntry(Out):
    id: int
    at: dt.datetime
    actor: str
    role: str | None
    method: str
    route: str
    purpose: str
    record_ids: list[str]


# -- aggregates ----------------------------------------------------------------------------
class Cell(Out):
    """One count: ``null`` with ``suppressed: true`` where it is hidden."""

    count: int | None
    suppressed: bool


class UnitCounts(Out):
    code: str
    name: str
    level: str
    parent_code: str | None
    geom_quality: str | None
    aspirant: Cell
    returnee: Cell
    departure: Cell
    all: Cell


class ReleaseRef(Out):
    """The release a suppressed count comes from: released tables never change; a later revision replaces it."""

    id: int
    revision: int = Field(description="1 for the period's first release; later revisions add late records")
    made_at: dt.datetime
    made_by: str = Field(description="'server' (made when first asked for after the period closed) or 'cli:<user>'")


class SurveyCounts(Out):
    structure: str
    year: int
    period: str = Field(description="2026-10 (a month), 2026-Q3, 2026-H1 or 2026")
    period_start: dt.date
    period_end: dt.date = Field(description="the first day after the period")
    source: Literal["live", "release"] = Field(
        description="live: counted now, unsuppressed (officers); release: a frozen, audited release (other roles)")
    suppressed_below: int | None = Field(description="k: counts below it (zero included) are hidden for your role (null: none hidden)")
    release: ReleaseRef | None
    next_release_due: dt.datetime | None = Field(
        description="the next release round: a period's first release, or a revision with late records")
    generated_at: dt.datetime
    units: list[UnitCounts]
