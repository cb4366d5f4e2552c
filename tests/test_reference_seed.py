"""`labour-atlas db seed`: every unit of both structures, real polygons, crosswalk."""

import csv

from sqlalchemy import text

from geodata.reference_data import REFERENCE_DIR


def counts(conn):
    return {(s, lvl): n for s, lvl, n in conn.execute(text("SELECT structure, level, count(*) FROM admin_unit GROUP BY 1, 2"))}


def test_every_unit_of_both_structures_exists_with_name_type_parent(seeded):
    with seeded.connect() as conn:
        assert counts(conn) == {
            ("pre2025", "province"): 63, ("pre2025", "district"): 696, ("pre2025", "commune"): 10047,
            ("2025", "province"): 34, ("2025", "commune"): 3321,
        }
        # Each file row is in the table exactly as written (names with diacritics included).
        for filename, structure in (("vn_old_units_20250301.csv", "pre2025"), ("vn_2025_units.csv", "2025")):
            with open(REFERENCE_DIR / filename, encoding="utf-8") as f:
                expected = {r["code"]: (r["name"], r["unit_type"], r["parent_code"] or None) for r in csv.DictReader(f)}
            stored = {
                code: (name, unit_type, parent)
                for code, name, unit_type, parent in conn.execute(
                    text("SELECT code, name, unit_type, parent_code FROM admin_unit WHERE structure = :s"), {"s": structure}
                )
            }
            assert stored == expected
        # Every parent exists one level up in the same structure.
        orphans = conn.execute(
            text(
                """SELECT count(*) FROM admin_unit c LEFT JOIN admin_unit p
                   ON p.structure = c.structure AND p.code = c.parent_code
                   WHERE c.parent_code IS NOT NULL AND p.code IS NULL"""
            )
        ).scalar()
        assert orphans == 0


def test_reference_polygons_loaded_and_marked_official(seeded):
    with seeded.connect() as conn:
        rows = dict(
            conn.execute(
                text("SELECT level, count(*) FROM admin_unit WHERE structure = 'pre2025' AND geom_quality = 'official' GROUP BY level")
            ).all()
        )
        assert rows["province"] == 62  # Quảng Ninh is missing from the source...
        assert rows["district"] >= 680
        # ... and has an approximate polygon instead, in both structures, said to be approximate.
        for structure in ("pre2025", "2025"):
            quality, source, area = conn.execute(text(
                "SELECT geom_quality, geom_source, ST_Area(geom::geography) / 1e6 FROM admin_unit WHERE structure = :s AND code = '22'"),
                {"s": structure}).one()
            assert quality == "approximate" and 5000 < area < 6500, (structure, quality, area)
            assert "Natural Earth" in source or "union of pre2025 provinces 22" in source
        invalid = conn.execute(text("SELECT count(*) FROM admin_unit WHERE geom IS NOT NULL AND NOT ST_IsValid(geom)")).scalar()
        assert invalid == 0
        # Abolished district codes are not units; their polygons went to a successor.
        assert conn.execute(text("SELECT count(*) FROM admin_unit WHERE structure = 'pre2025' AND code = '448'")).scalar() == 0


def test_2025_provinces_are_unions_of_their_old_provinces(seeded):
    with seeded.connect() as conn:
        rows = conn.execute(
            text(
                """
                SELECT n.code, ST_Area(n.geom::geography) AS new_area,
                       ST_Area(ST_SymDifference(n.geom, ST_Union(o.geom))::geography) AS diff,
                       count(*) AS olds
                FROM admin_unit n
                JOIN unit_crosswalk x ON x.new_structure = '2025' AND x.new_code = n.code AND x.level = 'province'
                JOIN admin_unit o ON o.structure = 'pre2025' AND o.code = x.old_code
                WHERE n.structure = '2025' AND n.level = 'province' AND n.geom IS NOT NULL
                GROUP BY n.code, n.geom
                """
            )
        ).all()
        assert len(rows) == 34  # Quảng Ninh too, approximate
        assert sum(r.olds for r in rows) == 63
        for r in rows:
            assert r.diff / r.new_area < 1e-6, r.code
        # Hà Tĩnh (42) and Nghệ An (40) stay separate; Hà Giang (02) went into Tuyên Quang (08).
        merged = dict(conn.execute(text("SELECT old_code, new_code FROM unit_crosswalk WHERE level = 'province'")).all())
        assert merged["02"] == "08" and merged["42"] == "42"


def test_crosswalk_shares_of_each_old_unit_add_up_to_one(seeded):
    with seeded.connect() as conn:
        bad = conn.execute(
            text(
                """SELECT old_code, sum(area_share) FROM unit_crosswalk GROUP BY old_structure, old_code, level
                   HAVING abs(sum(area_share) - 1) > 1e-9"""
            )
        ).all()
        assert bad == []
        methods = dict(conn.execute(text("SELECT share_method, count(*) FROM unit_crosswalk GROUP BY 1")).all())
        assert methods["whole"] >= 9592 and methods["geometry"] > 0


def test_polygon_tables_have_planner_statistics_right_after_loading(seeded):
    """Without them a first import right after the seed checked its points eight times slower."""
    with seeded.connect() as conn:
        analysed = dict(conn.execute(text(
            "SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname IN ('admin_unit', 'admin_unit_part')"
        )).all())
        parts = conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'admin_unit_part'")).scalar()
    assert analysed == {"admin_unit": True, "admin_unit_part": True}
    assert parts > 10_000
