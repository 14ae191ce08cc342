-- Chorus schema version 3 for SQLite: rich messaging (edits, deletes,
-- reactions, threads, mentions, notifications, group rooms, search).

-- The messages table becomes each room's event log: every row takes the
-- room's next seq. Rows of kind 'message' always show the message's current
-- state (edited body, tombstone); the other kinds act on `target_id`.
ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'message'
    CHECK (kind IN ('message', 'edit', 'delete', 'reaction_add', 'reaction_remove'));
ALTER TABLE messages ADD COLUMN target_id TEXT;
-- For kind 'message': the thread root's id when the message is a thread reply.
ALTER TABLE messages ADD COLUMN thread_id TEXT;
ALTER TABLE messages ADD COLUMN deleted_at INTEGER;
ALTER TABLE messages ADD COLUMN deleted_by TEXT;
ALTER TABLE messages ADD COLUMN reply_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN last_reply_at INTEGER;
-- Partial: plain messages (NULL) cost these indexes nothing on append.
CREATE INDEX messages_thread ON messages (thread_id, seq) WHERE thread_id IS NOT NULL;
CREATE INDEX messages_target ON messages (target_id) WHERE target_id IS NOT NULL;

ALTER TABLE rooms ADD COLUMN read_receipts INTEGER NOT NULL DEFAULT 1
    CHECK (read_receipts IN (0, 1));

ALTER TABLE memberships ADD COLUMN notify TEXT NOT NULL DEFAULT 'all'
    CHECK (notify IN ('all', 'mentions', 'none'));

-- The bodies a message had before each edit; erased when it is deleted.
CREATE TABLE message_edits (
    message_id  TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    -- The seq of the edit event that replaced `body`.
    seq         INTEGER NOT NULL,
    body        TEXT NOT NULL,
    written_at  INTEGER NOT NULL,
    replaced_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, seq)
) WITHOUT ROWID;

CREATE TABLE reactions (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    emoji      TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
) WITHOUT ROWID;

CREATE TABLE thread_follows (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    root_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, root_id)
) WITHOUT ROWID;
CREATE INDEX thread_follows_root ON thread_follows (root_id);

-- One row per member a message mentions (by name or @room): unread mention
-- counts are a range scan of the primary key from the member's read_seq.
CREATE TABLE mentions (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id, seq)
) WITHOUT ROWID;
CREATE INDEX mentions_room_seq ON mentions (room_id, seq);

CREATE TABLE notifications (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id    TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('mention', 'room_mention', 'reply')),
    created_at INTEGER NOT NULL,
    read_at    INTEGER
) WITHOUT ROWID;
CREATE INDEX notifications_user ON notifications (user_id, id);
CREATE INDEX notifications_message ON notifications (message_id);

-- Full-text search over the current bodies of kind 'message' rows. External
-- content: the text lives only in `messages`. Indexed lazily, so that appends
-- (the hot path) never pay for it: every message row with a rowid up to
-- `search_state.indexed_rowid` is in the index with its current body, and
-- `SqliteStore.search` first indexes the rows appended since (one INSERT …
-- SELECT over a rowid range). The triggers keep indexed rows in step.
-- No diacritics folding, to search like PostgreSQL's 'simple' configuration.
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    body,
    content = 'messages',
    content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 0'
);

CREATE TABLE search_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_rowid INTEGER NOT NULL
);
INSERT INTO search_state (id, indexed_rowid) VALUES (1, 0);

-- An edit or a delete's tombstone changes the body of an indexed message.
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages
WHEN old.kind = 'message' AND old.rowid <= (SELECT indexed_rowid FROM search_state) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.rowid, old.body);
    INSERT INTO messages_fts (rowid, body) VALUES (new.rowid, new.body);
END;

-- Rows go only with their room.
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.kind = 'message' AND old.rowid <= (SELECT indexed_rowid FROM search_state) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.rowid, old.body);
END;

-- Without AUTOINCREMENT SQLite reuses the rowids of the newest rows once they
-- are deleted: lower the mark below them, or a new row could pass for indexed.
CREATE TRIGGER messages_search_mark AFTER DELETE ON messages BEGIN
    UPDATE search_state
    SET indexed_rowid = min(indexed_rowid, coalesce((SELECT max(rowid) FROM messages), 0));
END;
