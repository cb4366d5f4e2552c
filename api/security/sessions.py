"""Sessions: refresh tokens, stored as hashes, rotated on every use, revoked by family.

A refresh token is an opaque random string; only its SHA-256 is stored. Each
use rotates it (the old one is revoked, a new one of the same *family* — the
same sign-in — is issued); a rotated token presented again ends every
session of that family, since a stolen copy is being replayed.

Except within a short grace (``refresh_grace_seconds``): a phone on a weak
signal may never receive the answer of a rotation and send the same token
again. It then gets the *same* new pair, which the server can rebuild without
keeping it: the successor refresh token is derived from the old one with a key
derived from the server secret (only its hash is stored, as for any token), and
the access token is signed from the successor's issue time and a derived id.
Once the successor has been used, or after the grace, the old token is a
replay as before.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, text

from api.security.tokens import create_access_token
from geodata.settings import get_settings

# Domain separation from the other uses of the server secret (ID hashes, JWTs).
_SUCCESSOR_KEY_LABEL = b"labour-atlas/refresh-successor/v1"


def _successor_key() -> bytes:
    secret = get_settings().require_secret("refresh tokens cannot be rotated")
    return hmac.new(secret.encode(), _SUCCESSOR_KEY_LABEL, hashlib.sha256).digest()


def successor_token(token: str) -> str:
    """The refresh token that rotating ``token`` issues: the same every time, unguessable without the server secret.

    >>> successor_token("abc") == successor_token("abc") != successor_token("abd")
    True
    """
    digest = hmac.new(_successor_key(), token.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _access_jti(refresh: str) -> str:
    return hmac.new(_successor_key(), b"jti:" + refresh.encode(), hashlib.sha256).hexdigest()[:32]


def hash_refresh_token(token: str) -> str:
    """SHA-256 (hex) of a refresh token: what the database keeps.

    A refresh token is 256 random bits, so a fast hash is enough: there is
    nothing to guess, unlike a password.

    >>> len(hash_refresh_token("abc"))
    64
    """
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"

    def as_response(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }


def issue_tokens(
    conn: Connection, user_id: uuid.UUID, role: str, family_id: uuid.UUID | None = None, refresh: str | None = None
) -> TokenPair:
    """A new access token and a new stored refresh token (``refresh``, or a random one) of ``family_id``, or a new family."""
    settings = get_settings()
    refresh = refresh or secrets.token_urlsafe(32)
    # Expired tokens of this user are of no more use (not even to detect a replay).
    conn.execute(text("DELETE FROM refresh_token WHERE user_id = :id AND expires_at < now()"), {"id": user_id})
    issued_at = conn.execute(
        text(
            """INSERT INTO refresh_token (id, user_id, family_id, token_hash, issued_at, expires_at)
               VALUES (:id, :user_id, :family_id, :hash, date_trunc('second', now()),
                       date_trunc('second', now()) + make_interval(days => :days))
               RETURNING issued_at"""
        ),
        {"id": uuid.uuid4(), "user_id": user_id, "family_id": family_id or uuid.uuid4(),
         "hash": hash_refresh_token(refresh), "days": settings.refresh_token_days},
    ).scalar_one()
    return _pair(user_id, role, refresh, issued_at)


def _pair(user_id: uuid.UUID, role: str, refresh: str, issued_at: dt.datetime) -> TokenPair:
    # Everything in the access token follows from the refresh token and its issue time: rebuilt, it is the same.
    access, lifetime = create_access_token(user_id, role, now=issued_at, jti=_access_jti(refresh))
    return TokenPair(access, refresh, lifetime)


@dataclass(frozen=True)
class RefreshResult:
    status: Literal["ok", "again", "invalid", "reused", "expired", "disabled"]
    tokens: TokenPair | None = None


def rotate_refresh_token(conn: Connection, token: str) -> RefreshResult:
    """Exchange a refresh token for a new pair; the old one is revoked.

    The same token again within ``refresh_grace_seconds`` of its rotation,
    while its successor is unused, gives the same pair again (``again``).
    Otherwise a token that was already used (revoked) revokes its whole
    family. The caller must commit even when the result is not ``ok``, so
    that a revocation sticks.
    """
    row = conn.execute(
        text(
            """SELECT t.id, t.user_id, t.family_id, t.revoked_at IS NOT NULL AS revoked,
                      t.expires_at <= now() AS expired, u.disabled, u.role,
                      -- rotated (not revoked with its family) within the grace, and the successor not used since
                      (t.replaced_by IS NOT NULL AND t.revoked_at > now() - make_interval(secs => :grace)
                       AND n.revoked_at IS NULL AND n.expires_at > now()) AS in_grace,
                      n.issued_at AS successor_issued_at
               FROM refresh_token t JOIN app_user u ON u.id = t.user_id
               LEFT JOIN refresh_token n ON n.id = t.replaced_by
               WHERE t.token_hash = :hash FOR UPDATE OF t"""
        ),
        {"hash": hash_refresh_token(token), "grace": get_settings().refresh_grace_seconds},
    ).one_or_none()
    if row is None:
        return RefreshResult("invalid")
    if row.revoked and row.in_grace and not row.disabled:
        return RefreshResult("again", _pair(row.user_id, row.role, successor_token(token), row.successor_issued_at))
    if row.revoked:
        revoke_family(conn, row.family_id)
        return RefreshResult("reused")
    if row.expired:
        return RefreshResult("expired")
    if row.disabled:
        revoke_user_sessions(conn, row.user_id)
        return RefreshResult("disabled")
    tokens = issue_tokens(conn, row.user_id, row.role, family_id=row.family_id, refresh=successor_token(token))
    conn.execute(
        text(
            """UPDATE refresh_token SET revoked_at = now(),
                   replaced_by = (SELECT id FROM refresh_token WHERE token_hash = :new)
               WHERE id = :id"""
        ),
        {"id": row.id, "new": hash_refresh_token(tokens.refresh_token)},
    )
    return RefreshResult("ok", tokens)


def revoke_family(conn: Connection, family_id: uuid.UUID) -> int:
    """End every session of one sign-in; returns how many tokens were revoked."""
    return conn.execute(
        text("UPDATE refresh_token SET revoked_at = now() WHERE family_id = :v AND revoked_at IS NULL"), {"v": family_id}
    ).rowcount


def revoke_user_sessions(conn: Connection, user_id: uuid.UUID) -> int:
    """End every session of a user; returns how many tokens were revoked."""
    return conn.execute(
        text("UPDATE refresh_token SET revoked_at = now() WHERE user_id = :v AND revoked_at IS NULL"), {"v": user_id}
    ).rowcount
