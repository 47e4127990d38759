-- The first schema. Portable SQL: it runs unchanged on SQLite and Postgres.
-- Ids are UUID text; timestamps are VoIPBIN timestamp text
-- ("2006-01-02T15:04:05.000000Z"), which sorts correctly as text.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE customers (
    id             TEXT PRIMARY KEY,
    username       TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    name           TEXT NOT NULL DEFAULT '',
    detail         TEXT NOT NULL DEFAULT '',
    email          TEXT NOT NULL DEFAULT '',
    phone_number   TEXT NOT NULL DEFAULT '',
    address        TEXT NOT NULL DEFAULT '',
    webhook_method TEXT NOT NULL DEFAULT '',
    webhook_uri    TEXT NOT NULL DEFAULT '',
    webhook_secret TEXT NOT NULL DEFAULT '',
    is_admin       BIGINT NOT NULL DEFAULT 0,
    status         TEXT NOT NULL DEFAULT 'active',
    tm_create      TEXT NOT NULL,
    tm_update      TEXT,
    tm_delete      TEXT
);
CREATE UNIQUE INDEX customers_username ON customers (username) WHERE tm_delete IS NULL;
CREATE INDEX customers_page ON customers (tm_create);

CREATE TABLE accesskeys (
    id           TEXT PRIMARY KEY,
    customer_id  TEXT NOT NULL,
    name         TEXT NOT NULL DEFAULT '',
    detail       TEXT NOT NULL DEFAULT '',
    token_hash   TEXT NOT NULL,
    token_prefix TEXT NOT NULL,
    tm_expire    TEXT,
    tm_create    TEXT NOT NULL,
    tm_update    TEXT,
    tm_delete    TEXT
);
CREATE UNIQUE INDEX accesskeys_token ON accesskeys (token_hash);
CREATE INDEX accesskeys_page ON accesskeys (customer_id, tm_create);

CREATE TABLE flows (
    id                  TEXT PRIMARY KEY,
    customer_id         TEXT NOT NULL,
    type                TEXT NOT NULL DEFAULT 'flow',
    name                TEXT NOT NULL DEFAULT '',
    detail              TEXT NOT NULL DEFAULT '',
    actions             TEXT NOT NULL,
    on_complete_flow_id TEXT,
    tm_create           TEXT NOT NULL,
    tm_update           TEXT,
    tm_delete           TEXT
);
CREATE INDEX flows_page ON flows (customer_id, tm_create);

CREATE TABLE numbers (
    id              TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL,
    number          TEXT NOT NULL,
    type            TEXT NOT NULL DEFAULT 'normal',
    call_flow_id    TEXT,
    message_flow_id TEXT,
    name            TEXT NOT NULL DEFAULT '',
    detail          TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL DEFAULT 'active',
    tm_create       TEXT NOT NULL,
    tm_update       TEXT,
    tm_delete       TEXT
);
-- Numbers are unique across the platform: the number decides the customer and flow.
CREATE UNIQUE INDEX numbers_number ON numbers (number) WHERE tm_delete IS NULL;
CREATE INDEX numbers_page ON numbers (customer_id, tm_create);

-- The webhook outbox: a row per delivery, written in the same transaction as the
-- change that caused the event, so a restart resumes every pending delivery.
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    uri             TEXT NOT NULL,
    method          TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    tm_create       TEXT NOT NULL,
    tm_update       TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_customer ON webhook_deliveries (customer_id, tm_create);
