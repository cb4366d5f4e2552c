"""Output coordinate systems: VN-2000 by the official transformation, pinned, and the choices users type."""

from __future__ import annotations

import math

import pytest
from pyproj import Transformer
from pyproj.transformer import TransformerGroup

from geodata.crs import parse_crs
from geodata.errors import InvalidInput

# Across the country: Hà Giang, Hà Nội, Hà Tĩnh, Đà Nẵng, Đắk Lắk, Cà Mau.
PLACES = [(104.98, 22.82), (105.85, 21.03), (105.90, 18.35), (108.22, 16.05), (108.05, 12.67), (105.15, 9.18)]


def epsg_operation(target: str, name: str) -> Transformer:
    (found,) = [t for t in TransformerGroup("EPSG:4326", target, always_xy=True).transformers if name in t.description]
    return found


@pytest.mark.parametrize("key", ["EPSG:3405", "EPSG:3406", "vn2000-tm3:42", "vn2000-tm3:01"])
def test_the_pinned_pipeline_is_epsgs_official_transformation(key):
    out = parse_crs(key)
    official = epsg_operation(f"EPSG:{out.epsg}", "VN-2000 to WGS 84 (2)")
    for lon, lat in PLACES:
        assert math.dist(out.transformer().transform(lon, lat), official.transform(lon, lat)) < 0.001


def test_the_other_rotation_convention_or_the_other_operation_would_be_caught():
    """The same seven numbers as a position-vector ``+towgs84`` move points by more than the test allows."""
    out = parse_crs("EPSG:3405")
    wrong = Transformer.from_pipeline(out.pipeline().replace("coordinate_frame", "position_vector"))
    academic = epsg_operation("EPSG:3405", "VN-2000 to WGS 84 (1)")
    for lon, lat in PLACES[:3]:
        ours = out.transformer().transform(lon, lat)
        assert 0.4 < math.dist(ours, wrong.transform(lon, lat)) < 1.0
        assert math.dist(ours, academic.transform(lon, lat)) > 0.3


def test_geographic_vn2000_and_wgs84():
    lon, lat = parse_crs("EPSG:4756").transformer().transform(105.85, 21.03)
    assert abs(lon - 105.85) < 0.01 and abs(lat - 21.03) < 0.01 and (lon, lat) != (105.85, 21.03)
    assert parse_crs(None).transformer().transform(105.85, 21.03) == (105.85, 21.03)


def test_provincial_grids_and_what_users_type():
    assert parse_crs("vn2000-tm3:42").epsg == 9209 and parse_crs("VN2000-TM3:20").label.endswith("(EPSG:9215)")
    assert parse_crs("http://www.opengis.net/def/crs/EPSG/0/3406").key == "EPSG:3406"
    assert parse_crs("http://www.opengis.net/def/crs/OGC/1.3/CRS84").key == "EPSG:4326"
    assert parse_crs("EPSG:9209").epsg == 9209
    for bad in ("EPSG:3857", "vn2000-tm3:99", "utm48", "4326; drop table"):
        with pytest.raises(InvalidInput) as e:
            parse_crs(bad)
        assert e.value.loc == ("query", "crs")
