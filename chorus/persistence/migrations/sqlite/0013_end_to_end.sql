-- Chorus schema version 13 for SQLite: end-to-end encryption (issue #18,
-- docs/e2e.md). The server keeps public keys and opaque ciphertext only.

-- An encrypted direct room is a room of its own (its direct_key starts with
-- "e2e:"), so the flag is set once at creation and never changes.
ALTER TABLE rooms ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;

-- A device lives as long as the session that registered it: every read joins
-- the session and skips devices whose session is revoked or expired.
CREATE TABLE devices (
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id    TEXT NOT NULL,
    session_id   TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    algorithms   TEXT NOT NULL,  -- a JSON array of strings
    curve25519   TEXT NOT NULL,
    ed25519      TEXT NOT NULL,
    signature    TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id)
) WITHOUT ROWID;
-- A session has at most one device.
CREATE UNIQUE INDEX devices_session ON devices (session_id);

-- One-time keys (fallback = 0) are deleted by the claim that returns them;
-- the fallback key (at most one per device) is returned but kept.
CREATE TABLE one_time_keys (
    user_id   TEXT NOT NULL,
    device_id TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    key       TEXT NOT NULL,
    signature TEXT NOT NULL,
    fallback  INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id, key_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE UNIQUE INDEX one_time_keys_fallback ON one_time_keys (user_id, device_id) WHERE fallback = 1;

-- Opaque Olm envelopes queued per recipient device until acknowledged.
CREATE TABLE to_device_messages (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    sender_id     TEXT NOT NULL,
    sender_device TEXT NOT NULL,
    message_id    TEXT NOT NULL,
    content       TEXT NOT NULL,
    sent_at       INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE,
    -- A retried send (same sender device and message id) is stored once.
    UNIQUE (user_id, device_id, sender_id, sender_device, message_id)
);
CREATE INDEX to_device_queue ON to_device_messages (user_id, device_id, id);
CREATE INDEX to_device_expiry ON to_device_messages (expires_at);

-- A file its uploader declared end-to-end encrypted: opaque bytes, stored as they
-- came (no type check, image processing or scan: they would see only ciphertext),
-- attachable only in encrypted rooms (and the only kind attachable there).
ALTER TABLE files ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;
