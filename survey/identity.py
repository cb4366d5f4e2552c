"""Keyed hashing of national ID numbers (never stored in clear text)."""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable

from geodata.settings import get_settings

SEPARATORS = re.compile(r"[\s.\-]")


def normalise_national_id(value: str) -> str:
    """The ID as digits and capitals, without spaces, dots or dashes.

    >>> normalise_national_id(" 001 099-012.345 ")
    '001099012345'
    """
    return SEPARATORS.sub("", value).upper()


def national_id_hash(value: str, secret: str | None = None) -> str:
    """HMAC-SHA256 of the normalised ID with the server secret, in hex.

    The same ID always gives the same hash (so duplicates can be found);
    without the secret the hash cannot be reversed by trying all ID numbers.
    """
    return national_id_hashes([value], secret)[0]


def national_id_hashes(values: Iterable[str | None], secret: str | None = None) -> list[str | None]:
    """:func:`national_id_hash` of many IDs at once (None stays None): for big files.

    >>> national_id_hashes(["001 099 012 345", None], secret="s") == [national_id_hash("001099012345", "s"), None]
    True
    """
    secret = secret or get_settings().require_secret("national IDs cannot be stored")
    key = secret.encode()
    return [hmac.digest(key, normalise_national_id(v).encode(), "sha256").hex() if isinstance(v, str) else None
            for v in values]
