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
from survey.messages import Lang, render
from survey.messages import with_article as with_article

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
    """What is wrong with one field: the message in English, and its code and values in the message catalogue
    (:mod:`survey.messages`) to say it in the form's language. Without a code, the message is shown as it is.

    >>> e = FieldError.of("future_collected", "collected_at", value="2030-01-01T00:00:00+07:00", ahead=90)
    >>> e.message
    "2030-01-01T00:00:00+07:00 is in the future (90 min ahead of the server's clock: the phone's clock looks wrong)"
    >>> e.as_dict("vi")["message"][:46]
    'Thời điểm khảo sát (2030-01-01T00:00:00+07:00)'
    """

    field: str
    message: str
    code: str | None = None
    params: dict[str, Any] | None = None

    @classmethod
    def of(cls, code: str, field: str, **params: Any) -> FieldError:
        return cls(field, render(code, field, params, "en"), code, params)

    def as_dict(self, lang: Lang = "en") -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.code is not None:
            out |= {"code": self.code, "params": self.params or {}}
            if lang != "en":
                out["message"] = render(self.code, self.field, self.params, lang)
        elif lang != "en":
            out["message"] = render("invalid", self.field, {"detail": self.message}, lang)
        return out


def in_language(errors: list[dict[str, Any]], lang: Lang) -> list[dict[str, Any]]:
    """Errors as kept (``FieldError.as_dict()``) said in ``lang``.

    >>> in_language([FieldError.of("required", "full_name").as_dict()], "vi")[0]["message"]
    'Phải trả lời câu này'
    """
    if lang == "en":
        return errors
    return [FieldError(e["field"], e["message"], e.get("code"), e.get("params")).as_dict(lang) for e in errors]


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


_CODES = {"literal_error": "not_a_choice", "int_parsing": "integer", "int_from_float": "integer", "date_parsing": "bad_date",
          "date_from_datetime_parsing": "bad_date", "datetime_parsing": "bad_date", "datetime_from_date_parsing": "bad_date"}


def _field_error(f: Field, exc: ValidationError) -> FieldError:
    """The first problem pydantic found, with a catalogue code where the form has its own words for it."""
    e = exc.errors()[0]
    message = _first_error(exc, show_value=not f.hashed)
    if f.format is not None and e["type"] == "value_error" and e["msg"].endswith(f.format.en):
        return FieldError.of("format", f.name)
    if e["type"] == "string_too_long":
        return FieldError(f.name, message, "too_long", {"max": TEXT_MAX_LENGTH, "detail": message})
    code = _CODES.get(e["type"])
    return FieldError(f.name, message, code, {"detail": message}) if code else FieldError(f.name, message)


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
        errors.append(FieldError.of("invalid_kind", "kind", value=repr(str(kind)[:40]),
                                    kinds=f"{', '.join(kinds[:-1])} or {kinds[-1]}"))
    for f in defn.fields:
        if f.name == "kind" and kind_refused:
            continue
        if f.reason_for is not None and not _is_blank(payload.get(f.reason_for)):
            continue  # it explains a blank answer, and the answer is there: not kept
        value = normalised(payload.get(f.name))
        every_kind = set(kinds) <= set(f.kinds)
        # With no valid kind, only the questions every kind asks can be required.
        asked = every_kind or (known_kind and kind in f.kinds)
        if _is_blank(value):
            if f.required and asked:
                reason = defn.reason_field(f.name)
                if f.reason_for is not None:
                    continue  # said once, on the field it explains
                if reason is not None and not _is_blank(payload.get(reason.name)):
                    continue  # blank, and why is said
                if reason is not None:
                    choices = defn.choice_values(reason.choices) if reason.choices else []
                    errors.append(FieldError.of("required_or_reason", f.name, reason=reason.name, choices=", ".join(choices)))
                elif every_kind:
                    errors.append(FieldError.of("required", f.name))
                else:
                    errors.append(FieldError.of("required_for_kind", f.name, kind=kind))
            continue
        if known_kind and not asked:
            continue  # answers to questions of another kind are not kept
        try:
            answer = adapters[f.name].validate_python(value)
        except ValidationError as exc:
            errors.append(_field_error(f, exc))
            continue
        if asked:
            clean[f.name] = answer
    errors.extend(check_rules(clean, defn, now))
    return clean, errors


def check_rules(clean: dict[str, Any], defn: FormDefinition, now: dt.datetime) -> list[FieldError]:
    """Rules across fields and against the calendar, on already typed answers."""
    errors: list[FieldError] = []
    if "consent" in clean and clean["consent"] is not True:
        errors.append(FieldError.of("consent", "consent"))
    collected = clean.get("collected_at")
    if collected is not None:
        if collected > now + CLOCK_SKEW:
            # How far ahead of the server: most often the phone's clock is wrong, and this says by how much.
            ahead = math.ceil((collected - now).total_seconds() / 60)
            errors.append(FieldError.of("future_collected", "collected_at", value=collected.isoformat(), ahead=ahead))
        if collected.astimezone(VIETNAM_TZ).date() < defn.published:
            errors.append(FieldError.of("before_published", "collected_at", value=str(collected.date()),
                                        published=defn.published.isoformat()))
    point = clean.get("location")
    if point is not None:
        problem = location_error(point.lon, point.lat)
        if problem:
            errors.append(problem)
    year = (collected or now).astimezone(VIETNAM_TZ).year
    for f in defn.fields:
        if f.type == "integer" and clean.get(f.name) is not None:
            v = clean[f.name]
            if f.range_of == "age":
                if not (year - f.maximum <= v <= year - f.minimum):
                    errors.append(FieldError.of("age_range", f.name, value=v, min=f.minimum, max=f.maximum,
                                                low=year - f.maximum, high=year - f.minimum))
            elif (f.minimum is not None and v < f.minimum) or (f.maximum is not None and v > f.maximum):
                errors.append(FieldError.of("range", f.name, value=v, min=f.minimum, max=f.maximum))
        if f.type == "date" and clean.get(f.name) is not None and collected is not None:
            if clean[f.name] > collected.astimezone(VIETNAM_TZ).date():
                errors.append(FieldError.of("after_survey", f.name, value=clean[f.name].isoformat()))
            if clean[f.name] < EARLIEST_DATE:
                errors.append(FieldError.of("too_early", f.name, value=clean[f.name].isoformat(),
                                            earliest=EARLIEST_DATE.isoformat()))
    return errors


def location_error(lon: float, lat: float, field: str = "location") -> FieldError | None:
    """Why a GPS point cannot be in Viet Nam (see :func:`location_problem`), as a field error, or None."""
    minx, miny, maxx, maxy = VIETNAM_BBOX
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        if minx <= lat <= maxx and miny <= lon <= maxy:
            return FieldError(field, f"latitude {lat} and longitude {lon} seem swapped", "swapped", {"lat": lat, "lon": lon})
        return FieldError.of("not_coordinates", field, lat=lat, lon=lon)
    if minx <= lon <= maxx and miny <= lat <= maxy:
        return None
    if minx <= lat <= maxx and miny <= lon <= maxy:
        return FieldError.of("swapped", field, lat=lat, lon=lon)
    return FieldError.of("outside_vietnam", field, lat=lat, lon=lon)


def location_problem(lon: float, lat: float) -> str | None:
    """Why a GPS point cannot be in Viet Nam, or None.

    >>> location_problem(21.03, 105.85)
    'latitude 105.85 and longitude 21.03 seem swapped'
    """
    problem = location_error(lon, lat)
    return problem.message if problem else None
