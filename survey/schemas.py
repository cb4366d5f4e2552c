"""Pydantic validation of one submission, generated from the form definition.

:func:`validate_submission` checks every field of a payload and returns the
clean values with a list of *all* errors (one per failing field), so that a
surveyor sees everything to fix at once. :func:`submission_model` is the same
definition as a pydantic model, for the OpenAPI documentation.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    TypeAdapter,
    ValidationError,
    create_model,
)
from pydantic import Field as PydanticField

from geodata.text import nfc, text_problem
from geodata.vietnam import VIETNAM_BBOX, VIETNAM_TZ
from survey.definition import FORM, Field, FormDefinition, TextFormat

CLOCK_SKEW = dt.timedelta(minutes=10)
# Dates answered in the form (return, departure) are not earlier than this.
EARLIEST_DATE = dt.date(1980, 1, 1)
TEXT_MAX_LENGTH = 500
# A phone's GPS reports its accuracy in metres; a network fix is a few km at
# worst. Larger values are no position at all (and 1e39 does not fit the
# column): refused, as are altitudes off the earth.
ACCURACY_MAX_M = 100_000
ALTITUDE_RANGE_M = (-1_000, 10_000)


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class GeoPoint(BaseModel):
    """A GPS fix: latitude, longitude (WGS 84 degrees), accuracy in metres."""

    model_config = ConfigDict(extra="ignore")
    lat: Annotated[float, PydanticField(allow_inf_nan=False)]
    lon: Annotated[float, PydanticField(allow_inf_nan=False)]
    altitude: Annotated[float | None, PydanticField(ge=ALTITUDE_RANGE_M[0], le=ALTITUDE_RANGE_M[1], allow_inf_nan=False)] = None
    accuracy: Annotated[float | None, PydanticField(ge=0, le=ACCURACY_MAX_M, allow_inf_nan=False)] = None


def parse_geopoint(value: Any) -> Any:
    """Accept ODK's "lat lon alt acc" string as well as an object."""
    if isinstance(value, str):
        parts = value.split()
        if not 2 <= len(parts) <= 4:
            raise ValueError('expected "latitude longitude [altitude [accuracy]]"')
        keys = ("lat", "lon", "altitude", "accuracy")
        return dict(zip(keys, parts, strict=False))  # altitude and accuracy are optional
    return value


def as_aware(value: Any) -> Any:
    """Times without a zone are Viet Nam time (phones often omit it)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=VIETNAM_TZ)
    return value


def split_multiple(value: Any) -> Any:
    """ODK and Kobo send select_multiple answers as space-separated values."""
    if isinstance(value, str):
        return value.split()
    return value


def storable_text(value: Any) -> Any:
    """A text answer PostgreSQL can keep: no NUL, no control character, no lone surrogate.

    Run before pydantic's own string check, which refuses a lone surrogate without saying which character.
    """
    problem = text_problem(value) if isinstance(value, str) else None
    if problem:
        raise ValueError(problem)
    return value


def not_a_boolean(value: Any) -> Any:
    """JSON's true is not the number 1: a yes/no answer in a number field is refused as such."""
    if isinstance(value, bool):
        raise ValueError(f"{str(value).lower()} is a yes/no value, not a number")
    return value


def formatted(fmt: TextFormat):
    def check(value: str) -> str:
        if not fmt.accepts(value):
            raise ValueError(fmt.en)
        return value
    return check


def annotation(defn: FormDefinition, f: Field) -> Any:
    """The Python type of a field's answer."""
    if f.type in ("select_one", "select_multiple"):
        choice = Literal[tuple(defn.choice_values(f.choices))]  # type: ignore[misc]
        return choice if f.type == "select_one" else Annotated[list[choice], BeforeValidator(split_multiple)]
    if f.type == "text":
        text = Annotated[str, PydanticField(min_length=1, max_length=TEXT_MAX_LENGTH), BeforeValidator(storable_text)]
        return Annotated[text, AfterValidator(formatted(f.format))] if f.format else text
    return {
        "uuid": uuid.UUID,
        "integer": Annotated[int, BeforeValidator(not_a_boolean)],
        "date": dt.date,
        "datetime": Annotated[dt.datetime, BeforeValidator(as_aware)],
        "boolean": bool,
        "geopoint": Annotated[GeoPoint, BeforeValidator(parse_geopoint)],
        "commune": Annotated[str, PydanticField(pattern=r"^[0-9]{5}$")],
    }[f.type]


@lru_cache
def _adapters(defn: FormDefinition) -> dict[str, TypeAdapter]:
    return {f.name: TypeAdapter(annotation(defn, f)) for f in defn.fields}


@lru_cache
def submission_model(defn: FormDefinition = FORM) -> type[BaseModel]:
    """The submission as a pydantic model (every field optional: requirements depend on the kind)."""
    fields = {
        f.name: (annotation(defn, f) | None, PydanticField(default=None, title=f.en, description=f"{f.vi} / {f.en}"))
        for f in defn.fields
    }
    fields["form_id"] = (str | None, PydanticField(default=None, description="Form id (default: the current form)"))
    fields["form_version"] = (str | None, PydanticField(default=None, description="Form version"))
    return create_model("Submission", __config__=ConfigDict(extra="ignore"), **fields)


def _is_blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or (isinstance(value, float) and math.isnan(value))


def _first_error(exc: ValidationError, show_value: bool) -> str:
    e = exc.errors()[0]
    where = ".".join(str(p) for p in e["loc"] if p != "__root__")
    message = e["msg"].removeprefix("Value error, ")
    # The value sent helps the sender find the mistake; a personal value is not repeated (reasons are kept and shown).
    if show_value and e["type"] in ("literal_error", "string_pattern_mismatch", "uuid_parsing", "date_from_datetime_parsing",
                                    "date_parsing", "datetime_from_date_parsing", "datetime_parsing") \
            and isinstance(e.get("input"), str | int | float) and not isinstance(e.get("input"), bool):
        message += f" (got {str(e['input'])[:60]!r})"
    return f"{where}: {message}" if where else message


def with_article(word: str) -> str:
    """English's article: 'an aspirant', 'a returnee'.

    >>> with_article("aspirant"), with_article("returnee")
    ('an aspirant', 'a returnee')
    """
    return f"an {word}" if word[:1].lower() in "aeiou" else f"a {word}"


def normalised(value: Any) -> Any:
    """Text in NFC wherever it sits in an answer (strings, lists, the GPS object)."""
    if isinstance(value, str):
        return nfc(value)
    if isinstance(value, list):
        return [normalised(v) for v in value]
    if isinstance(value, dict):
        return {k: normalised(v) for k, v in value.items()}
    return value


def validate_submission(
    payload: dict[str, Any], defn: FormDefinition = FORM, now: dt.datetime | None = None
) -> tuple[dict[str, Any], list[FieldError]]:
    """Check one payload against the form; return clean answers and every error.

    Example::

        >>> clean, errors = validate_submission({"kind": "aspirant", "consent": False, "birth_year": 1800})
        >>> [e.field for e in errors][:3]
        ['instance_id', 'collected_at', 'surveyor']
        >>> [e.message for e in errors if e.field in ("consent", "birth_year")][:2]  # doctest: +ELLIPSIS
        ['the person did not consent: nothing personal may be recorded', '1800 is out of range: the person must be 15 to 80 years old ...']
    """
    now = now or dt.datetime.now(dt.UTC)
    errors: list[FieldError] = []
    clean: dict[str, Any] = {}
    adapters = _adapters(defn)
    kinds = defn.choice_values("kind")
    kind = payload.get("kind")
    known_kind = isinstance(kind, str) and kind in kinds
    kind_refused = not known_kind and not _is_blank(kind)
    if kind_refused:
        # Said first: which questions apply, and so what is required, depends on it.
        errors.append(FieldError("kind", f"{str(kind)[:40]!r} is not a record kind: use {', '.join(kinds[:-1])} or {kinds[-1]}"))
    for f in defn.fields:
        if f.name == "kind" and kind_refused:
            continue
        value = normalised(payload.get(f.name))
        every_kind = set(kinds) <= set(f.kinds)
        # With no valid kind, only the questions every kind asks can be required.
        asked = every_kind or (known_kind and kind in f.kinds)
        if _is_blank(value):
            if f.required and asked:
                what = "required" if every_kind else f"required for {with_article(kind)} record"
                errors.append(FieldError(f.name, f"{f.en} is {what}"))
            continue
        if known_kind and not asked:
            continue  # answers to questions of another kind are not kept
        try:
            answer = adapters[f.name].validate_python(value)
        except ValidationError as exc:
            errors.append(FieldError(f.name, _first_error(exc, show_value=not f.hashed)))
            continue
        if asked:
            clean[f.name] = answer
    errors.extend(check_rules(clean, defn, now))
    return clean, errors


def check_rules(clean: dict[str, Any], defn: FormDefinition, now: dt.datetime) -> list[FieldError]:
    """Rules across fields and against the calendar, on already typed answers."""
    errors: list[FieldError] = []
    if "consent" in clean and clean["consent"] is not True:
        errors.append(FieldError("consent", "the person did not consent: nothing personal may be recorded"))
    collected = clean.get("collected_at")
    if collected is not None:
        if collected > now + CLOCK_SKEW:
            errors.append(FieldError("collected_at", f"{collected.isoformat()} is in the future"))
        if collected.astimezone(VIETNAM_TZ).date() < defn.published:
            errors.append(FieldError("collected_at", f"{collected.date()} is before this form existed ({defn.published})"))
    point = clean.get("location")
    if point is not None:
        message = location_problem(point.lon, point.lat)
        if message:
            errors.append(FieldError("location", message))
    year = (collected or now).astimezone(VIETNAM_TZ).year
    for f in defn.fields:
        if f.type == "integer" and clean.get(f.name) is not None:
            v = clean[f.name]
            if f.range_of == "age":
                if not (year - f.maximum <= v <= year - f.minimum):
                    errors.append(FieldError(f.name, f"{v} is out of range: the person must be {f.minimum} to {f.maximum} "
                                                     f"years old ({year - f.maximum}-{year - f.minimum})"))
            elif (f.minimum is not None and v < f.minimum) or (f.maximum is not None and v > f.maximum):
                errors.append(FieldError(f.name, f"{v} is out of range {f.minimum}-{f.maximum}"))
        if f.type == "date" and clean.get(f.name) is not None and collected is not None:
            if clean[f.name] > collected.astimezone(VIETNAM_TZ).date():
                errors.append(FieldError(f.name, f"{clean[f.name]} is after the survey date"))
            if clean[f.name] < EARLIEST_DATE:
                errors.append(FieldError(f.name, f"{clean[f.name]} is before {EARLIEST_DATE}"))
    return errors


def location_problem(lon: float, lat: float) -> str | None:
    """Why a GPS point cannot be in Viet Nam, or None."""
    minx, miny, maxx, maxy = VIETNAM_BBOX
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        if minx <= lat <= maxx and miny <= lon <= maxy:
            return f"latitude {lat} and longitude {lon} seem swapped"
        return f"lat={lat}, lon={lon} are not valid coordinates"
    if minx <= lon <= maxx and miny <= lat <= maxy:
        return None
    if minx <= lat <= maxx and miny <= lon <= maxy:
        return f"latitude {lat} and longitude {lon} seem swapped: ({lon}, {lat}) would be in Viet Nam"
    return f"lat={lat}, lon={lon} is outside Viet Nam"
