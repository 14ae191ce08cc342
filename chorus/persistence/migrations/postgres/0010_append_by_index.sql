-- The duplicate lookup of chorus_append_messages, by index whatever the plan cache says.
--
-- PL/pgSQL caches a generic plan per connection after a few calls; planned
-- while `messages` was small, the join of the batch's (sender_id, client_id)
-- keys against `messages` became a hash join over a sequential scan, kept for
-- the connection's life: every append then read the whole table (10.7 ms an
-- append at 20,000 rows, growing with the table; docs/benchmarks.md). Looking
-- each key up with LATERAL ... LIMIT 1 leaves the planner only the unique
-- index `messages_sender_client` (1.1 ms, no sequential scan). Same
-- signature and results as in 0003; version 1's six-argument overload is left
-- as it was (only nodes older than 0003 call it).
CREATE OR REPLACE FUNCTION chorus_append_messages(
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
        CROSS JOIN LATERAL (
            SELECT * FROM messages x
            WHERE x.sender_id = k.sender_id AND x.client_id = k.client_id
            LIMIT 1
        ) m
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
