"""A user's area scope, expanded to unit codes in SQL.

A user's scope is a set of unit codes (table ``user_scope``, each with its
boundary structure) at any level. A code means that unit and everything
inside it, in *both* structures:

1. in its own structure, the unit and all its descendants (``parent_code``,
   recursively);
2. in the other structure, the units that any of those units is linked to in
   ``unit_crosswalk`` (commune and district links only: a province link
   would bring in the whole merged province), in either direction, crossed
   once; then their descendants;
3. in each structure, every unit all of whose children are covered (so an
   old province whose territory is exactly one new province covers that
   province too, for its targets and aggregates).

A commune split by the reform is linked to each of its successors, so a
scope reaches a new commune made partly from its own territory ("any old
commune of the scope maps to it"), and the other way round.

Everything is one set-based statement: use :func:`scope_condition` (or
:data:`SCOPE_UNITS_SQL`) in a WHERE clause with the parameters of
:func:`scope_params`; :func:`scope_units` runs it and returns the codes (for
tests and small lists).
"""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, String, column, text
from sqlalchemy.sql.elements import TextClause

from geodata.structures import Structure

SCOPE_UNITS_SQL = """
WITH RECURSIVE
scope_seed AS (
    SELECT structure, unit_code AS code FROM user_scope WHERE user_id = CAST(:scope_user_id AS uuid)
),
scope_native AS (
    SELECT structure, code FROM scope_seed
    UNION
    SELECT u.structure, u.code
    FROM admin_unit u JOIN scope_native n ON u.structure = n.structure AND u.parent_code = n.code
),
scope_crossed AS (
    SELECT x.new_structure AS structure, x.new_code AS code
    FROM unit_crosswalk x JOIN scope_native n ON n.structure = x.old_structure AND n.code = x.old_code
    WHERE x.level <> 'province'
    UNION
    SELECT x.old_structure, x.old_code
    FROM unit_crosswalk x JOIN scope_native n ON n.structure = x.new_structure AND n.code = x.new_code
    WHERE x.level <> 'province'
),
scope_crossed_down AS (
    SELECT structure, code FROM scope_crossed
    UNION
    SELECT u.structure, u.code
    FROM admin_unit u JOIN scope_crossed_down d ON u.structure = d.structure AND u.parent_code = d.code
),
scope_covered AS (
    SELECT structure, code FROM scope_native WHERE structure = :scope_structure
    UNION
    SELECT structure, code FROM scope_crossed_down WHERE structure = :scope_structure
),
scope_count1 AS (  -- parents of covered units, with how many of their children are covered
    SELECT u.structure, u.parent_code AS code, count(*) AS covered
    FROM scope_covered k JOIN admin_unit u ON u.structure = k.structure AND u.code = k.code
    WHERE u.parent_code IS NOT NULL
    GROUP BY 1, 2
),
scope_level1 AS (
    SELECT structure, code FROM scope_covered
    UNION
    SELECT p.structure, p.code FROM scope_count1 p
    WHERE p.covered = (SELECT count(*) FROM admin_unit c WHERE c.structure = p.structure AND c.parent_code = p.code)
),
scope_count2 AS (
    SELECT u.structure, u.parent_code AS code, count(*) AS covered
    FROM scope_level1 k JOIN admin_unit u ON u.structure = k.structure AND u.code = k.code
    WHERE u.parent_code IS NOT NULL
    GROUP BY 1, 2
)
SELECT code FROM scope_level1
UNION
SELECT p.code FROM scope_count2 p
WHERE p.covered = (SELECT count(*) FROM admin_unit c WHERE c.structure = p.structure AND c.parent_code = p.code)
"""
"""One ``SELECT code`` of every unit of ``:scope_structure`` in the scope of
user ``:scope_user_id``. Levels are at most three deep (province, district,
commune), so two steps up find every wholly covered ancestor."""


def scope_params(user_id: uuid.UUID | str, structure: Structure | str) -> dict[str, object]:
    """The bind parameters of :data:`SCOPE_UNITS_SQL`.

    >>> scope_params("00000000-0000-0000-0000-000000000001", Structure.v2025)["scope_structure"]
    '2025'
    """
    return {"scope_user_id": str(user_id), "scope_structure": Structure(structure).value}


def scope_condition(code_column: str, structure_column: str | None = None) -> str:
    """A WHERE condition: ``code_column`` is a unit in the user's scope.

    Parameters
    ----------
    code_column:
        SQL expression of a unit code, e.g. ``r.assigned_commune_code``.
    structure_column:
        SQL expression of the row's structure; when given, the row must also
        be in ``:scope_structure`` (codes repeat across structures).

    Bind :func:`scope_params` with the statement. Example::

        sql = "SELECT count(*) FROM survey_record r WHERE " + scope_condition(
            "r.assigned_commune_code", "r.structure")
        conn.execute(text(sql), scope_params(user_id, "2025"))
    """
    condition = f"{code_column} IN ({SCOPE_UNITS_SQL})"
    if structure_column:
        condition = f"({structure_column} = :scope_structure AND {condition})"
    return condition


def scope_units_select(user_id: uuid.UUID | str, structure: Structure | str):
    """The scope as a SQLAlchemy textual SELECT of one ``code`` column, parameters bound.

    Usable wherever Core takes a subquery, e.g.
    ``admin_unit.c.code.in_(scope_units_select(uid, "2025"))``.
    """
    stmt: TextClause = text(SCOPE_UNITS_SQL).bindparams(**scope_params(user_id, structure))
    return stmt.columns(column("code", String))


def scope_units(conn: Connection, user_id: uuid.UUID | str, structure: Structure | str) -> set[str]:
    """The codes of all units of ``structure`` in the scope of ``user_id`` (runs the SQL).

    Example: a user whose scope is the pre-2025 province ``"42"`` (Hà Tĩnh)
    gets, for ``"pre2025"``, 42 with its districts and communes, and for
    ``"2025"``, every new commune that an old commune of 42 became part of
    (and new province 42, all of whose communes come from old 42).

    >>> scope_units(conn, user_id, "2025")  # doctest: +SKIP
    {'42', '18073', ...}
    """
    return set(conn.execute(text(SCOPE_UNITS_SQL), scope_params(user_id, structure)).scalars())
