"""When a survey record was anonymised (erasure on request, or purge of old records).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE survey_record ADD COLUMN anonymised_at timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE survey_record DROP COLUMN anonymised_at")
