"""The outbox over a real socket pair: a full kernel buffer, and tasks waiting for it to drain."""

from __future__ import annotations

import socket

import trio

from chorus.gateway._outbox import Flusher, Outbox

CHUNK = b"x" * 65536
CHUNKS = 64  # 4 MiB: far more than a socket pair's kernel buffers hold


def _never() -> None:
    raise AssertionError("not expected here")


async def test_several_tasks_may_wait_for_a_full_socket_to_drain(nursery: trio.Nursery) -> None:
    flusher: Flusher = await nursery.start(Flusher().run)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        theirs.setblocking(False)
        outbox = Outbox(
            ours, flusher, limit=CHUNKS * len(CHUNK), on_overflow=_never, on_broken=_never
        )
        for _ in range(CHUNKS):
            assert outbox.offer(CHUNK)
        outbox.flush()  # writes what fits; a task of the flusher waits to write the rest
        assert outbox.pending > 0
        drained = trio.Semaphore(0)

        async def wait_for_it() -> None:
            await outbox.drained()
            drained.release()

        nursery.start_soon(wait_for_it)  # besides the flusher's own drain task
        nursery.start_soon(wait_for_it)
        received = 0
        with trio.fail_after(10):
            while received < CHUNKS * len(CHUNK):
                await trio.lowlevel.wait_readable(theirs)
                received += len(theirs.recv(1 << 20))
            await drained.acquire()
            await drained.acquire()
        assert outbox.pending == 0
        assert received == CHUNKS * len(CHUNK)


async def _receive(sock: socket.socket, size: int) -> bytes:
    received = bytearray()
    with trio.fail_after(10):
        while len(received) < size:
            await trio.lowlevel.wait_readable(sock)
            received += sock.recv(1 << 20)
    return bytes(received)


async def test_frames_shared_by_recipients_are_never_changed(nursery: trio.Nursery) -> None:
    """A lone offer is kept by reference (a broadcast's bytes, shared by every recipient):
    later offers to one outbox must not change what the others are sent."""
    flusher: Flusher = await nursery.start(Flusher().run)
    first, second = socket.socketpair(), socket.socketpair()
    with first[0], first[1], second[0], second[1]:
        outboxes = []
        for ours, theirs in (first, second):
            ours.setblocking(False)
            theirs.setblocking(False)
            outboxes.append(
                Outbox(ours, flusher, limit=1 << 20, on_overflow=_never, on_broken=_never)
            )
        shared = b"broadcast;"
        # Typed callers pass `bytes`; one that passes a bytearray anyway may change it later.
        mutable = bytearray(b"pong;")
        assert outboxes[1].offer(mutable)  # type: ignore[arg-type]
        assert all(outbox.offer(shared) for outbox in outboxes)
        assert outboxes[0].offer(b"ack;")  # in the same round: appended after the broadcast
        mutable[:] = b"XXXX;"
        assert shared == b"broadcast;"
        assert await _receive(first[1], 14) == b"broadcast;ack;"
        assert await _receive(second[1], 15) == b"pong;broadcast;"


async def test_a_lone_offer_written_in_part_is_finished_in_order(nursery: trio.Nursery) -> None:
    """A lone offer larger than the kernel takes at once: the rest, and what is offered
    while it waits, follow in order."""
    flusher: Flusher = await nursery.start(Flusher().run)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        theirs.setblocking(False)
        big = bytes(range(256)) * (CHUNKS * len(CHUNK) // 256)
        outbox = Outbox(ours, flusher, limit=2 * len(big), on_overflow=_never, on_broken=_never)
        assert outbox.offer(big)
        outbox.flush()  # writes what fits; a task of the flusher waits to write the rest
        assert 0 < outbox.pending < len(big)
        assert outbox.offer(b"after")
        assert await _receive(theirs, len(big) + 5) == big + b"after"
        assert outbox.pending == 0
