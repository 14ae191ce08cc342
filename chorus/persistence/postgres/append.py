"""The PostgreSQL append, the hot path: one call of `chorus_append_messages` per batch.

The function (migrations/postgres) locks the room's row, so appends to one
room from any number of nodes run one after the other and take contiguous
seqs; then, with a fresh snapshot, it finds the client ids already used,
inserts the new messages with one multi-row INSERT and moves `last_seq`, and
returns the events stored after the caller's `known` seq before the batch
(other nodes' appends), in one round trip. A batch with replies or mentions
then fans out in the same transaction, still under the room's lock.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import asyncpg

from .._errors import NotFound
from .._model import Appended, Message, NewMessage, new_ids
from .._rows import message
from .._sql import run_async
from ..roles.fanout import fan_out_batch, needs_fan_out
from .dialect import Conn, execute, unique_violation

_APPEND_SQL = "SELECT * FROM chorus_append_messages($1, $2, $3, $4, $5, $6, $7, $8)"
"""The append's one statement (`Append.args` are its arguments)."""


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
        try:
            found = await db.fetch(_APPEND_SQL, *self.args)
        except asyncpg.NoDataFoundError as exc:
            raise NotFound(f"no room {self.room_id!r}") from exc
        except asyncpg.ForeignKeyViolationError as exc:
            raise NotFound(
                f"a sender of the batch for room {self.room_id!r} does not exist"
            ) from exc
        except asyncpg.UniqueViolationError as exc:
            raise unique_violation(exc) from exc
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
