-- Chorus schema version 3 for PostgreSQL: rich messaging (edits, deletes,
-- reactions, threads, mentions, notifications, group rooms, search).
-- Same tables and rules as the SQLite schema.

-- The messages table becomes each room's event log: every row takes the
-- room's next seq. Rows of kind 'message' always show the message's current
-- state (edited body, tombstone); the other kinds act on `target_id`.
ALTER TABLE messages
    ADD COLUMN kind TEXT NOT NULL DEFAULT 'message'
        CHECK (kind IN ('message', 'edit', 'delete', 'reaction_add', 'reaction_remove')),
    ADD COLUMN target_id TEXT COLLATE "C",
    -- For kind 'message': the thread root's id when the message is a thread reply.
    ADD COLUMN thread_id TEXT COLLATE "C",
    ADD COLUMN deleted_at BIGINT,
    ADD COLUMN deleted_by TEXT COLLATE "C",
    ADD COLUMN reply_count INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN last_reply_at BIGINT;
-- Partial: plain messages (NULL) cost these indexes nothing on append.
CREATE INDEX messages_thread ON messages (thread_id, seq) WHERE thread_id IS NOT NULL;
CREATE INDEX messages_target ON messages (target_id) WHERE target_id IS NOT NULL;
-- Full-text search over the current bodies of kind 'message' rows; queries
-- must repeat the expression and the predicate to use it. GIN's pending list
-- (fastupdate) keeps the per-append cost low.
CREATE INDEX messages_search ON messages
    USING gin (to_tsvector('simple'::regconfig, body)) WHERE kind = 'message';

ALTER TABLE rooms ADD COLUMN read_receipts BOOLEAN NOT NULL DEFAULT TRUE;

ALTER TABLE memberships ADD COLUMN notify TEXT NOT NULL DEFAULT 'all'
    CHECK (notify IN ('all', 'mentions', 'none'));

-- The bodies a message had before each edit; erased when it is deleted.
CREATE TABLE message_edits (
    message_id  TEXT COLLATE "C" NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    -- The seq of the edit event that replaced `body`.
    seq         BIGINT NOT NULL,
    body        TEXT NOT NULL,
    written_at  BIGINT NOT NULL,
    replaced_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, seq)
);

CREATE TABLE reactions (
    message_id TEXT COLLATE "C" NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    emoji      TEXT NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
);

CREATE TABLE thread_follows (
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    root_id TEXT COLLATE "C" NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, root_id)
);
CREATE INDEX thread_follows_root ON thread_follows (root_id);

-- One row per member a message mentions (by name or @room): unread mention
-- counts are a range scan of the primary key from the member's read_seq.
CREATE TABLE mentions (
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id TEXT COLLATE "C" NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq     BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, seq)
);
CREATE INDEX mentions_room_seq ON mentions (room_id, seq);

CREATE TABLE notifications (
    id         TEXT COLLATE "C" PRIMARY KEY,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id    TEXT COLLATE "C" NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    message_id TEXT COLLATE "C" NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('mention', 'room_mention', 'reply')),
    created_at BIGINT NOT NULL,
    read_at    BIGINT
);
CREATE INDEX notifications_user ON notifications (user_id, id);
CREATE INDEX notifications_message ON notifications (message_id);

-- Version 1's six-argument chorus_append_messages stays (nodes of the
-- previous version still call it during a rolling upgrade); this overload
-- also takes each message's thread root and returns every column of the row.
CREATE FUNCTION chorus_append_messages(
    p_room       TEXT,
    p_ids        TEXT[],
    p_senders    TEXT[],
    p_bodies     TEXT[],
    p_client_ids TEXT[],
    p_created    BIGINT[],
    p_threads    TEXT[]
) RETURNS TABLE (
    ord           BIGINT,
    id            TEXT,
    room_id       TEXT,
    seq           BIGINT,
    sender_id     TEXT,
    body          TEXT,
    client_id     TEXT,
    created_at    BIGINT,
    edited_at     BIGINT,
    kind          TEXT,
    target_id     TEXT,
    thread_id     TEXT,
    deleted_at    BIGINT,
    deleted_by    TEXT,
    reply_count   INTEGER,
    last_reply_at BIGINT,
    duplicate     BOOLEAN
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_last BIGINT;
BEGIN
    -- Lock the room's row first: appends and single events of one room, from
    -- any node, run one after the other. The next statement takes a fresh
    -- snapshot (READ COMMITTED), so it sees every event committed before.
    SELECT r.last_seq INTO v_last FROM rooms r WHERE r.id = p_room FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no room %', p_room USING ERRCODE = 'no_data_found';
    END IF;
    RETURN QUERY
    WITH batch AS (
        SELECT b.ord, b.id, b.sender_id, b.body, b.client_id, b.created_at, b.thread_id
        FROM unnest(p_ids, p_senders, p_bodies, p_client_ids, p_created, p_threads)
            WITH ORDINALITY AS b (id, sender_id, body, client_id, created_at, thread_id, ord)
    ),
    keys AS (
        SELECT DISTINCT b.sender_id, b.client_id FROM batch b
    ),
    stored AS (
        SELECT m.id, m.room_id, m.seq, m.sender_id, m.body, m.client_id, m.created_at,
               m.edited_at, m.kind, m.target_id, m.thread_id, m.deleted_at, m.deleted_by,
               m.reply_count, m.last_reply_at
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
        INSERT INTO messages (id, room_id, seq, sender_id, body, client_id, created_at, thread_id)
        SELECT n.id, p_room, n.seq, n.sender_id, n.body, n.client_id, n.created_at, n.thread_id
        FROM numbered n
        RETURNING messages.id, messages.room_id, messages.seq, messages.sender_id,
                  messages.body, messages.client_id, messages.created_at, messages.edited_at,
                  messages.kind, messages.target_id, messages.thread_id, messages.deleted_at,
                  messages.deleted_by, messages.reply_count, messages.last_reply_at
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
           o.edited_at, o.kind, o.target_id, o.thread_id, o.deleted_at, o.deleted_by,
           o.reply_count, o.last_reply_at, o.first_ord IS DISTINCT FROM b.ord
    FROM batch b
    JOIN originals o ON o.sender_id = b.sender_id AND o.client_id = b.client_id
    ORDER BY b.ord;
END
$$;
