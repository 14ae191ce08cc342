"""A loopback TCP proxy that cuts the connections carrying a given request: a real network fault.

Tests put it between a client and a real server (moto) to make exactly one
kind of request fail (say, the upload of part 2) while every other request,
before and after, goes through untouched.
"""

from __future__ import annotations

import trio

from tests.ports import free_port


class CuttingProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`upstream_port`.

    A connection on which the client sends `cut_on` is closed both ways at
    once, before those bytes reach the server; `cuts` counts how often.
    """

    def __init__(self, upstream_port: int, *, cut_on: bytes) -> None:
        self.port = free_port()
        self.cuts = 0
        self._upstream_port = upstream_port
        self._cut_on = cut_on

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, client: trio.SocketStream) -> None:
        server = await trio.open_tcp_stream("127.0.0.1", self._upstream_port)
        async with client, server, trio.open_nursery() as nursery:
            nursery.start_soon(self._upward, client, server, nursery.cancel_scope)
            nursery.start_soon(_pump, server, client, nursery.cancel_scope)

    async def _upward(
        self, client: trio.SocketStream, server: trio.SocketStream, scope: trio.CancelScope
    ) -> None:
        tail = b""  # the pattern may straddle two reads
        try:
            async for data in client:
                window = tail + data
                if self._cut_on in window:
                    self.cuts += 1
                    break
                await server.send_all(data)
                tail = window[-len(self._cut_on) :]
        except trio.BrokenResourceError:
            pass
        scope.cancel()


async def _pump(
    source: trio.SocketStream, sink: trio.SocketStream, scope: trio.CancelScope
) -> None:
    try:
        async for data in source:
            await sink.send_all(data)
    except trio.BrokenResourceError:
        pass
    scope.cancel()
