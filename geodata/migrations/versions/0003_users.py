"""Users, their role and area scope, refresh tokens.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The id is random (gen_random_uuid(), core since PostgreSQL 13): it is
    # the subject of access tokens, which must not reveal names or how many
    # users there are. Usernames are stored folded to lower case.
    op.execute(
        """
        CREATE TABLE app_user (
            id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            username       text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._@-]{1,63}$'),
            password_hash  text NOT NULL,
            role           text NOT NULL
                           CHECK (role IN ('surveyor', 'officer', 'leader', 'police_analyst', 'planner', 'admin')),
            disabled       boolean NOT NULL DEFAULT false,
            failed_logins  integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
            locked_until   timestamptz,
            created_at     timestamptz NOT NULL DEFAULT now(),
            last_login_at  timestamptz
        )
        """
    )
    # A scope code means that unit and everything inside it, in both
    # structures (see geodata.scopes). A unit in someone's scope cannot be
    # deleted (no ON DELETE on the unit side): boundary loads only upsert.
    op.execute(
        """
        CREATE TABLE user_scope (
            user_id    uuid NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
            structure  text NOT NULL,
            unit_code  text NOT NULL,
            PRIMARY KEY (user_id, structure, unit_code),
            FOREIGN KEY (structure, unit_code) REFERENCES admin_unit (structure, code)
        )
        """
    )
    # Only a SHA-256 of the (random, 256-bit) refresh token is kept. Tokens
    # of one login share a family: presenting a rotated token again revokes
    # the whole family (it was stolen, or the client replays).
    op.execute(
        """
        CREATE TABLE refresh_token (
            id           uuid PRIMARY KEY,
            user_id      uuid NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
            family_id    uuid NOT NULL,
            token_hash   text NOT NULL UNIQUE,
            issued_at    timestamptz NOT NULL DEFAULT now(),
            expires_at   timestamptz NOT NULL,
            revoked_at   timestamptz,
            replaced_by  uuid,
            CHECK (expires_at > issued_at)
        )
        """
    )
    op.execute("CREATE INDEX refresh_token_user ON refresh_token (user_id)")
    op.execute("CREATE INDEX refresh_token_family ON refresh_token (family_id)")


def downgrade() -> None:
    op.execute("DROP TABLE refresh_token")
    op.execute("DROP TABLE user_scope")
    op.execute("DROP TABLE app_user")
