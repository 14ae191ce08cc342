-- Chorus schema version 5 for SQLite: uploaded files (issue #13).
-- A file row follows the upload through the pipeline (pending, scanning,
-- then ready or rejected); its bytes live in the file storage (a directory
-- or S3) under keys made from its id, never in the database. room_id and
-- message_id are set once, when a message attaches the file; they are plain
-- references (no foreign key), so deleting rooms or messages never waits on
-- files: housekeeping removes the files of messages that are gone.
CREATE TABLE files (
    id            TEXT PRIMARY KEY,
    owner_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    declared_type TEXT NOT NULL,
    content_type  TEXT,
    size          INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'scanning', 'ready', 'rejected')),
    reason        TEXT,
    scan          TEXT CHECK (scan IN ('clean', 'unscanned')),
    width         INTEGER,
    height        INTEGER,
    variants      TEXT NOT NULL DEFAULT '[]',
    node          TEXT NOT NULL,
    room_id       TEXT,
    message_id    TEXT,
    position      INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    deleted_at    INTEGER,
    CHECK ((room_id IS NULL) = (message_id IS NULL) AND (message_id IS NULL) = (position IS NULL))
);
CREATE INDEX files_owner ON files (owner_id);
CREATE INDEX files_message ON files (message_id) WHERE message_id IS NOT NULL;
-- Housekeeping's two sweeps: never attached, and deleted.
CREATE INDEX files_unattached ON files (created_at) WHERE message_id IS NULL;
CREATE INDEX files_deleted ON files (deleted_at) WHERE deleted_at IS NOT NULL;

-- Every state a file entered, with when and why: the pipeline's audit trail.
CREATE TABLE file_transitions (
    file_id TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    at      INTEGER NOT NULL,
    state   TEXT NOT NULL,
    reason  TEXT
);
CREATE INDEX file_transitions_file ON file_transitions (file_id);
