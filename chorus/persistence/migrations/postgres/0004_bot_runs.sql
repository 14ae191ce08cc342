-- Chorus schema version 4 for PostgreSQL: users and rooms made by `chorus bots`
-- carry the id of the run that made them, so that a load test against a real
-- deployment lists them nowhere (room directory) and `chorus bots --cleanup`
-- finds exactly them. NULL for everything else.
ALTER TABLE users ADD COLUMN bot_run TEXT COLLATE "C";
ALTER TABLE rooms ADD COLUMN bot_run TEXT COLLATE "C";
-- Partial: real users and rooms (NULL) cost these indexes nothing.
CREATE INDEX users_bot_run ON users (bot_run) WHERE bot_run IS NOT NULL;
CREATE INDEX rooms_bot_run ON rooms (bot_run) WHERE bot_run IS NOT NULL;
