-- Chorus schema version 9 for PostgreSQL: the audit log (issue #14). Same
-- table and rules as the SQLite schema.

-- Security-relevant events, append-only: rows are inserted and, once older
-- than the retention, deleted; never updated. `id` only grows, so it orders
-- events and pages listings. `actor_id` is not a foreign key: an event
-- outlives its actor's account. `details` is a small JSON object that never
-- holds a secret.
CREATE TABLE audit_log (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       BIGINT NOT NULL,
    action   TEXT COLLATE "C" NOT NULL,
    actor_id TEXT COLLATE "C",
    target   TEXT COLLATE "C" NOT NULL DEFAULT '',
    address  TEXT NOT NULL DEFAULT '',
    details  TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor_id, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
