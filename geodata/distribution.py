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

COORDINATOR: tuple[str, ...] = ("audit_log", "alembic_version")
"""Tables left on the coordinator. The audit log: one entry per read (not per record) naming records of
any province, read by actor, time or record id, never by province; append-only by triggers that Citus does
not run on distributed tables."""


def citus_statements() -> list[str]:
    """The statements that turn a migrated database into a Citus cluster's schema, in order.

    Reference tables first (distributed tables refer to them), then the
    colocation group's anchor, then the rest of the group, then the key table.
    """
    out = [f"SELECT create_reference_table('{t}');" for t in REFERENCE]
    out.append("SELECT citus_add_local_table_to_metadata('audit_log');")
    out.append(f"SELECT create_distributed_table('{COLOCATE_WITH}', 'province_code');")
    out += [f"SELECT create_distributed_table('{t}', '{c}', colocate_with => '{COLOCATE_WITH}');"
            for t, c in DISTRIBUTED.items() if c == "province_code" and t != COLOCATE_WITH]
    out += [f"SELECT create_distributed_table('{t}', '{c}', colocate_with => 'none');"
            for t, c in DISTRIBUTED.items() if c != "province_code"]
    return out
