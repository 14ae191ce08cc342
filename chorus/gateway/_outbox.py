"""The outbound hot path: per-connection byte buffers flushed at the end of each round.

Appending a frame never waits and wakes nobody; at the end of every trio
scheduling round (when every runnable task has run, just before trio waits
for I/O) the node's flusher writes each dirty connection's pending bytes with
one non-blocking `send`, however many frames the round queued to it. A busy
round holds more frames, so writes grow with the load and never wait
otherwise. Only a connection whose kernel buffer is full gets a task of its
own, which waits for writability (DESIGN.md §8).
A broadcast's frames are one `bytes` object that every recipient's outbox keeps
by reference until it is written.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable, Callable

import trio

from chorus.rounds import RoundEnd


class Outbox:
    """Bytes waiting to be written to one socket, bounded by `limit` bytes.

    `offer` never waits. Going over `limit` closes the outbox and calls
    `on_overflow` (the connection then closes the client with 4004; the
    client recovers by resuming, so nothing acknowledged is lost). A failed
    write discards the buffer and calls `on_broken`.
    """

    __slots__ = (
        "_blocked",
        "_buffer",
        "_closed",
        "_dirty",
        "_flusher",
        "_on_broken",
        "_on_overflow",
        "_sock",
        "_waiter",
        "limit",
    )

    def __init__(
        self,
        sock: socket.socket,
        flusher: Flusher,
        *,
        limit: int,
        on_overflow: Callable[[], None],
        on_broken: Callable[[], None],
    ) -> None:
        self._sock = sock
        self._flusher = flusher
        self._dirty = flusher.dirty
        self.limit = limit
        self._on_overflow = on_overflow
        self._on_broken = on_broken
        self._buffer: bytes | bytearray = b""
        """What is pending. A lone offer is kept as the `bytes` offered (a broadcast's
        frames, shared by all its recipients: nothing is copied per recipient); a second
        one before the write turns it into a `bytearray` that grows."""
        self._blocked = False
        self._waiter: trio.Event | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        """Bytes not yet handed to the kernel."""
        return len(self._buffer)

    @property
    def closed(self) -> bool:
        """True once no more frames are accepted (what is queued is still written)."""
        return self._closed

    def offer(self, frames: bytes) -> bool:
        """Queue `frames` (whole frames) without waiting; False if closed or just overflowed.

        Anything but a `bytes` object is copied first (it could change while queued).
        """
        return self.offer_bytes(frames if type(frames) is bytes else bytes(frames))

    def offer_bytes(self, frames: bytes) -> bool:
        """`offer` of a `bytes` object, which is kept by reference until written, never
        changed: a broadcast offers the same `bytes` to every recipient."""
        if self._buffer or self._closed or self._blocked:
            return self._offer_more(frames)
        # The common case, once per recipient of every broadcast (an outbox that was
        # written at the last round's end): keep the broadcast's `bytes` as they are and
        # mark the outbox dirty with a list append, not a Python call.
        self._buffer = frames
        self._dirty.append(self)
        if len(frames) > self.limit:
            return self._overflowed()
        return True

    def _offer_more(self, frames: bytes) -> bool:
        """`offer_bytes` into a closed outbox, or one with frames pending or waiting for
        its socket."""
        if self._closed:
            return False
        self._append(frames)
        if len(self._buffer) > self.limit:
            return self._overflowed()
        return True

    def _overflowed(self) -> bool:
        self._closed = True
        self._on_overflow()
        return False

    def finish(self, frame: bytes) -> None:
        """Queue a last frame (a close frame) even past the limit, and close."""
        self._append(frame)
        self._closed = True

    def discard(self) -> None:
        """Drop everything queued and close (the socket is gone)."""
        self._closed = True
        self._buffer = b""

    def flush(self) -> bool:
        """Write what the kernel takes now; hand the rest to a task that waits to write.

        False if that took a task (a full socket), or the outbox is closed (its
        connection is closing, or the write broke and `on_broken` ran): then trio may
        have something to do that its wait for I/O would not see.
        """
        return _write([self])

    async def drained(self) -> None:
        """Wait until everything queued has been handed to the kernel (or dropped).

        Any number of tasks may wait: one waits for the socket, the others for it
        (trio allows one task at a time to wait for a socket to become writable).
        """
        while self._buffer:
            if self._waiter is not None:
                await self._waiter.wait()
                continue
            self._waiter = waiter = trio.Event()
            self._blocked = True
            try:
                await trio.lowlevel.wait_writable(self._sock)
            except trio.ClosedResourceError:
                # An open socket: its connection's read deadline interrupted every wait
                # (`Deadlines`); try again. A closed one: the connection ended.
                if self._sock.fileno() == -1:
                    raise
            finally:
                self._blocked = False
                self._waiter = None
                waiter.set()
            self._write_now()

    def _append(self, frame: bytes) -> None:
        buffer = self._buffer
        if not buffer:
            if not self._blocked:
                self._dirty.append(self)
            self._buffer = bytes(frame)
        else:
            if isinstance(buffer, bytes):
                self._buffer = buffer = bytearray(buffer)
            buffer += frame

    def _write_now(self) -> bool:
        """One non-blocking send of everything pending; True if nothing is left."""
        buffer = self._buffer
        try:
            sent = self._sock.send(buffer)
        except OSError as exc:
            return self._send_failed(exc)
        if sent == len(buffer):
            self._buffer = b""
            return True
        self._keep_unsent(buffer, sent)
        return False

    def _unsent(self, buffer: bytes | bytearray, outcome: int | OSError) -> None:
        """After a `send` of `buffer` (all pending) that wrote `outcome` bytes, fewer than
        all, or raised `outcome`: a task of the flusher waits to write the rest, unless
        the socket is broken (then the outbox is discarded and `on_broken` ran)."""
        if isinstance(outcome, OSError):
            if self._send_failed(outcome):
                return
        else:
            self._keep_unsent(buffer, outcome)
        self._blocked = True
        self._flusher.spawn(self._drain)

    def _send_failed(self, exc: OSError) -> bool:
        """After a `send` raised: False if it may be retried later (the socket is full),
        True if the outbox was discarded (the socket is broken, `on_broken` ran)."""
        if isinstance(exc, (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError)):
            return False  # TLS: the same bytes go again later (the buffer only grows)
        self.discard()
        self._on_broken()
        return True

    def _keep_unsent(self, buffer: bytes | bytearray, sent: int) -> None:
        """Keep what a `send` of `buffer` left unwritten, after its first `sent` bytes."""
        if isinstance(buffer, bytes):  # the rest of a lone offer: ours to grow from now on
            self._buffer = bytearray(memoryview(buffer)[sent:])
        else:
            del buffer[:sent]

    async def _drain(self) -> None:
        try:
            await self.drained()
        except trio.ClosedResourceError:
            self.discard()  # the connection closed the socket while we waited


class Fanout:
    """A room's recipients by subscriber id: `offer` queues one `bytes` object to each.

    A recipient is its `send_frame` callable; the gateway's own, an outbox's
    `offer_bytes`, is recognised when added and then written by `offer`
    itself, in its loop: a broadcast makes no Python call per gateway
    connection (docs/benchmarks.md, "Issue #15, session 11"). Each recipient
    gets the frames in one append, so what a connection is sent stays in
    the order it was queued in.
    """

    __slots__ = ("_others", "_outboxes")

    def __init__(self) -> None:
        self._outboxes: dict[str, Outbox] = {}
        self._others: dict[str, Callable[[bytes], bool]] = {}

    def __len__(self) -> int:
        return len(self._outboxes) + len(self._others)

    def __contains__(self, recipient_id: object) -> bool:
        return recipient_id in self._outboxes or recipient_id in self._others

    def add(self, recipient_id: str, send_frame: Callable[[bytes], bool]) -> None:
        """Add (or replace) a recipient: `send_frame` takes a `bytes` object and returns
        False once it refuses (closed), as `Outbox.offer_bytes` does."""
        self.remove(recipient_id)
        outbox = getattr(send_frame, "__self__", None)
        if isinstance(outbox, Outbox) and send_frame == outbox.offer_bytes:
            self._outboxes[recipient_id] = outbox
        else:
            self._others[recipient_id] = send_frame

    def remove(self, recipient_id: str) -> None:
        """Forget a recipient (nothing if it is not one)."""
        self._outboxes.pop(recipient_id, None)
        self._others.pop(recipient_id, None)

    def offer(self, frames: bytes, skip: str | None = None) -> list[str]:
        """Queue `frames` to every recipient but `skip`; returns those that refused, which
        are removed (their connections are closing)."""
        refused: list[Outbox] = []
        if skip is None:
            size = len(frames)
            for outbox in self._outboxes.values():
                # `Outbox.offer_bytes`, inlined: this runs once per delivery.
                if outbox._buffer or outbox._closed or outbox._blocked:
                    if outbox._offer_more(frames):
                        continue
                else:
                    outbox._buffer = frames
                    outbox._dirty.append(outbox)
                    if size <= outbox.limit:
                        continue
                    outbox._overflowed()
                refused.append(outbox)
        else:
            for recipient_id, outbox in self._outboxes.items():
                if recipient_id != skip and not outbox.offer_bytes(frames):
                    refused.append(outbox)
        closed = (
            [rid for rid, outbox in self._outboxes.items() if outbox in refused] if refused else []
        )
        closed += [rid for rid, send in self._others.items() if rid != skip and not send(frames)]
        for recipient_id in closed:
            self.remove(recipient_id)
        return closed


class Flusher:
    """Writes every outbox that got frames during a scheduling round, at the round's end.

    The writes run in an instrument hook that trio calls once per round after
    every runnable task has run, just before it waits for I/O (`RoundEnd`),
    so frames queued in the same round go out in one `send` per connection
    and no task is woken for it: a lone message's ack and delivery leave in
    the round that queued them.

    It also owns the tasks of outboxes whose socket is full (`spawn`), so an
    idle connection needs no nursery of its own. Its `run` task holds them,
    and fails (for its supervisor to restart) if a round's writes raised.
    """

    def __init__(self) -> None:
        self.dirty: list[Outbox] = []
        """Outboxes that got frames since the last round's end, each once (an outbox
        appends itself when it goes from empty to not empty). One list for the
        flusher's life: every outbox holds it, so marking is a plain list append."""
        self._nursery: trio.Nursery | None = None
        self._round_end = RoundEnd(self._flush)
        self._failed = trio.Event()
        self._failure: BaseException | None = None

    def spawn(self, drain: Callable[[], Awaitable[None]]) -> None:
        """Run `drain` in a task of the flusher (it ends when the outbox is written or closed)."""
        if self._nursery is None:
            raise RuntimeError("the flusher is not running")
        self._nursery.start_soon(drain)

    async def run(
        self, *, task_status: trio.TaskStatus[Flusher] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Flush at the end of every round until cancelled; the readiness value is the
        flusher itself."""
        self._failed, self._failure = trio.Event(), None  # a restart starts afresh
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            trio.lowlevel.add_instrument(self._round_end)
            try:
                task_status.started(self)
                await self._failed.wait()
                assert self._failure is not None
                raise self._failure
            finally:
                trio.lowlevel.remove_instrument(self._round_end)
                self._nursery = None

    def _flush(self) -> None:
        # In the run loop, between rounds (`RoundEnd`): whatever makes a task runnable
        # here (a drain task, a broken socket's connection, a failure) also wakes the loop.
        if not self.dirty:
            return
        dirty = self.dirty.copy()
        self.dirty.clear()
        try:
            if _write(dirty):
                return
        except BaseException as exc:  # trio would drop the hook and log it: fail `run`
            self._failure = exc
            self._failed.set()
        trio.lowlevel.current_trio_token().run_sync_soon(_nothing)


def _write(outboxes: list[Outbox]) -> bool:
    """`Outbox.flush` of each of `outboxes`; False if any of those returned False.

    The flusher runs this over every dirty outbox of every round, so the common
    case (everything pending fits the kernel's buffer) is written here, in the
    loop: one `send` per outbox and no Python call (docs/benchmarks.md, "Issue
    #15, session 9: fan-out per delivery").
    """
    done = True
    for outbox in outboxes:
        buffer = outbox._buffer
        if outbox._blocked or not buffer:
            continue
        try:
            sent = outbox._sock.send(buffer)
        except OSError as exc:
            outbox._unsent(buffer, exc)
            done = False
            continue
        if sent == len(buffer):
            outbox._buffer = b""
            if outbox._closed:  # a closing connection's last frames went
                done = False
        else:
            outbox._unsent(buffer, sent)
            done = False
    return done


def _nothing() -> None:
    """Run through trio's entry queue only to end its wait for I/O."""
