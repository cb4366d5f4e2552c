"""Text as Labour Atlas keeps it: Unicode NFC, no character PostgreSQL cannot store.

Vietnamese can be typed in two Unicode forms: "ộ" as one code point (NFC)
or as "o" plus two combining marks (NFD, which some phone keyboards and Mac
files produce). They look the same and compare different, so every intake
normalises text to NFC (:func:`nfc`). PostgreSQL text cannot hold a NUL
character, and UTF-8 cannot hold a lone surrogate (JSON lets ``"\\ud800"``
through): :func:`text_problem` names them for a validation message, and
:func:`storable` escapes them where a rejected payload is kept as it came.
"""

from __future__ import annotations

import re
import unicodedata

# C0 controls other than tab, line feed and carriage return, DEL, and lone surrogates.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def nfc(value: str) -> str:
    """The NFC form of ``value`` (what is stored, searched and exported).

    >>> len("Nguyễn"), len(unicodedata.normalize("NFD", "Nguyễn")), len(nfc(unicodedata.normalize("NFD", "Nguyễn")))
    (6, 8, 6)
    """
    return unicodedata.normalize("NFC", value)


def fold(value: str) -> str:
    """Fold Vietnamese text for matching: no diacritics, lower case.

    >>> fold("Hà Tĩnh"), fold("ĐỒNG NAI")
    ('ha tinh', 'dong nai')
    """
    value = unicodedata.normalize("NFD", value.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in value if not unicodedata.combining(ch)).lower().strip()


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be a stored answer (a control character, a lone surrogate), or None.

    >>> text_problem("Lê Văn\\x00Khảo")
    'contains a NUL character (at position 6)'
    >>> text_problem("ok\\ud800")
    'contains a lone UTF-16 surrogate U+D800 (at position 2), which is not text'
    >>> text_problem("Hà Tĩnh") is None
    True
    """
    found = _FORBIDDEN.search(value)
    if found is None:
        return None
    ch, at = found.group(), found.start()
    if ch == "\x00":
        return f"contains a NUL character (at position {at})"
    if "\ud800" <= ch <= "\udfff":
        return f"contains a lone UTF-16 surrogate U+{ord(ch):04X} (at position {at}), which is not text"
    return f"contains the control character U+{ord(ch):04X} (at position {at})"


def storable(value: str) -> str:
    """``value`` with what PostgreSQL text cannot hold written as escapes (``\\u0000``, ``\\ud800``).

    For payloads kept as they came (the quarantine): everything else is left
    exactly as sent.

    >>> storable("a\\x00b\\udc80c")
    'a\\\\u0000b\\\\udc80c'
    """
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


def cut(value: str, max_bytes: int, note: str = "[... {dropped} more bytes not kept]") -> str:
    """``value`` cut to at most ``max_bytes`` of UTF-8 (on a character boundary), saying how much was dropped.

    >>> cut("Hà Tĩnh " * 3, 12)
    'Hà Tĩnh H[... 19 more bytes not kept]'
    """
    data = value.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return value
    kept = data[:max_bytes].decode("utf-8", "ignore")
    return kept + note.format(dropped=len(data) - len(kept.encode("utf-8", "surrogatepass")))


# What Excel, LibreOffice and Google Sheets read as the start of a formula (OWASP "CSV injection"); tab and carriage
# return too, because some spreadsheet programs strip them and read what follows.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def safe_cell(value: object) -> object:
    """A value as a spreadsheet cell that cannot be a formula: text starting with ``= + - @`` (or a tab or carriage
    return, or their full-width forms) gets a leading apostrophe, which spreadsheet programs show as text.

    Numbers stay numbers, so a negative count is still ``-3``; only text is changed. Every CSV and XLSX the app
    writes passes its cells through here.

    >>> safe_cell('=HYPERLINK("http://x","y")'), safe_cell("-3"), safe_cell(-3), safe_cell("Hà Tĩnh")
    ('\\'=HYPERLINK("http://x","y")', "'-3", -3, 'Hà Tĩnh')
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
