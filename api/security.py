"""Security helpers in one place: passwords, tokens, accounts, sign-in, the server secret.

- Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106).
- Access tokens are JWTs signed with HS256 under a key derived from
  ``LABOUR_ATLAS_SECRET_KEY``. Claims: ``sub`` (the user's random id, never
  the name), ``role``, ``iat``, ``exp``, ``jti``, ``type="access"``; nothing
  personal. Verification accepts HS256 only (so neither ``none`` nor another
  algorithm), a valid signature, an unexpired token and ``type="access"``.
- Refresh tokens are opaque random strings; only their SHA-256 is stored.
  Each use rotates the token; a rotated token presented again ends every
  session of that login (the token family).
- Failed sign-ins are counted per account, slowed down and then locked
  (settings ``login_delay_*``, ``lockout_*``). Unknown usernames get the same
  answers and delays, so the sign-in form does not tell who has an account.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, text

from geodata.scopes import refresh_scopes
from geodata.settings import Settings, get_settings
from geodata.structures import Structure

ALGORITHM = "HS256"
TOKEN_TYPE_ACCESS = "access"
# Domain separation: the server secret also keys national-ID hashes, so the
# JWT key is derived from it rather than being the secret itself.
_ACCESS_KEY_LABEL = b"labour-atlas/access-token/v1"
MIN_SECRET_LENGTH = 32
KNOWN_DEFAULT_SECRETS = frozenset({
    "changeme", "change-me", "change_me", "changethis", "secret", "secret-key", "secret_key", "password",
    "default", "labour-atlas", "labour_atlas", "dev", "development", "test", "demo",
    "test-secret-not-for-production", "bench-secret", "your-secret-key", "please-change-me",
})
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")

_hasher = PasswordHasher()


class Role(str, Enum):
    """What a user does (see DESIGN.md, "Users and what each one does")."""

    surveyor = "surveyor"
    officer = "officer"
    leader = "leader"
    police_analyst = "police_analyst"
    planner = "planner"
    admin = "admin"


class MissingSecret(RuntimeError):
    """``LABOUR_ATLAS_SECRET_KEY`` is not set, so tokens cannot be signed."""


class InvalidToken(Exception):
    """An access token that must not be accepted; the message says why (no secrets)."""


class AccountError(ValueError):
    """An account could not be created or changed; the message says what to do."""


class UsernameTaken(AccountError):
    pass


class UnknownUser(AccountError):
    pass


# -- the server secret -----------------------------------------------------------
def secret_problem(secret: str | None) -> str | None:
    """Why ``secret`` is unfit to run a server with, or None when it is fine.

    >>> secret_problem("changeme")
    'LABOUR_ATLAS_SECRET_KEY is a well-known default value'
    >>> secret_problem(secrets.token_urlsafe(32)) is None
    True
    """
    if secret is None or not secret.strip():
        return "LABOUR_ATLAS_SECRET_KEY is not set"
    if secret.strip().lower() in KNOWN_DEFAULT_SECRETS:
        return "LABOUR_ATLAS_SECRET_KEY is a well-known default value"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"LABOUR_ATLAS_SECRET_KEY is {len(secret)} characters long; at least {MIN_SECRET_LENGTH} are needed"
    if len(set(secret)) < 10:
        return "LABOUR_ATLAS_SECRET_KEY has too few distinct characters to be a random secret"
    return None


def _access_key(settings: Settings | None = None) -> bytes:
    secret = (settings or get_settings()).secret_key
    if not secret:
        raise MissingSecret("LABOUR_ATLAS_SECRET_KEY is not set: access tokens cannot be signed or checked")
    return hmac.new(secret.encode(), _ACCESS_KEY_LABEL, hashlib.sha256).digest()


# -- passwords -------------------------------------------------------------------
def hash_password(password: str) -> str:
    """The Argon2id hash of ``password`` (salted; a PHC string such as ``$argon2id$v=19$...``)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (False for a malformed hash too)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


_dummy_hash: str | None = None


def _burn_verify(password: str) -> None:
    """Spend the time of one verification (unknown user): no timing difference."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    verify_password(_dummy_hash, password)


def password_problem(password: str, username: str, settings: Settings | None = None) -> str | None:
    """Why ``password`` is refused for ``username``, or None (the password is never echoed)."""
    settings = settings or get_settings()
    if len(password) < settings.password_min_length:
        return f"the password must be at least {settings.password_min_length} characters long"
    if username.lower() in password.lower():
        return "the password must not contain the username"
    if len(set(password)) < 5:
        return "the password has too few distinct characters"
    return None


def normalise_username(username: str) -> str:
    """Usernames are case-insensitive: stored and looked up in lower case.

    >>> normalise_username("  HT.CanBo01 ")
    'ht.canbo01'
    """
    return username.strip().lower()


# -- access tokens ---------------------------------------------------------------
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
) -> tuple[str, int]:
    """A signed access token and its lifetime in seconds.

    >>> token, seconds = create_access_token(uuid.uuid4(), Role.officer)  # doctest: +SKIP
    """
    settings = settings or get_settings()
    now = now or dt.datetime.now(dt.timezone.utc)
    lifetime = 60 * (minutes if minutes is not None else settings.access_token_minutes)
    claims = {
        "sub": str(user_id),
        "role": Role(role).value,
        "type": TOKEN_TYPE_ACCESS,
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + lifetime,
        "jti": uuid.uuid4().hex,
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
    return AccessClaims(user_id, str(claims["role"]), str(claims["jti"]), dt.datetime.fromtimestamp(claims["exp"], dt.timezone.utc))


# -- refresh tokens --------------------------------------------------------------
def hash_refresh_token(token: str) -> str:
    """SHA-256 (hex) of a refresh token: what the database keeps.

    A refresh token is 256 random bits, so a fast hash is enough: there is
    nothing to guess, unlike a password.
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


def issue_tokens(conn: Connection, user_id: uuid.UUID, role: str, family_id: uuid.UUID | None = None) -> TokenPair:
    """A new access token and a new stored refresh token (of ``family_id``, or a new family)."""
    settings = get_settings()
    refresh = secrets.token_urlsafe(32)
    # Expired tokens of this user are of no more use (not even to detect a replay).
    conn.execute(text("DELETE FROM refresh_token WHERE user_id = :id AND expires_at < now()"), {"id": user_id})
    conn.execute(
        text(
            """INSERT INTO refresh_token (id, user_id, family_id, token_hash, expires_at)
               VALUES (:id, :user_id, :family_id, :hash, now() + make_interval(days => :days))"""
        ),
        {"id": uuid.uuid4(), "user_id": user_id, "family_id": family_id or uuid.uuid4(),
         "hash": hash_refresh_token(refresh), "days": settings.refresh_token_days},
    )
    access, lifetime = create_access_token(user_id, role, settings=settings)
    return TokenPair(access, refresh, lifetime)


@dataclass(frozen=True)
class RefreshResult:
    status: Literal["ok", "invalid", "reused", "expired", "disabled"]
    tokens: TokenPair | None = None


def rotate_refresh_token(conn: Connection, token: str) -> RefreshResult:
    """Exchange a refresh token for a new pair; the old one is revoked.

    A token that was already used (revoked) revokes its whole family, as a
    stolen copy is being replayed. The caller must commit even when the
    result is not ``ok``, so that a revocation sticks.
    """
    row = conn.execute(
        text(
            """SELECT t.id, t.user_id, t.family_id, t.revoked_at IS NOT NULL AS revoked,
                      t.expires_at <= now() AS expired, u.disabled, u.role
               FROM refresh_token t JOIN app_user u ON u.id = t.user_id
               WHERE t.token_hash = :hash FOR UPDATE OF t"""
        ),
        {"hash": hash_refresh_token(token)},
    ).one_or_none()
    if row is None:
        return RefreshResult("invalid")
    if row.revoked:
        _revoke(conn, "family_id = :v", row.family_id)
        return RefreshResult("reused")
    if row.expired:
        return RefreshResult("expired")
    if row.disabled:
        _revoke(conn, "user_id = :v", row.user_id)
        return RefreshResult("disabled")
    tokens = issue_tokens(conn, row.user_id, row.role, family_id=row.family_id)
    conn.execute(
        text(
            """UPDATE refresh_token SET revoked_at = now(),
                   replaced_by = (SELECT id FROM refresh_token WHERE token_hash = :new)
               WHERE id = :id"""
        ),
        {"id": row.id, "new": hash_refresh_token(tokens.refresh_token)},
    )
    return RefreshResult("ok", tokens)


def _revoke(conn: Connection, where: str, value: object) -> int:
    return conn.execute(
        text(f"UPDATE refresh_token SET revoked_at = now() WHERE {where} AND revoked_at IS NULL"), {"v": value}
    ).rowcount


# -- sign-in ---------------------------------------------------------------------
def failed_login_delay(failures: int, settings: Settings | None = None) -> float:
    """Seconds to wait before answering the ``failures``-th failed sign-in in a row.

    ``min(base * 2 ** (failures - after), max)`` from the ``after``-th
    failure on: with the defaults (after 3, base 1 s, max 5 s) none for the
    first two, then 1, 2, 4 s, then 5 s.
    """
    s = settings or get_settings()
    if failures < s.login_delay_after:
        return 0.0
    return float(min(s.login_delay_base_seconds * 2 ** (failures - s.login_delay_after), s.login_delay_max_seconds))


@dataclass(frozen=True)
class LoginResult:
    """The outcome of a sign-in; ``delay`` is how long to wait before answering."""

    status: Literal["ok", "bad_credentials", "locked", "disabled"]
    tokens: TokenPair | None = None
    delay: float = 0.0
    locked_minutes: int = 0
    user_id: uuid.UUID | None = None
    role: str | None = None


class _UnknownNameFailures:
    """Failure counts of usernames that do not exist (in this process only).

    They get the same delays and lockout as real accounts, so the answers do
    not reveal whether a username exists. Bounded; keyed by a hash.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self.lock = threading.Lock()
        self.entries: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def fail(self, username: str, s: Settings) -> tuple[int, float | None]:
        """Count a failure; returns (failures, locked until (monotonic) or None)."""
        key = hashlib.sha256(username.encode()).hexdigest()
        now = time.monotonic()
        with self.lock:
            n, locked_until = self.entries.pop(key, (0, 0.0))
            if locked_until and locked_until > now:
                self.entries[key] = (n, locked_until)
                return n, locked_until
            n = 1 if locked_until else n + 1
            locked_until = now + 60 * s.lockout_minutes if n >= s.lockout_failures else 0.0
            self.entries[key] = (n, locked_until)
            while len(self.entries) > self.limit:
                self.entries.popitem(last=False)
            return n, locked_until or None


_unknown_names = _UnknownNameFailures()


def authenticate(conn: Connection, username: str, password: str, issue_tokens_on_success: bool = True) -> LoginResult:
    """Check a username and password; count, delay and lock on failure; issue tokens on success.

    With ``issue_tokens_on_success=False`` (HTTP Basic, e.g. ODK Collect) the
    result carries the user's id and role instead of tokens.

    Runs in the caller's transaction, which must be committed whatever the
    result (the failure count is part of it). The row is locked while the
    password is checked, so parallel guesses are counted one by one.
    """
    s = get_settings()
    name = normalise_username(username)
    row = None
    if USERNAME_PATTERN.match(name):
        row = conn.execute(
            text(
                """SELECT id, password_hash, role, disabled, failed_logins,
                          locked_until IS NOT NULL AND locked_until > now() AS locked,
                          locked_until IS NOT NULL AND locked_until <= now() AS lock_expired,
                          ceil(extract(epoch FROM locked_until - now()) / 60)::int AS minutes_left
                   FROM app_user WHERE username = :name FOR UPDATE"""
            ),
            {"name": name},
        ).one_or_none()
    if row is None:
        _burn_verify(password)
        n, locked_until = _unknown_names.fail(name, s)
        if locked_until is not None:
            return LoginResult("locked", locked_minutes=max(1, int((locked_until - time.monotonic()) // 60) + 1))
        return LoginResult("bad_credentials", delay=failed_login_delay(n, s))
    if row.locked:
        return LoginResult("locked", locked_minutes=max(1, row.minutes_left or 1))
    if not verify_password(row.password_hash, password):
        n = 1 if row.lock_expired else row.failed_logins + 1
        lock = n >= s.lockout_failures
        conn.execute(
            text(
                """UPDATE app_user SET failed_logins = :n,
                       locked_until = CASE WHEN :lock THEN now() + make_interval(mins => :mins) END
                   WHERE id = :id"""
            ),
            {"n": n, "lock": lock, "mins": s.lockout_minutes, "id": row.id},
        )
        if lock:
            return LoginResult("locked", locked_minutes=s.lockout_minutes)
        return LoginResult("bad_credentials", delay=failed_login_delay(n, s))
    if row.disabled:
        return LoginResult("disabled")
    new_hash = hash_password(password) if _hasher.check_needs_rehash(row.password_hash) else row.password_hash
    conn.execute(
        text(
            """UPDATE app_user SET failed_logins = 0, locked_until = NULL, last_login_at = now(), password_hash = :h
               WHERE id = :id"""
        ),
        {"id": row.id, "h": new_hash},
    )
    if not issue_tokens_on_success:
        return LoginResult("ok", user_id=row.id, role=row.role)
    return LoginResult("ok", tokens=issue_tokens(conn, row.id, row.role), user_id=row.id, role=row.role)


# -- accounts --------------------------------------------------------------------
def create_user(
    conn: Connection,
    username: str,
    password: str,
    role: Role | str,
    scope: list[str],
    structure: Structure | str = Structure.v2025,
) -> uuid.UUID:
    """Create an account with its area scope; returns its id.

    Parameters
    ----------
    username:
        2-64 characters: letters, digits, ``. _ @ -`` (stored in lower case).
    password:
        At least ``password_min_length`` characters, not containing the name.
    role:
        One of :class:`Role`.
    scope:
        Unit codes of ``structure`` at any level (each means the unit and
        everything inside it); ``["all"]`` means every province. Required
        except for ``admin``.

    Raises :class:`AccountError` (or :class:`UsernameTaken`) with what to fix.

    >>> create_user(conn, "ht.officer", "a long passphrase", "officer", ["42"], "pre2025")  # doctest: +SKIP
    """
    name = normalise_username(username)
    if not USERNAME_PATTERN.match(name):
        raise AccountError(
            f"invalid username {username!r}: use 2-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
        )
    try:
        role = Role(role)
    except ValueError:
        raise AccountError(f"unknown role {role!r}; roles: {', '.join(r.value for r in Role)}") from None
    try:
        structure = Structure(structure)
    except ValueError:
        raise AccountError(f"unknown structure {structure!r}; use 'pre2025' or '2025'") from None
    problem = password_problem(password, name)
    if problem:
        raise AccountError(problem)
    codes = sorted({c.strip() for c in scope if c.strip()})
    if codes == ["all"]:
        codes = list(conn.execute(
            text("SELECT code FROM admin_unit WHERE structure = :s AND level = 'province' ORDER BY code"), {"s": structure.value}
        ).scalars())
    if not codes and role is not Role.admin:
        raise AccountError(f"a {role.value} needs an area scope: give one or more unit codes (or 'all')")
    known = set(conn.execute(
        text("SELECT code FROM admin_unit WHERE structure = :s AND code = ANY(:codes)"), {"s": structure.value, "codes": codes}
    ).scalars())
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise AccountError(
            f"no unit with code {', '.join(unknown)} in the {structure.value} structure "
            f"(look codes up with GET /api/v1/units?structure={structure.value}&q=NAME)"
        )
    user_id = conn.execute(
        text(
            """INSERT INTO app_user (username, password_hash, role) VALUES (:name, :hash, :role)
               ON CONFLICT (username) DO NOTHING RETURNING id"""
        ),
        {"name": name, "hash": hash_password(password), "role": role.value},
    ).scalar()
    if user_id is None:
        raise UsernameTaken(f"a user named {name!r} already exists")
    if codes:
        conn.execute(
            text("INSERT INTO user_scope (user_id, structure, unit_code) SELECT :id, :s, unnest(CAST(:codes AS text[]))"),
            {"id": user_id, "s": structure.value, "codes": codes},
        )
        refresh_scopes(conn, user_id)
    return user_id


def list_users(conn: Connection, username: str | None = None) -> list[dict[str, Any]]:
    """All accounts (or the one named ``username``) with role, state and scope, by username.

    Never includes a password hash.
    """
    rows = conn.execute(
        text(
            """SELECT u.username, u.role, u.disabled, u.created_at, u.last_login_at,
                      CASE WHEN u.locked_until > now() THEN u.locked_until END AS locked_until,
                      coalesce(json_agg(json_build_object('structure', s.structure, 'code', s.unit_code, 'name', a.name)
                                        ORDER BY s.structure, s.unit_code) FILTER (WHERE s.unit_code IS NOT NULL), '[]') AS scope
               FROM app_user u
               LEFT JOIN user_scope s ON s.user_id = u.id
               LEFT JOIN admin_unit a ON a.structure = s.structure AND a.code = s.unit_code
               WHERE CAST(:name AS text) IS NULL OR u.username = :name
               GROUP BY u.id ORDER BY u.username"""
        ),
        {"name": normalise_username(username) if username is not None else None},
    ).mappings()
    return [dict(r) for r in rows]


def disable_user(conn: Connection, username: str) -> None:
    """Disable an account and end its sessions (refresh tokens revoked; access tokens fail at once).

    Raises :class:`UnknownUser` when there is no such account.
    """
    user_id = conn.execute(
        text("UPDATE app_user SET disabled = true WHERE username = :name RETURNING id"), {"name": normalise_username(username)}
    ).scalar()
    if user_id is None:
        raise UnknownUser(f"no user named {username!r} (see `labour-atlas user list`)")
    _revoke(conn, "user_id = :v", user_id)


def user_scope_codes(conn: Connection, user_id: uuid.UUID) -> list[dict[str, str]]:
    """The scope codes of a user as given (structure, code, name), not expanded."""
    rows = conn.execute(
        text(
            """SELECT s.structure, s.unit_code AS code, a.name, a.level FROM user_scope s
               JOIN admin_unit a ON a.structure = s.structure AND a.code = s.unit_code
               WHERE s.user_id = :id ORDER BY s.structure, s.unit_code"""
        ),
        {"id": user_id},
    ).mappings()
    return [dict(r) for r in rows]
