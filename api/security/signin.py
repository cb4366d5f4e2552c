"""Sign-in with a username and password: failures counted, slowed down, then locked.

Failed sign-ins are counted per account (settings ``login_delay_*`` and
``lockout_*``). Unknown usernames get the same answers and delays, so the
sign-in form does not tell who has an account.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, text

from api.security.accounts import USERNAME_PATTERN, normalise_username
from api.security.passwords import (
    burn_verification,
    hash_password,
    needs_rehash,
    verify_password,
)
from api.security.sessions import TokenPair, issue_tokens
from geodata.settings import Settings, get_settings


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
        burn_verification(password)
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
    new_hash = hash_password(password) if needs_rehash(row.password_hash) else row.password_hash
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
