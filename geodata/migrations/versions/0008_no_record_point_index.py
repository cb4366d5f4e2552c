"""No spatial index on survey records' points.

Records are selected by commune code (assigned or declared, both indexed),
never by geometry, and a GiST entry is the costliest of the table's index
entries to write: about a tenth of the time of a bulk import went to it.
A feature that queries points by area adds it back in its own migration.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX survey_record_geom_gist")


def downgrade() -> None:
    op.execute("CREATE INDEX survey_record_geom_gist ON survey_record USING gist (geom)")
