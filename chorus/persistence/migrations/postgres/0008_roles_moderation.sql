-- Chorus schema version 8 for PostgreSQL: server roles, room moderation and
-- blocks (issue #14). What a role may do is chorus.permissions' table; these
-- are only the facts it decides on.
ALTER TABLE users ADD COLUMN role TEXT COLLATE "C" NOT NULL DEFAULT 'member'
    CHECK (role IN ('admin', 'moderator', 'member'));
CREATE INDEX users_role ON users (role) WHERE role <> 'member';
-- A deactivated account (by an admin) gets no new session; NULL: active.
ALTER TABLE users ADD COLUMN deactivated_at BIGINT;
-- The user's avatar: one of their image files (any signed-in user may see it).
ALTER TABLE users ADD COLUMN avatar_file_id TEXT COLLATE "C" REFERENCES files (id) ON DELETE SET NULL;
CREATE INDEX users_avatar ON users (avatar_file_id) WHERE avatar_file_id IS NOT NULL;
-- Muted members read but do not post; NULL: not muted; 0: until unmuted; else
-- the time (ms) the mute ends.
ALTER TABLE memberships ADD COLUMN muted_until BIGINT;
-- A locked room takes posts from its moderators (room or server) only.
ALTER TABLE rooms ADD COLUMN locked BOOLEAN NOT NULL DEFAULT FALSE;
-- A ban outlives the membership it ended: a banned user is neither let back in
-- by joining nor by an invitation until unbanned.
CREATE TABLE room_bans (
    room_id   TEXT COLLATE "C" NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    banned_by TEXT COLLATE "C" NOT NULL,
    reason    TEXT NOT NULL DEFAULT '',
    banned_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
-- blocker_id receives no direct messages from blocked_id.
CREATE TABLE user_blocks (
    blocker_id TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
);
CREATE INDEX user_blocks_blocked ON user_blocks (blocked_id);
