"""A real node in-process (real SQLite file, real sockets) and SDK users talking to it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import trio

from chorus import protocol
from chorus.client import ConnectionLost, Event, HttpApi, RealtimeClient, Reconnected, RoomEvent
from chorus.node import Addresses, Node
from tests.fixtures import open_test_node

PASSWORD = "correct horse battery staple"


@attrs.define
class RunningNode:
    node: Node
    addresses: Addresses

    @property
    def http_url(self) -> str:
        assert self.addresses.http is not None
        host, port = self.addresses.http
        return f"http://{host}:{port}"

    @property
    def gateway_port(self) -> int:
        assert self.addresses.gateway is not None
        return self.addresses.gateway[1]

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.gateway_port}/"


@asynccontextmanager
async def open_node(data_dir: Path, **overrides: object) -> AsyncIterator[RunningNode]:
    """Run a node until the block ends, then stop it gracefully."""
    async with open_test_node(data_dir, **overrides) as (node, addresses):
        yield RunningNode(node, addresses)


@attrs.define
class ChatUser:
    """A registered user with a live SDK connection and everything it received."""

    api: HttpApi
    client: RealtimeClient
    received: list[Event]
    changed: trio.Event = attrs.field(factory=trio.Event)
    outages: list[ConnectionLost | Reconnected] = attrs.field(factory=list)
    """The connection state changes the client reported, in order."""

    @property
    def id(self) -> str:
        return self.api.user.id

    def messages(self, room_id: str | None = None) -> list[protocol.Message]:
        return [
            event.message
            for event in self.received
            if isinstance(event, protocol.MessageEvent)
            and (room_id is None or event.message.room == room_id)
        ]

    async def wait_for_messages(
        self, count: int, room_id: str | None = None, *, timeout: float = 15
    ) -> None:
        with trio.fail_after(timeout):
            while len(self.messages(room_id)) < count:
                await self.changed.wait()

    def room_events(self, room_id: str) -> list[RoomEvent]:
        """Messages, edits, deletes and reactions received from the room, in arrival order."""
        return [
            frame
            for frame in self.received
            if isinstance(frame, RoomEvent)
            and (frame.message.room if isinstance(frame, protocol.MessageEvent) else frame.room)
            == room_id
        ]

    async def wait_for_room_events(
        self, room_id: str, count: int, *, timeout: float = 15
    ) -> list[RoomEvent]:
        with trio.fail_after(timeout):
            while len(events := self.room_events(room_id)) < count:
                await self.changed.wait()
        return events

    async def wait_for(self, found: Callable[[Event], bool], *, timeout: float = 15) -> Event:
        """The first received frame for which `found` is true, waiting for it if needed."""
        with trio.fail_after(timeout):
            while True:
                for frame in self.received:
                    if found(frame):
                        return frame
                await self.changed.wait()

    async def collect(self) -> None:
        async for event in self.client.events:
            if isinstance(event, ConnectionLost | Reconnected):
                self.outages.append(event)
            elif not isinstance(event, protocol.Notice | protocol.TooFar):
                self.received.append(event)
            self.changed.set()
            self.changed = trio.Event()


@asynccontextmanager
async def chat_user(
    running: RunningNode, username: str | None = None, *, existing: bool = False
) -> AsyncIterator[ChatUser]:
    """Register a fresh user (or, if `existing`, sign in again: another device of theirs),
    connect it, and collect its events until the block ends."""
    async with HttpApi(running.http_url) as api:
        if existing:
            assert username is not None
            await api.login(username, PASSWORD)
        else:
            await api.register(username or f"user{secrets.token_hex(4)}", PASSWORD)
        client = RealtimeClient(api, gateway_url=running.gateway_url)
        user = ChatUser(api, client, [])
        async with trio.open_nursery() as nursery:
            await nursery.start(client.run)
            nursery.start_soon(user.collect)
            try:
                yield user
            finally:
                nursery.cancel_scope.cancel()


async def connected_user(
    running: RunningNode, username: str, *, task_status: trio.TaskStatus[ChatUser]
) -> None:
    """`chat_user` as a task, for a user who outlives the node (restarts): cancel to end."""
    async with chat_user(running, username) as user:
        task_status.started(user)
        await trio.sleep_forever()
