-- Chorus schema version 1 for SQLite.
-- Enumerations are TEXT with CHECK constraints; times are INTEGER milliseconds
-- since the epoch; ids are TEXT ("u_…", "r_…", "m_…", "s_…").

CREATE TABLE users (
    id           TEXT PRIMARY KEY,
    -- The store writes it lower-case; NOCASE also makes the unique index
    -- case-insensitive for anything written by hand.
    username     TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);

-- Apart from users so that reading a user never loads a password hash, and so
-- that users of an external identity provider simply have no row here.
CREATE TABLE credentials (
    user_id       TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Every refresh token a session was ever given, as a hash. Used ones are kept:
-- presenting one again is how a stolen token is detected.
CREATE TABLE refresh_tokens (
    hash       TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE rooms (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('public', 'private', 'direct')),
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    -- The seq of the newest message; appends take the next ones from here in
    -- the same transaction as their inserts.
    last_seq   INTEGER NOT NULL DEFAULT 0,
    -- "<lower user id>:<higher user id>" for direct rooms: the unique index
    -- makes two concurrent "open a DM" calls find one room.
    direct_key TEXT UNIQUE,
    CHECK ((kind = 'direct') = (direct_key IS NOT NULL))
);
CREATE INDEX rooms_kind_id ON rooms (kind, id);

CREATE TABLE memberships (
    room_id   TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role      TEXT NOT NULL CHECK (role IN ('owner', 'moderator', 'member')),
    joined_at INTEGER NOT NULL,
    read_seq  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE messages (
    id         TEXT PRIMARY KEY,
    room_id    TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    sender_id  TEXT NOT NULL REFERENCES users (id),
    body       TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    edited_at  INTEGER,
    -- Also the index every history read uses.
    UNIQUE (room_id, seq),
    -- Idempotent sends: a retried client id finds the original.
    UNIQUE (sender_id, client_id)
);
