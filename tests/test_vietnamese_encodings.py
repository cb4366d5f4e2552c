"""The legacy Vietnamese encodings (Windows-1258, TCVN3, VNI): the bytes old software wrote, decoded back."""

import csv
import unicodedata

import pytest

from etl.vietnamese_encodings import canonical_encoding, decode, encode
from geodata.reference_data import REFERENCE_DIR

NAMES = ["Đại Nài", "Hà Tĩnh", "Thạch Hà", "Cẩm Xuyên", "Kỳ Anh", "Hương Khê"]


@pytest.mark.parametrize("encoding", ["cp1258", "tcvn3", "vni"])
def test_real_names_round_trip(encoding):
    for name in NAMES:
        raw = encode(name, encoding)
        assert decode(raw, encoding) == name
        assert not raw.isascii() and raw != name.encode("utf-8")
    # What the issue saw when such a DBF was read as ISO-8859-1.
    assert encode("Đại Nài", encoding).decode("latin-1") == {"cp1258": "Ðaòi Nài", "tcvn3": "§¹i Nµi", "vni": "Ñaïi Naøi"}[encoding]


def test_known_byte_sequences():
    # TCVN3 puts each lower-case letter with its tone in one byte; VNI adds a mark byte after the base letter;
    # Windows-1258 writes a combining tone after the letter where it has no precomposed one.
    assert encode("Hương Khê", "tcvn3") == b"H\xad\xacng Kh\xaa"
    assert encode("Hương Khê", "vni") == b"H\xf6\xf4ng Khe\xe2"
    assert encode("Kỳ Anh", "cp1258") == b"Ky\xcc Anh"
    assert encode("ĐỒNG NAI", "vni") == b"\xd1O\xc0NG NAI"
    assert decode(b"Ky\xcc Anh", "cp1258") == "Kỳ Anh"  # composed to NFC


TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}


def capital_with_tone(ch: str) -> bool:
    return ch.isupper() and bool(TONES & set(unicodedata.normalize("NFD", ch)))


@pytest.mark.parametrize("encoding", ["cp1258", "tcvn3", "vni"])
def test_every_official_name_round_trips(encoding):
    with open(REFERENCE_DIR / "vn_old_units_20250301.csv", encoding="utf-8") as f:
        names = {r["name"] for r in csv.DictReader(f)}
    unencodable = []
    for name in names:
        try:
            raw = encode(name, encoding)
        except UnicodeEncodeError:
            unencodable.append(name)
            continue
        assert decode(raw, encoding) == name
    if encoding == "tcvn3":
        # TCVN3 (VN3) has no capitals with tone marks ("Ứng Hòa", "Ý Yên"): only such names cannot be written.
        assert unencodable and all(any(capital_with_tone(c) for c in n) for n in unencodable)
    else:
        assert unencodable == []


def test_bytes_an_encoding_does_not_define_are_refused():
    for raw, encoding in [(b"\xbf", "tcvn3"), (b"Th\xf0", "tcvn3"), (b"\xe1", "vni"), (b"N\xe0i", "utf-8")]:
        with pytest.raises(UnicodeDecodeError):
            decode(raw, encoding)


def test_encoding_names_as_cpg_files_and_people_write_them():
    assert [canonical_encoding(n) for n in ("UTF-8", "65001", "1258", "Windows-1258", "ABC", "TCVN3", "VNI")] == \
        ["utf-8", "utf-8", "cp1258", "cp1258", "tcvn3", "tcvn3", "vni"]
    with pytest.raises(ValueError, match="unknown encoding 'latin9'"):
        canonical_encoding("latin9")
