-- Activeflows (the original's flow-manager Activeflow): a flow running for a call.
CREATE TABLE activeflows (
    id                      TEXT PRIMARY KEY,
    customer_id             TEXT NOT NULL,
    flow_id                 TEXT NOT NULL,
    status                  TEXT NOT NULL,
    reference_type          TEXT NOT NULL,
    reference_id            TEXT NOT NULL,
    reference_activeflow_id TEXT NOT NULL DEFAULT '',
    on_complete_flow_id     TEXT NOT NULL DEFAULT '',
    current_action          TEXT NOT NULL DEFAULT '{}',
    executed_actions        TEXT NOT NULL DEFAULT '[]',
    tm_create               TEXT NOT NULL,
    tm_update               TEXT,
    tm_delete               TEXT
);
CREATE INDEX activeflows_page ON activeflows (customer_id, tm_create);
