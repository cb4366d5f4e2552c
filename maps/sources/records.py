"""Survey records as a layer: personal data, for officers of the area only, every read audited.

The columns are the record's own and the form's answers (:data:`survey.definition.FORM`),
one per question: a question added to the form is a new column here too. A select_multiple
answer is its values separated by spaces, as ODK and Kobo export it. The national ID is
never a column (only whether one was given): it is stored as a keyed hash and never leaves.

Every chunk's record ids are handed to the reader's audit (:attr:`Viewer.audit`) before the
chunk is: what leaves is always in the audit log, even when a download breaks off.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from sqlalchemy import Connection, text

from geodata.roles import Role
from maps.sources.base import (
    FieldSpec,
    FieldType,
    Filters,
    LayerSource,
    Page,
    Rows,
    Shape,
    Viewer,
    Where,
    geometry_sql,
    sql_rows,
    where_sql,
)
from survey.definition import FORM, RecordKind
from survey.ingest import NOT_IN_ANSWERS
from survey.records import LIST_CONDITION, LIST_ORDER, ReviewStatus, list_params


class RecordFilters(Filters):
    review_status: ReviewStatus | None = None
    kind: RecordKind | None = None
    commune: Annotated[str | None, Field(pattern=r"^[0-9]{5}$", description="Declared or located in this commune")] = None
    duplicates_only: bool = False
    flagged_only: Annotated[bool, Field(description="Only records flagged for review: coarse or mock GPS, a point outside "
                                                    "the declared commune, or no point (location_missing_reason)")] = False


# (field, SQL): the record's own columns.
OWN: tuple[tuple[FieldSpec, str], ...] = (
    (FieldSpec("instance_id", "text", "Form instance id"), "r.instance_id::text"),
    (FieldSpec("province_code", "text", "Province of the declared commune"), "r.province_code"),
    (FieldSpec("kind", "text", "aspirant, returnee or departure"), "r.kind"),
    (FieldSpec("form_id", "text", "Form"), "r.form_id"),
    (FieldSpec("form_version", "text", "Form version"), "r.form_version"),
    (FieldSpec("collected_at", "datetime", "When the interview took place"), "r.collected_at"),
    (FieldSpec("submitted_at", "datetime", "When the record reached the server"), "r.submitted_at"),
    (FieldSpec("surveyor", "text", "Surveyor"), "r.surveyor"),
    (FieldSpec("source", "text", "Channel: api, web form, odk, import"), "r.source"),
    (FieldSpec("structure", "text", "Boundary structure of the communes"), "r.structure"),
    (FieldSpec("declared_commune_code", "text", "Commune the surveyor declared"), "r.declared_commune_code"),
    (FieldSpec("assigned_commune_code", "text", "Commune the GPS point lies in"), "r.assigned_commune_code"),
    (FieldSpec("gps_accuracy_m", "real", "GPS accuracy (m)"), "r.gps_accuracy_m::float8"),
    (FieldSpec("accuracy_flag", "boolean", "GPS accuracy worse than the limit"), "r.accuracy_flag"),
    (FieldSpec("location_mismatch", "boolean", "Point outside the declared commune"), "r.location_mismatch"),
    (FieldSpec("mismatch_distance_m", "real", "How far outside (m)"), "r.mismatch_distance_m::float8"),
    (FieldSpec("mock_location", "boolean", "The device reported a mock location"), "r.mock_location"),
    (FieldSpec("location_missing_reason", "text", "Why there is no point"), "r.location_missing_reason"),
    (FieldSpec("has_national_id", "boolean", "A national ID was given (only its keyed hash is stored, never exported)"),
     "r.id_hash IS NOT NULL"),
    (FieldSpec("full_name", "text", "Full name", personal=True), "r.full_name"),
    (FieldSpec("birth_year", "integer", "Year of birth", personal=True), "r.birth_year::int"),
    (FieldSpec("sex", "text", "Sex", personal=True), "r.sex"),
    (FieldSpec("departure_date", "date", "Departure date"), "r.departure_date"),
    (FieldSpec("market", "text", "Destination"), "r.market"),
    (FieldSpec("recruiter_licence", "text", "Recruiter licence number"), "r.recruiter_licence"),
    (FieldSpec("review_status", "text", "received, approved, has_issues, rejected"), "r.review_status"),
    (FieldSpec("review_comment", "text", "The officer's review comment"), "r.review_comment"),
    (FieldSpec("reviewed_by", "text", "Reviewer"), "r.reviewed_by"),
    (FieldSpec("reviewed_at", "datetime", "When reviewed"), "r.reviewed_at"),
)

ANSWER_TYPES: dict[str, FieldType] = {"integer": "integer", "boolean": "boolean", "date": "date", "datetime": "datetime"}


def _answer_sql(name: str, form_type: str) -> str:
    value = f"r.answers->'{name}'"
    if form_type == "select_multiple":
        return (f"CASE jsonb_typeof({value}) WHEN 'array' THEN (SELECT string_agg(v, ' ') FROM jsonb_array_elements_text({value}) v) "
                f"ELSE {value}->>0 END")
    cast = {"integer": "::numeric::bigint", "boolean": "::boolean", "date": "::date", "datetime": "::timestamptz"}.get(form_type, "")
    return f"(r.answers->>'{name}'){cast}"


# The form's other questions, from its one definition.
ANSWERS: tuple[tuple[FieldSpec, str], ...] = tuple(
    (FieldSpec(f.name, ANSWER_TYPES.get(f.type, "text"), f.en, personal=f.personal), _answer_sql(f.name, f.type))
    for f in FORM.fields if f.name not in NOT_IN_ANSWERS and f.name != "location_missing_reason")

FIELDS = tuple(spec for spec, _ in OWN + ANSWERS)
GEOMETRY_IS_PERSONAL = True
"""The point is where a person was interviewed (at home, mostly)."""


def open_records(conn: Connection, f: RecordFilters, viewer: Viewer, shape: Shape, page: Page, where: Where | None = None) -> Rows:
    params = list_params(review_status=f.review_status, kind=f.kind, commune=f.commune, duplicates_only=f.duplicates_only,
                         flagged_only=f.flagged_only, reader=viewer.reader)
    columns_sql = ",\n       ".join(f"{sql} AS {spec.name}" for spec, sql in OWN + ANSWERS)
    select = f"SELECT {columns_sql}, {geometry_sql('r.geom', shape, 7)} AS geometry"
    if where is None:
        count_sql = f"SELECT count(*) FROM survey_record r WHERE {LIST_CONDITION}"
        rows_sql = f"{select} FROM survey_record r WHERE {LIST_CONDITION} {LIST_ORDER} LIMIT :limit OFFSET :offset"
    else:
        inner = f"{select}, r.instance_id::text AS _id, r.geom AS _geom FROM survey_record r WHERE {LIST_CONDITION}"
        count_sql, rows_sql, where_params = where_sql(inner, FIELDS, where, "ORDER BY x.submitted_at DESC, x.instance_id")
        params = {**params, **where_params}
    count = conn.execute(text(count_sql), params).scalar_one()
    assert viewer.audit is not None  # LayerSource.open refuses a personal read without one
    return sql_rows({"layer": "survey-records"}, count, text(rows_sql), {**params, **page.params()}, FIELDS,
                    audit=viewer.audit)


RECORDS = LayerSource(
    name="survey-records", title="Survey records", description="Survey records of your area with their personal fields "
    "(officers only; every read is written to the audit log with its purpose)", readers=(Role.officer,), limit="area",
    filters=RecordFilters, fields=FIELDS, geometry_type="Point", opener=open_records, personal=True, temporal="collected_at",
    sql_where=True)
