"""Distribution keys: the tables that grow with submissions are ready to be distributed by 2025 province (Citus).

Citus distributes a table by one column and requires that column in every
primary key and unique constraint, and in every foreign key between two
distributed tables (both sides: the rows must live on the same shard). The
column is the province of the 2025 structure (34 provinces), so that an
officer's province is one shard and old and new records of a place are
together. The plan, table by table, is :mod:`geodata.distribution`;
docs/scale-out.md explains it.

- ``survey_record`` already had ``(province_code, instance_id)`` as its key,
  but its province was the one of the structure in force on the collection
  date (a pre-2025 province for older records): it becomes the 2025 province
  (through the province crosswalk). Its unique index on ``instance_id`` alone
  goes: exactly-once now rests on ``survey_record_key`` (instance_id ->
  province), a table whose own distribution column is ``instance_id``. A
  submission first claims its instance_id there; only a claimed row is
  stored, so the same instance_id is stored once even if a resubmission
  names a commune of another province. A record named by its instance_id
  alone is found through the key's province and the primary key.
- ``probable_duplicate`` carries the province of both records; its key and
  its foreign key to the newer record hold the province. The older record
  may be in another province (another shard): that side keeps its province
  but no foreign key (Citus has no foreign keys across shards).
- ``submission_quarantine`` gets ``province_code`` (from the commune the
  payload names; ``'00'`` where it names none that is known) and the key
  ``(province_code, id)``.
- ``incident`` and ``recruitment_event`` were ready (0014).

Two SQL functions name a unit's province, in its own structure
(``la_province_of``) and in 2025 (``la_province_2025``).

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30
"""
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

UNPLACED = "00"  # geodata.distribution.UNPLACED_PROVINCE, written out: a migration does not change with the code


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION la_province_of(p_structure text, p_code text) RETURNS text
        LANGUAGE sql STABLE PARALLEL SAFE AS $$
            -- a province, a commune of 2025 (parent: province), or a district or commune before 2025
            SELECT CASE WHEN u.level = 'province' THEN u.code WHEN p.level = 'province' THEN p.code ELSE p.parent_code END
            FROM admin_unit u LEFT JOIN admin_unit p ON p.structure = u.structure AND p.code = u.parent_code
            WHERE u.structure = p_structure AND u.code = p_code
        $$;
        -- Provinces were merged whole in 2025: an old province has one successor.
        CREATE FUNCTION la_province_2025(p_structure text, p_code text) RETURNS text
        LANGUAGE sql STABLE PARALLEL SAFE AS $$
            SELECT CASE WHEN p_structure = '2025' THEN o.province ELSE (
                       SELECT x.new_code FROM unit_crosswalk x
                       WHERE x.old_structure = p_structure AND x.old_code = o.province
                         AND x.new_structure = '2025' AND x.level = 'province'
                       ORDER BY x.area_share DESC, x.new_code LIMIT 1) END
            FROM (SELECT la_province_of(p_structure, p_code) AS province) o
        $$;
        """
    )
    # Records of before 2025 move to their 2025 province; one whose province has no successor
    # (a crosswalk not loaded) keeps its code rather than fail the upgrade on data it cannot fix.
    op.execute(
        """
        UPDATE survey_record r SET province_code = la_province_2025(r.structure, r.declared_commune_code)
        WHERE r.structure <> '2025' AND la_province_2025(r.structure, r.declared_commune_code) IS NOT NULL
          AND r.province_code <> la_province_2025(r.structure, r.declared_commune_code)
        """
    )
    op.execute(
        """
        ALTER TABLE probable_duplicate DROP CONSTRAINT probable_duplicate_instance_id_fkey,
                                       DROP CONSTRAINT probable_duplicate_duplicate_of_fkey,
                                       ADD COLUMN province_code text, ADD COLUMN duplicate_province_code text;
        UPDATE probable_duplicate d SET province_code = n.province_code, duplicate_province_code = o.province_code
        FROM survey_record n, survey_record o WHERE n.instance_id = d.instance_id AND o.instance_id = d.duplicate_of;
        ALTER TABLE probable_duplicate ALTER COLUMN province_code SET NOT NULL,
                                       ALTER COLUMN duplicate_province_code SET NOT NULL,
                                       DROP CONSTRAINT probable_duplicate_pkey,
                                       ADD PRIMARY KEY (province_code, instance_id, duplicate_of),
                                       ADD FOREIGN KEY (province_code, instance_id)
                                           REFERENCES survey_record (province_code, instance_id) ON DELETE CASCADE;
        CREATE INDEX probable_duplicate_other ON probable_duplicate (duplicate_province_code, duplicate_of);
        """
    )
    op.execute(
        """
        CREATE TABLE survey_record_key (
            instance_id   uuid PRIMARY KEY,
            province_code text NOT NULL
        );
        INSERT INTO survey_record_key (instance_id, province_code) SELECT instance_id, province_code FROM survey_record;
        -- A record named by its instance_id alone is found through the key's province and the primary key.
        DROP INDEX survey_record_instance;
        """
    )
    op.execute(
        f"""
        ALTER TABLE submission_quarantine ADD COLUMN province_code text;
        UPDATE submission_quarantine SET province_code = coalesce(
            la_province_2025('2025', commune_code), la_province_2025('pre2025', commune_code), '{UNPLACED}');
        ALTER TABLE submission_quarantine ALTER COLUMN province_code SET NOT NULL,
                                          DROP CONSTRAINT submission_quarantine_pkey,
                                          ADD PRIMARY KEY (province_code, id);
        DROP INDEX submission_quarantine_hash;
        CREATE INDEX submission_quarantine_hash ON submission_quarantine (province_code, payload_hash);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX submission_quarantine_hash;
        CREATE INDEX submission_quarantine_hash ON submission_quarantine (payload_hash);
        ALTER TABLE submission_quarantine DROP CONSTRAINT submission_quarantine_pkey, ADD PRIMARY KEY (id),
                                          DROP COLUMN province_code;
        CREATE UNIQUE INDEX survey_record_instance ON survey_record (instance_id);
        DROP TABLE survey_record_key;
        -- Links to an older record deleted since (no foreign key held them) cannot be kept under one.
        DELETE FROM probable_duplicate d WHERE NOT EXISTS (SELECT 1 FROM survey_record o WHERE o.instance_id = d.duplicate_of);
        DROP INDEX probable_duplicate_other;
        ALTER TABLE probable_duplicate DROP CONSTRAINT probable_duplicate_province_code_instance_id_fkey,
                                       DROP CONSTRAINT probable_duplicate_pkey,
                                       DROP COLUMN province_code, DROP COLUMN duplicate_province_code,
                                       ADD PRIMARY KEY (instance_id, duplicate_of),
                                       ADD FOREIGN KEY (instance_id) REFERENCES survey_record (instance_id) ON DELETE CASCADE,
                                       ADD FOREIGN KEY (duplicate_of) REFERENCES survey_record (instance_id) ON DELETE CASCADE;
        -- Each record back to the province of its own structure.
        UPDATE survey_record r SET province_code = la_province_of(r.structure, r.declared_commune_code)
        WHERE r.structure <> '2025' AND la_province_of(r.structure, r.declared_commune_code) IS NOT NULL
          AND r.province_code <> la_province_of(r.structure, r.declared_commune_code);
        DROP FUNCTION la_province_2025(text, text);
        DROP FUNCTION la_province_of(text, text);
        """
    )
