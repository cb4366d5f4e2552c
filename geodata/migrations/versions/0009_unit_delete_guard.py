"""Records keep their declared commune: guarded where units change, not on every insert.

The foreign key survey_record (structure, declared_commune_code) ->
admin_unit ran a locking lookup for every inserted record, on the critical
path of bulk imports, although the store statement already refuses unknown
communes. Units are never deleted by the application; a trigger now refuses
to delete (or re-key) a unit that records declare, which is what the key
protected.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE survey_record DROP CONSTRAINT survey_record_structure_declared_commune_code_fkey")
    op.execute(
        """
        CREATE FUNCTION admin_unit_keep_declared() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM survey_record
                       WHERE structure = OLD.structure AND declared_commune_code = OLD.code) THEN
                RAISE EXCEPTION 'unit % of structure % is the declared commune of survey records', OLD.code, OLD.structure
                    USING ERRCODE = 'foreign_key_violation',
                          HINT = 'Survey records keep the commune they declare; units are updated, never removed.';
            END IF;
            RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER admin_unit_keep_declared BEFORE DELETE ON admin_unit
        FOR EACH ROW WHEN (OLD.level = 'commune') EXECUTE FUNCTION admin_unit_keep_declared()
        """
    )
    # An upsert that sets the key to its own value is not a change.
    op.execute(
        """
        CREATE TRIGGER admin_unit_keep_declared_key BEFORE UPDATE OF structure, code ON admin_unit
        FOR EACH ROW WHEN (OLD.level = 'commune' AND (OLD.structure, OLD.code) IS DISTINCT FROM (NEW.structure, NEW.code))
        EXECUTE FUNCTION admin_unit_keep_declared()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER admin_unit_keep_declared_key ON admin_unit")
    op.execute("DROP TRIGGER admin_unit_keep_declared ON admin_unit")
    op.execute("DROP FUNCTION admin_unit_keep_declared()")
    op.execute("ALTER TABLE survey_record ADD CONSTRAINT survey_record_structure_declared_commune_code_fkey "
               "FOREIGN KEY (structure, declared_commune_code) REFERENCES admin_unit (structure, code)")
