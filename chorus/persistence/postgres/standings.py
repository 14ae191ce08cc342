"""The standings of a stored batch's senders in one PostgreSQL statement, whatever their number.

`append_admitted` reads them before every append; the shared transaction
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
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ..roles.moderation import STANDING_SELECT, Standing, standing_from_row
from .dialect import Conn

_STANDINGS_SQL = (
    "SELECT t.*, s.value FROM json_array_elements_text($2::json) AS s"
    f" CROSS JOIN LATERAL ({STANDING_SELECT} WHERE u.id = s.value OFFSET 0) AS t"
)


async def read_standings(
    conn: Conn, room_id: str, user_ids: Sequence[str], now: int
) -> dict[str, Standing]:
    """`roles.moderation.find_standings` in one statement on `conn` (asyncio side): the
    standing in `room_id` of each of `user_ids` that exists (none if the room does not),
    by user id.

    A plain coroutine, not a `Tx` run by `run_async`: it is every stored batch's first
    statement, and a `SELECT` raises no violation for `dialect.execute` to translate.
    """
    rows = await conn.fetch(_STANDINGS_SQL, room_id, json.dumps(list(user_ids)))
    return {row[-1]: standing_from_row(row, now) for row in rows}
