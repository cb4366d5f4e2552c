"""Lighter inserts into survey_record, for big imports.

- The foreign key (structure) -> boundary_structure is implied by the one on
  (structure, declared_commune_code) -> admin_unit, whose structure column
  itself references boundary_structure: one check per row less.
- Only records sent by a signed-in user have ``submitted_by`` (a surveyor
  lists its own); imported files do not, so the index skips them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE survey_record DROP CONSTRAINT survey_record_structure_fkey")
    op.execute("DROP INDEX survey_record_submitted_by")
    op.execute("CREATE INDEX survey_record_submitted_by ON survey_record (submitted_by, submitted_at) WHERE submitted_by IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX survey_record_submitted_by")
    op.execute("CREATE INDEX survey_record_submitted_by ON survey_record (submitted_by, submitted_at)")
    op.execute("ALTER TABLE survey_record ADD CONSTRAINT survey_record_structure_fkey "
               "FOREIGN KEY (structure) REFERENCES boundary_structure (name)")
