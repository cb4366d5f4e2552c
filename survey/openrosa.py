"""OpenRosa 1.0: ODK Collect / KoboCollect submissions and form list.

:func:`parse_submission_xml` turns the instance XML that a phone posts into
the payload the JSON API accepts, so that both go through the one ingest
(:mod:`survey.ingest`). :func:`form_list_xml` and :func:`response_xml` build
the XML documents of the OpenRosa Form List and Form Submission APIs.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET  # a dependency of pyxform: no entity expansion, no DTDs

from survey.definition import FORM, NO_WORDS, YES_WORDS, FormDefinition
from survey.xlsform import xform_xml

XFORMS_LIST_NS = "http://openrosa.org/xforms/xformsList"
RESPONSE_NS = "http://openrosa.org/http/response"
OPENROSA_VERSION = "1.0"

INTEGER = re.compile(r"[+-]?[0-9]+")


class SubmissionXMLError(ValueError):
    """The posted document is not an ODK instance of a known form."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


MAX_DEPTH = 16
"""How deeply an instance may nest (a form's groups are a few levels; hostile documents go to 50,000)."""


def _leaves(root: Element):
    """(path of groups, name, element) of every leaf under ``root``, in document order.

    Walked with a stack, not by recursion, and refused past :data:`MAX_DEPTH`.
    """
    stack = [((), iter(root))]
    while stack:
        path, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            continue
        if not isinstance(child.tag, str):  # comments, processing instructions
            continue
        name = _local(child.tag)
        if len(child):
            if len(path) + 1 >= MAX_DEPTH:
                raise SubmissionXMLError(f"the instance is nested more than {MAX_DEPTH} levels deep")
            stack.append(((*path, name), iter(child)))
        else:
            yield path, name, child


def _value(type_: str, raw: str) -> Any:
    if type_ == "uuid":
        return raw[5:] if raw.lower().startswith("uuid:") else raw
    if type_ == "boolean":
        low = raw.lower()
        return True if low in YES_WORDS else False if low in NO_WORDS else raw
    if type_ == "integer":
        return int(raw) if INTEGER.fullmatch(raw) else raw
    if type_ == "select_multiple":
        return raw.split()
    return raw  # text, dates ("2026-01-05T10:11:12.345+07:00"), geopoint ("lat lon alt acc")


def parse_submission_xml(xml: bytes | str, defn: FormDefinition = FORM) -> dict[str, Any]:
    """The JSON payload of an ODK instance document.

    The root element is the form's (attributes ``id`` and ``version``); answers
    may sit in groups; ``meta/instanceID`` (``uuid:...``) is the instance id;
    empty elements are unanswered (absent); yes/no become true/false and
    select_multiple answers lists. Elements that are not fields of the form
    are ignored.

    Example::

        >>> parse_submission_xml(b'<f id="labour_survey" version="1"><consent>yes</consent>'
        ...                      b'<skills>it welding</skills><phone/><meta><instanceID>uuid:ab-c</instanceID></meta></f>')
        {'form_id': 'labour_survey', 'form_version': '1', 'consent': True, 'skills': ['it', 'welding'], 'instance_id': 'ab-c'}
    """
    try:
        root = SafeET.fromstring(xml)
    except DefusedXmlException as exc:  # a DTD or entity declaration: refused, never expanded ("billion laughs")
        raise SubmissionXMLError(f"not a well-formed XML instance: it declares {type(exc).__name__.removesuffix('Forbidden').lower()} "
                                 "(<!DOCTYPE> or <!ENTITY>), which an ODK instance never does") from exc
    except Exception as exc:  # ParseError
        raise SubmissionXMLError(f"not a well-formed XML instance: {exc}") from exc
    payload: dict[str, Any] = {}
    if root.get("id"):
        payload["form_id"] = root.get("id")
    if root.get("version"):
        payload["form_version"] = root.get("version")
    fields = {f.name: f for f in defn.fields}
    instance_field = next((f for f in defn.fields if f.type == "uuid" and f.name == "instance_id"), None)
    for path, name, el in _leaves(root):
        raw = (el.text or "").strip()
        if not raw:
            continue
        if path[:1] == ("meta",):
            if name == "instanceID" and instance_field is not None:
                payload[instance_field.name] = _value("uuid", raw)
            continue
        f = fields.get(name)
        if f is not None and f.name not in payload:
            payload[f.name] = _value(f.type, raw)
    return payload


def xform_hash(defn: FormDefinition = FORM) -> str:
    """The OpenRosa hash of the XForm: ``md5:`` and the hex MD5 of its bytes."""
    return "md5:" + hashlib.md5(xform_xml(defn).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ListedForm:
    defn: FormDefinition
    download_url: str
    manifest_url: str | None = None


def _xml(root: Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="utf-8", xml_declaration=False)


def form_list_xml(forms: list[ListedForm]) -> bytes:
    """The OpenRosa form list (``<xforms xmlns="http://openrosa.org/xforms/xformsList">``)."""
    root = Element("xforms", xmlns=XFORMS_LIST_NS)
    for item in forms:
        x = SubElement(root, "xform")
        SubElement(x, "formID").text = item.defn.form_id
        SubElement(x, "name").text = item.defn.title_vi
        SubElement(x, "version").text = item.defn.version
        SubElement(x, "hash").text = xform_hash(item.defn)
        SubElement(x, "descriptionText").text = item.defn.title_en
        SubElement(x, "downloadUrl").text = item.download_url
        if item.manifest_url:
            SubElement(x, "manifestUrl").text = item.manifest_url
    return _xml(root)


def response_xml(message: str, nature: str | None = None) -> bytes:
    """An OpenRosa response: ``<OpenRosaResponse><message nature=...>``."""
    root = Element("OpenRosaResponse", xmlns=RESPONSE_NS)
    msg = SubElement(root, "message")
    if nature:
        msg.set("nature", nature)
    msg.text = message
    return _xml(root)
