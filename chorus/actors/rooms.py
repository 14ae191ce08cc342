"""`Rooms`: finds the actor of a room, starting it on first use."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from typing import TypeVar

from chorus import protocol
from chorus.cluster import Bus
from chorus.deadlines import Deadlines
from chorus.persistence import Store
from chorus.supervisors import DuplicateChild, Restart, Supervisor

from ._errors import ActorDead, AskTimeout
from ._ref import ActorRef
from ._registry import Registry
from ._reply import Reply
from ._spawn import actor_spec
from .room import (
    Evict,
    Notify,
    PresenceChanged,
    Receipt,
    RoomActor,
    RoomConfig,
    RoomMessage,
    ephemeral_envelope,
)

R = TypeVar("R")
_ATTEMPTS = 3
ROOM_MAILBOX = 1024
_EVICT_TIMEOUT = 10.0


def room_name(room_id: str) -> str:
    return f"room:{room_id}"


class Rooms:
    """Room actors by room id, started on demand under `supervisor` (one_for_one).

    Room actors are temporary: one that crashes is not restarted, the next
    message to its room starts a fresh one. So room crashes never spend the
    supervisor's restart budget and cannot escalate to the node's tree.
    A room actor also stops itself when idle, so a ref found here may die at
    any moment: `send` and `subscribe`-style asks retry with a fresh actor
    when the one they found has just stopped.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        registry: Registry,
        store: Store,
        config: RoomConfig,
        bus: Bus | None = None,
        notify: Notify | None = None,
    ) -> None:
        self._origin = secrets.token_hex(6)
        """Tells this node's publications apart on the bus (one id per `Rooms`)."""
        self._supervisor = supervisor
        self._notify = notify
        self._registry = registry
        self._store = store
        self.config = config
        self._bus = bus
        self.resyncs = Deadlines()
        """The timer of every room actor's resync (used with a bus only): its `run` is a
        child of the node's tree, started before `supervisor` (see `RoomActor`)."""

    def running(self, room_id: str) -> ActorRef[RoomMessage] | None:
        """The room's actor if one runs on this node (never starts one)."""
        ref: ActorRef[RoomMessage] | None = self._registry.whereis(room_name(room_id))
        return ref if ref is not None and ref.alive else None

    async def actor(self, room_id: str) -> ActorRef[RoomMessage]:
        """The room's actor, started if none runs."""
        name = room_name(room_id)
        for _ in range(_ATTEMPTS):
            running = self.running(room_id)
            if running is not None:
                return running
            behaviour = RoomActor(
                room_id,
                self._store,
                self.config,
                self._bus,
                self._origin,
                self._notify,
                self.resyncs,
            ).run
            # Temporary: a restart would bring back nothing the next message would not
            # (the mailbox and the subscribers are gone either way), only spend the budget.
            spec = actor_spec(
                name,
                behaviour,
                mailbox_size=ROOM_MAILBOX,
                registry=self._registry,
                restart=Restart.TEMPORARY,
            )
            try:
                ref: ActorRef[RoomMessage] = await self._supervisor.start_child(spec)
            except DuplicateChild:
                # Started concurrently by someone else: theirs, unless it stopped since.
                theirs: ActorRef[RoomMessage] | None = self._supervisor.which_child(name)
                if theirs is None:
                    continue
                return theirs
            return ref
        raise ActorDead(f"could not start {name}")

    async def send(self, room_id: str, message: RoomMessage) -> None:
        """Deliver `message` to the room's actor (waiting for mailbox space)."""
        for attempt in range(_ATTEMPTS):
            ref = await self.actor(room_id)
            try:
                await ref.send(message)
                return
            except ActorDead:
                if attempt == _ATTEMPTS - 1:
                    raise

    @property
    def origin(self) -> str:
        """This node's id on the bus."""
        return self._origin

    async def announce_presence(
        self, room_id: str, user_id: str, status: protocol.PresenceStatus
    ) -> None:
        """Show the room's subscribers, on every node, that `user_id`'s status changed.

        Through the room's actor here if one runs (it shares the event), else
        straight on the bus; presence is ephemeral, so a full mailbox skips it.
        """
        running = self.running(room_id)
        if running is not None:
            with contextlib.suppress(ActorDead):
                running.try_send(PresenceChanged(user_id=user_id, status=status))
        elif self._bus is not None:
            event = protocol.encode(protocol.PresenceEvent(user=user_id, status=status))
            await self._bus.publish(
                f"room:{room_id}", ephemeral_envelope(self._origin.encode(), event)
            )

    async def show_receipt(self, room_id: str, user_id: str, seq: int) -> None:
        """Show the room's subscribers, on every node, that `user_id` has read up to `seq`.

        Through the room's actor (started if need be), which shares the event;
        receipts are ephemeral, so if the actor cannot be reached nobody is shown.
        """
        with contextlib.suppress(ActorDead):
            await self.send(room_id, Receipt(user_id=user_id, seq=seq))

    async def evict(self, room_id: str, user_id: str, notice: bytes) -> set[str]:
        """Stop sending `room_id`'s events to `user_id`'s subscribers here (membership ended).

        Each gets `notice` as its last frame of the room. Returns their ids
        (none when no actor of the room runs here, or it did not answer in time).
        """
        running = self.running(room_id)
        if running is None:
            return set()

        def evict(reply: Reply[set[str]]) -> Evict:
            return Evict(user_id=user_id, notice=notice, reply=reply)

        try:
            return await running.ask(evict, timeout=_EVICT_TIMEOUT)
        except (ActorDead, AskTimeout):
            return set()

    async def ask(
        self, room_id: str, make_message: Callable[[Reply[R]], RoomMessage], *, timeout: float
    ) -> R:
        """Ask the room's actor (see `ActorRef.ask`), retrying if it stopped meanwhile."""
        for attempt in range(_ATTEMPTS):
            ref = await self.actor(room_id)
            try:
                return await ref.ask(make_message, timeout=timeout)
            except ActorDead:
                if attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")
