"""The layer registry: every map layer, once, with who may read it, its filters, its fields and its rows.

The GeoJSON routes (``/api/v1/layers/...``), the exports (every format, ``/api/v1/exports/{layer}`` and
``labour-atlas export``) and the OGC API collections read a layer's rows only through its
:class:`~maps.sources.base.LayerSource` in :data:`SOURCES`, so the reader's role and area, the
small-count protection and the audit of personal reads are written once per layer.

>>> sorted(SOURCES)[:4]
['coverage', 'emerging-hotspots', 'hotspots', 'incident-counts']
>>> [f.name for f in SOURCES["incidents"].fields if f.personal], SOURCES["survey-records"].readers
([], (<Role.officer: 'officer'>,))
"""

from __future__ import annotations

from geodata.errors import NotFound
from maps.sources.base import ALL, FULL_WKB, WEB, Chunk, FieldSpec, Filters, LayerSource, Page, Rows, Shape, Viewer
from maps.sources.coverage import COVERAGE
from maps.sources.hotspots import EMERGING, HOTSPOTS
from maps.sources.incidents import INCIDENT_COUNT_LAYER, INCIDENTS
from maps.sources.records import RECORDS
from maps.sources.recruiters import ACTIVITY, REGISTER
from maps.sources.units import UNITS

SOURCES: dict[str, LayerSource] = {s.name: s for s in (UNITS, COVERAGE, INCIDENTS, INCIDENT_COUNT_LAYER, HOTSPOTS, EMERGING,
                                                       REGISTER, ACTIVITY, RECORDS)}
"""Every layer by name (its URL segment)."""


def layer_source(name: str) -> LayerSource:
    """The layer called ``name``; :class:`NotFound` naming the layers otherwise."""
    if name not in SOURCES:
        raise NotFound(f"no layer {name!r}: the layers are {', '.join(SOURCES)}")
    return SOURCES[name]


__all__ = ["ALL", "FULL_WKB", "SOURCES", "WEB", "Chunk", "FieldSpec", "Filters", "LayerSource", "Page", "Rows", "Shape",
           "Viewer", "layer_source"]
