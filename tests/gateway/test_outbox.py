"""The outbox over a real socket pair: a full kernel buffer, and tasks waiting for it to drain."""

from __future__ import annotations

import socket

import trio
import trio.testing

from chorus.gateway._outbox import MAX_WINDOW, Flusher, Outbox

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


def _received(sock: socket.socket) -> bytes:
    try:
        return sock.recv(1 << 20)
    except BlockingIOError:
        return b""


async def test_a_flush_round_waits_longer_only_after_a_saturated_pass(
    nursery: trio.Nursery, mock_clock: trio.testing.MockClock
) -> None:
    flusher: Flusher = await nursery.start(Flusher().run)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        theirs.setblocking(False)
        outbox = Outbox(ours, flusher, limit=1 << 20, on_overflow=_never, on_broken=_never)

        # A quick pass (no time passes while the tasks run): written at once, no window.
        assert outbox.offer(b"one")
        await trio.testing.wait_all_tasks_blocked()
        assert _received(theirs) == b"one"
        assert flusher.window == 0

        # A pass that takes 5 ms (a busy loop): still written in this round, but the next
        # round waits as long again for more frames.
        assert outbox.offer(b"two")
        mock_clock.jump(0.005)
        await trio.testing.wait_all_tasks_blocked()
        assert _received(theirs) == b"two"
        assert flusher.window == 0.005
        assert outbox.offer(b"three")
        await trio.testing.wait_all_tasks_blocked()
        assert outbox.offer(b"four")
        await trio.testing.wait_all_tasks_blocked()
        assert _received(theirs) == b""  # waiting for the window
        mock_clock.jump(0.005)
        await trio.testing.wait_all_tasks_blocked()
        assert _received(theirs) == b"threefour"  # one send, in order

        # That last pass was quick again: the window is off.
        assert flusher.window == 0
        assert outbox.offer(b"five")
        await trio.testing.wait_all_tasks_blocked()
        assert _received(theirs) == b"five"


async def test_a_window_is_dropped_after_a_quiet_spell(
    nursery: trio.Nursery, mock_clock: trio.testing.MockClock
) -> None:
    flusher: Flusher = await nursery.start(Flusher().run)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        theirs.setblocking(False)
        outbox = Outbox(ours, flusher, limit=1 << 20, on_overflow=_never, on_broken=_never)
        assert outbox.offer(b"busy")
        mock_clock.jump(0.005)
        await trio.testing.wait_all_tasks_blocked()
        assert flusher.window == 0.005
        mock_clock.jump(MAX_WINDOW * 2)  # then nothing to write for a while
        assert outbox.offer(b"after")
        await trio.testing.wait_all_tasks_blocked()
        assert _received(theirs) == b"busyafter"  # written at once, not held for the window


async def test_the_window_after_a_saturated_pass_is_bounded(
    nursery: trio.Nursery, mock_clock: trio.testing.MockClock
) -> None:
    flusher: Flusher = await nursery.start(Flusher().run)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        outbox = Outbox(ours, flusher, limit=1 << 20, on_overflow=_never, on_broken=_never)
        assert outbox.offer(b"stalled")
        mock_clock.jump(1.0)  # the node stalled for a second (a pause, another process)
        await trio.testing.wait_all_tasks_blocked()
        assert flusher.window == MAX_WINDOW
