"""SDK users with end-to-end encryption on (`E2EClient` + `RealtimeClient`) and what they got."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import trio

from chorus import protocol
from chorus.client import Event, HttpApi, RealtimeClient
from chorus.client.e2e import E2EClient, E2EProblem, Secured
from chorus.client.e2e._client import event_room
from tests.e2e.node import ChatUser

PASSWORD = "correct horse battery staple"
PASSPHRASE = "a key-file passphrase"


@attrs.define
class SecureUser(ChatUser):
    """A `ChatUser` whose client has end-to-end encryption on."""

    e2e: E2EClient = attrs.field(kw_only=True)

    def secured(self, room_id: str) -> list[Secured]:
        found = [e for e in self.received if isinstance(e, Secured)]
        return [e for e in found if event_room(e.event) == room_id]

    def texts(self, room_id: str) -> list[str]:
        """The plaintext of every message opened in the room, in order."""
        return [
            s.event.message.body
            for s in self.secured(room_id)
            if isinstance(s.event, protocol.MessageEvent) and s.problem is None
        ]

    def problems(self) -> list[E2EProblem]:
        return [e for e in self.received if isinstance(e, E2EProblem)]

    async def wait_for_text(self, room_id: str, text: str, *, timeout: float = 15) -> Secured:
        def opened(event: Event) -> bool:
            return (
                isinstance(event, Secured)
                and isinstance(event.event, protocol.MessageEvent)
                and event.event.message.room == room_id
                and event.event.message.body == text
            )

        found = await self.wait_for(opened, timeout=timeout)
        assert isinstance(found, Secured)
        return found


@asynccontextmanager
async def secure_user(
    http_url: str,
    gateway_url: str,
    key_file: Path,
    username: str | None = None,
    *,
    existing: bool = False,
) -> AsyncIterator[SecureUser]:
    """Register a fresh user (or, if `existing`, sign in again: another session), open
    its device from `key_file`, connect with encryption on, and collect its events."""
    async with HttpApi(http_url) as api:
        if existing:
            assert username is not None
            await api.login(username, PASSWORD)
        else:
            await api.register(username or f"user{secrets.token_hex(4)}", PASSWORD)
        e2e = await E2EClient.open(api, key_file, PASSPHRASE)
        async with connected(api, e2e, gateway_url) as user:
            yield user


@asynccontextmanager
async def connected(api: HttpApi, e2e: E2EClient, gateway_url: str) -> AsyncIterator[SecureUser]:
    """Connect a signed-in user whose device is open, and collect its events."""
    client = RealtimeClient(api, gateway_url=gateway_url, max_backoff=1.0, e2e=e2e)
    user = SecureUser(api, client, [], e2e=e2e)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(30):
            await nursery.start(client.run)
        nursery.start_soon(user.collect)
        try:
            yield user
        finally:
            nursery.cancel_scope.cancel()
