"""The response models of the JSON API: the declared whitelist of what each answer may hold.

A route's ``response_model`` (or the model its body is built from) names
every field a caller can receive; anything else a query happens to return is
dropped. Personal fields appear only in the models of routes that officers
and senders may call (:class:`SurveyRecord`, :class:`QuarantineEntry`);
aggregates for leaders, planners and police carry counts only.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from maps.sources import SOURCES
from survey.definition import RecordKind
from survey.records import ReviewStatus


class Out(BaseModel):
    """A response model: fields not declared are dropped, never passed through."""

    model_config = ConfigDict(extra="ignore")


# -- errors ----------------------------------------------------------------------------
class ErrorItem(Out):
    """One rejected input, FastAPI's validation shape (without the input echoed back)."""

    loc: list[str | int] = Field(description="Where: body, query, path or header, then the field (and index)")
    msg: str
    type: str


class ErrorAnswer(Out):
    """The answer to a failed request outside /openrosa: a message, or the rejected inputs."""

    detail: str | list[ErrorItem]


# -- GeoJSON geometry ------------------------------------------------------------------
GEOMETRY_TYPES = ["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "GeometryCollection"]
_SIMPLE_GEOMETRY = {"type": "object", "required": ["type"], "additionalProperties": False, "properties": {
    "type": {"type": "string", "enum": GEOMETRY_TYPES},
    "coordinates": {"type": "array", "description": "Positions (longitude, latitude), nested by the type"},
    "bbox": {"type": "array", "items": {"type": "number"}},
}}
GEOMETRY_SCHEMA = {**_SIMPLE_GEOMETRY, "title": "Geometry", "description": "A GeoJSON geometry (RFC 7946, WGS 84)",
                   "properties": {**_SIMPLE_GEOMETRY["properties"], "geometries": {"type": "array", "items": _SIMPLE_GEOMETRY}}}
Geometry = Annotated[dict[str, Any], WithJsonSchema(GEOMETRY_SCHEMA)]
"""A GeoJSON geometry as PostGIS writes it: passed through unchanged (no per-vertex validation), declared exactly."""


# -- the members that several answers share, declared once -------------------------------
# Pydantic puts inherited fields first, in the order the bases declare them, and a field a subclass declares
# again keeps its inherited place: so these bases hold only leading members, and every answer keeps the order of
# its members (``type`` first, ``features`` last) and its OpenAPI schema (bases are not components).
class GeoFeature(Out):
    """A GeoJSON Feature; each layer's feature adds its ``properties`` (and may describe its ``geometry``)."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: Geometry | None


class FeatureCollection(Out):
    type: Literal["FeatureCollection"] = "FeatureCollection"


class LayerCollection(FeatureCollection):
    """A map layer's answer; each layer declares its name as a literal ``layer``."""

    layer: str


class ViewedLayer(LayerCollection):
    """A layer with views: ``view`` follows ``layer`` (each layer declares its views as a literal)."""

    view: str


class PlacedLayer(LayerCollection):
    """A layer of units: the boundary structure and level follow ``layer`` (and ``view``, see CoverageCollection)."""

    structure: str
    level: str


class UnitHead(Out):
    """The unit a row of counts is about, its first members."""

    code: str
    name: str
    level: str
    parent_code: str | None
    geom_quality: str | None


# -- health --------------------------------------------------------------------------
class Health(Out):
    status: Literal["ok", "unavailable"]
    # The dependencies that fail now, by name ("database", "postgis", "schema"); empty when all is well.
    down: list[str] = []
    # Each dependency and what was found: "ok", a version, or why it fails.
    dependencies: dict[str, str] = {}
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


class UnitFeature(GeoFeature):
    geometry: Geometry | None = Field(description="GeoJSON geometry (WGS 84), or null")
    properties: UnitProperties


class UnitCollection(FeatureCollection):
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
    message: str = Field(description="In the language asked for (Accept-Language: vi or en; English by default)")
    code: str | None = Field(default=None, description="The message's code in the form's message catalogue "
                                                        "(/survey/form.json, messages)")
    params: dict[str, Any] | None = Field(default=None, description="The values the message names")


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
    location_missing_reason: str | None = Field(
        default=None, description="No GPS point, and why (denied, no_fix, indoors, other): flagged for review")
    probable_duplicates: list[DuplicateLink]
    review_status: ReviewStatus


class SubmissionOutcome(Out):
    """The answer to one submission: created, exists, conflict, rejected or forbidden."""

    status: Literal["created", "exists", "conflict", "rejected", "forbidden"]
    instance_id: str | None
    detail: str | list[ErrorItem] | None = Field(
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
    location_missing_reason: str | None
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


class UnitCounts(UnitHead):
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


# -- targets -------------------------------------------------------------------------------
class TargetOut(Out):
    structure: str
    unit_code: str
    year: int
    indicator: str
    kind: Literal["absolute", "minimum", "growth_percent"]
    value: float
    value_max: float | None
    notes: dict[str, str] = Field(description="The file's other columns (source document, note ...), as text")
    source: str
    updated_by: str | None
    updated_at: dt.datetime


class TargetsStored(Out):
    inserted: int
    updated: int


# -- map layers ----------------------------------------------------------------------------
class ClassBand(Out):
    label: str
    upper: float | None = Field(description="Upper bound of the class (null: no upper bound)")


class ClassificationOut(Out):
    method: Literal["fixed", "quantiles", "natural_breaks"]
    description: str
    classes: list[ClassBand]
    no_data: str


class CoverageProperties(UnitHead):
    period: str
    target_lower: float | None = Field(description="The target for the period (its lower bound for a range or a minimum)")
    target_upper: float | None
    target_kind: str | None
    target_method: str | None = Field(description="'own', or how the target was carried from the other structure")
    actual: int | None = Field(description="Departures in the period (null where hidden: see suppressed)")
    communes_surveyed: int | None = None
    communes_planned: int | None = None
    ratio: float | None
    suppressed: list[str] = Field(description="Values hidden to protect small counts")
    klass: str = Field(alias="class", serialization_alias="class")
    projected: float | None = None
    status: Literal["on_track", "at_risk", "off_track"] | None = None
    status_label: str | None = None


class CoverageFeature(GeoFeature):
    properties: CoverageProperties


class CoverageCollection(PlacedLayer, ViewedLayer):
    layer: Literal["coverage"] = "coverage"
    view: Literal["departures", "surveys"]
    period: str
    classification: ClassificationOut
    projection: str | None = Field(description="How the year's total is projected (current year only)")
    method: str
    caveats: list[str]
    suppressed_below: int | None
    source: Literal["live", "releases"] = Field(
        description="live: counted now (officers); releases: the sums of the released months (other roles)")
    released_periods: list[str] = Field(description="the release periods summed (source releases)")
    releases: list[ReleaseRef] = Field(description="the releases read, one per period")
    features: list[CoverageFeature]


# -- incidents -----------------------------------------------------------------------------
class IncidentCreated(Out):
    incident_id: str


class IncidentProperties(Out):
    incident_id: str
    type: str
    occurred_on: dt.date
    persons_affected: int = Field(description="How many persons were affected (a count: never a name)")
    status: str
    source: str
    structure: str
    commune_code: str
    commune_name: str | None
    province_code: str
    located_by: Literal["point", "commune"] = Field(description="Reported with a point, or only with a commune (shown at its centre)")


class IncidentFeature(GeoFeature):
    properties: IncidentProperties


class IncidentCollection(LayerCollection):
    layer: Literal["incidents"] = "incidents"
    period: str
    numberReturned: int  # noqa: N815
    features: list[IncidentFeature]


class IncidentCountProperties(UnitHead):
    period: str
    incidents: int | None
    persons_affected: int | None
    suppressed: list[str]


class IncidentCountFeature(GeoFeature):
    properties: IncidentCountProperties


class IncidentCountCollection(PlacedLayer):
    layer: Literal["incident-counts"] = "incident-counts"
    period: str
    suppressed_below: int | None
    source: Literal["live", "release"] = Field(
        description="live: counted now (officers, police analysts); release: a frozen, audited release (leaders, planners)")
    release: ReleaseRef | None
    method: str
    features: list[IncidentCountFeature]


# -- hot spots -----------------------------------------------------------------------------
class HotspotProperties(Out):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    code: str
    name: str
    incidents: int | None = Field(description="Incidents in the unit (null where hidden for your role)")
    rate: float | None = Field(default=None, description="Empirical Bayes rate per person, where rates were used")
    z: float | None = Field(description="Gi* z-score (officers and police; null for roles that see classes only)")
    p: float | None = Field(description="Pseudo p-value from the permutations")
    p_fdr: float | None = Field(description="p-value corrected by Benjamini-Hochberg")
    klass: str = Field(alias="class", serialization_alias="class")
    geom_quality: str | None
    suppressed: list[str] = Field(default_factory=list)


class HotspotFeature(GeoFeature):
    properties: HotspotProperties


class HotspotCollection(PlacedLayer, ViewedLayer):
    layer: Literal["hotspots"] = "hotspots"
    view: Literal["units", "hexagons"]
    period: str
    statistic: str
    weights: str
    inference: str
    permutations: int
    seed: int
    caveats: list[str]
    features: list[HotspotFeature]


class EmergingProperties(Out):
    code: str
    name: str
    label: str = Field(description="new, consecutive, intensifying, persistent, diminishing, sporadic, oscillating or "
                                   "historical hot (or cold) spot, or no pattern")
    trend_z: float | None = Field(description="Mann-Kendall z of the unit's Gi* z-scores over the steps")
    trend_p: float | None
    hot_steps: int
    cold_steps: int
    final_class: Literal["hot", "cold", "not_significant"]
    geom_quality: str | None


class EmergingFeature(GeoFeature):
    properties: EmergingProperties


class EmergingCollection(PlacedLayer):
    layer: Literal["emerging-hotspots"] = "emerging-hotspots"
    step: Literal["month", "quarter"]
    steps: list[str]
    method: str
    caveats: list[str]
    features: list[EmergingFeature]


# -- recruiters ----------------------------------------------------------------------------
class RecruiterProperties(Out):
    licence_number: str
    name: str
    status: str
    valid_from: dt.date | None
    valid_to: dt.date | None
    markets: list[str]
    events: int = Field(description="Events in the period and in your area")
    communes: int = Field(description="Communes it worked in (period, area)")
    flags: int = Field(description="Events on a day its licence was not valid")


class RecruiterFeature(GeoFeature):
    geometry: Geometry | None = Field(description="The head office")
    properties: RecruiterProperties


class RecruiterCollection(LayerCollection):
    layer: Literal["recruiters"] = "recruiters"
    period: str
    features: list[RecruiterFeature]


class ActivityFlag(Out):
    flag: Literal["licence_not_valid", "not_in_register"]
    event: str
    occurred_on: dt.date
    commune: str | None


class ActivityProperties(Out):
    actor: str = Field(description="Licence number, or name: <folded name> for an actor not in the register")
    name: str
    licence_number: str | None
    registered: bool
    events: int
    attendees: int
    communes: list[str]
    area_method: str
    flags: list[ActivityFlag]


class ActivityFeature(GeoFeature):
    geometry: Geometry | None = Field(description="The activity area (null with fewer than 3 events)")
    properties: ActivityProperties


class UnregisteredCluster(Out):
    commune: str
    actors: list[str]


class ActivityCollection(LayerCollection):
    layer: Literal["recruiter-areas"] = "recruiter-areas"
    structure: str
    period: str
    method: str
    unregistered_clusters: list[UnregisteredCluster]
    features: list[ActivityFeature]


# -- dashboard -----------------------------------------------------------------------------
class Words(Out):
    vi: str
    en: str


class HeadlineNumber(Out):
    key: str
    label: Words
    value: float | None = Field(description="Null where hidden (small counts) or not computable: see note")
    note: str | None


class PageLink(Out):
    href: str
    label: Words


class AreaUnit(Out):
    structure: str
    code: str
    name: str


class Dashboard(Out):
    username: str
    role: str
    area: list[AreaUnit]
    date: dt.date
    suppressed_below: int | None
    numbers: list[HeadlineNumber]
    links: list[PageLink]


class AreaUnits(Out):
    """The units of the signed-in user's area, both boundary structures, for the web form's offline commune search."""

    version: str = Field(description="Changes whenever these units change (also the answer's ETag)")
    current_structure: str | None = Field(description="The boundary structure in force today (Viet Nam's date)")
    columns: list[str] = Field(description="What each row of units holds, in order")
    units: list[list[str | None]]


# The names of every layer's filters (an export job keeps the filters it was asked with): declared, so that a
# job's answer holds nothing but them.
ExportFilterName = Literal[tuple(sorted({name for source in SOURCES.values() for name in source.filters.model_fields}))]


class ExportJob(Out):
    """A background export: its state, progress and file (``GET /api/v1/export-jobs/{id}/file`` once ``done``)."""

    id: str
    owner: str
    layer: str
    format: str
    crs: str
    filters: dict[ExportFilterName, str | int | float | bool | list[str]] = Field(
        description="The layer's filters the export was asked with (its query parameters, by name)")
    state: Literal["queued", "running", "done", "failed", "expired"]
    rows_total: int | None = None
    rows_done: int = 0
    file_name: str | None = None
    file_bytes: int | None = None
    error: str | None = None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    expires_at: str
    status_url: str
    file_url: str | None = None


# -- OGC API Features (/ogc) -----------------------------------------------------------------
class OgcLink(Out):
    href: str
    rel: str
    type: str | None = None
    title: str | None = None


class OgcLanding(Out):
    title: str
    description: str
    links: list[OgcLink]


class OgcConformance(Out):
    conformsTo: list[str]  # noqa: N815 (the standard's name)


class OgcSpatialExtent(Out):
    bbox: list[list[float]]
    crs: str


class OgcTemporalExtent(Out):
    interval: list[list[str | None]]
    trs: str


class OgcExtent(Out):
    spatial: OgcSpatialExtent
    temporal: OgcTemporalExtent | None = None


class OgcCollection(Out):
    id: str
    title: str
    description: str
    links: list[OgcLink]
    extent: OgcExtent
    itemType: Literal["feature"] = "feature"  # noqa: N815
    crs: list[str]
    storageCrs: str  # noqa: N815


class OgcCollections(Out):
    links: list[OgcLink]
    collections: list[OgcCollection]


class OgcQueryables(Out):
    """A JSON Schema of the properties a filter may name (OGC API Features Part 3)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: str = Field(alias="$schema", serialization_alias="$schema")
    id_: str = Field(alias="$id", serialization_alias="$id")
    type: Literal["object"] = "object"
    title: str
    properties: dict[str, dict[str, Any]]
    additionalProperties: bool = False  # noqa: N815
