"""The web form, generated from the form definition.

:func:`webform_spec` turns a :class:`~survey.definition.FormDefinition` into
plain JSON that the survey page (``/survey``, ``api/static/survey/survey.js``)
renders and validates from: add a field to :data:`~survey.definition.FORM`
and it appears in the web form with no other change.

The validation rules the page repeats are the server's
(:mod:`survey.schemas`); the constants they need are in ``rules`` so that the
two cannot drift apart silently.
"""

from __future__ import annotations

from typing import Any

from geodata.vietnam import TIMEZONE_NAME, VIETNAM_BBOX
from survey.definition import FORM, Field, FormDefinition
from survey.messages import catalogue
from survey.schemas import CLOCK_SKEW, EARLIEST_DATE, TEXT_MAX_LENGTH

# Fields the page fills itself instead of asking: a new id per form, the time
# of saving, and what only the phone's operating system knows (a browser
# cannot tell a mock location, so the page leaves it unanswered).
AUTO = {"instance_id": "uuid", "collected_at": "now", "mock_location": "device"}
# Phone keyboards: digits for these text answers.
INPUT_MODES = {"phone": "tel", "national_id": "numeric"}


def _widget(f: Field, defn: FormDefinition) -> str:
    """How the page asks a field (a hint; the page falls back on the type)."""
    if f.name in AUTO:
        return "auto"
    if f.type == "boolean":
        # A required yes/no (consent) must be ticked; an optional one has
        # three states (yes, no, not answered).
        return "checkbox" if f.required else "yesno"
    if f.type == "select_one":
        return "radio" if len(defn.choices[f.choices]) <= 4 else "select"
    if f.type == "select_multiple":
        return "checkboxes"
    return {"uuid": "auto", "text": "text", "integer": "number", "date": "date", "datetime": "datetime",
            "geopoint": "gps", "commune": "commune"}[f.type]


def _field(f: Field, defn: FormDefinition) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": f.name,
        "type": f.type,
        "widget": _widget(f, defn),
        "label": {"vi": f.vi, "en": f.en},
        "hint": {"vi": f.hint_vi, "en": f.hint_en} if (f.hint_vi or f.hint_en) else None,
        "required": f.required,
        "kinds": list(f.kinds),
        "personal": f.personal,
        "min": f.minimum,
        "max": f.maximum,
        "choices": None,
    }
    if f.name in AUTO:
        out["auto"] = AUTO[f.name]
    if f.reason_for:
        out["reason_for"] = f.reason_for
    if f.choices:
        out["choices"] = [{"value": c.value, "label": {"vi": c.vi, "en": c.en}} for c in defn.choices[f.choices]]
        out["choice_list"] = f.choices
    if f.type == "integer":
        # birth_year's bounds are ages at the collection date (survey.schemas.check_rules).
        out["range_of"] = f.range_of
    if f.type == "text":
        out["max_length"] = TEXT_MAX_LENGTH
        if f.format is not None:
            out["format"] = {"pattern": f"^({f.format.pattern})$", "ignore": f.format.ignore,
                             "message": {"vi": f.format.vi, "en": f.format.en}}
        if f.name in INPUT_MODES:
            out["inputmode"] = INPUT_MODES[f.name]
    return out


def webform_spec(defn: FormDefinition = FORM) -> dict[str, Any]:
    """The form as JSON for the web page: fields, labels (vi/en), kinds, choices, rules.

    Example::

        >>> spec = webform_spec()
        >>> spec["fields"][1]["name"], [k["value"] for k in spec["kinds"]]
        ('kind', ['aspirant', 'returnee', 'departure'])
    """
    return {
        "form_id": defn.form_id,
        "version": defn.version,
        "title": {"vi": defn.title_vi, "en": defn.title_en},
        "published": defn.published.isoformat(),
        "kinds": [{"value": c.value, "label": {"vi": c.vi, "en": c.en}} for c in defn.choices["kind"]],
        "fields": [_field(f, defn) for f in defn.fields],
        "rules": {
            "earliest_date": EARLIEST_DATE.isoformat(),
            "clock_skew_minutes": int(CLOCK_SKEW.total_seconds() // 60),
            "bbox": list(VIETNAM_BBOX),
            "timezone": TIMEZONE_NAME,
            # Without this answer ticked nothing personal may be recorded or sent.
            "consent_field": "consent",
        },
        # The server's message catalogue: the page's checks and the server's rejections say the same words.
        "messages": catalogue(),
    }
