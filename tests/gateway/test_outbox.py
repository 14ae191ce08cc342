"""The outbox over a real socket pair: a full kernel buffer, and tasks waiting for it to drain."""

from __future__ import annotations

import functools
import socket

import pytest
import trio
import trio.testing

from chorus.gateway._outbox import Fanout, Flusher, Outbox

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
        assert all(outbox.offer_bytes(shared) for outbox in outboxes)  # `send_frame`
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


class _OtherTaskSteps(trio.abc.Instrument):
    """Counts the steps of every task but one."""

    def __init__(self, mine: trio.lowlevel.Task) -> None:
        self.mine = mine
        self.count = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.count += task is not self.mine


async def test_frames_queued_in_a_round_are_written_at_its_end_without_a_task(
    nursery: trio.Nursery,
) -> None:
    flusher: Flusher = await nursery.start(Flusher().run)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        theirs.setblocking(False)
        outbox = Outbox(ours, flusher, limit=1 << 20, on_overflow=_never, on_broken=_never)
        steps = _OtherTaskSteps(trio.lowlevel.current_task())
        trio.lowlevel.add_instrument(steps)
        try:
            for frame in (b"ack", b"message"):
                assert outbox.offer(frame)
                await trio.lowlevel.checkpoint()  # the round ends: the frame is sent
                assert theirs.recv(100) == frame
            assert steps.count == 0  # no task was woken to write them
        finally:
            trio.lowlevel.remove_instrument(steps)


async def test_a_write_that_breaks_at_the_end_of_a_round_wakes_the_connection(
    nursery: trio.Nursery,
) -> None:
    # Written between rounds: the connection's task made runnable there must not wait
    # for an I/O event or deadline that may never come.
    flusher: Flusher = await nursery.start(Flusher().run)
    ours, theirs = socket.socketpair()
    with ours:
        ours.setblocking(False)
        theirs.close()
        broken = trio.Event()
        outbox = Outbox(ours, flusher, limit=1 << 20, on_overflow=_never, on_broken=broken.set)
        assert outbox.offer(b"lost")
        started = trio.current_time()
        with trio.fail_after(30):
            await broken.wait()
        # Not woken by the loop's next deadline (this one), which can be far off.
        assert trio.current_time() - started < 5
        assert outbox.closed


async def test_an_offer_over_the_limit_closes_the_outbox_empty_or_not(
    nursery: trio.Nursery,
) -> None:
    # An empty outbox takes a broadcast on a path of its own: the limit holds there too,
    # and in both cases what was queued is still written, the overflowing offer with it.
    flusher: Flusher = await nursery.start(Flusher().run)
    for queued in (b"", b"ack"):
        ours, theirs = socket.socketpair()
        with ours, theirs:
            ours.setblocking(False)
            overflows: list[bytes] = []
            outbox = Outbox(
                ours,
                flusher,
                limit=8,
                on_overflow=functools.partial(overflows.append, queued),
                on_broken=_never,
            )
            if queued:
                assert outbox.offer(queued)
            assert not outbox.offer(b"too big a frame")
            assert overflows == [queued]
            assert outbox.closed
            assert not outbox.offer(b"late")  # refused, not queued
            assert overflows == [queued]  # and reported once
            assert await _receive(theirs, len(queued) + 15) == queued + b"too big a frame"
            await trio.testing.wait_all_tasks_blocked()
            assert outbox.pending == 0


async def test_a_fanout_queues_one_bytes_to_each_recipient_and_drops_refusals(
    nursery: trio.Nursery,
) -> None:
    # Outboxes are written by the fan-out's own loop, other recipients through their
    # callable: each gets the frames once, after what it had queued, and one that is
    # closed or goes over its limit is refused, dropped and named.
    flusher: Flusher = await nursery.start(Flusher().run)
    pairs = [socket.socketpair() for _ in range(4)]
    try:
        overflowed: list[int] = []
        outboxes = []
        for n, (ours, _) in enumerate(pairs):
            ours.setblocking(False)
            outboxes.append(
                Outbox(
                    ours,
                    flusher,
                    limit=4 if n == 2 else 1 << 20,
                    on_overflow=functools.partial(overflowed.append, n),
                    on_broken=_never,
                )
            )
        other: list[bytes] = []

        def other_send(frames: bytes) -> bool:
            other.append(frames)
            return True

        fanout = Fanout()
        for n, outbox in enumerate(outboxes):
            fanout.add(f"c{n}", outbox.offer_bytes)
        fanout.add("other", other_send)
        assert len(fanout) == 5
        assert outboxes[1].offer(b"ack;")  # queued first: stays first
        outboxes[3].discard()  # a closed connection's
        assert fanout.offer(b"shared;") == ["c2", "c3"]
        assert overflowed == [2]
        assert len(fanout) == 3
        assert "c2" not in fanout
        assert "c0" in fanout
        assert other == [b"shared;"]
        assert fanout.offer(b"typing;", skip="c1") == []
        assert other == [b"shared;", b"typing;"]
        assert await _receive(pairs[0][1], 14) == b"shared;typing;"
        assert await _receive(pairs[1][1], 11) == b"ack;shared;"
        assert await _receive(pairs[2][1], 7) == b"shared;"  # the offer that overflowed
        await trio.testing.wait_all_tasks_blocked()
        pairs[1][1].setblocking(False)
        with pytest.raises(BlockingIOError):  # the skipped one got nothing more
            pairs[1][1].recv(100)
        fanout.remove("c0")
        fanout.remove("other")
        assert len(fanout) == 1
    finally:
        for ours, theirs in pairs:
            ours.close()
            theirs.close()
