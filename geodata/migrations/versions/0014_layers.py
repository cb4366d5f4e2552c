"""Map layers: targets, recruiters and their events, incidents, and data versions for caches.

- ``target``: a yearly target of a unit (absolute, minimum, or a growth range
  over the previous year's actual), with the columns of its source kept as notes.
- ``recruiter``: the register of licensed recruitment enterprises;
  ``recruitment_event``: where recruiters (or unregistered actors, by name)
  held seminars, counselling and selections.
- ``incident``: reports of illegal brokerage, fraud, trafficking, irregular
  departure; a count of persons affected, never a name.
- ``unit_population``: a denominator (people, households) per unit and
  year, for incident rates.
- ``data_version``: a counter per kind of data, bumped by statement-level
  triggers, so that cached layers and tiles know when they are stale.

Events and incidents carry the 2025 province code in their primary key (the
distribution column, should the tables be distributed by province).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

VERSIONED = ("target", "recruiter", "recruitment_event", "incident", "admin_unit", "unit_population")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE data_version (
            name       text PRIMARY KEY,
            version    bigint NOT NULL DEFAULT 1,
            changed_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE FUNCTION bump_data_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO data_version (name) VALUES (TG_TABLE_NAME)
            ON CONFLICT (name) DO UPDATE SET version = data_version.version + 1, changed_at = now();
            RETURN NULL;
        END $$;

        CREATE TABLE target (
            id          bigserial PRIMARY KEY,
            structure   text NOT NULL REFERENCES boundary_structure (name),
            unit_code   text NOT NULL,
            year        smallint NOT NULL CHECK (year BETWEEN 2000 AND 2100),
            indicator   text NOT NULL CHECK (indicator IN ('departures', 'surveyed_people')),
            kind        text NOT NULL CHECK (kind IN ('absolute', 'minimum', 'growth_percent')),
            value       numeric(12, 2) NOT NULL CHECK (value >= 0),
            value_max   numeric(12, 2) CHECK (value_max IS NULL OR value_max >= value),
            notes       jsonb NOT NULL DEFAULT '{}',
            source      text NOT NULL,
            updated_by  text,
            updated_at  timestamptz NOT NULL DEFAULT now(),
            UNIQUE (structure, unit_code, year, indicator),
            FOREIGN KEY (structure, unit_code) REFERENCES admin_unit (structure, code),
            CHECK (kind = 'growth_percent' OR value_max IS NULL)
        );

        CREATE TABLE recruiter (
            licence_number text PRIMARY KEY,
            name           text NOT NULL,
            name_folded    text GENERATED ALWAYS AS (la_fold(name)) STORED,
            status         text NOT NULL CHECK (status IN ('active', 'suspended', 'revoked', 'expired')),
            valid_from     date,
            valid_to       date CHECK (valid_to IS NULL OR valid_from IS NULL OR valid_to >= valid_from),
            markets        text[] NOT NULL DEFAULT '{}',
            head_office    geometry(Point, 4326),
            source         text NOT NULL,
            updated_at     timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX recruiter_name ON recruiter (name_folded);

        CREATE TABLE recruitment_event (
            province_code  text NOT NULL,
            id             bigserial,
            event_key      text NOT NULL,
            licence_number text REFERENCES recruiter (licence_number),
            actor_name     text NOT NULL,
            actor_folded   text GENERATED ALWAYS AS (la_fold(actor_name)) STORED,
            occurred_on    date NOT NULL,
            kind           text NOT NULL CHECK (kind IN ('seminar', 'counselling', 'selection', 'other')),
            attendees      integer CHECK (attendees BETWEEN 0 AND 100000),
            geom           geometry(Point, 4326),
            structure      text NOT NULL REFERENCES boundary_structure (name),
            commune_code   text NOT NULL,
            source         text NOT NULL,
            imported_at    timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (province_code, id),
            UNIQUE (province_code, event_key)
        );
        CREATE INDEX recruitment_event_licence ON recruitment_event (licence_number, occurred_on);
        CREATE INDEX recruitment_event_commune ON recruitment_event (structure, commune_code);

        CREATE TABLE incident (
            province_code    text NOT NULL,
            incident_id      text NOT NULL CHECK (length(incident_id) BETWEEN 1 AND 100),
            type             text NOT NULL CHECK (type IN ('illegal_brokerage', 'recruitment_fraud', 'trafficking',
                                                           'irregular_departure', 'other')),
            occurred_on      date NOT NULL,
            geom             geometry(Point, 4326),
            structure        text NOT NULL REFERENCES boundary_structure (name),
            commune_code     text NOT NULL,
            persons_affected integer NOT NULL DEFAULT 0 CHECK (persons_affected BETWEEN 0 AND 100000),
            status           text NOT NULL CHECK (status IN ('reported', 'verified', 'closed')),
            source           text NOT NULL,
            created_by       text,
            updated_at       timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (province_code, incident_id)
        );
        -- Not unique on its own (a unique key must hold the province, the distribution column): an
        -- import that moves an incident to another province deletes the old row in the same statement.
        CREATE INDEX incident_id ON incident (incident_id);
        CREATE INDEX incident_commune ON incident (structure, commune_code, occurred_on);
        CREATE TABLE unit_population (
            structure   text NOT NULL REFERENCES boundary_structure (name),
            unit_code   text NOT NULL,
            year        smallint NOT NULL CHECK (year BETWEEN 2000 AND 2100),
            population  integer CHECK (population >= 0),
            households  integer CHECK (households >= 0),
            source      text NOT NULL,
            PRIMARY KEY (structure, unit_code, year),
            FOREIGN KEY (structure, unit_code) REFERENCES admin_unit (structure, code)
        );
        -- Coverage counts a year's departures by their departure date.
        CREATE INDEX survey_record_departures ON survey_record (departure_date) WHERE kind = 'departure';
        """
    )
    for table in VERSIONED:
        op.execute(f"""CREATE TRIGGER {table}_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
                       FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version()""")
        op.execute(f"INSERT INTO data_version (name) VALUES ('{table}') ON CONFLICT DO NOTHING")


def downgrade() -> None:
    for table in VERSIONED:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_data_version ON {table}")
    op.execute("DROP INDEX survey_record_departures")
    op.execute("DROP TABLE unit_population, incident, recruitment_event, recruiter, target, data_version")
    op.execute("DROP FUNCTION bump_data_version()")
