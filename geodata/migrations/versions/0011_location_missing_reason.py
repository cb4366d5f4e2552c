"""Records without a GPS point: why it is missing, the flag an officer reviews.

A surveyor whose phone was refused the location, or found no fix indoors,
still records the interview; the record keeps the reason it has no point
(``denied``, ``no_fix``, ``indoors``, ``other``) and is counted in its
declared commune. A non-null reason is a review flag like ``accuracy_flag``.

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-26
"""
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE survey_record ADD COLUMN location_missing_reason text
            CHECK (location_missing_reason IN ('denied', 'no_fix', 'indoors', 'other'))
        """
    )
    # Officers list the flagged records of their area; the few without a point are found by this small index.
    op.execute("CREATE INDEX survey_record_no_location ON survey_record (submitted_at) WHERE location_missing_reason IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX survey_record_no_location")
    op.execute("ALTER TABLE survey_record DROP COLUMN location_missing_reason")
