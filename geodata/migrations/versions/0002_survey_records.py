"""Survey records, quarantine of rejected submissions, probable duplicates.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # hmac() for submission fingerprints, computed where every channel meets.
    op.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
    # province_code leads the primary key so that the table can later be
    # distributed by province (Citus) without a rewrite. The declared
    # commune's province is used: it is always known, the GPS may not be.
    op.execute(
        """
        CREATE TABLE survey_record (
            province_code          text NOT NULL,
            instance_id            uuid NOT NULL,
            form_id                text NOT NULL,
            form_version           text NOT NULL,
            kind                   text NOT NULL CHECK (kind IN ('aspirant', 'returnee', 'departure')),
            collected_at           timestamptz NOT NULL,
            submitted_at           timestamptz NOT NULL DEFAULT now(),
            surveyor               text NOT NULL,
            source                 text NOT NULL,
            structure              text NOT NULL REFERENCES boundary_structure(name),
            declared_commune_code  text NOT NULL,
            assigned_commune_code  text,
            geom                   geometry(Point, 4326),
            gps_accuracy_m         real,
            accuracy_flag          boolean NOT NULL DEFAULT false,
            location_mismatch      boolean NOT NULL DEFAULT false,
            mismatch_distance_m    real,
            mock_location          boolean NOT NULL DEFAULT false,
            consent                boolean NOT NULL CHECK (consent),
            id_hash                text,
            full_name              text,
            name_folded            text,
            birth_year             smallint,
            sex                    text,
            departure_date         date,
            market                 text,
            recruiter_licence      text,
            answers                jsonb NOT NULL DEFAULT '{}',
            payload_hash           text NOT NULL,
            review_status          text NOT NULL DEFAULT 'received'
                                   CHECK (review_status IN ('received', 'approved', 'has_issues', 'rejected')),
            review_comment         text,
            reviewed_by            text,
            reviewed_at            timestamptz,
            PRIMARY KEY (province_code, instance_id),
            FOREIGN KEY (structure, declared_commune_code) REFERENCES admin_unit (structure, code)
        )
        """
    )
    # The idempotency key. (Under Citus this becomes a lookup table keyed by
    # instance_id, since a unique index there must include the province.)
    op.execute("CREATE UNIQUE INDEX survey_record_instance ON survey_record (instance_id)")
    op.execute("CREATE INDEX survey_record_geom_gist ON survey_record USING gist (geom)")
    op.execute("CREATE INDEX survey_record_commune ON survey_record (structure, assigned_commune_code)")
    op.execute("CREATE INDEX survey_record_declared ON survey_record (structure, declared_commune_code)")
    op.execute("CREATE INDEX survey_record_id_hash ON survey_record (kind, id_hash) WHERE id_hash IS NOT NULL")
    op.execute("CREATE INDEX survey_record_person ON survey_record (kind, name_folded, birth_year, declared_commune_code)")
    op.execute("CREATE INDEX survey_record_review ON survey_record (review_status, submitted_at)")
    op.execute(
        """
        CREATE TABLE submission_quarantine (
            id               bigserial PRIMARY KEY,
            received_at      timestamptz NOT NULL DEFAULT now(),
            source           text NOT NULL,
            file_name        text,
            row_number       integer,
            instance_id      text,
            payload_text     text NOT NULL,
            payload_hash     text NOT NULL,
            reasons          jsonb NOT NULL,
            personal_removed boolean NOT NULL DEFAULT false,
            status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resubmitted', 'dismissed')),
            resolved_instance_id uuid,
            resolved_at      timestamptz
        )
        """
    )
    op.execute("CREATE INDEX submission_quarantine_open ON submission_quarantine (status, received_at)")
    op.execute("CREATE INDEX submission_quarantine_hash ON submission_quarantine (payload_hash)")
    op.execute(
        """
        CREATE TABLE probable_duplicate (
            instance_id   uuid NOT NULL REFERENCES survey_record (instance_id) ON DELETE CASCADE,
            duplicate_of  uuid NOT NULL REFERENCES survey_record (instance_id) ON DELETE CASCADE,
            reason        text NOT NULL CHECK (reason IN ('national_id', 'name_birth_year_commune')),
            detected_at   timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (instance_id, duplicate_of)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE probable_duplicate")
    op.execute("DROP TABLE submission_quarantine")
    op.execute("DROP TABLE survey_record")
    op.execute("DROP EXTENSION IF EXISTS pgcrypto")
