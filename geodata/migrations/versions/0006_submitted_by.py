"""Scoping: expanded user scopes, who sent each record, the commune a rejected payload named.

``user_scope_unit`` holds every unit in each user's scope (both structures),
so that scoping a query is an index lookup (see geodata/scopes.py). A
surveyor reads the records it sent (``submitted_by``); an officer sees the
quarantined payloads of its area (``commune_code``, as declared).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE user_scope_unit (
            user_id   uuid NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
            structure text NOT NULL,
            code      text NOT NULL,
            PRIMARY KEY (user_id, structure, code)
        )
        """
    )
    op.execute("ALTER TABLE survey_record ADD COLUMN submitted_by text")
    op.execute("CREATE INDEX survey_record_submitted_by ON survey_record (submitted_by, submitted_at)")
    op.execute("ALTER TABLE submission_quarantine ADD COLUMN submitted_by text, ADD COLUMN commune_code text")
    op.execute("CREATE INDEX submission_quarantine_commune ON submission_quarantine (commune_code)")
    from geodata.scopes import refresh_scopes

    refresh_scopes(op.get_bind())


def downgrade() -> None:
    op.execute("ALTER TABLE submission_quarantine DROP COLUMN submitted_by, DROP COLUMN commune_code")
    op.execute("ALTER TABLE survey_record DROP COLUMN submitted_by")
    op.execute("DROP TABLE user_scope_unit")
