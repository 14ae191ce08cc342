-- Secrets every node of a deployment must share (the token signing key), so
-- that nodes on one database agree on them without copying files around.
CREATE TABLE secrets (
    name       TEXT COLLATE "C" PRIMARY KEY,
    value      BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
