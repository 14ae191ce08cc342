-- Chorus schema version 9 for SQLite: the audit log (issue #14).

-- Security-relevant events, append-only: rows are inserted and, once older
-- than the retention, deleted; never updated. `id` only grows (AUTOINCREMENT:
-- never reused after deletes), so it orders events and pages listings.
-- `actor_id` is not a foreign key: an event outlives its actor's account.
-- `details` is a small JSON object that never holds a secret.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    action   TEXT NOT NULL,
    actor_id TEXT,
    target   TEXT NOT NULL DEFAULT '',
    address  TEXT NOT NULL DEFAULT '',
    details  TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor_id, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
