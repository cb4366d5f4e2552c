"""Approximate commune polygons: Voronoi cells of commune centres, clipped.

No openly licensed commune polygons of Vietnam exist, so Labour Atlas draws
each commune as the Voronoi cell of its centre point, clipped to the official
polygon of its nearest ancestor that has one (the district before 2025, the
province after). Cells of one clip region tile it exactly. Every such polygon
carries ``geom_quality = 'approximate'``; official commune polygons, once
imported, are never overwritten and are cut out of the regions first.

A boundary import redraws only the regions it touched (``regions=``), so that
official and approximate polygons never overlap after a partial import.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from geodata.crosswalk import refresh_crosswalk_shares
from geodata.structures import Structure
from geodata.unit_geometry import refresh_unit_geometry

CENTRE_SOURCE = "vietnamadminunits 1.0.4 (MIT)"

# Seeds: each commune with a centre, the region it is drawn in, and the seed
# point moved inside the region when the centre lies outside it (geocoding
# errors, boundary vintage). The region is the parent if it has a polygon;
# else the nearest polygon of a unit at the parent's level in the same
# province (districts with no polygon of their own, e.g. split-off towns, lie
# inside the polygon they were split from); else the province itself.
SEEDS_SQL = """
CREATE TEMP TABLE approx_seed ON COMMIT DROP AS
WITH c AS (
    SELECT c.code, c.centre, CASE WHEN c.geom_quality = 'approximate' THEN split_part(c.geom_source, ' ', -1) END AS old_region,
           p.code AS parent, p.level AS parent_level, p.geom IS NOT NULL AS parent_has_geom,
           CASE WHEN p.level = 'province' THEN p.code ELSE p.parent_code END AS province
    FROM admin_unit c JOIN admin_unit p ON p.structure = c.structure AND p.code = c.parent_code
    WHERE c.structure = :s AND c.level = 'commune' AND c.centre IS NOT NULL
      AND c.geom_quality IS DISTINCT FROM 'official'
)
SELECT c.code, c.centre, c.old_region, coalesce(
    CASE WHEN c.parent_has_geom THEN c.parent END,
    (SELECT d.code FROM admin_unit d
     WHERE d.structure = :s AND d.level = c.parent_level AND d.parent_code = c.province AND d.geom IS NOT NULL
     ORDER BY ST_Distance(d.geom, c.centre), d.code LIMIT 1),
    (SELECT p.code FROM admin_unit p WHERE p.structure = :s AND p.code = c.province AND p.geom IS NOT NULL)
) AS region, NULL::geometry(Point, 4326) AS pt
FROM c
"""

# Redrawing some regions only: a commune whose region changes (its parent got
# a polygon, or it moved to another parent) leaves its old region and joins a
# new one, so both are redrawn. Seeds outside the regions are dropped.
SCOPE_SQL = """
CREATE TEMP TABLE approx_scope ON COMMIT DROP AS
SELECT unnest(CAST(:regions AS text[])) AS region
UNION SELECT old_region FROM approx_seed WHERE region = ANY(CAST(:regions AS text[])) AND old_region IS NOT NULL
UNION SELECT region FROM approx_seed WHERE old_region = ANY(CAST(:regions AS text[])) AND region IS NOT NULL;
DELETE FROM approx_seed WHERE region IS NULL OR region NOT IN (SELECT region FROM approx_scope)
"""

REGIONS_SQL = """
CREATE TEMP TABLE approx_region ON COMMIT DROP AS
SELECT r.code AS region,
       CASE WHEN o.geom IS NULL THEN r.geom
            ELSE ST_Multi(ST_CollectionExtract(ST_Difference(r.geom, o.geom), 3)) END AS geom
FROM admin_unit r
LEFT JOIN LATERAL (
    SELECT ST_Union(x.geom) AS geom FROM admin_unit x
    WHERE x.structure = :s AND x.level = 'commune' AND x.geom_quality = 'official' AND ST_Intersects(x.geom, r.geom)
) o ON true
WHERE r.structure = :s AND r.code IN (SELECT region FROM approx_seed WHERE region IS NOT NULL)
"""

# A centre outside its region becomes the closest point of the region shrunk
# by about 50 m (or of the region itself where it is too small to shrink), so
# that the seed is inside and its cell keeps some area. Seeds that coincide
# would share one cell: later ones step 30 m per rank in the first of eight
# directions that stays inside the region.
PLACE_SEEDS_SQL = """
ALTER TABLE approx_region ADD COLUMN inner_geom geometry;
UPDATE approx_region r SET inner_geom = coalesce(nullif(ST_Buffer(r.geom, -0.0005), 'POLYGON EMPTY'::geometry), r.geom)
WHERE EXISTS (SELECT 1 FROM approx_seed s WHERE s.region = r.region AND NOT ST_Covers(r.geom, s.centre));
UPDATE approx_seed s
SET pt = CASE WHEN ST_Covers(r.geom, s.centre) THEN s.centre
              WHEN ST_IsEmpty(r.inner_geom) THEN ST_ClosestPoint(r.geom, s.centre)
              ELSE ST_ClosestPoint(r.inner_geom, s.centre) END
FROM approx_region r WHERE r.region = s.region;
UPDATE approx_seed s
SET pt = coalesce((
    SELECT p FROM generate_series(0, 7) AS k,
         LATERAL ST_Translate(s.pt, 0.0003 * d.rn * cos(k * pi() / 4), 0.0003 * d.rn * sin(k * pi() / 4)) AS p
    WHERE ST_Covers(r.geom, p) ORDER BY k LIMIT 1), s.pt)
FROM (SELECT code, row_number() OVER (PARTITION BY region, ST_AsEWKB(pt) ORDER BY code) - 1 AS rn
      FROM approx_seed WHERE pt IS NOT NULL) d, approx_region r
WHERE d.code = s.code AND d.rn > 0 AND r.region = s.region;
"""

CELLS_SQL = """
CREATE TEMP TABLE approx_cell ON COMMIT DROP AS
WITH groups AS (
    SELECT region, ST_Collect(pt) AS pts, count(*) AS n FROM approx_seed WHERE pt IS NOT NULL GROUP BY region
),
voronoi AS (
    SELECT g.region, (ST_Dump(ST_VoronoiPolygons(g.pts, 0.0,
                ST_Expand(ST_Envelope(ST_Collect(ST_Envelope(r.geom), ST_Envelope(g.pts))), 0.1)))).geom AS cell
    FROM groups g JOIN approx_region r USING (region) WHERE g.n > 1
)
SELECT s.code, s.region,
       ST_Multi(ST_CollectionExtract(ST_Intersection(coalesce(v.cell, r.geom), r.geom), 3)) AS geom
FROM approx_seed s
JOIN approx_region r USING (region)
LEFT JOIN voronoi v ON v.region = s.region AND ST_Contains(v.cell, s.pt)
WHERE s.pt IS NOT NULL
"""

APPLY_SQL = """
UPDATE admin_unit u SET
    geom = CASE WHEN ST_IsEmpty(c.geom) THEN NULL ELSE c.geom END,
    geom_quality = CASE WHEN ST_IsEmpty(c.geom) THEN NULL ELSE 'approximate' END,
    geom_source = 'Voronoi cell of the commune centre (' || :src || ') clipped to ' || r.level || ' ' || r.code
FROM approx_cell c JOIN admin_unit r ON r.structure = :s AND r.code = c.region
WHERE u.structure = :s AND u.code = c.code
"""

# Communes that are no longer drawn (no centre, no region) lose stale cells;
# when only some regions are redrawn, only cells of those regions.
CLEAR_SQL = """
UPDATE admin_unit SET geom = NULL, geom_quality = NULL, geom_source = NULL
WHERE structure = :s AND level = 'commune' AND geom_quality = 'approximate'
  AND code NOT IN (SELECT code FROM approx_cell WHERE NOT ST_IsEmpty(geom)) {scope}
RETURNING code
"""
CLEAR_SCOPE = "AND split_part(geom_source, ' ', -1) IN (SELECT region FROM approx_scope)"


@dataclass
class ApproximationResult:
    structure: str
    communes: int
    with_cell: int
    seeds_moved: int
    without_region: int
    official_kept: int
    regions: list[str] = field(default_factory=list)
    """The clip regions redrawn (all of them when the whole structure was drawn: empty)."""
    redrawn: int = 0
    """Communes whose approximate polygon was drawn or cleared."""


def approximate_communes(conn: Connection, structure: Structure, regions: Iterable[str] | None = None) -> ApproximationResult:
    """Draw approximate polygons for the communes of ``structure``.

    Parameters
    ----------
    conn:
        Runs inside the caller's transaction.
    structure:
        The boundary structure whose communes are drawn.
    regions:
        Codes of clip regions (the parents a boundary import touched) to
        redraw; ``None`` draws every commune of the structure. Regions that
        communes leave or join because of the change are redrawn with them.

    Example::

        with get_engine().begin() as conn:
            approximate_communes(conn, Structure.v2025)
            approximate_communes(conn, Structure.pre2025, regions=["436", "437"])
    """
    chosen = sorted(set(regions)) if regions is not None else None
    params = {"s": structure.value, "src": CENTRE_SOURCE, "regions": chosen}
    conn.execute(text(SEEDS_SQL), params)
    if chosen is not None:
        for statement in SCOPE_SQL.split(";"):
            conn.execute(text(statement), params)
        scope = sorted(conn.execute(text("SELECT region FROM approx_scope WHERE region IS NOT NULL")).scalars())
    else:
        scope = []
    conn.execute(text(REGIONS_SQL), params)
    for statement in PLACE_SEEDS_SQL.split(";"):
        if statement.strip():
            conn.execute(text(statement), params)
    conn.execute(text(CELLS_SQL), params)
    conn.execute(text(APPLY_SQL), params)
    clear = CLEAR_SQL.format(scope=CLEAR_SCOPE if chosen is not None else "")
    cleared = list(conn.execute(text(clear), params).scalars())
    stats = conn.execute(
        text(
            """
            SELECT (SELECT count(*) FROM admin_unit WHERE structure = :s AND level = 'commune') AS communes,
                   (SELECT count(*) FROM admin_unit WHERE structure = :s AND level = 'commune'
                        AND geom_quality = 'approximate') AS with_cell,
                   (SELECT count(*) FROM approx_seed WHERE pt IS NOT NULL AND NOT ST_Equals(pt, centre)) AS moved,
                   (SELECT count(*) FROM approx_seed WHERE region IS NULL) AS no_region,
                   (SELECT count(*) FROM admin_unit WHERE structure = :s AND level = 'commune'
                        AND geom_quality = 'official') AS official
            """
        ),
        params,
    ).one()
    conn.execute(text("CREATE TEMP TABLE approx_changed ON COMMIT DROP AS SELECT code FROM approx_cell"))
    if cleared:
        conn.execute(text("INSERT INTO approx_changed SELECT unnest(CAST(:c AS text[]))"), {"c": cleared})
    redrawn = conn.execute(text("SELECT count(*) FROM approx_changed")).scalar()
    refresh_unit_geometry(conn, structure, codes_from="approx_changed" if chosen is not None else None)
    for table in ("approx_changed", "approx_cell", "approx_region", "approx_seed", *(("approx_scope",) if chosen is not None else ())):
        conn.execute(text(f"DROP TABLE {table}"))
    refresh_crosswalk_shares(conn)
    return ApproximationResult(structure.value, stats.communes, stats.with_cell, stats.moved, stats.no_region, stats.official,
                               regions=scope, redrawn=redrawn)
