"""The outbound hot path: per-connection byte buffers flushed by one task per node.

Appending a frame never waits and wakes nobody but the flusher, at most once
per round; the flusher writes each dirty connection's pending bytes with one
non-blocking `send` per round, however many frames were queued to it. Only a
connection whose kernel buffer is full gets a task of its own, which waits
for writability (DESIGN.md §8). A round waits for one scheduling pass, no
longer: a busy node's passes are longer and carry more frames per write. A
broadcast's frames are one `bytes` object that every recipient's outbox keeps
by reference until it is written.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable, Callable

import trio


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

        `frames` is kept by reference until written, never changed: a broadcast
        offers the same `bytes` to every recipient.
        """
        if self._closed:
            return False
        # `_append`, inlined: this runs once per recipient of every broadcast, so it
        # marks itself dirty with a list append, not a Python call (only the first
        # outbox of a round calls the flusher, to wake it).
        buffer = self._buffer
        if not buffer:
            if not self._blocked:
                dirty = self._dirty
                if not dirty:
                    self._flusher.wake()
                dirty.append(self)
            # Kept as it is (a copy only if it could change: a `bytearray`).
            self._buffer = buffer = frames if type(frames) is bytes else bytes(frames)
        else:
            if isinstance(buffer, bytes):  # a second offer: from now on, one that grows
                self._buffer = buffer = bytearray(buffer)
            buffer += frames
        if len(buffer) > self.limit:
            self._closed = True
            self._on_overflow()
            return False
        return True

    def finish(self, frame: bytes) -> None:
        """Queue a last frame (a close frame) even past the limit, and close."""
        self._append(frame)
        self._closed = True

    def discard(self) -> None:
        """Drop everything queued and close (the socket is gone)."""
        self._closed = True
        self._buffer = b""

    def flush(self) -> None:
        """Write what the kernel takes now; hand the rest to a task that waits to write."""
        if self._blocked or not self._buffer or self._write_now():
            return
        self._blocked = True
        self._flusher.spawn(self._drain)

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
            finally:
                self._blocked = False
                self._waiter = None
                waiter.set()
            self._write_now()

    def _append(self, frame: bytes) -> None:
        buffer = self._buffer
        if not buffer:
            if not self._blocked:
                if not self._dirty:
                    self._flusher.wake()
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
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return False  # TLS: the same bytes go again later (the buffer only grows)
        except OSError:
            self.discard()
            self._on_broken()
            return True
        if sent == len(buffer):
            self._buffer = b""
            return True
        if isinstance(buffer, bytes):  # the rest of a lone offer: ours to grow from now on
            self._buffer = bytearray(memoryview(buffer)[sent:])
        else:
            del buffer[:sent]
        return False

    async def _drain(self) -> None:
        try:
            await self.drained()
        except trio.ClosedResourceError:
            self.discard()  # the connection closed the socket while we waited


class Flusher:
    """Writes every outbox that got frames since its last round, once per round.

    A round starts when an outbox gets a frame and first lets every runnable
    task run once (one scheduling pass), so frames queued in the same pass go
    out in one `send` per connection. Under load a pass is longer and holds
    more frames, so batching grows with the load and never waits otherwise.

    It also owns the tasks of outboxes whose socket is full (`spawn`), so an
    idle connection needs no nursery of its own.
    """

    def __init__(self) -> None:
        self.dirty: list[Outbox] = []
        """Outboxes that got frames since the last round, each once (an outbox appends
        itself when it goes from empty to not empty). Whoever makes it non-empty calls
        `wake`: the flusher parks only while it is empty."""
        self._idle = trio.lowlevel.ParkingLot()
        self._parked = False
        self._nursery: trio.Nursery | None = None

    def spawn(self, drain: Callable[[], Awaitable[None]]) -> None:
        """Run `drain` in a task of the flusher (it ends when the outbox is written or closed)."""
        if self._nursery is None:
            raise RuntimeError("the flusher is not running")
        self._nursery.start_soon(drain)

    def wake(self) -> None:
        """Called by the outbox that is about to make `dirty` non-empty: start a round."""
        if self._parked:  # a plain flag: `ParkingLot.__len__` is a Python call
            self._parked = False
            self._idle.unpark()

    async def run(
        self, *, task_status: trio.TaskStatus[Flusher] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Flush until cancelled; the readiness value is the flusher itself."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                task_status.started(self)
                await self._flush_rounds()
            finally:
                self._nursery = None

    async def _flush_rounds(self) -> None:
        dirty = self.dirty  # one list for the flusher's life: outboxes hold it too
        while True:
            if dirty:
                # Let every runnable task append first, so one send carries it all.
                await trio.lowlevel.checkpoint()
            else:
                self._parked = True
                await self._idle.park()
            round_ = dirty.copy()
            dirty.clear()
            for outbox in round_:
                outbox.flush()
