"""Bot swarm runs: removing everything a run of `chorus bots` made."""

from __future__ import annotations

from typing import Protocol

from .._model import RemovedBots
from .._sql import Engine, Tx, execute, fetch


class BotRuns(Protocol):
    """Users and rooms marked with the id of a bot swarm run."""

    async def remove_bot_run(self, run_id: str) -> RemovedBots:
        """Delete every user and room marked with `bot_run=run_id`, and what hangs off them.

        Gone with the users: their sessions and refresh tokens, memberships,
        reactions, thread follows, mentions, notifications, every message
        they sent (in any room) and every room they created (marked or not:
        a room cannot outlive its creator). Gone with the rooms: all their
        messages, memberships, mentions and notifications, whoever made them.
        Nothing else changes; a run id nothing is marked with removes nothing.
        """
        ...


class BotRunsOnSql(Engine):
    """`BotRuns` for every engine."""

    async def remove_bot_run(self, run_id: str) -> RemovedBots:
        """See `BotRuns.remove_bot_run`."""
        return await self._write(lambda: remove_bot_run(run_id))


def remove_bot_run(run_id: str) -> Tx[RemovedBots]:
    # Children without ON DELETE CASCADE first (messages.sender_id,
    # rooms.created_by); the cascades take the rest.
    bots = "SELECT id FROM users WHERE bot_run = $1"
    yield from execute(f"DELETE FROM messages WHERE sender_id IN ({bots})", run_id)
    rooms = yield from fetch(
        f"DELETE FROM rooms WHERE bot_run = $1 OR created_by IN ({bots}) RETURNING 1", run_id
    )
    users = yield from fetch("DELETE FROM users WHERE bot_run = $1 RETURNING 1", run_id)
    return RemovedBots(users=len(users), rooms=len(rooms))
