"""Payloads shared by the tests: a survey record as the API, ODK Collect and HTTP Basic send it.

Test files import these from here, never from each other.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from survey.definition import FORM
from survey.xlsform import xform_xml

NOW = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).replace(microsecond=0)
"""The tests' "now", in Viet Nam time: records are collected an hour before it."""
XF = "{http://www.w3.org/2002/xforms}"


def aspirant(commune, **over):
    """A valid aspirant record in ``commune`` (the ``commune`` fixture), as the JSON API takes it."""
    payload = {
        "instance_id": str(uuid.uuid4()),
        "kind": "aspirant",
        "collected_at": (NOW - dt.timedelta(hours=1)).isoformat(),
        "surveyor": "Lê Văn Khảo",
        "consent": True,
        "commune_code": commune["code"],
        "location": {"lat": commune["lat"], "lon": commune["lon"], "accuracy": 8.5},
        "full_name": "Nguyễn Thị Hồng Nhung",
        "national_id": "042 199 012345",
        "phone": "0912345678",
        "birth_year": 1999,
        "sex": "female",
        "ethnicity": "01",
        "household_status": "near_poor",
        "markets_wanted": ["JP", "KR"],
        "sector": "caregiving",
        "aspirant_needs": ["language", "loan"],
    }
    payload.update(over)
    return payload


def answers(commune, **over) -> dict:
    """What a surveyor enters on the phone, as ODK writes it."""
    values = {
        "instanceID": f"uuid:{uuid.uuid4()}",
        "kind": "aspirant",
        "collected_at": (NOW - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.123+07:00"),
        "surveyor": "Lê Văn Khảo",
        "consent": "yes",
        "commune_code": commune["code"],
        "location": f"{commune['lat']} {commune['lon']} 12.0 8.5",
        "mock_location": "no",
        "full_name": "Nguyễn Thị Hồng Nhung",
        "national_id": "042199012345",
        "phone": None,  # not answered: an empty element
        "birth_year": "1999",
        "sex": "female",
        "ethnicity": "01",
        "household_status": "near_poor",
        "skills": "caregiving sewing",
        "markets_wanted": "JP KR",
        "sector": "caregiving",
        "aspirant_needs": "language loan",
    }
    values.update(over)
    return values


def primary_instance(xform: str) -> ET.Element:
    """The template of the main instance: ``h:html/h:head/model/instance/<root>``."""
    return ET.fromstring(xform).find(f"*/{XF}model/{XF}instance")[0]


def instance_xml(values: dict, xform: str | None = None) -> bytes:
    """The instance document as ODK Collect writes it, built on the form's own instance template.

    Questions of other kinds are not relevant: Collect leaves them out.
    Unanswered relevant questions are empty elements.
    """
    template = primary_instance(xform or xform_xml())
    kind = values.get("kind")

    def write(el: ET.Element) -> str:
        name = el.tag.split("}")[-1]
        if len(el):
            return f"<{name}>" + "".join(write(c) for c in el) + f"</{name}>"
        if name != "instanceID" and name in {f.name for f in FORM.fields} and kind not in FORM.field(name).kinds:
            return ""
        value = values.get(name)
        return f"<{name}/>" if value is None else f"<{name}>{escape(str(value))}</{name}>"

    name = template.tag.split("}")[-1]
    body = "".join(write(c) for c in template)
    head = (f'<{name} xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms" '
            f'id="{template.get("id")}" version="{template.get("version")}">')
    return ("<?xml version='1.0' ?>" + head + body + f"</{name}>").encode("utf-8")


def basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}
