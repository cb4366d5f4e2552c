"""Approximate commune polygons tile their parent and every centre gets a cell."""

from sqlalchemy import text

# Cells per clip region: the region is named at the end of geom_source
# ("... clipped to district 001").
TILING_SQL = """
WITH cells AS (
    SELECT structure, split_part(geom_source, ' ', -1) AS region, geom
    FROM admin_unit WHERE level = 'commune' AND geom_quality = 'approximate' AND structure = :s
),
per_region AS (
    SELECT c.region, r.geom AS region_geom, ST_Union(c.geom) AS union_geom, sum(ST_Area(c.geom)) AS sum_area, count(*) AS n
    FROM cells c JOIN admin_unit r ON r.structure = c.structure AND r.code = c.region
    GROUP BY c.region, r.geom
)
SELECT region, n, ST_Area(region_geom) AS region_area,
       ST_Area(ST_SymDifference(union_geom, region_geom)) AS gap,
       sum_area - ST_Area(union_geom) AS overlap
FROM per_region
"""


def check_tiling(conn, structure: str, expected_regions: int) -> None:
    rows = conn.execute(text(TILING_SQL), {"s": structure}).all()
    assert len(rows) >= expected_regions
    for r in rows:
        assert r.gap / r.region_area < 1e-6, f"{structure} region {r.region}: cells do not cover it"
        assert r.overlap / r.region_area < 1e-6, f"{structure} region {r.region}: cells overlap"


def test_2025_communes_tile_their_province(seeded):
    with seeded.connect() as conn:
        check_tiling(conn, "2025", expected_regions=33)


def test_pre2025_communes_tile_their_district(seeded):
    with seeded.connect() as conn:
        check_tiling(conn, "pre2025", expected_regions=650)


def test_every_commune_with_a_centre_and_a_parent_polygon_gets_a_cell(seeded):
    with seeded.connect() as conn:
        missing = conn.execute(
            text(
                """
                SELECT c.structure, c.code FROM admin_unit c
                JOIN admin_unit p ON p.structure = c.structure AND p.code = c.parent_code
                LEFT JOIN admin_unit g ON g.structure = p.structure AND g.code = p.parent_code
                WHERE c.level = 'commune' AND c.centre IS NOT NULL AND c.geom IS NULL
                  AND coalesce(g.geom, p.geom) IS NOT NULL
                """
            )
        ).all()
        assert missing == []
        quality = dict(conn.execute(text("SELECT structure, count(*) FROM admin_unit WHERE level = 'commune' AND geom_quality = 'approximate' GROUP BY 1")).all())
        # Every commune but the one without a centre: Quảng Ninh's too, inside its approximate polygon.
        assert quality["2025"] >= 3319 and quality["pre2025"] >= 10030
        sources = conn.execute(text("SELECT DISTINCT geom_source LIKE 'Voronoi cell of the commune centre (vietnamadminunits%' FROM admin_unit WHERE geom_quality = 'approximate' AND level = 'commune'")).scalars().all()
        assert sources == [True]


def test_centres_inside_their_parent_stay_inside_their_own_cell(seeded):
    with seeded.connect() as conn:
        outside = conn.execute(
            text(
                """
                SELECT count(*) FILTER (WHERE NOT ST_Covers(c.geom, c.centre)) AS outside, count(*) AS total
                FROM admin_unit c JOIN admin_unit p ON p.structure = c.structure AND p.code = c.parent_code
                WHERE c.level = 'commune' AND c.geom_quality = 'approximate' AND ST_Covers(p.geom, c.centre)
                  -- the source gives some communes the same centre: one keeps it, the others are nudged
                  AND (c.structure, ST_AsEWKB(c.centre)) NOT IN (
                      SELECT structure, ST_AsEWKB(centre) FROM admin_unit WHERE centre IS NOT NULL
                      GROUP BY 1, 2 HAVING count(*) > 1)
                """
            )
        ).one()
        assert outside.total > 12000
        assert outside.outside == 0
