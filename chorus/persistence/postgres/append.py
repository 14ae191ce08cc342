"""The PostgreSQL append, the hot path: one call of `chorus_append_messages` per batch.

The function (migrations/postgres) locks the room's row, so appends to one
room from any number of nodes run one after the other and take contiguous
seqs; then, with a fresh snapshot, it finds the client ids already used,
inserts the new messages with one multi-row INSERT and moves `last_seq`, and
returns the events stored after the caller's `known` seq before the batch
(other nodes' appends), in one round trip. A batch with replies or mentions
then fans out in the same transaction, still under the room's lock.

`Append.if_standings` runs the same call behind a check of the senders'
standings in the same statement (`standings.standings_unchanged`), so that a
batch judged on standings read earlier costs one statement, not two.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import asyncpg

from .._errors import NotFound
from .._model import Appended, Message, NewMessage, new_ids
from .._rows import message
from .._sql import run_async
from ..roles.fanout import fan_out_batch, needs_fan_out
from .dialect import Conn, execute, unique_violation
from .standings import standings_unchanged

_APPEND_SQL = "SELECT * FROM chorus_append_messages($1, $2, $3, $4, $5, $6, $7, $8)"
"""The append's one statement (`Append.args` are its arguments)."""

_CHECKED_APPEND_SQL = (
    "WITH unchanged AS MATERIALIZED"
    f" (SELECT $1::text AS room_id WHERE {standings_unchanged('$9')})"
    " SELECT a.* FROM unchanged AS c"
    " CROSS JOIN LATERAL chorus_append_messages(c.room_id, $2, $3, $4, $5, $6, $7, $8) AS a"
)
"""`_APPEND_SQL` if the standings in $9 (`standings.fingerprints`) are unchanged, else no
row and no call. The function is called only for a row of `unchanged`: the lateral
reference to it puts the call on the inner side of a nested loop, which never runs
without an outer row, and `MATERIALIZED` keeps the CTE from being inlined into a
constant (which would free the call from that reference). Its standings are read from
the statement's snapshot, as the separate read's were: before the function locks the
room, then takes a fresh one."""


class Append:
    """One batch for one room, ready to run (and to run again after a race)."""

    def __init__(self, room_id: str, batch: Sequence[NewMessage], known: int | None = None) -> None:
        self.room_id = room_id
        self.batch = list(batch)
        self.args = (
            room_id,
            new_ids("m", len(batch)),
            [new.sender_id for new in self.batch],
            [new.body for new in self.batch],
            [new.client_id for new in self.batch],
            [new.created_at for new in self.batch],
            [new.thread_id for new in self.batch],
            known,
        )
        self.rich = any(needs_fan_out(new) for new in self.batch)
        """The batch does more than insert rows; else it is one statement."""
        self.earlier: list[Message] = []
        """After the call: the room's events after `known` that came before the batch's
        first new one, oldest first, at most `EARLIER_LIMIT` (see `AdmittedBatch.earlier`),
        without their attachments (empty when nothing new was stored)."""
        self.with_files = False
        """After the call: some of `earlier` have attachments, which are still to be read."""

    async def __call__(self, db: Conn) -> list[Appended]:
        """Store the batch on `db` (asyncio side; in a transaction when `rich`)."""
        return await self._results(db, await self._fetch(db, _APPEND_SQL, self.args))

    async def if_standings(self, db: Conn, seen: str) -> list[Appended] | None:
        """`self(db)` if the senders' standings are still the fingerprints in `seen`
        (`standings.fingerprints`), in the same statement; else None: nothing was stored
        (nor is anything of the call left in `earlier`)."""
        found = await self._fetch(db, _CHECKED_APPEND_SQL, (*self.args, seen))
        if not found:  # the function returns a row per message of a batch: it did not run
            return None
        return await self._results(db, found)

    async def _fetch(self, db: Conn, sql: str, args: tuple[Any, ...]) -> list[Any]:
        try:
            found: list[Any] = await db.fetch(sql, *args)
        except asyncpg.NoDataFoundError as exc:
            raise NotFound(f"no room {self.room_id!r}") from exc
        except asyncpg.ForeignKeyViolationError as exc:
            raise NotFound(
                f"a sender of the batch for room {self.room_id!r} does not exist"
            ) from exc
        except asyncpg.UniqueViolationError as exc:
            raise unique_violation(exc) from exc
        return found

    async def _results(self, db: Conn, found: list[Any]) -> list[Appended]:
        # The batch's rows come first, in order; the earlier events' have no `ord`.
        count = len(self.batch)
        results = [Appended(message=message(row[1:16]), duplicate=row[16]) for row in found[:count]]
        new = any(not result.duplicate for result in results)  # else nothing follows them
        self.earlier = [message(row[1:16]) for row in found[count:]] if new else []
        self.with_files = any(event[17] for event in found[count:]) if new else False
        if self.rich:
            results = await run_async(
                fan_out_batch(self.room_id, self.batch, results), functools.partial(execute, db)
            )
        return results
