-- Groupcalls (the original's call-manager `Groupcall`): destinations rung
-- together (ring_all) or one after another (linear) as calls of their own; the
-- groupcall follows them: progressing once one answers, hangup once all ended.
CREATE TABLE groupcalls (
    id              TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL,
    owner_type      TEXT NOT NULL DEFAULT '',
    owner_id        TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    flow_id         TEXT NOT NULL DEFAULT '',
    source          TEXT NOT NULL DEFAULT '{}',
    destinations    TEXT NOT NULL DEFAULT '[]',
    master_call_id  TEXT NOT NULL DEFAULT '',
    ring_method     TEXT NOT NULL,
    answer_method   TEXT NOT NULL,
    answer_call_id  TEXT NOT NULL DEFAULT '',
    call_ids        TEXT NOT NULL DEFAULT '[]',
    call_count      INTEGER NOT NULL DEFAULT 0,
    dial_index      INTEGER NOT NULL DEFAULT 0,
    tm_create       TEXT NOT NULL,
    tm_update       TEXT,
    tm_delete       TEXT
);
CREATE INDEX groupcalls_page ON groupcalls (customer_id, tm_create);
