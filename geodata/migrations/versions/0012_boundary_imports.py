"""Boundary imports are recorded and can be undone; names from files are kept beside the official ones.

- ``boundary_import``: one row per import of a boundary file (who, when, the
  file's name and SHA-256, layer, CRS, encoding, options, counts), and when
  it was undone.
- ``boundary_import_unit``: the state of every unit an import changed, as it
  was before (``existed = false`` for units the import created), so that
  ``labour-atlas boundaries undo`` can put it back.
- ``admin_unit.name_in_file`` / ``unit_type_in_file``: what the last imported
  file called the unit. The official GSO name and type are never replaced by
  a file's; ``boundary_import_id`` is the import that last set the polygon.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE boundary_import (
            id           bigserial PRIMARY KEY,
            imported_at  timestamptz NOT NULL DEFAULT now(),
            imported_by  text NOT NULL,
            file_name    text NOT NULL,
            file_sha256  text NOT NULL CHECK (file_sha256 ~ '^[0-9a-f]{64}$'),
            layer        text,
            structure    text NOT NULL REFERENCES boundary_structure (name),
            level        text NOT NULL CHECK (level IN ('province', 'district', 'commune')),
            source_crs   text NOT NULL,
            encoding     text,
            options      jsonb NOT NULL DEFAULT '{}',
            counts       jsonb NOT NULL DEFAULT '{}',
            -- clip regions whose approximate communes the import redrew
            regions      text[] NOT NULL DEFAULT '{}',
            undone_at    timestamptz,
            undone_by    text,
            CHECK ((undone_at IS NULL) = (undone_by IS NULL))
        )
        """
    )
    op.execute(
        """
        CREATE TABLE boundary_import_unit (
            import_id          bigint NOT NULL REFERENCES boundary_import (id) ON DELETE CASCADE,
            structure          text NOT NULL,
            code               text NOT NULL,
            existed            boolean NOT NULL,
            name               text,
            unit_type          text,
            parent_code        text,
            geom               geometry(MultiPolygon, 4326),
            geom_quality       text,
            geom_source        text,
            name_in_file       text,
            unit_type_in_file  text,
            boundary_import_id bigint,
            PRIMARY KEY (import_id, structure, code)
        )
        """
    )
    # Undo looks for later imports of the same units.
    op.execute("CREATE INDEX boundary_import_unit_unit ON boundary_import_unit (structure, code)")
    op.execute(
        """
        ALTER TABLE admin_unit
            ADD COLUMN name_in_file text,
            ADD COLUMN unit_type_in_file text,
            ADD COLUMN boundary_import_id bigint REFERENCES boundary_import (id) ON DELETE SET NULL
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE admin_unit DROP COLUMN boundary_import_id, DROP COLUMN unit_type_in_file, DROP COLUMN name_in_file")
    op.execute("DROP TABLE boundary_import_unit")
    op.execute("DROP TABLE boundary_import")
