"""Schema migrations (Alembic), run programmatically: no alembic.ini needed."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(revision: str = "head") -> None:
    """Migrate the current database up to ``revision`` (default: the newest)."""
    command.upgrade(alembic_config(), revision)


def downgrade(revision: str) -> None:
    """Migrate the current database down to ``revision`` (``base`` empties it)."""
    command.downgrade(alembic_config(), revision)


def current_revision() -> str | None:
    """The revision the current database is at, or None when unmigrated."""
    from alembic.runtime.migration import MigrationContext

    from geodata.db import get_engine

    with get_engine().connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
