-- Calls (the original's call-manager Call). Addresses, recording ids and RTP
-- statistics are JSON.
CREATE TABLE calls (
    id              TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL,
    flow_id         TEXT NOT NULL DEFAULT '',
    activeflow_id   TEXT NOT NULL DEFAULT '',
    type            TEXT NOT NULL DEFAULT 'flow',
    source          TEXT NOT NULL DEFAULT '{}',
    destination     TEXT NOT NULL DEFAULT '{}',
    status          TEXT NOT NULL,
    direction       TEXT NOT NULL,
    hangup_by       TEXT NOT NULL DEFAULT '',
    hangup_reason   TEXT NOT NULL DEFAULT '',
    recording_ids   TEXT NOT NULL DEFAULT '[]',
    rtp_stats       TEXT,
    tm_ringing      TEXT,
    tm_progressing  TEXT,
    tm_hangup       TEXT,
    tm_create       TEXT NOT NULL,
    tm_update       TEXT,
    tm_delete       TEXT
);
CREATE INDEX calls_page ON calls (customer_id, tm_create);
CREATE INDEX calls_live ON calls (status);
