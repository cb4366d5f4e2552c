"""How the tables would be placed on a Citus cluster (distributed PostgreSQL), written once.

The tables that grow with submissions and reports are *distributed* by the
2025 province (``province_code``) and *colocated*: the shards of one province
of every such table sit on the same node, so an officer's province is
answered by one node and joins between them stay local. The tables every
query joins against (boundaries, crosswalk, users, targets, recruiters) are
*reference* tables: a full copy on every node. ``survey_record_key``, the
idempotency key, is distributed by ``instance_id`` on its own: its one job is
to make an instance_id unique across the country. The audit log stays a
plain table on the coordinator (see :data:`COORDINATOR`).

:func:`citus_statements` gives what a deployment runs, in order; the test
tests/test_distribution_ready.py checks the schema against this plan; the
reasons are in docs/scale-out.md.

>>> DISTRIBUTED["survey_record"], DISTRIBUTED["survey_record_key"]
('province_code', 'instance_id')
>>> citus_statements()[0]
"SELECT create_reference_table('boundary_structure');"
"""

from __future__ import annotations

from sqlalchemy import Connection, text

UNPLACED_PROVINCE = "00"
"""The province of a quarantined payload that names no known commune (no GSO province has code 00)."""

DISTRIBUTED: dict[str, str] = {
    "survey_record": "province_code",
    "probable_duplicate": "province_code",
    "submission_quarantine": "province_code",
    "incident": "province_code",
    "recruitment_event": "province_code",
    "survey_record_key": "instance_id",
}
"""Table -> distribution column."""

COLOCATE_WITH = "survey_record"
"""The tables distributed by ``province_code`` share this table's shards (one colocation group)."""

REFERENCE: tuple[str, ...] = (
    # in the order their foreign keys need (a reference table may only refer to reference tables)
    "boundary_structure", "boundary_import", "admin_unit", "admin_unit_part", "unit_crosswalk", "boundary_import_unit",
    "app_user", "user_scope", "user_scope_unit", "refresh_token",
    "target", "recruiter", "unit_population", "data_version", "aggregate_release", "aggregate_release_cell",
)
"""Small tables copied to every node."""

COORDINATOR: tuple[str, ...] = ("audit_log", "export_job", "alembic_version")
"""Tables left on the coordinator. The audit log: one entry per read (not per record) naming records of
any province, read by actor, time or record id, never by province; append-only by triggers that Citus does
not run on distributed tables. Export jobs: a few rows, a queue its workers claim with row locks, read by
owner and id; a national export spans every province anyway."""


def citus_statements() -> list[str]:
    """The statements that turn a migrated database into a Citus cluster's schema, in order.

    Reference tables first (distributed tables refer to them), then the
    colocation group's anchor, then the rest of the group, then the key table.
    """
    out = [f"SELECT create_reference_table('{t}');" for t in REFERENCE]
    # Local tables that refer to a reference table (export_job -> app_user) must be in Citus's metadata.
    out += [f"SELECT citus_add_local_table_to_metadata('{t}');" for t in ("audit_log", "export_job")]
    out.append(f"SELECT create_distributed_table('{COLOCATE_WITH}', 'province_code');")
    out += [f"SELECT create_distributed_table('{t}', '{c}', colocate_with => '{COLOCATE_WITH}');"
            for t, c in DISTRIBUTED.items() if c == "province_code" and t != COLOCATE_WITH]
    out += [f"SELECT create_distributed_table('{t}', '{c}', colocate_with => 'none');"
            for t, c in DISTRIBUTED.items() if c != "province_code"]
    return out


def colocation_group(table: str) -> str:
    """The group of tables whose shards sit together: the province group, or the table alone.

    >>> colocation_group("incident"), colocation_group("survey_record_key")
    ('province', 'survey_record_key')
    """
    return "province" if DISTRIBUTED.get(table) == "province_code" else table


# The tables of the schema (not those an extension owns, as PostGIS's spatial_ref_sys).
_TABLES_SQL = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
"""

_COLUMNS_SQL = """
SELECT c.relname, a.attname, a.attnotnull, format_type(a.atttypid, a.atttypmod) AS type
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped
"""

# Unique indexes (primary keys and unique constraints are backed by one), by their key columns
# (an expression counts as no column), and exclusion constraints, which Citus treats alike.
_UNIQUE_SQL = """
SELECT t.relname AS tbl, i.relname AS name, CASE WHEN x.indisprimary THEN 'primary key' ELSE 'unique index' END AS what,
       array(SELECT a.attname FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(num, pos)
             JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.num
             WHERE k.pos <= x.indnkeyatts ORDER BY k.pos) AS cols
FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'public' AND x.indisunique
UNION ALL
SELECT t.relname, c.conname, 'exclusion constraint',
       array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(num, pos)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num ORDER BY k.pos)
FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'public' AND c.contype = 'x'
"""

_FOREIGN_KEYS_SQL = """
SELECT c.conname AS name, s.relname AS src, d.relname AS dst,
       array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(num, pos)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num ORDER BY k.pos) AS cols,
       array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(num, pos)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num ORDER BY k.pos) AS refcols
FROM pg_constraint c JOIN pg_class s ON s.oid = c.conrelid JOIN pg_class d ON d.oid = c.confrelid
JOIN pg_namespace n ON n.oid = s.relnamespace
WHERE n.nspname = 'public' AND c.contype = 'f'
"""


def schema_problems(conn: Connection) -> list[str]:
    """What Citus would refuse in this database's schema, read from the catalog; empty when it is ready.

    Checks that every table is placed by the plan; that a distributed table's
    distribution column exists, is NOT NULL and has one type across its
    colocation group; that every primary key, unique index and exclusion
    constraint of a distributed table holds the distribution column; and
    that a foreign key between distributed tables joins distribution column
    to distribution column within one colocation group (one to a reference
    table is fine; none may point at a distributed table from elsewhere).
    """
    problems: list[str] = []
    tables = set(conn.execute(text(_TABLES_SQL)).scalars())
    placed = set(DISTRIBUTED) | set(REFERENCE) | set(COORDINATOR)
    problems += [f"{t}: not placed (add it to geodata.distribution: distributed, reference or coordinator)"
                 for t in sorted(tables - placed)]
    problems += [f"{t}: in the plan but not in the database" for t in sorted(placed - tables - {"alembic_version"})]
    columns = {(r.relname, r.attname): r for r in conn.execute(text(_COLUMNS_SQL))}
    types: dict[str, set[str]] = {}
    for table, column in DISTRIBUTED.items():
        col = columns.get((table, column))
        if table not in tables:
            continue
        if col is None:
            problems.append(f"{table}: no distribution column {column}")
            continue
        if not col.attnotnull:
            problems.append(f"{table}: distribution column {column} may be NULL")
        types.setdefault(colocation_group(table), set()).add(col.type)
    problems += [f"colocation group {g}: distribution columns of different types {sorted(t)}"
                 for g, t in types.items() if len(t) > 1]
    for r in conn.execute(text(_UNIQUE_SQL)):
        column = DISTRIBUTED.get(r.tbl)
        if column and column not in r.cols:
            problems.append(f"{r.tbl}: {r.what} {r.name} ({', '.join(r.cols) or 'an expression'}) "
                            f"lacks the distribution column {column}")
    for r in conn.execute(text(_FOREIGN_KEYS_SQL)):
        src, dst = DISTRIBUTED.get(r.src), DISTRIBUTED.get(r.dst)
        where = f"{r.src}: foreign key {r.name} ({', '.join(r.cols)}) -> {r.dst} ({', '.join(r.refcols)})"
        if src and r.dst in REFERENCE:
            continue
        if src and dst:
            if colocation_group(r.src) != colocation_group(r.dst):
                problems.append(f"{where} joins two tables that are not colocated")
            elif (src, dst) not in zip(r.cols, r.refcols, strict=True):
                problems.append(f"{where} lacks the distribution column ({src} -> {dst})")
        elif src:
            problems.append(f"{where} points from a distributed table to one that is not a reference table")
        elif dst:
            problems.append(f"{where} points at a distributed table from one that is not")
    return problems
