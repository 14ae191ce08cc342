"""Presence: one actor per online user, announcing coalesced status changes to their rooms."""

from __future__ import annotations

import contextlib
from typing import Literal

import attrs
import structlog
import trio

from chorus.persistence import Store, StoreError
from chorus.supervisors import DuplicateChild, Supervisor

from ._errors import ActorDead
from ._ref import ActorRef, Inbox
from ._registry import Registry
from ._spawn import actor_spec
from .room import PresenceChanged
from .rooms import Rooms

Status = Literal["online", "idle", "offline"]
_log = structlog.get_logger("chorus.presence")
_ATTEMPTS = 3


@attrs.frozen(kw_only=True)
class ConnectionStatus:
    """A connection of the user reports its status; None means it disconnected."""

    conn_id: str
    status: Literal["online", "idle"] | None


class PresenceBoard:
    """The last announced status of every user online on this node."""

    def __init__(self) -> None:
        self._statuses: dict[str, Status] = {}

    def status(self, user_id: str) -> Status:
        return self._statuses.get(user_id, "offline")

    def set(self, user_id: str, status: Status) -> None:
        if status == "offline":
            self._statuses.pop(user_id, None)
        else:
            self._statuses[user_id] = status


def aggregate(statuses: dict[str, Literal["online", "idle"]]) -> Status:
    """Online if any connection is online, idle if all are idle, offline without connections."""
    if not statuses:
        return "offline"
    return "online" if "online" in statuses.values() else "idle"


class Presence:
    """Routes connection status reports to per-user presence actors (`presence:<user_id>`).

    Changes are coalesced over `coalesce` seconds, so a quick reconnect or a
    flurry of idle/online flips is announced once, or not at all.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        registry: Registry,
        store: Store,
        rooms: Rooms,
        board: PresenceBoard,
        *,
        coalesce: float = 0.5,
    ) -> None:
        self._supervisor = supervisor
        self._registry = registry
        self._store = store
        self._rooms = rooms
        self.board = board
        self._coalesce = coalesce

    async def report(self, user_id: str, update: ConnectionStatus) -> None:
        """Tell the user's presence actor about one connection (starting the actor if needed)."""
        for attempt in range(_ATTEMPTS):
            try:
                await (await self._actor(user_id)).send(update)
                return
            except (ActorDead, DuplicateChild):
                if attempt == _ATTEMPTS - 1:
                    raise

    async def _actor(self, user_id: str) -> ActorRef[ConnectionStatus]:
        name = f"presence:{user_id}"
        ref: ActorRef[ConnectionStatus] | None = self._registry.whereis(name)
        if ref is not None and ref.alive:
            return ref
        spec = actor_spec(name, self._behaviour(user_id), registry=self._registry)
        started: ActorRef[ConnectionStatus] = await self._supervisor.start_child(spec)
        return started

    def _behaviour(self, user_id: str) -> _UserPresence:
        return _UserPresence(user_id, self, self._coalesce)

    async def announce(self, user_id: str, status: Status) -> None:
        """Record `status` and tell the actors of the user's active rooms."""
        self.board.set(user_id, status)
        try:
            memberships = await self._store.rooms_of(user_id)
        except StoreError as exc:
            _log.warning("presence.announce_failed", user=user_id, error=str(exc))
            return
        change = PresenceChanged(user_id=user_id, status=status)
        for room, _membership in memberships:
            ref = self._rooms.running(room.id)
            if ref is not None:
                with contextlib.suppress(ActorDead):
                    ref.try_send(change)  # presence is ephemeral: a full room skips it


class _UserPresence:
    """The behaviour of one user's presence actor."""

    def __init__(self, user_id: str, presence: Presence, coalesce: float) -> None:
        self._user_id = user_id
        self._presence = presence
        self._coalesce = coalesce
        self._connections: dict[str, Literal["online", "idle"]] = {}
        self._announced: Status = "offline"

    async def __call__(self, inbox: Inbox[ConnectionStatus]) -> None:
        async for update in inbox:
            self._apply(update)
            await self._settle(inbox)
            if not self._connections:
                return  # _settle ended on an empty mailbox with no await since

    async def _settle(self, inbox: Inbox[ConnectionStatus]) -> None:
        """Absorb changes for the coalescing window, then announce until nothing changes."""
        with trio.move_on_after(self._coalesce):
            async for later in inbox:
                self._apply(later)
        while True:
            for late in inbox.drain(1024):
                self._apply(late)
            status = aggregate(self._connections)
            if status == self._announced:
                return
            self._announced = status
            await self._presence.announce(self._user_id, status)

    def _apply(self, update: ConnectionStatus) -> None:
        if update.status is None:
            self._connections.pop(update.conn_id, None)
        else:
            self._connections[update.conn_id] = update.status
