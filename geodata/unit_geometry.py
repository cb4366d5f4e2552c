"""Derived geometry of admin units: web-simplified copies and subdivided parts.

Both are rebuilt from ``admin_unit.geom`` after any boundary change, in SQL.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from geodata.settings import get_settings
from geodata.structures import Structure

# Pieces of at most this many vertices: point-in-polygon stays cheap and the
# GiST boxes tight (PostGIS's own advice for big polygons).
SUBDIVIDE_VERTICES = 128
# Units changed at once from which the tables' statistics are refreshed.
ANALYZE_AFTER = 1000


def web_geometry_sql(geom: str, level: str) -> str:
    """SQL for the web-simplified copy of polygon expression ``geom`` of a unit whose level is expression ``level``.

    Binds ``:tp``, ``:td`` and ``:tc`` (:func:`web_tolerances`).

    >>> web_geometry_sql("b.geom", "'commune'").startswith("CASE WHEN b.geom IS NULL THEN NULL")
    True
    """
    # Douglas-Peucker keeping collapsed rings, then made valid: the same
    # vertices as the topology-preserving simplifier within 1 %, thirty times
    # faster (it was a tenth of an import of 11,000 communes).
    return (f"CASE WHEN {geom} IS NULL THEN NULL ELSE ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_Simplify({geom}, "
            f"CASE {level} WHEN 'province' THEN :tp WHEN 'district' THEN :td ELSE :tc END, true)), 3)) END")


def web_tolerances() -> dict[str, float]:
    """The bind parameters of :func:`web_geometry_sql`, from the settings.

    >>> sorted(web_tolerances())
    ['tc', 'td', 'tp']
    """
    st = get_settings()
    return {"tp": st.web_tolerance_province, "td": st.web_tolerance_district, "tc": st.web_tolerance_commune}


def refresh_unit_geometry(conn: Connection, structure: Structure, codes_from: str | None = None, *, web: bool = True) -> None:
    """Rebuild ``geom_web`` and ``admin_unit_part`` for units of ``structure``.

    ``codes_from`` names a table (or temp table) with a ``code`` column to
    limit the work to those units; ``None`` refreshes the whole structure.
    ``web=False`` leaves ``geom_web`` alone, for callers that wrote it with
    the polygon (a second pass over thousands of rows rewrites every index
    entry of each row again).
    """
    limit = f"AND code IN (SELECT code FROM {codes_from})" if codes_from else ""
    params = {"s": structure.value, **web_tolerances()}
    if web:
        conn.execute(text(f"UPDATE admin_unit SET geom_web = {web_geometry_sql('geom', 'level')} WHERE structure = :s {limit}"), params)
    conn.execute(text(f"DELETE FROM admin_unit_part WHERE structure = :s {limit}"), params)
    conn.execute(
        text(
            f"""
            INSERT INTO admin_unit_part (structure, code, level, valid_from, valid_to, geom)
            SELECT structure, code, level, valid_from, valid_to,
                   ST_Subdivide(geom, {SUBDIVIDE_VERTICES})
            FROM admin_unit WHERE structure = :s AND geom IS NOT NULL {limit}
            """
        ),
        params,
    )
    # Fresh statistics now, not when autovacuum gets round to it: without
    # them the planner joins points to polygons badly, and the first import
    # after a seed checked its rows eight times slower. A few units changed
    # (a partial boundary import) do not move the statistics, and ANALYZE
    # costs a third of a second each time.
    if codes_from is None or conn.execute(text(f"SELECT count(*) >= {ANALYZE_AFTER} FROM {codes_from}")).scalar():
        conn.execute(text("ANALYZE admin_unit, admin_unit_part"))
