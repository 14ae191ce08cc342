-- chorus_append_messages, version 3: also returns the events other nodes stored since the caller's seq.
--
-- With several nodes writing to a room, nearly every batch a node appends
-- follows events other nodes stored whose publications are still on the bus
-- (0.85-0.97 a batch in `cluster-3`), and the node read them back with a
-- statement of its own after the append (`roles/events.earlier`): a third
-- statement per batch, beside the standings and the append. Under the room's
-- lock those events are exactly the seqs after `p_known` up to the room's
-- last seq, so this version returns them from the same call, after the
-- batch's rows: `ord` and `duplicate` NULL, `has_files` whether one of its
-- files is attached (the caller then reads the attachments). At most 500 of
-- them (`EARLIER_LIMIT`), the oldest; none when `p_known` is NULL or no
-- newer. Its statements keep the generic plan (as migration 14 made of
-- version 2). Version 2's seven-argument overload is unchanged: nodes of
-- schema 14 that still run call it until they stop (they refuse this schema
-- when they start).
CREATE FUNCTION chorus_append_messages(
    p_room       TEXT,
    p_ids        TEXT[],
    p_senders    TEXT[],
    p_bodies     TEXT[],
    p_client_ids TEXT[],
    p_created    BIGINT[],
    p_threads    TEXT[],
    p_known      BIGINT
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
    duplicate     BOOLEAN,
    has_files     BOOLEAN
) LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
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
           o.reply_count, o.last_reply_at, o.first_ord IS DISTINCT FROM b.ord, NULL::BOOLEAN
    FROM batch b
    JOIN originals o ON o.sender_id = b.sender_id AND o.client_id = b.client_id
    ORDER BY b.ord;
    -- Still under the lock: every seq up to v_last is committed, and none comes in between.
    -- (With every message a duplicate nothing new follows them; the caller drops them then.)
    IF p_known < v_last THEN
        RETURN QUERY
        SELECT NULL::BIGINT, m.id, m.room_id, m.seq, m.sender_id, m.body, m.client_id,
               m.created_at, m.edited_at, m.kind, m.target_id, m.thread_id, m.deleted_at,
               m.deleted_by, m.reply_count, m.last_reply_at, NULL::BOOLEAN,
               EXISTS (SELECT 1 FROM files f WHERE f.message_id = m.id AND f.deleted_at IS NULL)
        FROM messages m
        WHERE m.room_id = p_room AND m.seq > p_known AND m.seq <= v_last
        ORDER BY m.seq
        LIMIT least(500, v_last - p_known);
    END IF;
END
$$;
