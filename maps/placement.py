"""Where a record or an incident lies in a given boundary structure.

Records and incidents keep the commune of the structure in force on their
own date; a year that straddles the reform (2025: January-June in the old
structure, July on in the new) is counted in ONE structure, the one asked
for. Each row is placed by its point in that structure's communes; a row
without a point (anonymised, or recorded without GPS) goes through the
crosswalk to the unit that received the largest share of its commune.
"""

from __future__ import annotations


def commune_in(structure: str, row_structure: str, row_commune: str, row_geom: str) -> str:
    """A SQL expression: the commune of ``structure`` a row lies in (NULL where none can be found).

    Parameters are SQL expressions: the asked structure (e.g. ``:structure``)
    and the row's own structure, commune code and point. The lookups run only
    for rows of the other structure (a CASE evaluates lazily), by index.

    >>> "admin_unit_part" in commune_in(":structure", "r.structure", "r.assigned_commune_code", "r.geom")
    True
    """
    return f"""CASE WHEN {row_structure} = {structure} THEN {row_commune} ELSE coalesce(
        (SELECT p.code FROM admin_unit_part p
         WHERE {row_geom} IS NOT NULL AND p.structure = {structure} AND p.level = 'commune' AND ST_Covers(p.geom, {row_geom})
         ORDER BY p.code LIMIT 1),
        (SELECT x.new_code FROM unit_crosswalk x
         WHERE x.old_structure = {row_structure} AND x.old_code = {row_commune} AND x.new_structure = {structure}
         ORDER BY x.area_share DESC, x.new_code LIMIT 1),
        (SELECT x.old_code FROM unit_crosswalk x
         WHERE x.new_structure = {row_structure} AND x.new_code = {row_commune} AND x.old_structure = {structure}
         ORDER BY x.area_share DESC, x.old_code LIMIT 1)) END"""


def ancestors_sql(structure: str) -> str:
    """SQL rows (commune, unit): every commune of ``structure`` with itself, its parent and grandparent.

    Joined to per-commune counts, it rolls them up the hierarchy in one pass.
    """
    return f"""
    SELECT c.code AS commune, c.code AS unit FROM admin_unit c WHERE c.structure = {structure} AND c.level = 'commune'
    UNION ALL
    SELECT c.code, c.parent_code FROM admin_unit c
    WHERE c.structure = {structure} AND c.level = 'commune' AND c.parent_code IS NOT NULL
    UNION ALL
    SELECT c.code, p.parent_code FROM admin_unit c JOIN admin_unit p ON p.structure = c.structure AND p.code = c.parent_code
    WHERE c.structure = {structure} AND c.level = 'commune' AND p.parent_code IS NOT NULL"""
