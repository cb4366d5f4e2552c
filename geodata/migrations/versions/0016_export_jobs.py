"""Export jobs: big exports made in the background, their state, progress, file, owner and expiry.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30
"""
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE export_job (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            owner_id uuid NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
            owner text NOT NULL,
            role text NOT NULL,
            layer text NOT NULL,
            format text NOT NULL,
            crs text NOT NULL,
            filters jsonb NOT NULL DEFAULT '{}',
            purpose text,
            worker text NOT NULL,  -- host:pid of the server process that runs it (its queue is in that process)
            state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed', 'expired')),
            rows_total bigint,
            rows_done bigint NOT NULL DEFAULT 0,
            file_path text,
            file_name text,
            file_bytes bigint,
            error text,
            created_at timestamptz NOT NULL DEFAULT now(),
            started_at timestamptz,
            finished_at timestamptz,
            expires_at timestamptz NOT NULL
        );
        CREATE INDEX export_job_owner ON export_job (owner_id, created_at DESC);
        CREATE INDEX export_job_open ON export_job (state) WHERE state IN ('queued', 'running', 'done');
    """)


def downgrade() -> None:
    op.execute("DROP TABLE export_job")
