"""Keyed hashing of national ID numbers (never stored in clear text)."""

from __future__ import annotations

import hashlib
import hmac
import re

from geodata.settings import get_settings


class MissingSecret(RuntimeError):
    """No server secret is configured, so IDs cannot be hashed."""


def normalise_national_id(value: str) -> str:
    """The ID as digits and capitals, without spaces, dots or dashes.

    >>> normalise_national_id(" 001 099-012.345 ")
    '001099012345'
    """
    return re.sub(r"[\s.\-]", "", value).upper()


def national_id_hash(value: str, secret: str | None = None) -> str:
    """HMAC-SHA256 of the normalised ID with the server secret, in hex.

    The same ID always gives the same hash (so duplicates can be found);
    without the secret the hash cannot be reversed by trying all ID numbers.
    """
    secret = secret or get_settings().secret_key
    if not secret:
        raise MissingSecret("LABOUR_ATLAS_SECRET_KEY is not set: national IDs cannot be stored")
    return hmac.new(secret.encode(), normalise_national_id(value).encode(), hashlib.sha256).hexdigest()
