"""Append-only audit log of every read or export of personal data.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE audit_log (
            id          bigserial PRIMARY KEY,
            at          timestamptz NOT NULL DEFAULT now(),
            actor       text NOT NULL,
            role        text,
            method      text NOT NULL,
            route       text NOT NULL,
            purpose     text NOT NULL CHECK (length(btrim(purpose)) >= 3),
            record_ids  text[] NOT NULL DEFAULT '{}'
        )
        """
    )
    op.execute("CREATE INDEX audit_log_at ON audit_log (at)")
    op.execute("CREATE INDEX audit_log_actor ON audit_log (actor, at)")
    op.execute("CREATE INDEX audit_log_records ON audit_log USING gin (record_ids)")
    # The database itself refuses to change history, whoever asks.
    op.execute(
        """
        CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    op.execute(
        """CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
           FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()"""
    )
    op.execute(
        """CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
           FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()"""
    )


def downgrade() -> None:
    op.execute("DROP TABLE audit_log")
    op.execute("DROP FUNCTION audit_log_refuse_change()")
