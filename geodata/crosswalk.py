"""The old -> new unit crosswalk and its area shares."""

from __future__ import annotations

from sqlalchemy import Connection, text


def refresh_crosswalk_shares(conn: Connection) -> int:
    """Recompute the area share of split units from their geometry.

    An old unit linked to one new unit gives it all its area (``whole``). For
    an old unit split between several, the share of each new unit is the area
    of the overlap divided by the total overlap of all its links
    (``geometry``), where both sides have polygons and overlap at all;
    otherwise the area is split equally (``equal``). Returns the number of
    links whose share now comes from geometry.
    """
    conn.execute(
        text(
            """
            UPDATE unit_crosswalk x SET area_share = 1.0 / n.links, share_method = 'equal'
            FROM (SELECT old_structure, old_code, new_structure, count(*) AS links FROM unit_crosswalk
                  GROUP BY 1, 2, 3 HAVING count(*) > 1) n
            WHERE x.old_structure = n.old_structure AND x.old_code = n.old_code AND x.new_structure = n.new_structure
            """
        )
    )
    return conn.execute(
        text(
            """
            WITH split AS (
                SELECT old_structure, old_code, new_structure FROM unit_crosswalk
                GROUP BY 1, 2, 3 HAVING count(*) > 1
            ),
            overlap AS (
                SELECT x.old_structure, x.old_code, x.new_structure, x.new_code,
                       CASE WHEN ST_Intersects(o.geom, n.geom)
                            THEN ST_Area(ST_Intersection(o.geom, n.geom)::geography) ELSE 0 END AS a
                FROM unit_crosswalk x
                JOIN split USING (old_structure, old_code, new_structure)
                JOIN admin_unit o ON o.structure = x.old_structure AND o.code = x.old_code
                JOIN admin_unit n ON n.structure = x.new_structure AND n.code = x.new_code
            ),
            total AS (
                SELECT old_structure, old_code, new_structure, sum(a) AS a FROM overlap GROUP BY 1, 2, 3
            )
            UPDATE unit_crosswalk x SET area_share = least(o.a / t.a, 1.0), share_method = 'geometry'
            FROM overlap o JOIN total t USING (old_structure, old_code, new_structure)
            WHERE t.a > 0 AND x.old_structure = o.old_structure AND x.old_code = o.old_code
              AND x.new_structure = o.new_structure AND x.new_code = o.new_code
            """
        )
    ).rowcount
