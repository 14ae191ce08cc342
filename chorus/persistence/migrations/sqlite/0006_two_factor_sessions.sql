-- Chorus schema version 6 for SQLite: TOTP two-factor authentication and
-- session management (issue #14).

-- A session now ends idly (no refresh for refresh_token_ttl: `expires_at`,
-- pushed forward by each refresh) and absolutely (`max_expires_at`, fixed at
-- login: session_max_age). Sessions opened before keep their old deadline as
-- both. `last_seen_at` is the last login or refresh; `user_agent` and
-- `address` (the client address, behind trusted proxies the forwarded one)
-- are what the session list shows its owner.
ALTER TABLE sessions ADD COLUMN max_expires_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN last_seen_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN address TEXT NOT NULL DEFAULT '';
UPDATE sessions SET max_expires_at = expires_at, last_seen_at = created_at;

-- One TOTP secret per user, encrypted (AES-256-GCM, see docs/decisions.md).
-- `enabled_at` is NULL while the enrolment awaits its first code; `last_step`
-- is the newest time step accepted, so a code is never accepted twice.
CREATE TABLE totp (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret     BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    enabled_at INTEGER,
    last_step  INTEGER NOT NULL DEFAULT 0
);

-- One-time recovery codes, as keyed hashes; a used one keeps its row.
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash    TEXT NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (user_id, hash)
);
