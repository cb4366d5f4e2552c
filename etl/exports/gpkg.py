"""GeoPackage: one table named after the layer, full field names and types, the CRS as used.

The rows go to GDAL as one Arrow stream (one transaction, one chunk in memory
at a time). The CRS row of ``gpkg_spatial_ref_sys`` is EPSG's code with the
definition of :meth:`geodata.crs.OutputCrs.wkt`: for VN-2000 the datum carries the
``TOWGS84`` of the pinned transformation, so the file says which of the
published transformations moved its points.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from etl.exports.arrow import GEOMETRY, schema
from etl.exports.files import blocks, scratch
from etl.exports.stream import Stream
from etl.exports.target import Target

RTREE_MEMORY_BYTES = 16 << 20


def write_gpkg(rows: Stream, target: Target) -> Iterator[bytes]:
    """The layer as a GeoPackage file, in blocks."""
    import pyogrio  # with GDAL it brings pandas and geopandas: imported for the first file, not by every server

    # GDAL builds the spatial index in memory up to this size (500 MB by default, about 25 MB per million points),
    # then in the file: capped, a server's memory stays flat whatever the rows, for about 15 % more CPU at a million.
    pyogrio.set_gdal_config_options({"OGR_GPKG_MAX_RAM_USAGE_RTREE": str(RTREE_MEMORY_BYTES)})
    with scratch() as tmp:
        path = tmp / f"{target.layer}.gpkg"
        out = schema(target)
        reader = pa.RecordBatchReader.from_batches(out, rows.batches(target, out))
        pyogrio.write_arrow(reader, path, layer=target.layer.replace("-", "_"), driver="GPKG", geometry_name=GEOMETRY,
                            geometry_type=target.geometry_type, crs=target.crs.wkt(),
                            layer_options={"IDENTIFIER": target.title, "DESCRIPTION": f"Labour Atlas: {target.title}, "
                                                                                    f"{target.crs.label}"})
        yield from blocks(path)
