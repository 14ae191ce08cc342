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
