"""What an export writes: a layer's fields (personal ones only for those who may read them), geometry and CRS."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from geodata.crs import OutputCrs
from geodata.roles import Role
from maps.sources import FieldSpec, LayerSource, Viewer

PERSONAL_READERS = frozenset({Role.officer})
"""Roles that may receive personal fields (DESIGN.md: officers of their area, audited)."""


@dataclass(frozen=True)
class Target:
    """A layer leaving the system in one coordinate system: its name, the fields written and the geometry type."""

    layer: str
    title: str
    fields: tuple[FieldSpec, ...]
    geometry_type: str
    crs: OutputCrs

    @staticmethod
    def of(source: LayerSource, viewer: Viewer, crs: OutputCrs) -> Target:
        """The fields ``viewer`` receives: a field marked personal is never written for a role outside
        :data:`PERSONAL_READERS`, whatever layer it is in (a second lock behind the layer's own readers)."""
        fields = tuple(f for f in source.fields if not f.personal or viewer.role in PERSONAL_READERS)
        return Target(source.name, source.title, fields, source.geometry_type, crs)


def as_text(value: Any, type_: str) -> str | None:
    """A value as the text a file without that type holds: JSON as JSON, dates as ISO 8601.

    >>> as_text({"a": "Hà"}, "json"), as_text(dt.date(2025, 7, 1), "date"), as_text(None, "text")
    ('{"a": "Hà"}', '2025-07-01', None)
    """
    if value is None:
        return None
    if type_ == "json" and not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def as_date(value: Any) -> dt.date | None:
    if isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    return value


def as_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value
