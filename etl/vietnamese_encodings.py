"""The legacy 8-bit encodings of Vietnamese text found in old DBF files.

Before Unicode, Vietnamese text was typed in font encodings: TCVN3 (the
"ABC" fonts, .VnTime), VNI (VNI-Times) or Windows-1258. A DBF of a land
department may hold any of them, usually without a ``.cpg`` saying which.
Windows-1258 is a Python codec (``cp1258``); TCVN3 and VNI are not, so their
byte maps are written out here.

- **TCVN3** (TCVN 5712:1993, the VN3 subset used by the ABC fonts): one byte
  per letter, lower-case letters with their tone marks in 0xA8-0xFE and the
  seven upper-case base letters Ă Â Ê Ô Ơ Ư Đ in 0xA1-0xA7. VN3 has no
  upper-case letters with tone marks (the ABC "H" fonts drew the lower-case
  codes as capitals), so a capital such as "Ứ" comes back lower case; the
  positions the fuller VN1 variant gives them are left undecoded, and bytes
  there refuse the candidate.
- **VNI** (VNI-Windows): an ASCII base letter followed by one byte for its
  marks ("a" + 0xEF is "ạ", "o" + 0xE1 is "ố"); ơ, ư, đ, ỵ and the five i's
  are single bytes.
- **Windows-1258**: precomposed letters where Latin-1 has them, otherwise a
  base letter followed by a combining tone mark; decoded text is composed
  to NFC here.

Decoding is strict: a byte (or pair) the encoding does not define raises
:class:`UnicodeDecodeError`, which is what lets an import rule a candidate
out. The encoders exist so that tests can write files the way old software
did and prove the round trip.

>>> decode(encode("Đại Nài", "tcvn3"), "tcvn3"), encode("Đại Nài", "tcvn3")
('Đại Nài', b'\\xa7\\xb9i N\\xb5i')
>>> encode("Hương Khê", "vni").decode("latin-1")
'Höông Kheâ'
>>> encode("Đại Nài", "cp1258")
b'\\xd0a\\xf2i N\\xe0i'
"""

from __future__ import annotations

import unicodedata

ENCODINGS = ("utf-8", "cp1258", "tcvn3", "vni")
"""Every encoding a boundary file's text may be read in (``--encoding``)."""

LEGACY = ("cp1258", "tcvn3", "vni")

# -- TCVN3 (VN3) -------------------------------------------------------------
# Per vowel the five tones come in the order grave, hook, tilde, acute, dot;
# the holes between the groups are where VN1 puts capitals.
_TCVN3_GROUPS = {
    0xB5: "àảãáạ", 0xBB: "ằẳẵắ", 0xC6: "ặ", 0xC7: "ầẩẫấậ", 0xCC: "è", 0xCE: "ẻẽéẹ",
    0xD2: "ềểễếệ", 0xD7: "ìỉ", 0xDC: "ĩíị", 0xDF: "ò", 0xE1: "ỏõóọ", 0xE5: "ồổỗốộ",
    0xEA: "ờởỡớợ", 0xEF: "ù", 0xF1: "ủũúụ", 0xF5: "ừửữứự", 0xFA: "ỳỷỹýỵ",
    0xA1: "ĂÂÊÔƠƯĐ", 0xA8: "ăâêôơưđ",
}
TCVN3_DECODE: dict[int, str] = {start + i: ch for start, chars in _TCVN3_GROUPS.items() for i, ch in enumerate(chars)}
"""TCVN3 byte (0x80-0xFF) -> character; bytes below 0x80 are ASCII."""
TCVN3_ENCODE: dict[str, int] = {ch: b for b, ch in TCVN3_DECODE.items()}

# -- VNI-Windows ---------------------------------------------------------------
# Mark bytes after a base letter, lower case (upper case letters take the
# upper-case Latin-1 twin of the same byte, 0x20 lower).
_VNI_TONES = {"\u0301": 0xF9, "\u0300": 0xF8, "\u0309": 0xFB, "\u0303": 0xF5, "\u0323": 0xEF}
_VNI_BREVE = {"": 0xEA, "\u0301": 0xE9, "\u0300": 0xE8, "\u0309": 0xFA, "\u0303": 0xFC, "\u0323": 0xEB}
_VNI_CIRCUMFLEX = {"": 0xE2, "\u0301": 0xE1, "\u0300": 0xE0, "\u0309": 0xE5, "\u0303": 0xE3, "\u0323": 0xE4}
# Letters that are one byte of their own.
_VNI_SINGLE = {"í": 0xED, "ì": 0xEC, "ỉ": 0xE6, "ĩ": 0xF3, "ị": 0xF2, "ơ": 0xF4, "ư": 0xF6, "đ": 0xF1, "ỵ": 0xEE}


def _vni_tables() -> tuple[dict[bytes, str], dict[str, bytes]]:
    encode_map: dict[str, bytes] = {}

    def add(text: str, base: bytes, mark: int | None) -> None:
        for case in (str.lower, str.upper):
            ch = unicodedata.normalize("NFC", case(text))
            b = base if case is str.lower else base.upper() if base.isascii() else bytes([base[0] - 0x20])
            encode_map[ch] = b + (bytes([mark if case is str.lower else mark - 0x20]) if mark is not None else b"")

    for ch, b in _VNI_SINGLE.items():
        add(ch, bytes([b]), None)
    for vowel in "aeouy":
        for tone, mark in _VNI_TONES.items():
            if not (vowel == "y" and tone == "\u0323"):  # ỵ is a single byte
                add(vowel + tone, vowel.encode(), mark)
    for tone, mark in _VNI_BREVE.items():
        add("a\u0306" + tone, b"a", mark)
    for vowel in "aeo":
        for tone, mark in _VNI_CIRCUMFLEX.items():
            add(vowel + "\u0302" + tone, vowel.encode(), mark)
    for horned, byte in (("ơ", 0xF4), ("ư", 0xF6)):
        for tone, mark in _VNI_TONES.items():
            add(horned + tone, bytes([byte]), mark)
    return {v: k for k, v in encode_map.items()}, encode_map


VNI_DECODE, VNI_ENCODE = _vni_tables()
"""VNI byte sequence (one or two bytes) -> character, and back."""


# -- codec functions -------------------------------------------------------------

def canonical_encoding(name: str) -> str:
    """The name of an encoding as used here, from the ways people and ``.cpg`` files write it.

    Raises ``ValueError`` for an encoding Vietnamese boundary files are not read in.

    >>> canonical_encoding("UTF8"), canonical_encoding("1258"), canonical_encoding("ABC"), canonical_encoding("VNI-Windows")
    ('utf-8', 'cp1258', 'tcvn3', 'vni')
    """
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    aliases = {
        "utf-8": "utf-8", "utf8": "utf-8", "65001": "utf-8",
        "cp1258": "cp1258", "1258": "cp1258", "windows-1258": "cp1258", "ansi-1258": "cp1258", "cp-1258": "cp1258",
        "tcvn3": "tcvn3", "tcvn": "tcvn3", "abc": "tcvn3", "vn3": "tcvn3", "tcvn-5712": "tcvn3",
        "vni": "vni", "vni-windows": "vni",
    }
    if key not in aliases:
        raise ValueError(f"unknown encoding {name!r}; choose one of {', '.join(ENCODINGS)}")
    return aliases[key]


def decode(raw: bytes, encoding: str) -> str:
    """Decode ``raw`` in ``encoding`` (one of :data:`ENCODINGS`) to NFC text, strictly.

    >>> decode(b"Th\\xb9ch H\\xb5", "tcvn3"), decode(b"Ca\\xe5m Xuye\\xe2n", "vni"), decode(b"Ky\\xcc Anh", "cp1258")
    ('Thạch Hà', 'Cẩm Xuyên', 'Kỳ Anh')
    """
    encoding = canonical_encoding(encoding)
    if encoding in ("utf-8", "cp1258"):
        return unicodedata.normalize("NFC", raw.decode(encoding))
    out: list[str] = []
    i = 0
    while i < len(raw):
        byte = raw[i]
        if encoding == "vni" and raw[i:i + 2] in VNI_DECODE:
            out.append(VNI_DECODE[raw[i:i + 2]])
            i += 2
            continue
        if byte < 0x80:
            out.append(chr(byte))
        elif encoding == "tcvn3" and byte in TCVN3_DECODE:
            out.append(TCVN3_DECODE[byte])
        elif encoding == "vni" and bytes([byte]) in VNI_DECODE:
            out.append(VNI_DECODE[bytes([byte])])
        else:
            raise UnicodeDecodeError(encoding, raw, i, i + 1, f"byte 0x{byte:02X} is not {encoding} text here")
        i += 1
    return "".join(out)


def _encode_cp1258(text: str) -> bytes:
    # What Windows writes: a precomposed letter where Windows-1258 has one,
    # else the letter without its tone mark followed by the combining tone.
    out = bytearray()
    for ch in text:
        try:
            out += ch.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        parts = unicodedata.normalize("NFD", ch)
        tones = "".join(m for m in parts[1:] if m in _VNI_TONES)
        base = unicodedata.normalize("NFC", parts[0] + "".join(m for m in parts[1:] if m not in _VNI_TONES))
        out += (base + tones).encode("cp1258")
    return bytes(out)


def encode(text: str, encoding: str) -> bytes:
    """Encode NFC ``text`` the way software writing ``encoding`` did (raises ``UnicodeEncodeError`` where it cannot).

    >>> encode("Hà Tĩnh", "tcvn3").decode("latin-1"), encode("Cẩm Xuyên", "cp1258")
    ('Hµ TÜnh', b'C\\xe2\\xd2m Xuy\\xean')
    """
    encoding = canonical_encoding(encoding)
    text = unicodedata.normalize("NFC", text)
    if encoding == "utf-8":
        return text.encode("utf-8")
    if encoding == "cp1258":
        return _encode_cp1258(text)
    table = TCVN3_ENCODE if encoding == "tcvn3" else VNI_ENCODE
    out = bytearray()
    for i, ch in enumerate(text):
        if ord(ch) < 0x80:
            out.append(ord(ch))
        elif ch in table:
            value = table[ch]
            out += bytes([value]) if isinstance(value, int) else value
        else:
            raise UnicodeEncodeError(encoding, text, i, i + 1, f"{ch!r} has no {encoding} code")
    return bytes(out)
