"""Administrative units in two boundary structures, and the crosswalk between them.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # Folding for name search: "ha tinh" must find "Hà Tĩnh" and "Đồng Nai"
    # must be found by "dong nai". unaccent() is only STABLE (its dictionary
    # could change), so it is wrapped with the dictionary named explicitly to
    # be usable in a generated column and an index.
    op.execute(
        """
        CREATE FUNCTION la_fold(t text) RETURNS text
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, normalize(t, NFC))) $$
        """
    )
    op.execute(
        """
        CREATE TABLE boundary_structure (
            name        text PRIMARY KEY,
            valid_from  date NOT NULL,
            valid_to    date,
            levels      text NOT NULL,
            description text NOT NULL,
            CHECK (valid_to IS NULL OR valid_to > valid_from)
        )
        """
    )
    op.execute(
        """
        INSERT INTO boundary_structure VALUES
        ('pre2025', '2008-08-01', '2025-07-01', 'province,district,commune',
         '63 provinces, about 700 districts and 10,000 communes (GSO list of 2025-03-01)'),
        ('2025', '2025-07-01', NULL, 'province,commune',
         '34 provinces and 3,321 communes; no district level (reform of 2025-07-01)')
        """
    )
    op.execute(
        """
        CREATE TABLE admin_unit (
            structure    text NOT NULL REFERENCES boundary_structure(name),
            code         text NOT NULL CHECK (code ~ '^[0-9]+$'),
            name         text NOT NULL,
            unit_type    text NOT NULL,
            level        text NOT NULL CHECK (level IN ('province', 'district', 'commune')),
            parent_code  text,
            valid_from   date NOT NULL,
            valid_to     date,
            geom         geometry(MultiPolygon, 4326),
            geom_web     geometry(MultiPolygon, 4326),
            geom_quality text CHECK (geom_quality IN ('official', 'approximate')),
            geom_source  text,
            centre       geometry(Point, 4326),
            name_folded  text GENERATED ALWAYS AS (la_fold(name)) STORED,
            PRIMARY KEY (structure, code),
            CHECK ((geom IS NULL) = (geom_quality IS NULL)),
            CHECK ((level = 'province') = (parent_code IS NULL))
        )
        """
    )
    op.execute("CREATE INDEX admin_unit_geom_gist ON admin_unit USING gist (geom)")
    op.execute("CREATE INDEX admin_unit_geom_web_gist ON admin_unit USING gist (geom_web)")
    op.execute("CREATE INDEX admin_unit_parent ON admin_unit (structure, parent_code)")
    op.execute("CREATE INDEX admin_unit_level ON admin_unit (structure, level)")
    op.execute("CREATE INDEX admin_unit_name_trgm ON admin_unit USING gin (name_folded gin_trgm_ops)")
    # Point-in-polygon on whole provinces means testing points against
    # polygons of thousands of vertices; small pieces (ST_Subdivide) keep
    # each test cheap and the index tight. Rebuilt after every boundary load.
    op.execute(
        """
        CREATE TABLE admin_unit_part (
            structure  text NOT NULL,
            code       text NOT NULL,
            level      text NOT NULL,
            valid_from date NOT NULL,
            valid_to   date,
            geom       geometry(Polygon, 4326) NOT NULL,
            FOREIGN KEY (structure, code) REFERENCES admin_unit ON DELETE CASCADE
        )
        """
    )
    op.execute("CREATE INDEX admin_unit_part_geom_gist ON admin_unit_part USING gist (geom)")
    # By code alone: with (structure, code) the planner ANDs it with the GiST
    # index on every point lookup, reading thousands of entries each time.
    op.execute("CREATE INDEX admin_unit_part_unit ON admin_unit_part (code)")
    op.execute(
        """
        CREATE TABLE unit_crosswalk (
            old_structure text NOT NULL,
            old_code      text NOT NULL,
            new_structure text NOT NULL,
            new_code      text NOT NULL,
            level         text NOT NULL,
            relation      text NOT NULL CHECK (relation IN ('full', 'partial')),
            area_share    double precision NOT NULL CHECK (area_share >= 0 AND area_share <= 1),
            share_method  text NOT NULL CHECK (share_method IN ('whole', 'geometry', 'equal')),
            PRIMARY KEY (old_structure, old_code, new_structure, new_code),
            FOREIGN KEY (old_structure, old_code) REFERENCES admin_unit ON DELETE CASCADE,
            FOREIGN KEY (new_structure, new_code) REFERENCES admin_unit ON DELETE CASCADE
        )
        """
    )
    op.execute("CREATE INDEX unit_crosswalk_new ON unit_crosswalk (new_structure, new_code)")


def downgrade() -> None:
    op.execute("DROP TABLE unit_crosswalk")
    op.execute("DROP TABLE admin_unit_part")
    op.execute("DROP TABLE admin_unit")
    op.execute("DROP TABLE boundary_structure")
    op.execute("DROP FUNCTION la_fold(text)")
    # Without CASCADE: if anything else in this database uses an extension,
    # the downgrade stops instead of destroying it.
    op.execute("DROP EXTENSION IF EXISTS pg_trgm")
    op.execute("DROP EXTENSION IF EXISTS unaccent")
    op.execute("DROP EXTENSION IF EXISTS postgis")
