"""The SQLite append, the hot path: a batch is one multi-row INSERT in the writer thread.

Runs as one write of the store's group commit (`group_commit.py`), so it
holds the database's write lock: seqs are read and moved without row locks.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from typing import Final

from .._errors import NotFound
from .._model import Appended, Message, NewMessage, new_ids
from .._rows import MESSAGE, message
from .._sql import run_sync
from ..roles.fanout import fan_out_batch, needs_fan_out
from .dialect import execute

# SQLite builds before 3.32 allow at most 999 parameters per statement.
_KEYS_PER_LOOKUP: Final = 400


def append_messages(
    db: sqlite3.Connection, room_id: str, batch: Sequence[NewMessage]
) -> list[Appended]:
    """`EventLog.append_messages` in the writer's transaction (blocking)."""
    stored = _find_sent(db, [(new.sender_id, new.client_id) for new in batch])
    # Which are duplicates first (a client id may also repeat within the batch): the rest
    # take seqs, reserved in one statement.
    seen = set(stored)
    duplicates: list[bool] = []
    for new in batch:
        key = (new.sender_id, new.client_id)
        duplicates.append(key in seen)
        seen.add(key)
    fresh_count = duplicates.count(False)
    seq = _reserve_seqs(db, room_id, fresh_count)
    results: list[Appended] = []
    fresh: list[Message] = []
    rich = False  # some message does more than insert a row (replies, mentions)
    ids = iter(new_ids("m", fresh_count))
    for new, duplicate in zip(batch, duplicates, strict=True):
        if duplicate:  # of a stored message, or of one earlier in this batch
            original = stored[new.sender_id, new.client_id]
            results.append(Appended(message=original, duplicate=True))
            rich = rich or bool(new.attachments)  # the original's attachments are loaded then
            continue
        seq += 1
        fresh_message = Message(
            id=next(ids),
            room_id=room_id,
            seq=seq,
            sender_id=new.sender_id,
            body=new.body,
            client_id=new.client_id,
            created_at=new.created_at,
            edited_at=None,
            thread_id=new.thread_id,
        )
        stored[new.sender_id, new.client_id] = fresh_message
        rich = rich or needs_fan_out(new)
        results.append(Appended(message=fresh_message, duplicate=False))
        fresh.append(fresh_message)
    if fresh:
        try:
            db.executemany(
                "INSERT INTO messages"
                " (id, room_id, seq, sender_id, body, client_id, created_at, thread_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        m.id,
                        m.room_id,
                        m.seq,
                        m.sender_id,
                        m.body,
                        m.client_id,
                        m.created_at,
                        m.thread_id,
                    )
                    for m in fresh
                ],
            )
        except sqlite3.IntegrityError as exc:
            # Duplicates were filtered out above, so only a sender can be missing.
            raise NotFound(f"a sender of the batch for room {room_id!r} does not exist") from exc
    if rich:
        results = run_sync(fan_out_batch(room_id, batch, results), functools.partial(execute, db))
    return results


def _reserve_seqs(db: sqlite3.Connection, room_id: str, count: int) -> int:
    """Move the room's `last_seq` on by `count`; the seq before the first reserved one.

    One statement (`UPDATE … RETURNING`) instead of a read and a write: the
    writer holds the database's write lock, so nobody moves it in between.
    Raises `NotFound` if there is no such room.
    """
    if count:
        query = "UPDATE rooms SET last_seq = last_seq + ? WHERE id = ? RETURNING last_seq"
        row = db.execute(query, (count, room_id)).fetchone()
    else:
        row = db.execute("SELECT last_seq FROM rooms WHERE id = ?", (room_id,)).fetchone()
    if row is None:
        raise NotFound(f"no room {room_id!r}")
    last: int = row[0]
    return last - count


def _find_sent(
    db: sqlite3.Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], Message]:
    """The stored messages among these (sender_id, client_id) pairs, by pair."""
    unique = list(dict.fromkeys(keys))
    found: dict[tuple[str, str], Message] = {}
    for start in range(0, len(unique), _KEYS_PER_LOOKUP):
        chunk = unique[start : start + _KEYS_PER_LOOKUP]
        # A join from a VALUES list probes the (sender_id, client_id) index
        # once per pair; `(a, b) IN (VALUES …)` would scan the whole table.
        values = ", ".join(["(?, ?)"] * len(chunk))
        rows = db.execute(
            f"WITH k (sender_id, client_id) AS (VALUES {values})"
            f" SELECT {MESSAGE} FROM k CROSS JOIN messages msg"
            " ON msg.sender_id = k.sender_id AND msg.client_id = k.client_id",
            [part for pair in chunk for part in pair],
        )
        for row in rows:
            original = message(row)
            found[original.sender_id, original.client_id] = original
    return found
