"""`RespSubscriber`'s connection upkeep, against stand-in servers (virtual time)."""

from __future__ import annotations

import functools

import trio
import trio.testing

from chorus.cluster._subscriber import KEEPALIVE, RespSubscriber

SILENT_PINGS = 3
"""A subscriber's connection is given up after three keep-alives without a reply."""


class StandIn:
    """A TCP server that records when each connection opens and answers `PING`s (or not)."""

    def __init__(self, *, answers: bool) -> None:
        self.answers = answers
        self.opened: list[float] = []
        self.changed = trio.Event()

    async def handle(self, stream: trio.SocketStream) -> None:
        self.opened.append(trio.current_time())
        self.changed.set()
        self.changed = trio.Event()
        try:
            while data := await stream.receive_some(4096):
                if self.answers:
                    await stream.send_all(b"+PONG\r\n" * data.count(b"PING"))
        except trio.BrokenResourceError:
            pass

    async def wait_for(self, connections: int) -> None:
        with trio.fail_after(600):
            while len(self.opened) < connections:
                await self.changed.wait()


async def subscribed_for(seconds: float, server: StandIn) -> None:
    async with trio.open_nursery() as nursery:
        serve = functools.partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1")
        [listener] = await nursery.start(serve)
        port = listener.socket.getsockname()[1]
        subscriber = RespSubscriber(f"redis://127.0.0.1:{port}/0", lambda channel, body: None)
        await nursery.start(subscriber.run)
        await subscriber.subscribe("room:r_1")  # unanswered: returns after its timeout
        with trio.move_on_after(seconds):
            await server.wait_for(3)
        nursery.cancel_scope.cancel()


async def test_a_connection_silent_for_three_keep_alives_is_reopened(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = StandIn(answers=False)
    await subscribed_for(60, server)
    assert len(server.opened) == 3
    first, second, third = server.opened
    assert SILENT_PINGS * KEEPALIVE <= second - first <= (SILENT_PINGS + 1) * KEEPALIVE
    assert SILENT_PINGS * KEEPALIVE <= third - second <= (SILENT_PINGS + 1) * KEEPALIVE


async def test_a_connection_that_answers_its_keep_alives_stays_open(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = StandIn(answers=True)
    await subscribed_for(20 * KEEPALIVE, server)
    assert len(server.opened) == 1
