"""Where each user's presence lives across nodes, and how a dead node's users go offline.

`LocalDirectory` is one node's view (a user's status is this node's). The
`RedisDirectory` keeps, per user, a hash of node -> status, and per node a
heartbeat key with a TTL and the set of users it reported. A user's status is
the best one reported by a live node; when a node's heartbeat expires,
another node removes its reports and re-announces those users (DESIGN.md §5:
presence converges within a stated bound: `ttl` plus one heartbeat).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

import coredis
import structlog
import trio

from chorus.protocol import PresenceStatus

from ._commands import Commands
from ._connection import ReplyError

_RANK: dict[str, int] = {"offline": 0, "idle": 1, "online": 2}
_log = structlog.get_logger("chorus.cluster")


def best(statuses: Iterable[str]) -> PresenceStatus:
    """Online beats idle beats offline."""
    found: PresenceStatus = "offline"
    for status in statuses:
        if _RANK.get(status, 0) > _RANK[found]:
            found = status  # type: ignore[assignment]
    return found


class PresenceDirectory(Protocol):
    async def report(self, user_id: str, status: PresenceStatus) -> PresenceStatus:
        """Record this node's status for the user; the user's status across all nodes."""

    async def statuses(self, user_ids: Sequence[str]) -> dict[str, PresenceStatus]:
        """The status across all nodes of each of these users, looked up together."""


class LocalDirectory:
    """This node's record of the statuses of the users connected to it.

    It answers at once, without I/O (`status`), so a node shows what it knows
    even when Redis is away; on its own, a node uses it as its whole directory.
    """

    def __init__(self) -> None:
        self._statuses: dict[str, PresenceStatus] = {}

    def status(self, user_id: str) -> PresenceStatus:
        """The last status recorded for the user ("offline" if none)."""
        return self._statuses.get(user_id, "offline")

    def set(self, user_id: str, status: PresenceStatus) -> None:
        """Record the user's status ("offline" forgets the user)."""
        if status == "offline":
            self._statuses.pop(user_id, None)
        else:
            self._statuses[user_id] = status

    async def report(self, user_id: str, status: PresenceStatus) -> PresenceStatus:
        self.set(user_id, status)
        return status

    async def statuses(self, user_ids: Sequence[str]) -> dict[str, PresenceStatus]:
        return {user_id: self.status(user_id) for user_id in user_ids}


OnOrphaned = Callable[[list[str]], Awaitable[None]]
"""Called with the users a dead node had reported, after its reports were removed."""


class RedisDirectory:
    """Presence of users across the nodes sharing one Redis.

    Reports and lookups, one per connection and one per join of a room
    (its whole member list), go through `commands` (on one server our own
    `RespClient`); the heartbeat and the clean-up after a dead node, a few
    commands a second, through coredis' `client`. Through coredis' pipelines
    a join's lookup of 50 members and the live nodes cost ~1.2 ms of the
    node's CPU, against ~0.35 ms as plain RESP, and 600 bots joining rooms of
    50 within 5 s left the three nodes of `cluster-3` short of their one core
    (docs/benchmarks.md, "Issue #15, session 13: the start-up queueing").
    """

    def __init__(self, client: Any, commands: Commands, node_id: str, *, ttl: float = 6.0) -> None:
        self._client = client
        self._commands = commands
        self.node_id = node_id
        self.ttl = ttl

    async def report(self, user_id: str, status: PresenceStatus) -> PresenceStatus:
        """Record this node's status for the user and read back their best status: the
        write and the read share one round trip (a second checks other nodes' heartbeats)."""
        presence = b"chorus:presence:" + user_id.encode()
        mine = f"chorus:node:{self.node_id}:users".encode()
        node, user = self.node_id.encode(), user_id.encode()
        if status == "offline":
            write = [[b"HDEL", presence, node], [b"SREM", mine, user]]
        else:
            write = [[b"HSET", presence, node, status.encode()], [b"SADD", mine, user]]
        replies = _refusals_raised(await self._commands.execute([*write, [b"HGETALL", presence]]))
        return (await self._best([user_id], replies[-1:]))[user_id]

    async def status(self, user_id: str) -> PresenceStatus:
        """The best status reported for the user by a node that is alive."""
        return (await self.statuses([user_id]))[user_id]

    async def statuses(self, user_ids: Sequence[str]) -> dict[str, PresenceStatus]:
        """Each user's best status reported by a live node: two round trips.

        A room's member list is read at once however large the room: one
        round trip fetches every user's reports, a second checks the heartbeat
        of each node that reported.
        """
        if not user_ids:
            return {}
        replies = await self._commands.execute(
            [[b"HGETALL", b"chorus:presence:" + user_id.encode()] for user_id in user_ids]
        )
        return await self._best(user_ids, _refusals_raised(replies))

    async def _best(
        self, user_ids: Sequence[str], replies: Sequence[object]
    ) -> dict[str, PresenceStatus]:
        """Each user's best status among the reports (`replies`, HGETALL's) of live nodes."""
        reports = [_reports(reply) for reply in replies]
        others = sorted({node for report in reports for node in report} - {self.node_id})
        alive = {self.node_id}
        if others:
            beats = _refusals_raised(
                await self._commands.execute(
                    [[b"EXISTS", f"chorus:node:{node}:alive".encode()] for node in others]
                )
            )
            alive.update([node for node, beat in zip(others, beats, strict=True) if beat == 1])
        return {
            user_id: best(status for node, status in report.items() if node in alive)
            for user_id, report in zip(user_ids, reports, strict=True)
        }

    async def _alive(self, node_id: str) -> bool:
        return bool(await self._client.exists([f"chorus:node:{node_id}:alive"]))

    async def run(
        self,
        on_orphaned: OnOrphaned,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Heartbeat every `ttl / 3` seconds, and clean up after nodes whose heartbeat stopped."""
        task_status.started()
        while True:
            try:
                await self._beat()
                await self._reap(on_orphaned)
            except Exception as exc:  # Redis away: keep beating; presence catches up after
                _log.warning("presence.heartbeat_failed", error=str(exc))
            await trio.sleep(self.ttl / 3)

    async def _beat(self) -> None:
        await self._client.set(f"chorus:node:{self.node_id}:alive", b"1", px=int(self.ttl * 1000))
        await self._client.sadd("chorus:nodes", [self.node_id])

    async def _reap(self, on_orphaned: OnOrphaned) -> None:
        for raw in await self._client.smembers("chorus:nodes"):
            node = _text(raw)
            if node == self.node_id or await self._alive(node):
                continue
            # One node cleans up after the dead one; the lock expires by itself.
            claimed = await self._client.set(
                f"chorus:reap:{node}",
                self.node_id.encode(),
                condition=coredis.PureToken.NX,
                px=int(self.ttl * 1000),
            )
            if not claimed:
                continue
            users_key = f"chorus:node:{node}:users"
            users = [_text(user) for user in await self._client.smembers(users_key)]
            for user in users:
                await self._client.hdel(f"chorus:presence:{user}", [node])
            await self._client.delete([users_key])
            await self._client.srem("chorus:nodes", [node])
            _log.info("presence.node_dead", node=node, users=len(users))
            await on_orphaned(users)


def _refusals_raised(replies: list[object]) -> list[object]:
    """`replies`, unless Redis refused one of the commands: then its `ReplyError` is raised
    (as coredis' pipelines did; the callers fall back to the node's own view)."""
    for reply in replies:
        if isinstance(reply, ReplyError):
            raise reply
    return replies


def _reports(reply: object) -> dict[str, str]:
    """An HGETALL reply (RESP2: fields and values in turn) as node -> status."""
    assert isinstance(reply, list)
    return {
        _text(node): _text(status) for node, status in zip(reply[::2], reply[1::2], strict=True)
    }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
