"""The one settings object of Labour Atlas, read from the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration from environment variables (or a ``.env`` file).

    ``DATABASE_URL`` is a SQLAlchemy URL such as
    ``postgresql+psycopg://user:pass@host:5432/labour_atlas``; when it is empty,
    ``labour-atlas demo`` starts a private PostgreSQL + PostGIS cluster under
    ``LABOUR_ATLAS_DATA_DIR``.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    secret_key: str | None = Field(default=None, validation_alias="LABOUR_ATLAS_SECRET_KEY")
    data_dir: Path = Field(default=Path(".labour-atlas"), validation_alias="LABOUR_ATLAS_DATA_DIR")
    # Simplification tolerance, in degrees, of the web geometry per level
    # (about 200 m, 100 m and 30 m): enough for a screen map, far lighter.
    web_tolerance_province: float = 0.002
    web_tolerance_district: float = 0.001
    web_tolerance_commune: float = 0.0003
    # Survey intake: a GPS fix worse than this is flagged; a point in no
    # commune further than this from the declared commune is rejected
    # (closer: kept, e.g. a coastal village on a coarse boundary); the same
    # person in the same kind within this many days is a probable duplicate.
    gps_accuracy_limit_m: float = Field(default=50.0, validation_alias="LABOUR_ATLAS_GPS_ACCURACY_LIMIT_M")
    survey_outside_tolerance_m: float = Field(default=5000.0, validation_alias="LABOUR_ATLAS_OUTSIDE_TOLERANCE_M")
    duplicate_window_days: int = Field(default=365, validation_alias="LABOUR_ATLAS_DUPLICATE_WINDOW_DAYS")
    # Demo mode (set by `labour-atlas demo`, or LABOUR_ATLAS_DEMO=1): the only
    # mode in which the app may start with a weak or generated secret.
    demo: bool = Field(default=False, validation_alias="LABOUR_ATLAS_DEMO")
    # Sign-in: lifetimes of access tokens (JWT) and refresh tokens (rotated
    # on every use); passwords shorter than this are refused.
    access_token_minutes: int = Field(default=15, ge=1, validation_alias="LABOUR_ATLAS_ACCESS_TOKEN_MINUTES")
    refresh_token_days: int = Field(default=30, ge=1, validation_alias="LABOUR_ATLAS_REFRESH_TOKEN_DAYS")
    password_min_length: int = Field(default=12, ge=8, validation_alias="LABOUR_ATLAS_PASSWORD_MIN_LENGTH")
    # Failed logins: from the `login_delay_after`-th failure on, the answer
    # waits min(base * 2**(n - after), max) seconds; after `lockout_failures`
    # failures the account is locked for `lockout_minutes`.
    login_delay_after: int = Field(default=3, ge=1, validation_alias="LABOUR_ATLAS_LOGIN_DELAY_AFTER")
    login_delay_base_seconds: float = Field(default=1.0, ge=0, validation_alias="LABOUR_ATLAS_LOGIN_DELAY_BASE_SECONDS")
    login_delay_max_seconds: float = Field(default=5.0, ge=0, validation_alias="LABOUR_ATLAS_LOGIN_DELAY_MAX_SECONDS")
    lockout_failures: int = Field(default=5, ge=1, validation_alias="LABOUR_ATLAS_LOCKOUT_FAILURES")
    lockout_minutes: int = Field(default=15, ge=1, validation_alias="LABOUR_ATLAS_LOCKOUT_MINUTES")
    # Small counts: aggregates served to these roles hide counts below k
    # (police as statistics offices do; never below 3, which would let a
    # count of one or two people through).
    suppress_below_police: int = Field(default=10, ge=3, validation_alias="LABOUR_ATLAS_SUPPRESS_BELOW_POLICE")
    suppress_below_leader: int = Field(default=5, ge=3, validation_alias="LABOUR_ATLAS_SUPPRESS_BELOW_LEADER")
    suppress_below_planner: int = Field(default=5, ge=3, validation_alias="LABOUR_ATLAS_SUPPRESS_BELOW_PLANNER")


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings (read once)."""
    return Settings()
