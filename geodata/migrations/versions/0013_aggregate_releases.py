"""Frozen releases of suppressed aggregates: leaders, planners and police read these, never the live table.

A release is one period's table of counts (per unit and measure) for one
boundary structure, suppressed and audited for every k of the roles that
read it; ``aggregate_release_cell`` keeps each cell's true count, its status
(shown, structural, primary, complementary) and ``published``, the only
value ever served to those roles (NULL where hidden), computed by the
database from the two. Like the audit log, both tables are append-only:
the database refuses UPDATE, DELETE and TRUNCATE, so a published table can
never change; a late record goes into a later release (a new revision).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE aggregate_release (
            id            bigserial PRIMARY KEY,
            dataset       text NOT NULL,
            structure     text NOT NULL REFERENCES boundary_structure (name),
            period        text NOT NULL,
            period_start  date NOT NULL,
            period_end    date NOT NULL CHECK (period_end > period_start),
            revision      integer NOT NULL CHECK (revision >= 1),
            made_at       timestamptz NOT NULL,
            made_by       text NOT NULL,
            ks            integer[] NOT NULL CHECK (cardinality(ks) >= 1 AND 3 <= ALL (ks)),
            records       bigint NOT NULL CHECK (records >= 0),
            method        jsonb NOT NULL,
            UNIQUE (dataset, structure, period, revision)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE aggregate_release_cell (
            release_id  bigint NOT NULL REFERENCES aggregate_release (id),
            k           integer NOT NULL CHECK (k >= 3),
            unit_code   text NOT NULL,
            measure     text NOT NULL,
            count       integer NOT NULL CHECK (count >= 0),
            status      text NOT NULL CHECK (status IN ('shown', 'structural', 'primary', 'complementary')),
            published   integer GENERATED ALWAYS AS (CASE WHEN status IN ('shown', 'structural') THEN count END) STORED,
            PRIMARY KEY (release_id, k, unit_code, measure),
            CHECK (status <> 'structural' OR count = 0),
            CHECK (status <> 'primary' OR count < k)
        )
        """
    )
    op.execute(
        """
        CREATE FUNCTION aggregate_release_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: a published release never changes (% refused)', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'A later record goes into a new release of the period (labour-atlas release).';
        END $$
        """
    )
    for table in ("aggregate_release", "aggregate_release_cell"):
        op.execute(f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                       FOR EACH ROW EXECUTE FUNCTION aggregate_release_refuse_change()""")
        op.execute(f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                       FOR EACH STATEMENT EXECUTE FUNCTION aggregate_release_refuse_change()""")


def downgrade() -> None:
    op.execute("DROP TABLE aggregate_release_cell")
    op.execute("DROP TABLE aggregate_release")
    op.execute("DROP FUNCTION aggregate_release_refuse_change()")
