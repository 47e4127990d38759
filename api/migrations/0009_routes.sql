-- Routes: which providers carry a customer's outbound calls (the original's
-- route-manager `Route`), tried by priority (lowest first) among those whose
-- target prefixes the dialled number ("all" matches every number). Kept by the
-- admin (customer_id is the admin's, as for providers); route_customer_id is the
-- customer the route is for, '' for the defaults every customer falls back to.
CREATE TABLE routes (
    id                TEXT PRIMARY KEY,
    customer_id       TEXT NOT NULL,
    route_customer_id TEXT NOT NULL DEFAULT '',
    provider_id       TEXT NOT NULL,
    priority          INTEGER NOT NULL DEFAULT 1,
    target            TEXT NOT NULL DEFAULT 'all',
    name              TEXT NOT NULL DEFAULT '',
    detail            TEXT NOT NULL DEFAULT '',
    tm_create         TEXT NOT NULL,
    tm_update         TEXT,
    tm_delete         TEXT
);
CREATE INDEX routes_page ON routes (customer_id, tm_create);
