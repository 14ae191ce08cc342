"""Presence: one actor per online user, announcing coalesced status changes to their rooms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs
import structlog
import trio

from chorus.cluster import LocalDirectory, PresenceDirectory
from chorus.persistence import Store, StoreError
from chorus.protocol import PresenceStatus
from chorus.supervisors import DuplicateChild, Restart, Supervisor

from ._errors import ActorDead
from ._ref import ActorRef, Inbox
from ._registry import Registry
from ._spawn import actor_spec
from .rooms import Rooms

_log = structlog.get_logger("chorus.presence")
_ATTEMPTS = 3


@attrs.frozen(kw_only=True)
class ConnectionStatus:
    """A connection of the user reports its status; None means it disconnected."""

    conn_id: str
    status: Literal["online", "idle"] | None


def aggregate(statuses: dict[str, Literal["online", "idle"]]) -> PresenceStatus:
    """Online if any connection is online, idle if all are idle, offline without connections."""
    if not statuses:
        return "offline"
    return "online" if "online" in statuses.values() else "idle"


class Presence:
    """Routes connection status reports to per-user presence actors (`presence:<user_id>`).

    Changes are coalesced over `coalesce` seconds, so a quick reconnect or a
    flurry of idle/online flips is announced once, or not at all. `board`
    holds the last status announced for each user connected here: right for
    them, not for users connected only to other nodes (ask `statuses`). Presence
    actors are temporary, as room actors are (see `Rooms`): one that crashes
    is started afresh by the user's next report, with no memory of the user's
    connections, so crashes cannot escalate.

    An actor runs only while it has changes to settle: once it has announced,
    it exits and leaves the user's state (their connections' statuses, what was
    announced) here, for the actor the next report starts. So a user whose
    connections sit idle costs a small object, not a task and a mailbox.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        registry: Registry,
        store: Store,
        rooms: Rooms,
        *,
        directory: PresenceDirectory | None = None,
        coalesce: float = 0.5,
    ) -> None:
        self._supervisor = supervisor
        self._registry = registry
        self._store = store
        self._rooms = rooms
        self.board = LocalDirectory()
        # A lone node's directory is its board: the same statuses, kept once.
        self.directory: PresenceDirectory = directory or self.board
        self._coalesce = coalesce
        self._users: dict[str, _Connections] = {}
        """The users with connections here (and users being settled): the state their
        presence actors pick up."""

    async def report(self, user_id: str, update: ConnectionStatus) -> None:
        """Tell the user's presence actor about one connection (starting the actor if needed).

        Connections of the same user may report at once, as their actor exits
        or starts: whoever starts it, every report reaches the one actor, which
        exits once it has nothing left to settle. Raises `ActorDead` only if no
        actor can be reached (the node is stopping), never because another
        connection of the user raced this one.
        """
        for attempt in range(_ATTEMPTS):
            try:
                await (await self._actor(user_id)).send(update)
                return
            except ActorDead:
                if attempt == _ATTEMPTS - 1:
                    raise

    def tracked(self, user_id: str) -> ActorRef[ConnectionStatus] | None:
        """The user's presence actor on this node, while it settles a change (else None)."""
        ref: ActorRef[ConnectionStatus] | None = self._registry.whereis(f"presence:{user_id}")
        return ref if ref is not None and ref.alive else None

    async def _actor(self, user_id: str) -> ActorRef[ConnectionStatus]:
        ref = self.tracked(user_id)
        if ref is not None:
            return ref
        spec = actor_spec(
            f"presence:{user_id}",
            self._behaviour(user_id),
            registry=self._registry,
            restart=Restart.TEMPORARY,
        )
        try:
            started: ActorRef[ConnectionStatus] = await self._supervisor.start_child(spec)
        except DuplicateChild:
            # Another connection of the user started it since we looked: use theirs.
            running: ActorRef[ConnectionStatus] | None = self._supervisor.which_child(spec.id)
            if running is None:
                raise ActorDead(f"presence:{user_id} could not be started") from None
            return running
        return started

    def _behaviour(self, user_id: str) -> _UserPresence:
        return _UserPresence(user_id, self, self._coalesce)

    async def announce(self, user_id: str, status: PresenceStatus) -> None:
        """Record `status` and tell the actors of the user's active rooms."""
        self.board.set(user_id, status)
        try:
            memberships = await self._store.rooms_of(user_id)
        except StoreError as exc:
            _log.warning("presence.announce_failed", user=user_id, error=str(exc))
            return
        for room, _membership in memberships:
            await self._rooms.announce_presence(room.id, user_id, status)

    async def across_nodes(self, user_id: str, local: PresenceStatus) -> PresenceStatus:
        """Report this node's status for the user; what to show (their status anywhere)."""
        try:
            return await self.directory.report(user_id, local)
        except Exception as exc:  # Redis away: show what this node knows
            _log.warning("presence.directory_failed", user=user_id, error=str(exc))
            return local

    async def statuses(self, user_ids: Sequence[str]) -> dict[str, PresenceStatus]:
        """Each user's status across all nodes (this node's own view if the directory fails)."""
        try:
            return await self.directory.statuses(user_ids)
        except Exception as exc:  # Redis away: show what this node knows
            _log.warning("presence.directory_failed", users=len(user_ids), error=str(exc))
            return {user_id: self.board.status(user_id) for user_id in user_ids}

    async def reannounce(self, user_ids: list[str]) -> None:
        """Announce the current status of users whose node died (they may be offline now)."""
        for user_id, status in (await self.directory.statuses(user_ids)).items():
            await self.announce(user_id, status)


class _Connections:
    """A user's state between the runs of their presence actor."""

    __slots__ = ("announced", "statuses")

    def __init__(self) -> None:
        self.statuses: dict[str, Literal["online", "idle"]] = {}
        """The status of each of the user's connections on this node."""
        self.announced: PresenceStatus = "offline"


class _UserPresence:
    """The behaviour of one run of a user's presence actor: settle one change, then exit."""

    def __init__(self, user_id: str, presence: Presence, coalesce: float) -> None:
        self._user_id = user_id
        self._presence = presence
        self._coalesce = coalesce

    async def __call__(self, inbox: Inbox[ConnectionStatus]) -> None:
        users = self._presence._users
        # A user coming online is reported at once (nothing to coalesce yet): the
        # directory must know them before their rooms see them, or a node dying in
        # between would leave them shown online with nobody to take it back. Later
        # changes (a run for a user already connected here) are coalesced.
        known = users.get(self._user_id)
        coalesce = 0.0 if known is None else self._coalesce
        self._state = users[self._user_id] = known or _Connections()
        try:
            async for update in inbox:
                self._apply(update)
                await self._settle(inbox, coalesce)
                # _settle ended on an empty mailbox with no await since: this run is
                # done, and the next report starts another.
                break
        except BaseException:
            users.pop(self._user_id, None)  # a crash forgets the user: the next run starts afresh
            raise
        if not self._state.statuses:
            del users[self._user_id]  # the last connection has left: nothing to keep

    async def _settle(self, inbox: Inbox[ConnectionStatus], coalesce: float) -> None:
        """Absorb changes for `coalesce` seconds, then announce until nothing changes."""
        with trio.move_on_after(coalesce):
            async for later in inbox:
                self._apply(later)
        while True:
            for late in inbox.drain(1024):
                self._apply(late)
            status = aggregate(self._state.statuses)
            shown = await self._presence.across_nodes(self._user_id, status)
            meanwhile = inbox.drain(1024)
            if meanwhile:  # changed while we asked: ask again
                for update in meanwhile:
                    self._apply(update)
                continue
            if shown == self._state.announced:
                return  # the mailbox was empty and nothing has awaited since
            self._state.announced = shown
            await self._presence.announce(self._user_id, shown)

    def _apply(self, update: ConnectionStatus) -> None:
        if update.status is None:
            self._state.statuses.pop(update.conn_id, None)
        else:
            self._state.statuses[update.conn_id] = update.status
