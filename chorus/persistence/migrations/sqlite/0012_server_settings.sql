-- Chorus schema version 12 for SQLite: server settings changed at run time
-- (issue #14, item 5). A row overrides the node's configured default of one
-- setting (`chorus.runtime`); resetting a setting deletes its row. `value`
-- is the setting's JSON text; `updated_by` is the admin's user id, or NULL
-- for `chorus admin settings` (nobody signed in).
CREATE TABLE server_settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT
) WITHOUT ROWID;
