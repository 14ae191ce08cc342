-- Chorus schema version 11 for PostgreSQL: pending invitations to private
-- rooms (issue #14). An invitation is a row until accepted (it becomes a
-- membership, in the same transaction), declined or revoked (the row goes):
-- a missing row is what refuses a later accept.
CREATE TABLE room_invites (
    room_id    TEXT COLLATE "C" NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    invited_by TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_invites_user ON room_invites (user_id, created_at);
