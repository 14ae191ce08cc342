"""`RespSubscriber`: the bus's receiving side on one Redis server, natively on trio.

Why not coredis' pub/sub client: it hands each message through two memory
streams (its reader task, then its consumer task, then `get_message`), and
each hop waits for a pass of trio's scheduler. A node therefore took in at
most one bus message per scheduler pass, and a busy node has hundreds of
runnable tasks per pass: publications queued up behind the node's own work
(docs/benchmarks.md, "Scale-out tail latency"). Here one task reads the
socket and hands every message of a read to `deliver`, in the order Redis
sent them, in one task step however many the read holds.

It speaks RESP2 on its own connection, which is in subscribed mode for its
whole life, so the only replies are subscription acknowledgements, messages
and the answers to its keep-alive `PING`s. The connection is reopened with
backoff when it fails or falls silent; what was published meanwhile is lost
(pub/sub is at most once), which room actors repair from the store.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
import trio

from ._connection import Ready, ReplyError, RespConnection, encode_command

_log = structlog.get_logger("chorus.cluster")

Dispatch = Callable[[bytes, bytes], None]
"""Called with the channel and payload of each message, in order; must not block."""

SUBSCRIBE_TIMEOUT = 5.0
"""Seconds `subscribe` waits for Redis to confirm before returning anyway."""
KEEPALIVE = 5.0
"""Seconds between `PING`s; a connection silent for three of them is reopened."""


class RespSubscriber(RespConnection):
    """Subscribes to channels of one Redis server and calls `dispatch` for their messages.

    `url` is a `redis://` or `rediss://` URL as `open_redis_bus` takes them
    (user and password, `ssl_ca_certs`); `run` keeps the connection open.
    Guarantee: messages are dispatched in the order Redis sent them, each once;
    a channel is subscribed on every connection from `subscribe` until
    `unsubscribe`.
    """

    def __init__(self, url: str, dispatch: Dispatch) -> None:
        super().__init__(url, timeout=3 * KEEPALIVE)
        self._dispatch = dispatch
        self._channels: set[bytes] = set()
        self._acks: dict[bytes, list[trio.Event]] = {}
        self._sending = trio.Lock()  # a trio stream allows one sender at a time

    async def subscribe(self, channel: str) -> None:
        """Subscribe, and return once Redis confirmed it (or after `SUBSCRIBE_TIMEOUT`, or
        at once while Redis is away: the channel is subscribed when it is back)."""
        name = channel.encode()
        self._channels.add(name)
        confirmed = trio.Event()
        self._acks.setdefault(name, []).append(confirmed)
        if await self._send([b"SUBSCRIBE", name]):
            with trio.move_on_after(SUBSCRIBE_TIMEOUT):
                await confirmed.wait()

    async def unsubscribe(self, channel: str) -> None:
        """Stop subscribing (messages already on the way may still be dispatched)."""
        name = channel.encode()
        self._channels.discard(name)
        await self._send([b"UNSUBSCRIBE", name])

    async def _serve(self, stream: trio.abc.Stream, connection: trio.Nursery, ready: Ready) -> None:
        """Subscribe to every channel again, `PING` to notice silence, dispatch."""
        if self._channels:
            await self._send([b"SUBSCRIBE", *sorted(self._channels)])
        ready()
        connection.start_soon(self._keep_alive)
        await self._read(stream)

    def _connect_failed(self, error: BaseException) -> None:
        _log.warning("bus.subscriber_connect_failed", error=repr(error))

    def _lost(self, error: BaseException) -> None:
        _log.warning("bus.subscriber_lost", error=repr(error))

    def _closed(self, *, failed: bool) -> None:
        """Nobody waits for the connection's confirmations any more."""
        for waiting in self._acks.values():
            for confirmed in waiting:
                confirmed.set()
        self._acks.clear()

    async def _send(self, command: list[bytes]) -> bool:
        """Send on the current connection; False if there is none or it failed (the
        reader then reconnects, and subscribes to `_channels` again)."""
        stream = self._stream
        if stream is None:
            return False
        try:
            async with self._sending:
                await stream.send_all(encode_command(command))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return False
        return True

    async def _keep_alive(self) -> None:
        while True:
            await trio.sleep(KEEPALIVE)
            await self._send([b"PING"])

    def _replied(self, replies: list[object]) -> None:
        for reply in replies:
            self._handle(reply)

    def _handle(self, reply: object) -> None:
        if not isinstance(reply, list) or len(reply) < 2:
            if isinstance(reply, ReplyError):
                _log.warning("bus.subscriber_error_reply", error=str(reply))
            return
        kind = reply[0]
        if kind == b"message" and len(reply) == 3:
            self._dispatch(reply[1], reply[2])
        elif kind == b"subscribe":
            for confirmed in self._acks.pop(reply[1], ()):
                confirmed.set()
