-- Secrets every node of a deployment must share (the token signing key), so
-- that nodes on one database agree on them without copying files around.
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
