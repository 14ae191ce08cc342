"""The SQLite append, the hot path: a batch is one multi-row INSERT in the writer thread.

Runs as one write of the store's group commit (`group_commit.py`), so it
holds the database's write lock: seqs are read and moved without row locks.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Final

from .._errors import NotFound
from .._model import Appended, Message, NewMessage, new_ids
from .._rows import MESSAGE, message
from .._sql import run_sync
from ..roles.fanout import fan_out_batch, needs_fan_out
from ..roles.moderation import STANDING_AND_LAST_SEQ, Standing, standing_from_row
from .dialect import execute, translate

# SQLite builds before 3.32 allow at most 999 parameters per statement.
_KEYS_PER_LOOKUP: Final = 400
_ROWS_PER_INSERT: Final = 100  # 8 parameters each
_STANDING_AND_LAST_SEQ: Final = translate(STANDING_AND_LAST_SEQ)


def standings_and_last_seq(
    db: sqlite3.Connection, room_id: str, user_ids: Sequence[str], now: int
) -> tuple[dict[str, Standing], int | None]:
    """`find_standings` of `user_ids` in the writer's transaction (blocking), and the
    room's `last_seq` as the same reads saw it (None when none of the users, or no room,
    was found): for `append_messages` next, in the same transaction.

    The statements of a transaction generator, run on the connection directly: every
    batch appended runs them, and the generators, their `Query`s and the dialect's
    lookups cost more Python than the statements' own binding.
    """
    found: dict[str, Standing] = {}
    last_seq = None
    for user_id in user_ids:  # one indexed lookup each, as `find_standings`
        row = db.execute(_STANDING_AND_LAST_SEQ, (room_id, user_id)).fetchone()
        if row is not None:
            found[user_id] = standing_from_row(row, now)
            last_seq = int(row[6])
    return found, last_seq


def append_messages(
    db: sqlite3.Connection,
    room_id: str,
    batch: Sequence[NewMessage],
    *,
    last_seq: int | None = None,
) -> list[Appended]:
    """`EventLog.append_messages` in the writer's transaction (blocking).

    `last_seq` is the room's, if this transaction read it already (it holds
    the write lock: nobody moves it meanwhile). The common case (no client
    id of the batch stored before) is then two statements: the INSERT, which
    skips the client ids stored before, and the UPDATE of `last_seq`; neither
    has a RETURNING, which costs SQLite about as much as a statement. Only
    when the INSERT skipped some are the originals read (and the seqs after a
    skipped one closed up).
    """
    if last_seq is None:
        last_seq = _last_seq(db, room_id)
        if last_seq is None:
            raise NotFound(f"no room {room_id!r}")
    # Repeats within the batch resolve to their first use: only first uses are inserted.
    firsts: dict[tuple[str, str], NewMessage] = {}
    for new in batch:
        firsts.setdefault((new.sender_id, new.client_id), new)
    ids = dict(zip(firsts, new_ids("m", len(firsts)), strict=True))
    inserted = _insert(db, room_id, list(firsts.values()), ids, last_seq)
    stored: dict[tuple[str, str], Message] = {}
    if inserted == len(firsts):  # nearly always: the k-th has last_seq + k
        seqs = {id_: last_seq + k for k, id_ in enumerate(ids.values(), 1)}
    else:  # some were stored before: read them, and close the gaps they left
        found = _find_sent(db, list(firsts))
        stored = {key: found[key] for key, id_ in ids.items() if found[key].id != id_}
        ours = [(ids[key], found[key].seq) for key in firsts if key not in stored]
        seqs = _close_gaps(db, ours, last_seq)
    if inserted:
        db.execute("UPDATE rooms SET last_seq = ? WHERE id = ?", (last_seq + inserted, room_id))
    results: list[Appended] = []
    rich = False  # some message does more than insert a row (replies, mentions)
    for new in batch:
        key = (new.sender_id, new.client_id)
        original = stored.get(key)
        if original is None:
            first = firsts[key]
            id_ = ids[key]
            original = stored[key] = Message(
                id=id_,
                room_id=room_id,
                seq=seqs[id_],
                sender_id=first.sender_id,
                body=first.body,
                client_id=first.client_id,
                created_at=first.created_at,
                edited_at=None,
                thread_id=first.thread_id,
            )
            results.append(Appended(message=original, duplicate=False))
            rich = rich or needs_fan_out(new)
        else:  # of a stored message, or of one earlier in this batch
            results.append(Appended(message=original, duplicate=True))
            rich = rich or bool(new.attachments)  # the original's attachments are loaded then
    if rich:
        results = run_sync(fan_out_batch(room_id, batch, results), functools.partial(execute, db))
    return results


def _insert(
    db: sqlite3.Connection,
    room_id: str,
    firsts: Sequence[NewMessage],
    ids: Mapping[tuple[str, str], str],
    last_seq: int,
) -> int:
    """Insert the messages of `firsts` (no client id twice among them) but those whose
    client ids were stored before; how many it inserted.

    The k-th of `firsts` (from 1) gets seq `last_seq` + k, so a skipped one
    leaves a gap (`_close_gaps`). Raises `NotFound` if a sender does not exist.
    """
    inserted = 0
    for start in range(0, len(firsts), _ROWS_PER_INSERT):
        chunk = firsts[start : start + _ROWS_PER_INSERT]
        params: list[object] = []
        for k, new in enumerate(chunk, last_seq + start + 1):
            key = (new.sender_id, new.client_id)
            params += (ids[key], room_id, k, *key, new.body, new.created_at, new.thread_id)
        try:
            # A client id stored before skips its row (ON CONFLICT); anything else
            # fails the statement. No RETURNING: with it SQLite would also look for
            # rows of four other tables pointing at each new message.
            inserted += db.execute(
                "INSERT INTO messages"
                " (id, room_id, seq, sender_id, client_id, body, created_at, thread_id)"
                f" VALUES {', '.join(['(?, ?, ?, ?, ?, ?, ?, ?)'] * len(chunk))}"
                " ON CONFLICT (sender_id, client_id) DO NOTHING",
                params,
            ).rowcount
        except sqlite3.IntegrityError as exc:
            # The room exists (its last_seq was read in this transaction).
            raise NotFound(f"a sender of the batch for room {room_id!r} does not exist") from exc
    return inserted


def _close_gaps(
    db: sqlite3.Connection, ours: Sequence[tuple[str, int]], last_seq: int
) -> dict[str, int]:
    """Renumber the rows `_insert` inserted, (id, seq) in `ours` in its order, to
    `last_seq` + 1, + 2…; their seqs by id.

    Ascending, so each row moves down to a seq that is free: one a skipped
    row left free, or one a row before it has left.
    """
    seqs: dict[str, int] = {}
    for seq, (id_, inserted_as) in enumerate(ours, last_seq + 1):
        if inserted_as != seq:
            db.execute("UPDATE messages SET seq = ? WHERE id = ?", (seq, id_))
        seqs[id_] = seq
    return seqs


def _last_seq(db: sqlite3.Connection, room_id: str) -> int | None:
    """The room's `last_seq`; None if there is no such room."""
    row = db.execute("SELECT last_seq FROM rooms WHERE id = ?", (room_id,)).fetchone()
    return None if row is None else int(row[0])


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
