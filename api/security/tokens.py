"""Access tokens: JWTs signed with HS256 under a key derived from the server secret.

Claims: ``sub`` (the user's random id, never the name), ``role``, ``iat``,
``exp``, ``jti``, ``type="access"``; nothing personal. Verification accepts
HS256 only (so neither ``none`` nor another algorithm), a valid signature,
an unexpired token and ``type="access"``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid
from dataclasses import dataclass

import jwt

from geodata.roles import Role
from geodata.settings import Settings, get_settings

ALGORITHM = "HS256"
TOKEN_TYPE_ACCESS = "access"
# Domain separation: the server secret also keys national-ID hashes, so the
# JWT key is derived from it rather than being the secret itself.
_ACCESS_KEY_LABEL = b"labour-atlas/access-token/v1"


class InvalidToken(Exception):
    """An access token that must not be accepted; the message says why (no secrets)."""


def _access_key(settings: Settings | None = None) -> bytes:
    secret = (settings or get_settings()).require_secret("access tokens cannot be signed or checked")
    return hmac.new(secret.encode(), _ACCESS_KEY_LABEL, hashlib.sha256).digest()


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    role: str
    jti: str
    expires_at: dt.datetime


def create_access_token(
    user_id: uuid.UUID | str,
    role: Role | str,
    *,
    now: dt.datetime | None = None,
    minutes: int | None = None,
    settings: Settings | None = None,
    jti: str | None = None,
) -> tuple[str, int]:
    """A signed access token and its lifetime in seconds.

    With the same ``now`` and ``jti`` (and settings) the token is the same,
    byte for byte: a refresh answered again within its grace gives it again.

    >>> token, seconds = create_access_token(uuid.uuid4(), Role.officer, minutes=15)
    >>> seconds, decode_access_token(token).role
    (900, 'officer')
    """
    settings = settings or get_settings()
    now = now or dt.datetime.now(dt.UTC)
    lifetime = 60 * (minutes if minutes is not None else settings.access_token_minutes)
    claims = {
        "sub": str(user_id),
        "role": Role(role).value,
        "type": TOKEN_TYPE_ACCESS,
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + lifetime,
        "jti": jti or uuid.uuid4().hex,
    }
    return jwt.encode(claims, _access_key(settings), algorithm=ALGORITHM), lifetime


def decode_access_token(token: str, settings: Settings | None = None) -> AccessClaims:
    """Check an access token and return its claims; raises :class:`InvalidToken`."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise InvalidToken("malformed token") from exc
    if header.get("alg") != ALGORITHM:
        raise InvalidToken(f"token algorithm must be {ALGORITHM}")
    try:
        claims = jwt.decode(
            token,
            _access_key(settings),
            algorithms=[ALGORITHM],
            options={"require": ["sub", "role", "type", "iat", "exp", "jti"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidToken("invalid token") from exc
    if claims.get("type") != TOKEN_TYPE_ACCESS:
        raise InvalidToken("not an access token")
    try:
        user_id = uuid.UUID(str(claims["sub"]))
    except ValueError as exc:
        raise InvalidToken("invalid token subject") from exc
    return AccessClaims(user_id, str(claims["role"]), str(claims["jti"]), dt.datetime.fromtimestamp(claims["exp"], dt.UTC))
