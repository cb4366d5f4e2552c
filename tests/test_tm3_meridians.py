"""The table of provincial VN-2000 TM-3 central meridians (one data file, read by geodata.tm3)."""

import csv

import pytest
from pyproj import CRS, Transformer

from geodata.reference_data import REFERENCE_DIR
from geodata.structures import Structure
from geodata.tm3 import meridians_of, provincial_meridians


def test_every_pre2025_province_has_one_meridian_with_its_epsg_zone():
    with open(REFERENCE_DIR / "vn_old_units_20250301.csv", encoding="utf-8") as f:
        provinces = {r["code"]: r["name"] for r in csv.DictReader(f) if r["level"] == "1"}
    table = provincial_meridians()
    assert set(table) == set(provinces) and len(table) == 63
    for code, m in table.items():
        assert m.province_name == provinces[code]
        assert 102.5 <= m.degrees <= 109 and (m.degrees * 4).is_integer()  # quarter degrees: 103°00' ... 108°30'
        crs = CRS.from_epsg(m.epsg)
        params = {p.name: p.value for p in crs.coordinate_operation.params}
        assert crs.name.startswith("VN-2000 / TM-3")
        assert params["Longitude of natural origin"] == pytest.approx(m.degrees)
        assert params["Scale factor at natural origin"] == pytest.approx(0.9999)
        assert params["False easting"] == 500000
        assert m.checked_against in {"two reprints", "one reprint", "recollection"}


@pytest.mark.parametrize(("code", "dms"), [("01", "105°00'"), ("20", "107°15'"), ("42", "105°30'"), ("46", "107°00'"), ("75", "107°45'")])
def test_values_quoted_by_the_exports_issue(code, dms):
    assert provincial_meridians()[code].dms == dms


def test_a_province_centre_lies_near_its_central_meridian():
    # Hà Tĩnh city (105.90 E, 18.34 N) in its zone: 500 km plus about 42 km east of 105°30'.
    to_zone = Transformer.from_crs(4326, provincial_meridians()["42"].epsg, always_xy=True)
    x, y = to_zone.transform(105.90, 18.34)
    assert 535_000 < x < 550_000 and 2_020_000 < y < 2_035_000


def test_2025_provinces_keep_the_zones_of_the_provinces_merged_into_them():
    with open(REFERENCE_DIR / "vn_2025_units.csv", encoding="utf-8") as f:
        provinces = [r["code"] for r in csv.DictReader(f) if r["level"] == "1"]
    assert len(provinces) == 34
    for code in provinces:
        assert meridians_of(code, Structure.v2025), code
    assert [m.dms for m in meridians_of("42", "2025")] == ["105°30'"]  # Hà Tĩnh was not merged
    assert [m.province_name for m in meridians_of("24", "2025")] == ["Bắc Ninh", "Bắc Giang"]  # 105°30' and 107°00'
    assert [m.dms for m in meridians_of("79", "2025")] == ["105°45'", "107°45'"]  # Hồ Chí Minh + Bình Dương, Bà Rịa - Vũng Tàu
    assert meridians_of("99", "pre2025") == []
