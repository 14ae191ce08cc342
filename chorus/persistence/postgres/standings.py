"""The standings of a stored batch's senders in one PostgreSQL statement, whatever their number,
and the check that lets a batch skip that statement when they have not changed.

`append_admitted` needs them before every append; the shared transaction
(`roles.moderation.find_standings`, SQLite's) runs one `SELECT` per sender,
which made them most of PostgreSQL's statements in a multi-node cluster.

The form matters, because asyncpg prepares statements and PostgreSQL's plan
cache re-plans a statement on every run while a plan made for the actual
arguments looks cheaper than the generic one. With the ids as an array
(`= ANY($2)`, `unnest($2)`), the planner sees the array's length, a batch
of few senders looks cheaper than the generic plan, and the statement was
planned again on every batch: more PostgreSQL CPU than the per-sender
statements it replaced (docs/decisions.md). A JSON array's length is hidden
from the planner (`json_array_elements_text` is always estimated at 100
rows), so every run costs the same and the generic plan is kept after the
first five. The `LATERAL … OFFSET 0` keeps the subquery from being flattened
into a join: each sender is the single-user lookup's index scans, whatever
the tables' sizes or statistics, never a scan of `users` or of the room's
memberships.

Each row read comes with its text form (`row::text`, its fingerprint): equal
texts are equal values (booleans, numbers, NULLs and strings each have one
text form). `SeenStandings` keeps the rows last read per room and sender, so
that the next batch of the same senders is judged on them and the append's
own statement checks, with `standings_unchanged`, that each is still what
the same lookup finds (docs/decisions.md, session 13).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ..roles.moderation import STANDING_SELECT, Standing, standing_from_row
from .dialect import Conn

Row = Sequence[Any]
"""A row of `STANDING_SELECT`, with the user's id and the row's fingerprint after it."""

_STANDINGS_SQL = (
    "SELECT t.*, s.value, t::text FROM json_array_elements_text($2::json) AS s"
    f" CROSS JOIN LATERAL ({STANDING_SELECT} WHERE u.id = s.value OFFSET 0) AS t"
)

SEEN_LIMIT: Final = 10_000
"""Most (room, sender) rows a store keeps; past it the oldest read is forgotten (its
sender's next batch reads the standings again)."""


async def read_rows(conn: Conn, room_id: str, user_ids: Sequence[str]) -> dict[str, Row]:
    """The standing rows of `user_ids` that exist in `room_id`, by user id: one statement."""
    rows = await conn.fetch(_STANDINGS_SQL, room_id, json.dumps(list(user_ids)))
    return {row[-2]: row for row in rows}


def standings_unchanged(seen: str) -> str:
    """SQL, true when the standing in room $1 of each user in the JSON object `seen` (a
    parameter: user id → fingerprint, `fingerprints`' text) has that fingerprint still:
    the lookup of `_STANDINGS_SQL`, one per user, without its round trip. A user or room
    gone has none (NULL), so it differs."""
    return (
        f"NOT EXISTS (SELECT 1 FROM json_each_text({seen}::json) AS k"
        " WHERE k.value IS DISTINCT FROM"
        f" (SELECT t::text FROM ({STANDING_SELECT} WHERE u.id = k.key OFFSET 0) AS t))"
    )


def fingerprints(rows: Mapping[str, Row]) -> str:
    """The JSON object `standings_unchanged` checks: each user's fingerprint, by id."""
    return json.dumps({user_id: row[-1] for user_id, row in rows.items()})


def standings(rows: Mapping[str, Row], now: int) -> dict[str, Standing]:
    """The `Standing` as of `now` in each row, by user id (a mute may have expired since
    the row was read: that is decided here, from the row's `muted_until`)."""
    return {user_id: standing_from_row(row, now) for user_id, row in rows.items()}


class SeenStandings:
    """The standing rows a store last read, per (room, user): asyncio side only (one
    loop thread uses it, so it needs no lock).

    They are never trusted alone: a batch judged on them is stored only by a statement
    that checks them against the database first (`standings_unchanged`), else it is
    judged again on a fresh read.
    """

    def __init__(self, limit: int = SEEN_LIMIT) -> None:
        self._limit = limit
        self._rows: dict[tuple[str, str], Row] = {}

    def rows(self, room_id: str, user_ids: Sequence[str]) -> dict[str, Row] | None:
        """The rows last read of `user_ids` in `room_id`; None unless every one was read."""
        found = {}
        for user_id in user_ids:
            row = self._rows.get((room_id, user_id))
            if row is None:
                return None
            found[user_id] = row
        return found

    async def read(self, conn: Conn, room_id: str, user_ids: Sequence[str]) -> dict[str, Row]:
        """The rows of `user_ids` that exist in `room_id` (none if the room does not), read
        with one statement on `conn` and kept; a user without one is forgotten."""
        found = await read_rows(conn, room_id, user_ids)
        kept = self._rows
        for user_id in user_ids:
            key = (room_id, user_id)
            kept.pop(key, None)  # re-inserted last: the dict's order is the reads' order
            row = found.get(user_id)
            if row is not None:
                if len(kept) >= self._limit:
                    del kept[next(iter(kept))]
                kept[key] = row
        return found
