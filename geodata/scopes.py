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

The expansion is one set-based statement (:data:`SCOPE_EXPANSION_SQL`). Its
result is kept in ``user_scope_unit`` (:func:`refresh_scopes`), because the
planner cannot size recursive CTEs and a query repeated on every request must
be an index lookup: use :func:`scope_condition` in a WHERE clause with the
parameters of :func:`scope_params`. :func:`scope_units` runs the expansion
itself and returns the codes (for tests and small lists).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, text

from geodata.structures import Structure

# Every (user_id, structure, code) in the scope of :scope_user_id (of every
# user when it is NULL), both structures.
SCOPE_EXPANSION_SQL = """
WITH RECURSIVE
scope_seed AS (
    SELECT user_id, structure, unit_code AS code FROM user_scope
    WHERE CAST(:scope_user_id AS uuid) IS NULL OR user_id = CAST(:scope_user_id AS uuid)
),
scope_native AS (
    SELECT user_id, structure, code FROM scope_seed
    UNION
    SELECT n.user_id, u.structure, u.code
    FROM admin_unit u JOIN scope_native n ON u.structure = n.structure AND u.parent_code = n.code
),
scope_crossed AS (
    SELECT n.user_id, x.new_structure AS structure, x.new_code AS code
    FROM unit_crosswalk x JOIN scope_native n ON n.structure = x.old_structure AND n.code = x.old_code
    WHERE x.level <> 'province'
    UNION
    SELECT n.user_id, x.old_structure, x.old_code
    FROM unit_crosswalk x JOIN scope_native n ON n.structure = x.new_structure AND n.code = x.new_code
    WHERE x.level <> 'province'
),
scope_crossed_down AS (
    SELECT user_id, structure, code FROM scope_crossed
    UNION
    SELECT d.user_id, u.structure, u.code
    FROM admin_unit u JOIN scope_crossed_down d ON u.structure = d.structure AND u.parent_code = d.code
),
scope_covered AS (
    SELECT user_id, structure, code FROM scope_native
    UNION
    SELECT user_id, structure, code FROM scope_crossed_down
),
child_count AS (
    SELECT structure, parent_code AS code, count(*) AS children FROM admin_unit
    WHERE parent_code IS NOT NULL GROUP BY 1, 2
),
scope_count1 AS (  -- parents of covered units, with how many of their children are covered
    SELECT k.user_id, u.structure, u.parent_code AS code, count(*) AS covered
    FROM scope_covered k JOIN admin_unit u ON u.structure = k.structure AND u.code = k.code
    WHERE u.parent_code IS NOT NULL
    GROUP BY 1, 2, 3
),
scope_level1 AS (
    SELECT user_id, structure, code FROM scope_covered
    UNION
    SELECT p.user_id, p.structure, p.code FROM scope_count1 p JOIN child_count c USING (structure, code)
    WHERE p.covered = c.children
),
scope_count2 AS (
    SELECT k.user_id, u.structure, u.parent_code AS code, count(*) AS covered
    FROM scope_level1 k JOIN admin_unit u ON u.structure = k.structure AND u.code = k.code
    WHERE u.parent_code IS NOT NULL
    GROUP BY 1, 2, 3
)
SELECT user_id, structure, code FROM scope_level1
UNION
SELECT p.user_id, p.structure, p.code FROM scope_count2 p JOIN child_count c USING (structure, code)
WHERE p.covered = c.children
"""
"""``SELECT user_id, structure, code`` of every unit in the scope of user
``:scope_user_id`` (every user when NULL), in both structures. Levels are at
most three deep (province, district, commune), so two steps up find every
wholly covered ancestor. Stored in ``user_scope_unit`` by :func:`refresh_scopes`."""

SCOPE_UNITS_SQL = f"SELECT code FROM ({SCOPE_EXPANSION_SQL}) scope_all WHERE structure = :scope_structure"
"""One ``SELECT code`` of every unit of ``:scope_structure`` in the scope (computed now)."""


def refresh_scopes(conn: Connection, user_id: uuid.UUID | str | None = None) -> int:
    """Store the expanded scope of one user (or of all users) in ``user_scope_unit``.

    Run after a user's scope changes and after boundaries or the crosswalk
    change (:func:`etl.boundaries.import_boundaries` and the seed do it).
    Returns the number of (user, unit) rows stored.
    """
    params = {"scope_user_id": str(user_id) if user_id is not None else None}
    conn.execute(
        text("DELETE FROM user_scope_unit WHERE CAST(:scope_user_id AS uuid) IS NULL OR user_id = CAST(:scope_user_id AS uuid)"),
        params,
    )
    return conn.execute(
        text(f"INSERT INTO user_scope_unit (user_id, structure, code) {SCOPE_EXPANSION_SQL}"), params
    ).rowcount


def scope_params(user_id: uuid.UUID | str, structure: Structure | str | None = None) -> dict[str, object]:
    """The bind parameters of the scope SQL (``structure`` only for :data:`SCOPE_UNITS_SQL`).

    >>> scope_params("00000000-0000-0000-0000-000000000001", Structure.v2025)["scope_structure"]
    '2025'
    """
    params: dict[str, object] = {"scope_user_id": str(user_id)}
    if structure is not None:
        params["scope_structure"] = Structure(structure).value
    return params


def scope_condition(code_column: str, structure_column: str | None = None, *, per_row: bool = False) -> str:
    """A WHERE condition: ``code_column`` is a unit in the scope of ``:scope_user_id``.

    Parameters
    ----------
    code_column:
        SQL expression of a unit code, e.g. ``r.assigned_commune_code``.
    structure_column:
        SQL expression of the row's structure (codes repeat across
        structures); bind ``scope_params(user_id)``. Without it, the code is
        looked up in ``:scope_structure``: bind ``scope_params(user_id, structure)``.
    per_row:
        Always one index probe per row. For statements whose row count the
        planner cannot know (a request's rows from JSON): it may otherwise
        hash the whole scope first, 14,000 units for a national user, on
        every request. (Over many rows, the hashed form is the faster one.)

    The condition is an indexed lookup in ``user_scope_unit``. Example::

        sql = "SELECT count(*) FROM survey_record r WHERE " + scope_condition(
            "r.assigned_commune_code", "r.structure")
        conn.execute(text(sql), scope_params(user_id))
    """
    structure = structure_column or "CAST(:scope_structure AS text)"
    # OFFSET 0 keeps the planner from turning the EXISTS into a hashed IN.
    return (f"EXISTS (SELECT 1 FROM user_scope_unit scope_u WHERE scope_u.user_id = CAST(:scope_user_id AS uuid) "
            f"AND scope_u.structure = {structure} AND scope_u.code = {code_column}{' OFFSET 0' if per_row else ''})")


def whole_country_condition() -> str:
    """A WHERE condition: the scope of ``:scope_user_id`` covers every province of the 2025 structure.

    For data that names no known unit (a rejected form with a mistyped
    commune code): only a user of the whole country may see it.
    """
    return (f"NOT EXISTS (SELECT 1 FROM admin_unit scope_p WHERE scope_p.structure = '2025' AND scope_p.level = 'province' "
            f"AND NOT {scope_condition('scope_p.code', 'scope_p.structure')})")


@dataclass(frozen=True)
class Reader:
    """Whose rows a query may return: those in the area scope of ``area_of``
    (a user id), or those sent by ``own`` (a username), or both limits.

    ``Reader()`` means no limit (the command line, run by an operator).
    """

    area_of: uuid.UUID | str | None = None
    own: str | None = None

    def params(self) -> dict[str, object]:
        return {"scope_user_id": str(self.area_of) if self.area_of else None, "own_sender": self.own}


def scope_units(conn: Connection, user_id: uuid.UUID | str, structure: Structure | str) -> set[str]:
    """The codes of all units of ``structure`` in the scope of ``user_id`` (runs the SQL).

    Example: a user whose scope is the pre-2025 province ``"42"`` (Hà Tĩnh)
    gets, for ``"pre2025"``, 42 with its districts and communes, and for
    ``"2025"``, every new commune that an old commune of 42 became part of
    (and new province 42, all of whose communes come from old 42).

    Example (needs a database)::

        scope_units(conn, user_id, "2025")
        # {'42', '18073', ...}
    """
    return set(conn.execute(text(SCOPE_UNITS_SQL), scope_params(user_id, structure)).scalars())
