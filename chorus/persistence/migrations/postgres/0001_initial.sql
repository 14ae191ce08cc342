-- Chorus schema version 1 for PostgreSQL.
-- Same tables and rules as the SQLite schema. Times are BIGINT milliseconds
-- since the epoch; ids are TEXT ("u_…", "r_…", "m_…", "s_…") with the "C"
-- collation, so they sort by byte like in Python and SQLite whatever the
-- database's locale (public_rooms pages in id order).

CREATE TABLE users (
    id           TEXT COLLATE "C" PRIMARY KEY,
    -- The store writes it lower-case; the unique index on lower() also makes
    -- it case-insensitive for anything written by hand.
    username     TEXT NOT NULL,
    display_name TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_username ON users (lower(username));

-- Apart from users so that reading a user never loads a password hash, and so
-- that users of an external identity provider simply have no row here.
CREATE TABLE credentials (
    user_id       TEXT COLLATE "C" PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    id         TEXT COLLATE "C" PRIMARY KEY,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Every refresh token a session was ever given, as a hash. Used ones are kept:
-- presenting one again is how a stolen token is detected.
CREATE TABLE refresh_tokens (
    hash       TEXT COLLATE "C" PRIMARY KEY,
    session_id TEXT COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE rooms (
    id         TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('public', 'private', 'direct')),
    created_by TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    -- The seq of the newest message. An append locks this row first, so
    -- appends to one room from any number of nodes take their seqs one after
    -- the other, in the same transaction as their inserts.
    last_seq   BIGINT NOT NULL DEFAULT 0,
    -- "<lower user id>:<higher user id>" for direct rooms: the unique index
    -- makes two concurrent "open a DM" calls find one room.
    direct_key TEXT COLLATE "C" UNIQUE,
    CHECK ((kind = 'direct') = (direct_key IS NOT NULL))
);
CREATE INDEX rooms_kind_id ON rooms (kind, id);

CREATE TABLE memberships (
    room_id   TEXT COLLATE "C" NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role      TEXT NOT NULL CHECK (role IN ('owner', 'moderator', 'member')),
    joined_at BIGINT NOT NULL,
    read_seq  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE messages (
    id         TEXT COLLATE "C" PRIMARY KEY,
    room_id    TEXT COLLATE "C" NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    sender_id  TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    body       TEXT NOT NULL,
    client_id  TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    edited_at  BIGINT,
    -- Also the index every history read uses.
    CONSTRAINT messages_room_seq UNIQUE (room_id, seq),
    -- Idempotent sends: a retried client id finds the original.
    CONSTRAINT messages_sender_client UNIQUE (sender_id, client_id)
);

-- Appends a batch to a room in one statement (one round trip, one implicit
-- transaction); `PostgresStore.append_messages` calls it. Returns one row per
-- input, in input order: the stored message and whether it is a duplicate
-- (the sender already used the client id, earlier or earlier in this batch).
CREATE FUNCTION chorus_append_messages(
    p_room       TEXT,
    p_ids        TEXT[],
    p_senders    TEXT[],
    p_bodies     TEXT[],
    p_client_ids TEXT[],
    p_created    BIGINT[]
) RETURNS TABLE (
    ord        BIGINT,
    id         TEXT,
    room_id    TEXT,
    seq        BIGINT,
    sender_id  TEXT,
    body       TEXT,
    client_id  TEXT,
    created_at BIGINT,
    edited_at  BIGINT,
    duplicate  BOOLEAN
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_last BIGINT;
BEGIN
    -- Lock the room's row first: appends to one room, from any node, run one
    -- after the other. The next statement takes a fresh snapshot (READ
    -- COMMITTED), so it sees every message committed before the lock was ours.
    SELECT r.last_seq INTO v_last FROM rooms r WHERE r.id = p_room FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no room %', p_room USING ERRCODE = 'no_data_found';
    END IF;
    RETURN QUERY
    WITH batch AS (
        SELECT b.ord, b.id, b.sender_id, b.body, b.client_id, b.created_at
        FROM unnest(p_ids, p_senders, p_bodies, p_client_ids, p_created)
            WITH ORDINALITY AS b (id, sender_id, body, client_id, created_at, ord)
    ),
    keys AS (
        SELECT DISTINCT b.sender_id, b.client_id FROM batch b
    ),
    stored AS (
        SELECT m.id, m.room_id, m.seq, m.sender_id, m.body, m.client_id, m.created_at,
               m.edited_at
        FROM keys k
        JOIN messages m ON m.sender_id = k.sender_id AND m.client_id = k.client_id
    ),
    -- The first use in the batch of each client id not stored yet.
    fresh AS (
        SELECT DISTINCT ON (b.sender_id, b.client_id) b.*
        FROM batch b
        WHERE NOT EXISTS (
            SELECT 1 FROM stored s WHERE s.sender_id = b.sender_id AND s.client_id = b.client_id
        )
        ORDER BY b.sender_id, b.client_id, b.ord
    ),
    numbered AS (
        SELECT f.*, v_last + row_number() OVER (ORDER BY f.ord) AS seq FROM fresh f
    ),
    inserted AS (
        INSERT INTO messages (id, room_id, seq, sender_id, body, client_id, created_at)
        SELECT n.id, p_room, n.seq, n.sender_id, n.body, n.client_id, n.created_at
        FROM numbered n
        RETURNING messages.id, messages.room_id, messages.seq, messages.sender_id,
                  messages.body, messages.client_id, messages.created_at, messages.edited_at
    ),
    -- Runs although nothing reads it (PostgreSQL runs every data-modifying WITH).
    bumped AS (
        UPDATE rooms SET last_seq = v_last + (SELECT count(*) FROM numbered)
        WHERE rooms.id = p_room AND EXISTS (SELECT 1 FROM numbered)
    ),
    originals AS (
        SELECT n.ord AS first_ord, i.*
        FROM inserted i JOIN numbered n ON n.id = i.id
        UNION ALL
        SELECT NULL::BIGINT, s.* FROM stored s
    )
    SELECT b.ord, o.id, o.room_id, o.seq, o.sender_id, o.body, o.client_id, o.created_at,
           o.edited_at, o.first_ord IS DISTINCT FROM b.ord
    FROM batch b
    JOIN originals o ON o.sender_id = b.sender_id AND o.client_id = b.client_id
    ORDER BY b.ord;
END
$$;
