-- Chorus schema version 8 for SQLite: server roles, room moderation and blocks
-- (issue #14). What a role may do is chorus.permissions' table; these are only
-- the facts it decides on.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'member'
    CHECK (role IN ('admin', 'moderator', 'member'));
CREATE INDEX users_role ON users (role) WHERE role <> 'member';
-- A deactivated account (by an admin) gets no new session; NULL: active.
ALTER TABLE users ADD COLUMN deactivated_at INTEGER;
-- The user's avatar: one of their image files (any signed-in user may see it).
ALTER TABLE users ADD COLUMN avatar_file_id TEXT REFERENCES files (id) ON DELETE SET NULL;
CREATE INDEX users_avatar ON users (avatar_file_id) WHERE avatar_file_id IS NOT NULL;
-- Muted members read but do not post; NULL: not muted; 0: until unmuted; else
-- the time (ms) the mute ends.
ALTER TABLE memberships ADD COLUMN muted_until INTEGER;
-- A locked room takes posts from its moderators (room or server) only.
ALTER TABLE rooms ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;
-- A ban outlives the membership it ended: a banned user is neither let back in
-- by joining nor by an invitation until unbanned.
CREATE TABLE room_bans (
    room_id   TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    banned_by TEXT NOT NULL,
    reason    TEXT NOT NULL DEFAULT '',
    banned_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
-- blocker_id receives no direct messages from blocked_id.
CREATE TABLE user_blocks (
    blocker_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
) WITHOUT ROWID;
CREATE INDEX user_blocks_blocked ON user_blocks (blocked_id);
