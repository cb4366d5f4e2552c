"""Data versions notify: every bump also sends ``NOTIFY data_version`` (delivered at commit).

The server keeps the versions in memory (:mod:`geodata.data_versions`), so a
tile served from its cache needs no round trip to the database.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def bump_function(then: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION bump_data_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO data_version (name) VALUES (TG_TABLE_NAME)
            ON CONFLICT (name) DO UPDATE SET version = data_version.version + 1, changed_at = now();
            {then}
            RETURN NULL;
        END $$
        """


def upgrade() -> None:
    op.execute(bump_function("PERFORM pg_notify('data_version', TG_TABLE_NAME);"))


def downgrade() -> None:
    op.execute(bump_function(""))
