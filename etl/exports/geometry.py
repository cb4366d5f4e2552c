"""A chunk's geometries in the coordinate system asked for, through the one pinned pipeline of :mod:`geodata.crs`.

Layers hand out WKB in WGS 84 (:data:`maps.sources.FULL_WKB`); an export
moves every vertex with :meth:`geodata.crs.OutputCrs.transformer` (vectorised
over the chunk's coordinates), never with a transformation PROJ would choose
itself.

>>> from geodata.crs import parse_crs
>>> import shapely
>>> g = in_crs([shapely.to_wkb(shapely.Point(105.9, 18.35)), None], parse_crs("vn2000-tm3:42"))
>>> [round(c) for c in shapely.get_coordinates(g[0])[0]], g[1]
([542078, 2029674], None)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

from geodata.crs import OutputCrs


def in_crs(wkb: Sequence[bytes | None], crs: OutputCrs) -> np.ndarray:
    """Shapely geometries (None where a row has none) from WGS 84 WKB, moved into ``crs``."""
    geoms = shapely.from_wkb(np.asarray(wkb, dtype=object))
    if not crs.is_vn2000 or len(geoms) == 0:
        return geoms
    transformer = crs.transformer()

    def move(xy: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, move)


def decimals(crs: OutputCrs) -> int:
    """Decimals that keep a centimetre: 7 for degrees, 3 for metres (text formats)."""
    return 7 if crs.projection is None else 3
