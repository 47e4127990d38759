-- Recordings of calls (the original's call-manager Recording); the file lives under
-- the data dir, its path kept for the download.
CREATE TABLE recordings (
    id              TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL,
    reference_type  TEXT NOT NULL DEFAULT 'call',
    reference_id    TEXT NOT NULL,
    activeflow_id   TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    format          TEXT NOT NULL DEFAULT 'wav',
    filepath        TEXT NOT NULL,
    tm_start        TEXT,
    tm_end          TEXT,
    tm_create       TEXT NOT NULL,
    tm_update       TEXT,
    tm_delete       TEXT
);
CREATE INDEX recordings_page ON recordings (customer_id, tm_create);
