-- Nothing changes in SQLite: this version replaces PostgreSQL's append
-- function only (see postgres/0010_append_by_index.sql). Both dialects keep
-- the same version numbers.
SELECT 1;
