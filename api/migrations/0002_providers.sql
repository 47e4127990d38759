-- Providers: the carriers (the original's route-manager). Platform-wide, kept by the
-- admin (customer_id is the admin's). allowed_sources and tech_headers are JSON.
CREATE TABLE providers (
    id              TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL,
    type            TEXT NOT NULL DEFAULT 'sip',
    hostname        TEXT NOT NULL DEFAULT '',
    port            INTEGER NOT NULL DEFAULT 5060,
    transport       TEXT NOT NULL DEFAULT 'udp',
    tech_prefix     TEXT NOT NULL DEFAULT '',
    tech_postfix    TEXT NOT NULL DEFAULT '',
    tech_headers    TEXT NOT NULL DEFAULT '{}',
    allowed_sources TEXT NOT NULL DEFAULT '[]',
    auth_username   TEXT NOT NULL DEFAULT '',
    auth_password   TEXT NOT NULL DEFAULT '',
    name            TEXT NOT NULL DEFAULT '',
    detail          TEXT NOT NULL DEFAULT '',
    tm_create       TEXT NOT NULL,
    tm_update       TEXT,
    tm_delete       TEXT
);
CREATE INDEX providers_page ON providers (customer_id, tm_create);
