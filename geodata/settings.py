"""The one settings object of Labour Atlas, read from the environment.

Every setting is an environment variable ``LABOUR_ATLAS_<NAME>`` (or a line
of a ``.env`` file); the database URL is also read from the conventional
``DATABASE_URL``. The settings refuse a weak server secret themselves, so no
entry point (``labour-atlas serve``, ``uvicorn api.main:app``, a script) can
run with one, except the demo.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "LABOUR_ATLAS_"
MIN_SECRET_LENGTH = 32
KNOWN_DEFAULT_SECRETS = frozenset({
    "changeme", "change-me", "change_me", "changethis", "secret", "secret-key", "secret_key", "password",
    "default", "labour-atlas", "labour_atlas", "dev", "development", "test", "demo",
    "test-secret-not-for-production", "bench-secret", "your-secret-key", "please-change-me",
})
SECRET_ADVICE = (
    f"Set LABOUR_ATLAS_SECRET_KEY to a random value of at least {MIN_SECRET_LENGTH} characters, e.g. from\n"
    "  python3 -c 'import secrets; print(secrets.token_urlsafe(32))'\n"
    "and keep it (it also keys the national ID hashes: changing it later breaks duplicate detection).\n"
    "To try the app without one, run `labour-atlas demo`."
)


class MissingSecret(RuntimeError):
    """``LABOUR_ATLAS_SECRET_KEY`` is not set: tokens cannot be signed, IDs cannot be hashed."""


class SettingsError(ValueError):
    """The environment holds settings Labour Atlas refuses to run with; the message says which and why."""


def secret_problem(secret: str | None) -> str | None:
    """Why ``secret`` is unfit to run a server with, or None when it is fine.

    >>> secret_problem("changeme")
    'LABOUR_ATLAS_SECRET_KEY is a well-known default value'
    >>> secret_problem("short")
    'LABOUR_ATLAS_SECRET_KEY is 5 characters long; at least 32 are needed'
    >>> secret_problem("Zq8-vT3kW9mN2pL7rX4cB6dF1gH5jK0y") is None
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


class Settings(BaseSettings):
    """Configuration from environment variables ``LABOUR_ATLAS_*`` (or a ``.env`` file).

    ``database_url`` (``DATABASE_URL``) is a SQLAlchemy URL such as
    ``postgresql+psycopg://user:pass@host:5432/labour_atlas``; when it is
    empty, ``labour-atlas demo`` starts a private PostgreSQL + PostGIS cluster
    under ``data_dir``.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", validate_by_name=True)

    database_url: str | None = Field(default=None, validation_alias=AliasChoices("LABOUR_ATLAS_DATABASE_URL", "DATABASE_URL"))
    secret_key: str | None = None
    # Database outages: a connection attempt gives up after this many
    # seconds (an unreachable host otherwise hangs for minutes), a request
    # waits at most this long for a pooled connection, and a server
    # statement is cancelled after this long (0: never; the command line's
    # imports and migrations are not limited). Requests that meet an
    # outage are answered 503 with Retry-After of this many seconds; each
    # pooled connection is tested before use, so the server recovers by
    # itself when the database is back.
    db_connect_timeout_seconds: int = Field(default=5, ge=1, le=120)
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    db_statement_timeout_seconds: float = Field(default=30.0, ge=0, le=3600)
    retry_after_seconds: int = Field(default=10, ge=1, le=3600)
    # A database that hangs without failing (a frozen host, a stalled disk)
    # answers nothing and refuses nothing: a request with no answer this
    # long after its body arrived is answered 503 all the same (0: never).
    # Longer than the timeouts above, which answer first when they can.
    request_timeout_seconds: float = Field(default=60.0, ge=0, le=3600)
    data_dir: Path = Path(".labour-atlas")
    # Import the hot-spot statistics (esda, libpysal, scipy.stats) beside
    # start-up, so the first hot-spot map does not wait about 3 s for them.
    # Off by default: they hold about 90 MB in every server process from
    # then on, and most servers (survey intake, exports) never compute one.
    warm_hotspots: bool = False
    # Demo mode (`labour-atlas demo`): the only mode in which a weak or
    # generated secret is accepted.
    demo: bool = False
    # Simplification tolerance, in degrees, of the web geometry per level
    # (about 200 m, 100 m and 30 m): enough for a screen map, far lighter.
    web_tolerance_province: float = 0.002
    web_tolerance_district: float = 0.001
    web_tolerance_commune: float = 0.0003
    # Survey intake: a GPS fix worse than this is flagged; a point in no
    # commune further than this from the declared commune is rejected
    # (closer: kept, e.g. a coastal village on a coarse boundary); the same
    # person in the same kind within this many days is a probable duplicate.
    gps_accuracy_limit_m: float = 50.0
    outside_tolerance_m: float = 5000.0
    duplicate_window_days: int = 365
    # A survey file bigger than the records already stored is a bulk load:
    # it links probable duplicates once at the end and, with this on, drops
    # the record indexes none of its statements reads and rebuilds them
    # before it commits (a third less database CPU for its inserts).
    # Dropping an index locks survey_record until the import commits:
    # meanwhile every read and write of records waits, and one waiting past
    # the statement timeout is answered 503 with Retry-After (phones keep the
    # form and send it again; never a 500). On by default: a file bigger than
    # the table is a first load or a migration, not a day of fieldwork. Off:
    # the indexes are kept up row by row and the table stays open.
    bulk_load_locks_records: bool = True
    # Bodies larger than these are refused with 413 as they arrive (counted
    # on the bytes read, chunked uploads included): JSON requests, a batch of
    # submissions, an ODK submission with its attachments.
    max_body_bytes: int = Field(default=256 * 1024, ge=16 * 1024)
    max_batch_bytes: int = Field(default=5 * 1024 * 1024, ge=64 * 1024)
    max_submission_bytes: int = Field(default=10 * 1024 * 1024, ge=64 * 1024)
    # The quarantine keeps a rejected payload up to this size (the rest is cut,
    # and says so), and at most this much per request; past that, payloads of
    # the same request keep their first kilobyte and every reason.
    quarantine_payload_max_bytes: int = Field(default=64 * 1024, ge=1024)
    quarantine_request_max_bytes: int = Field(default=1024 * 1024, ge=64 * 1024)
    # Sign-in: lifetimes of access tokens (JWT) and refresh tokens (rotated
    # on every use); passwords shorter than this are refused.
    access_token_minutes: int = Field(default=15, ge=1)
    refresh_token_days: int = Field(default=30, ge=1)
    # A refresh token presented again this soon after its rotation gives the
    # same new pair again (the answer was lost on a weak signal); later, or
    # once the new token was used, it counts as a replay and ends the sign-in.
    refresh_grace_seconds: int = Field(default=60, ge=0, le=600)
    password_min_length: int = Field(default=12, ge=8)
    # Failed logins: from the `login_delay_after`-th failure on, the answer
    # waits min(base * 2**(n - after), max) seconds; after `lockout_failures`
    # failures the account is locked for `lockout_minutes`.
    login_delay_after: int = Field(default=3, ge=1)
    login_delay_base_seconds: float = Field(default=1.0, ge=0)
    login_delay_max_seconds: float = Field(default=5.0, ge=0)
    lockout_failures: int = Field(default=5, ge=1)
    lockout_minutes: int = Field(default=15, ge=1)
    # Small counts: aggregates served to these roles hide counts below k
    # (police as statistics offices do; never below 3, which would let a
    # count of one or two people through).
    suppress_below_police: int = Field(default=10, ge=3)
    suppress_below_leader: int = Field(default=5, ge=3)
    suppress_below_planner: int = Field(default=5, ge=3)
    # Vector tiles kept in memory by each server process (about 5 KB each);
    # 0 keeps none, every tile is made anew.
    tile_cache_tiles: int = Field(default=4096, ge=0, le=1_000_000)
    # Releases: suppressed roles read frozen tables of closed periods of this
    # length, released this many days after the period ends (phones that were
    # offline send late) and revised at every later release round when late
    # records came in. Complementary cells are chosen to hide the fewest cells
    # ("cells") or the smallest total ("total").
    release_period: Literal["month", "quarter", "half", "year"] = "month"
    release_grace_days: int = Field(default=3, ge=0, le=60)
    suppression_cost: Literal["cells", "total"] = "cells"
    # Boundary imports: a unit with more than this share of its area outside
    # its parent's polygon is refused (a wrong CRS or zone, a wrong parent,
    # spill-over); two units of one level overlapping by more than this share
    # of the smaller one are refused; a parent whose children, all official
    # after the import, leave more than this share of it uncovered is
    # refused. Differences smaller than `boundary_sliver_m2` are digitising
    # noise (neighbouring polygons rarely share vertices) and not reported.
    boundary_max_outside_parent: float = Field(default=0.05, ge=0, le=1)
    boundary_max_overlap: float = Field(default=0.01, ge=0, le=1)
    boundary_max_gap: float = Field(default=0.01, ge=0, le=1)
    boundary_sliver_m2: float = Field(default=1000.0, ge=0)
    # Exports: an export of more rows than this is not streamed by GET but
    # made as a job (POST); a job's file is kept this many hours, under
    # `export_dir` (default: `data_dir`/exports).
    export_job_rows: int = Field(default=200_000, ge=1)
    export_job_hours: int = Field(default=24, ge=1, le=24 * 30)
    export_dir: Path | None = None

    @model_validator(mode="after")
    def _refuse_a_weak_secret(self) -> Settings:
        # A missing secret is refused where one is needed (require_secret):
        # `db upgrade` or a boundary import can run without it.
        if self.secret_key is not None and not self.demo:
            problem = secret_problem(self.secret_key)
            if problem:
                raise ValueError(f"refusing to start: {problem}.\n{SECRET_ADVICE}")
        return self

    @property
    def export_files(self) -> Path:
        """Where export jobs keep their files."""
        return self.export_dir or self.data_dir / "exports"

    def require_secret(self, needed_for: str = "the server cannot sign tokens or hash national IDs") -> str:
        """The server secret; raises :class:`MissingSecret` (saying what it is ``needed_for``) when it is not set."""
        if not self.secret_key or not self.secret_key.strip():
            raise MissingSecret(f"LABOUR_ATLAS_SECRET_KEY is not set: {needed_for}.\n{SECRET_ADVICE}")
        return self.secret_key


_current: Settings | None = None


def _load(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        messages = [e["msg"].removeprefix("Value error, ") + (f" ({'.'.join(map(str, e['loc']))})" if e["loc"] else "")
                    for e in exc.errors()]
        raise SettingsError("\n".join(messages)) from None


def get_settings() -> Settings:
    """The process-wide settings (read from the environment once).

    Raises :class:`SettingsError` when the environment holds refused values.
    """
    global _current
    if _current is None:
        _current = _load()
    return _current


def configure(**overrides: Any) -> Settings:
    """Replace the process-wide settings by new ones: the environment plus ``overrides``, validated again.

    The demo uses it (``configure(demo=True, secret_key=...)``); the settings
    object in use is never changed in place.
    """
    global _current
    _current = _load(**overrides)
    return _current


def reset_settings() -> None:
    """Forget the settings: the next :func:`get_settings` reads the environment again."""
    global _current
    _current = None
