"""Run-time settings reach WebSockets that are already open (the gateway end to end)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from chorus import protocol
from chorus.protocol import ErrorCode
from tests.e2e.node import ChatUser, RunningNode, chat_user, open_node
from tests.e2e.test_ratelimit import Connection, joined
from tests.wsclient import ws_connect


async def change_settings(running: RunningNode, admin: ChatUser, body: dict[str, Any]) -> None:
    """As a server admin, through the SDK."""
    await running.node.services.store.set_server_role(admin.id, "admin")
    changed = await admin.api.admin_update_settings(**body)
    for name, value in body.items():
        assert changed[name]["source"] == ("config" if value is None else "store")


@asynccontextmanager
async def member_and_admin(
    tmp_path: Path,
) -> AsyncIterator[tuple[RunningNode, ChatUser, ChatUser, str]]:
    """A node, two users (the second to be made an admin) and a public room of the first."""
    async with (
        open_node(tmp_path) as running,
        chat_user(running) as ada,
        chat_user(running) as root,
    ):
        room = (await ada.api.create_room("general", "public")).id
        yield running, ada, root, room


async def first_not_presence(connection: Connection) -> protocol.ServerFrame:
    """The next frame that is not a presence event (they come as users connect)."""
    while isinstance(frame := await connection.next_reply(), protocol.PresenceEvent):
        pass
    return frame


async def test_an_open_socket_gets_the_new_message_limit_at_once(tmp_path: Path) -> None:
    async with member_and_admin(tmp_path) as (running, ada, root, room):
        async with joined(running, ada, room) as socket:
            long = protocol.Send(ref="s1", room=room, client_id="s1", body="x" * 11)
            await socket.send(long)
            first = await socket.reply_to("s1")
            assert isinstance(first, protocol.Ack)
            await change_settings(running, root, {"max_message_chars": 10})
            await socket.send(protocol.Send(ref="s2", room=room, client_id="s2", body="x" * 11))
            refused = await socket.reply_to("s2")
            assert isinstance(refused, protocol.ErrorReply)
            assert refused.code == ErrorCode.INVALID_VALUE
            assert "max_message_chars" in refused.message
            assert first.message is not None
            edit = protocol.Edit(
                ref="e1", room=room, message=first.message.id, client_id="e1", body="y" * 11
            )
            await socket.send(edit)
            refused = await socket.reply_to("e1")
            assert isinstance(refused, protocol.ErrorReply)
            assert refused.code == ErrorCode.INVALID_VALUE
            await socket.send(protocol.Send(ref="s3", room=room, client_id="s3", body="x" * 10))
            assert isinstance(await socket.reply_to("s3"), protocol.Ack)
        assert [m.body for m in await ada.api.history(room)] == ["x" * 11, "x" * 10]


async def test_an_open_socket_gets_the_new_send_rate_at_once(tmp_path: Path) -> None:
    async with (
        member_and_admin(tmp_path) as (running, ada, root, room),
        joined(running, ada, room) as socket,
    ):
        assert isinstance(await socket.post(room, "a0"), protocol.Ack)
        # A new limit counts from a full bucket of its own burst (one message here),
        # which refills at 1 message per 100 s: the next one is over it.
        await change_settings(running, root, {"sends_per_second": 0.01, "send_burst": 1})
        assert isinstance(await socket.post(room, "a1"), protocol.Ack)
        refused = await socket.post(room, "a2")
        assert isinstance(refused, protocol.ErrorReply)
        assert refused.code == ErrorCode.RATE_LIMITED


async def test_the_server_notice_follows_ready_and_reaches_open_sockets_when_it_changes(
    tmp_path: Path,
) -> None:
    async with (
        member_and_admin(tmp_path) as (running, ada, root, room),
        joined(running, ada, room) as before,
    ):
        await change_settings(running, root, {"server_notice": "Maintenance at 22:00 UTC"})
        notice = await first_not_presence(before)
        assert notice == protocol.Notice(code="info", message="Maintenance at 22:00 UTC")
        assert ada.api.session is not None
        async with ws_connect(running.gateway_port) as ws:
            after = Connection(ws)
            await after.send(protocol.Hello(token=ada.api.session.access_token))
            assert isinstance(await after.next_reply(), protocol.Ready)
            assert await first_not_presence(after) == notice
        await change_settings(running, root, {"server_notice": None})
        await before.send(protocol.Ping(nonce="n"))
        assert isinstance(await first_not_presence(before), protocol.Pong)  # none for ""
