"""What a gateway still holds after N WebSocket connections opened and closed.

Usage: python bench/churn_heap.py [--connections N]

Runs a bare gateway (`chorus.gateway.Gateway`, a handler that does nothing)
in this process and, from the same process, opens N connections over
loopback, 50 at a time: upgrade, then a close frame, then wait for the
server's close. Once the gateway has no connection left and after a full
garbage collection, it prints the Python heap (tracemalloc) still held
compared with just before the N (100 connections warm it up first) and how
many `Connection` objects are still alive. A closed connection should leave
nothing behind. Before session 10 the deadline timer's heap held each one
until its entry came up: here a few seconds after it closed (these
connections live under the 5 s of their first entry); a chat connection that
lived longer, up to its heartbeat deadline (60 s by default).
See docs/benchmarks.md, "Issue #15, session 10: the deadline timer under
churn, and idle memory".
"""

from __future__ import annotations

import argparse
import gc
import logging
import tracemalloc

import structlog
import trio
import trio.testing

from chorus.gateway import Connection, Gateway, GatewayConfig

_UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: chorus.v1\r\n\r\n"
)
_CLOSE = bytes([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8])  # close 1000, masked with a zero key
_AT_ONCE = 50


class _Quiet:
    def __init__(self, conn: Connection) -> None:
        del conn

    async def on_text(self, text: str) -> None:
        pass

    def on_ping(self) -> bool:
        return True

    async def on_disconnect(self) -> None:
        pass


async def _once(port: int) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(_UPGRADE)
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += await stream.receive_some(4096)
    await stream.send_all(_CLOSE)
    while await stream.receive_some(4096):
        pass
    await stream.aclose()


async def _churn(gateway: Gateway, port: int, count: int) -> None:
    for _ in range(count // _AT_ONCE):
        async with trio.open_nursery() as clients:
            for _ in range(_AT_ONCE):
                clients.start_soon(_once, port)
    with trio.fail_after(10):
        while gateway.connections:
            await trio.testing.wait_all_tasks_blocked()
    gc.collect()


async def _main(count: int) -> None:
    gateway = Gateway(GatewayConfig(port=0), _Quiet)
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.supervisor().run)
        assert gateway.address is not None
        port = gateway.address[1]
        await _churn(gateway, port, 100)
        tracemalloc.start(1)
        before = tracemalloc.get_traced_memory()[0]
        start = trio.current_time()
        with trio.fail_after(600):
            await _churn(gateway, port, count)
        held = tracemalloc.get_traced_memory()[0] - before
        alive = sum(isinstance(thing, Connection) for thing in gc.get_objects())
        print(
            f"{count:,} connections opened and closed in {trio.current_time() - start:.1f} s:"
            f" {held:,} B still held, {alive:,} Connection objects alive"
        )
        nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000, help="N (a multiple of 50)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    trio.run(_main, args.connections)


if __name__ == "__main__":
    main()
