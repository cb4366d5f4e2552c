"""Passwords: Argon2id hashes (argon2-cffi's defaults, RFC 9106) and the rules a new password must meet."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from geodata.settings import Settings, get_settings

_hasher = PasswordHasher()
_dummy_hash: str | None = None


def hash_password(password: str) -> str:
    """The Argon2id hash of ``password`` (salted; a PHC string such as ``$argon2id$v=19$...``).

    >>> hash_password("correct horse battery staple").startswith("$argon2id$")
    True
    """
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (False for a malformed hash too).

    >>> verify_password(hash_password("a long passphrase"), "a long passphrase")
    True
    >>> verify_password("not a hash", "anything")
    False
    """
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether a stored hash was made with weaker parameters than today's (rehash it at the next sign-in)."""
    return _hasher.check_needs_rehash(password_hash)


def burn_verification(password: str) -> None:
    """Spend the time of one verification (an unknown user): no timing difference tells who has an account."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    verify_password(_dummy_hash, password)


def password_problem(password: str, username: str, settings: Settings | None = None) -> str | None:
    """Why ``password`` is refused for ``username``, or None (the password is never echoed).

    >>> password_problem("short", "lan")
    'the password must be at least 12 characters long'
    >>> password_problem("lan.nguyen-2026-xyz", "lan.nguyen")
    'the password must not contain the username'
    """
    settings = settings or get_settings()
    if len(password) < settings.password_min_length:
        return f"the password must be at least {settings.password_min_length} characters long"
    if username.lower() in password.lower():
        return "the password must not contain the username"
    if len(set(password)) < 5:
        return "the password has too few distinct characters"
    return None
