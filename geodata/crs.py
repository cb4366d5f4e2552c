"""The coordinate systems data leaves in, and the one pinned way from WGS 84 to VN-2000.

Everything is stored in WGS 84 (EPSG:4326). Planners ask for VN-2000: its
geographic CRS (EPSG:4756), UTM zones 48N / 49N (EPSG:3405 / 3406), or the
TM-3 grid of a province (``vn2000-tm3:<province code>``, EPSG 5897-5899 and
9205-9218, scale 0.9999, false easting 500 km, the central meridian of
:mod:`geodata.tm3`).

WGS 84 to VN-2000 is a seven-parameter Helmert transformation: the official
parameters (Decision 05/2007/QĐ-BTNMT), which EPSG publishes as "VN-2000 to
WGS 84 (2)" in the *coordinate frame* convention. The same seven numbers are
also quoted in the wild as position-vector ``+towgs84`` strings, which turns
the rotations the other way and moves points by about half a metre; and
PROJ may pick another operation (EPSG's "(1)", an academic Mekong-delta
fit) when asked for EPSG:4326 to EPSG:3405 by code alone. So the pipeline is
written out here (:data:`WGS84_TO_VN2000_STEPS`) and every transformation
into VN-2000 goes through :meth:`OutputCrs.transformer`.

>>> parse_crs("vn2000-tm3:42").label
"VN-2000 / TM-3 105°30' (EPSG:9209)"
>>> parse_crs("EPSG:3405").key, parse_crs("http://www.opengis.net/def/crs/EPSG/0/4756").key
('EPSG:3405', 'EPSG:4756')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from pyproj import CRS, Transformer
from pyproj.crs import BoundCRS
from pyproj.crs.coordinate_operation import ToWGS84Transformation
from pyproj.enums import WktVersion

from geodata.errors import InvalidInput
from geodata.tm3 import provincial_meridians

# VN-2000 to WGS 84 (2): Decision 05/2007/QĐ-BTNMT; metres, arc-seconds, ppm; coordinate frame rotation.
HELMERT = {"x": -191.90441429, "y": -39.30318279, "z": -111.45032835,
           "rx": -0.00928836, "ry": 0.01975479, "rz": -0.00427372, "s": 0.252906278}
HELMERT_STEP = " ".join(f"+{k}={v}" for k, v in HELMERT.items()) + " +convention=coordinate_frame"
# WGS 84 longitude/latitude in degrees to VN-2000 longitude/latitude in radians (the ellipsoid is WGS 84's in both).
WGS84_TO_VN2000_STEPS = (
    "+step +proj=unitconvert +xy_in=deg +xy_out=rad "
    "+step +proj=push +v_3 "
    "+step +proj=cart +ellps=WGS84 "
    f"+step +inv +proj=helmert {HELMERT_STEP} "
    "+step +inv +proj=cart +ellps=WGS84 "
    "+step +proj=pop +v_3"
)
OGC_URI = "http://www.opengis.net/def/crs/EPSG/0/{code}"
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


@dataclass(frozen=True)
class OutputCrs:
    """A coordinate system an export or an OGC API answer can be in."""

    key: str  # what a user types: EPSG:4326, EPSG:4756, EPSG:3405, EPSG:3406, vn2000-tm3:42
    epsg: int
    label: str
    projection: str | None  # PROJ steps from VN-2000 radians; None for geographic output

    @property
    def crs(self) -> CRS:
        """EPSG's definition (what the .prj and the GeoPackage say)."""
        return CRS.from_epsg(self.epsg)

    @property
    def uri(self) -> str:
        return OGC_URI.format(code=self.epsg)

    @property
    def is_vn2000(self) -> bool:
        return self.epsg != 4326

    def pipeline(self) -> str:
        """The PROJ pipeline from WGS 84 longitude/latitude (degrees) to this CRS's x/y (easting/northing, or lon/lat)."""
        if not self.is_vn2000:
            return "+proj=noop"
        last = f"+step {self.projection}" if self.projection else "+step +proj=unitconvert +xy_in=rad +xy_out=deg"
        return f"+proj=pipeline {WGS84_TO_VN2000_STEPS} {last}"

    @property
    def towgs84(self) -> tuple[float, ...] | None:
        """The pinned Helmert as WKT1 ``TOWGS84`` values (None for WGS 84).

        ``TOWGS84`` is the *position vector* convention (OGC 01-009), so the three
        rotations are those of :data:`HELMERT` (coordinate frame) with their signs
        turned: the same transformation, written the way GDAL, QGIS and PROJ read it.
        """
        if not self.is_vn2000:
            return None
        h = HELMERT
        return (h["x"], h["y"], h["z"], -h["rx"], -h["ry"], -h["rz"], h["s"])

    def file_crs(self) -> CRS:
        """The CRS a file says it is in: EPSG's definition, bound for VN-2000 to WGS 84 by :attr:`towgs84`.

        EPSG's code alone would let the program that opens the file pick a
        transformation back to WGS 84 (PROJ may choose EPSG's "(1)", the
        Mekong-delta fit; programs reading an ESRI .prj pick by name), and a
        point exported here would come back up to a metre away. With the seven
        parameters in the file, GDAL, QGIS and PROJ undo exactly the
        transformation the export applied.
        """
        if not self.is_vn2000:
            return self.crs
        base = self.crs
        return BoundCRS(source_crs=base, target_crs=CRS.from_epsg(4326),
                        transformation=ToWGS84Transformation(base.geodetic_crs, *self.towgs84))

    def wkt(self) -> str:
        """:meth:`file_crs` as WKT 1 (GDAL's flavour: EPSG codes kept, ``TOWGS84`` in the datum), for .prj and GeoPackage.

        >>> "TOWGS84[-191.90441429,-39.30318279,-111.45032835,0.00928836,-0.01975479,0.00427372,0.252906278]" in parse_crs("EPSG:3405").wkt()
        True
        """
        return self.file_crs().to_wkt(WktVersion.WKT1_GDAL)

    def transformer(self) -> Transformer:
        """From WGS 84 (x = longitude, y = latitude) to this CRS (x = easting or longitude), pinned."""
        return _transformer(self.pipeline())


@cache
def _transformer(pipeline: str) -> Transformer:
    return Transformer.from_pipeline(pipeline)


def _tm3(province: str) -> OutputCrs:
    meridians = provincial_meridians()
    if province not in meridians:
        raise InvalidInput(f"no VN-2000 TM-3 zone for province {province!r}: give a pre-2025 province code (01-96), "
                           "e.g. vn2000-tm3:42 for Hà Tĩnh", loc=("query", "crs"))
    m = meridians[province]
    return OutputCrs(f"vn2000-tm3:{province}", m.epsg, m.label,
                     f"+proj=tmerc +lat_0=0 +lon_0={m.degrees} +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84")


FIXED = {
    4326: OutputCrs("EPSG:4326", 4326, "WGS 84 (EPSG:4326)", None),
    4756: OutputCrs("EPSG:4756", 4756, "VN-2000 (EPSG:4756)", None),
    3405: OutputCrs("EPSG:3405", 3405, "VN-2000 / UTM zone 48N (EPSG:3405)", "+proj=utm +zone=48 +ellps=WGS84"),
    3406: OutputCrs("EPSG:3406", 3406, "VN-2000 / UTM zone 49N (EPSG:3406)", "+proj=utm +zone=49 +ellps=WGS84"),
}
_EPSG = re.compile(r"^(?:EPSG:|https?://www\.opengis\.net/def/crs/EPSG/0/)?(\d{4,5})$", re.IGNORECASE)
_TM3 = re.compile(r"^vn2000-tm3:(\d{2})$", re.IGNORECASE)


def parse_crs(text: str | None) -> OutputCrs:
    """The output CRS a user asked for (default WGS 84); :class:`InvalidInput` naming the choices otherwise."""
    if text is None or text.strip() == "" or text.strip() == CRS84_URI:
        return FIXED[4326]
    t = text.strip()
    if found := _TM3.match(t):
        return _tm3(found.group(1))
    if (found := _EPSG.match(t)) and int(found.group(1)) in FIXED:
        return FIXED[int(found.group(1))]
    if found:
        by_epsg = {m.epsg: code for code, m in provincial_meridians().items()}
        if int(found.group(1)) in by_epsg:
            return _tm3(by_epsg[int(found.group(1))])
    raise InvalidInput(f"unknown coordinate system {text!r}: use EPSG:4326 (WGS 84), EPSG:4756 (VN-2000), EPSG:3405 or "
                       "EPSG:3406 (VN-2000 / UTM 48N, 49N) or vn2000-tm3:<province code> (a province's TM-3 grid)",
                       loc=("query", "crs"))
