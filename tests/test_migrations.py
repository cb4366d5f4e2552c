"""The schema is created and removed by Alembic migrations."""

from sqlalchemy import text

from geodata import migrate
from tests.helpers import using

TABLES = {"audit_log", "boundary_structure", "admin_unit", "admin_unit_part", "unit_crosswalk", "survey_record", "submission_quarantine", "probable_duplicate",
          "app_user", "user_scope", "user_scope_unit", "refresh_token", "boundary_import", "boundary_import_unit",
          "aggregate_release", "aggregate_release_cell", "target", "recruiter", "recruitment_event", "incident", "data_version",
          "unit_population", "survey_record_key", "export_job"}
HEAD = "0018"


def tables(conn) -> set[str]:
    return set(conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())


def test_upgrade_and_downgrade_on_an_empty_database(server):
    url = server.create_database()
    with using(url) as engine:
        with engine.connect() as conn:
            assert not TABLES & tables(conn)
        migrate.upgrade()
        assert migrate.current_revision() == HEAD
        with engine.connect() as conn:
            assert tables(conn) >= TABLES
            assert conn.execute(text("SELECT extname FROM pg_extension WHERE extname = 'postgis'")).scalar() == "postgis"
            indexes = set(conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'admin_unit'")).scalars())
            assert {"admin_unit_geom_gist", "admin_unit_parent", "admin_unit_name_trgm"} <= indexes
            gist = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'admin_unit_geom_gist'")).scalar()
            assert "USING gist" in gist
            geom_type = conn.execute(text("SELECT type, srid FROM geometry_columns WHERE f_table_name = 'admin_unit' AND f_geometry_column = 'geom'")).one()
            assert tuple(geom_type) == ("MULTIPOLYGON", 4326)
            structures = dict(conn.execute(text("SELECT name, valid_to FROM boundary_structure")).all())
            assert set(structures) == {"pre2025", "2025"} and structures["2025"] is None
        migrate.downgrade("base")
        assert migrate.current_revision() is None
        with engine.connect() as conn:
            assert not TABLES & tables(conn)
            assert conn.execute(text("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'")).scalar() == 0
        migrate.upgrade()  # and up again after a full downgrade
        assert migrate.current_revision() == HEAD
    server.drop_database(url)
