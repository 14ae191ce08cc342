"""`ActorRef` (the address callers hold) and `Inbox` (what the actor reads)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

import trio

from ._errors import ActorDead, AskTimeout
from ._reply import Reply

M = TypeVar("M")
R = TypeVar("R")

_GONE = (trio.ClosedResourceError, trio.BrokenResourceError)


class ActorRef(Generic[M]):
    """The address of one run of an actor; cheap to copy and share.

    A restarted actor has a new ref: a held ref to an exited actor raises
    `ActorDead` on every call, so holders look the actor up again.
    """

    __slots__ = ("_alive", "_mailbox", "_pending", "_stopped", "kind", "name")

    def __init__(self, mailbox: trio.MemorySendChannel[M], *, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind
        self._mailbox = mailbox
        self._pending: set[Reply[Any]] = set()
        self._alive = True
        self._stopped = trio.Event()

    def __repr__(self) -> str:
        return f"<ActorRef {self.name} {'alive' if self._alive else 'dead'}>"

    @property
    def alive(self) -> bool:
        """False once the actor has exited."""
        return self._alive

    async def wait_stopped(self) -> None:
        """Return once the actor has exited (at once if it already has)."""
        await self._stopped.wait()

    @property
    def depth(self) -> int:
        """Messages waiting in the mailbox."""
        return self._mailbox.statistics().current_buffer_used

    @property
    def capacity(self) -> int:
        """Most messages the mailbox holds before `send` waits and `try_send` refuses."""
        return int(self._mailbox.statistics().max_buffer_size)

    async def send(self, message: M) -> None:
        """Deliver `message`, waiting while the mailbox is full (backpressure).

        Raises `ActorDead` if the actor has exited or is stopping, including
        while this call waits.
        """
        try:
            await self._mailbox.send(message)
        except _GONE:
            raise ActorDead(f"{self.name} is not running") from None

    def try_send(self, message: M) -> bool:
        """Deliver `message` without waiting; False if the mailbox is full.

        Raises `ActorDead` if the actor has exited or is stopping.
        """
        try:
            self._mailbox.send_nowait(message)
        except trio.WouldBlock:
            return False
        except _GONE:
            raise ActorDead(f"{self.name} is not running") from None
        return True

    async def ask(self, make_message: Callable[[Reply[R]], M], *, timeout: float) -> R:
        """Send `make_message(reply)` and wait for the actor to answer through `reply`.

        Returns the answer, or raises what the actor passed to `reply.fail`.
        Raises `ActorDead` if the actor is gone or exits before answering, and
        `AskTimeout` if no answer came within `timeout` seconds (waiting for
        mailbox space counts). Never hangs past `timeout`.
        """
        reply: Reply[R] = Reply()
        self._pending.add(reply)
        try:
            with trio.move_on_after(timeout):
                await self.send(make_message(reply))
                return await reply.wait()
            raise AskTimeout(f"{self.name} did not answer within {timeout:g}s")
        finally:
            self._pending.discard(reply)
            reply.abandon()

    def request_stop(self) -> None:
        """Close the mailbox: the actor handles what is queued, then its inbox ends.

        Later sends raise `ActorDead`. Supervisors call this before their grace
        period (see `chorus.supervisors.Stoppable`).
        """
        self._mailbox.close()

    def _exited(self) -> None:
        """Called by the runtime once the actor's task has ended."""
        self._alive = False
        self._stopped.set()
        self._mailbox.close()
        for reply in list(self._pending):
            reply.fail(ActorDead(f"{self.name} exited before answering"))
        self._pending.clear()


class Inbox(Generic[M]):
    """The receiving side of an actor's mailbox.

    Iterating it yields messages in arrival order and ends after
    `ActorRef.request_stop()` once every queued message has been handled.
    """

    __slots__ = ("_receive", "ref")

    def __init__(self, receive: trio.MemoryReceiveChannel[M], ref: ActorRef[M]) -> None:
        self._receive = receive
        self.ref = ref
        """This actor's own address (to hand out, or to send itself messages)."""

    def __aiter__(self) -> AsyncIterator[M]:
        return self._receive.__aiter__()

    async def receive(self) -> M:
        """The next message; raises `trio.EndOfChannel` once stopped and drained."""
        return await self._receive.receive()

    def parked(self) -> bool:
        """Whether the actor waits in `receive` and no message was handed to it yet.

        While this holds the actor runs none of its code, and the next message
        it gets is the next one sent: work done now, without waiting, in its
        place is done as it would have done it on that message.
        """
        return self._receive.statistics().tasks_waiting_receive > 0

    def drain(self, limit: int) -> list[M]:
        """Up to `limit` messages already queued, without waiting (for batching)."""
        batch: list[M] = []
        while len(batch) < limit:
            try:
                batch.append(self._receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        return batch
