"""Every WebSocket client frame type, for every standing, answers as docs/permissions.md says.

One real node (SQLite, real sockets). For each frame type and standing, a
fresh private room holds every standing (so one cell's change never decides
another's); the caller signs in with `hello`, joins when the frame needs it,
sends the frame and reads its answer: an `ack` (or the frame's own answer)
where the documented cell says yes, a refusal where it says no.
"""

from __future__ import annotations

import typing
from pathlib import Path

import orjson
import trio
from trio_websocket import WebSocketConnection

from chorus import protocol
from chorus.permissions import ANYONE, FRAME_ACTIONS, SIGNED_IN, Action, Who
from chorus.persistence import NewMessage, Role, RoomKind, User, now_ms
from tests.e2e.node import RunningNode, open_node
from tests.http.test_permission_matrix import documented
from tests.wsclient import ws_connect

REFUSALS = {protocol.ErrorCode.FORBIDDEN, protocol.ErrorCode.NOT_JOINED}
NEEDS_JOIN = {"send", "edit", "delete", "react", "typing", "leave"}


async def _users(running: RunningNode) -> tuple[dict[Who, User], dict[Who, str]]:
    store, auth = running.node.services.store, running.node.services.auth
    users, tokens = {}, {}
    for who in Who:
        user = await store.create_user(who.value.replace("_", ""), who.value, None, now_ms())
        users[who], tokens[who] = user, (await auth.open_session(user)).access_token
    await store.set_server_role(users[Who.SERVER_MODERATOR].id, "moderator")
    await store.set_server_role(users[Who.ADMIN].id, "admin")
    return users, tokens


async def _room(running: RunningNode, users: dict[Who, User]) -> tuple[str, dict[Who, str]]:
    """A private room with every standing; each member posted one message (before any
    ban or mute); their ids by standing (the outsider's: the owner's)."""
    store = running.node.services.store
    owner = users[Who.OWNER]
    room = await store.create_room("frames", RoomKind.PRIVATE, owner.id, now_ms())
    roles = {Who.MODERATOR: Role.MODERATOR}
    posted: dict[Who, str] = {}
    for who, user in users.items():
        if who is not Who.OUTSIDER:
            await store.add_member(room.id, user.id, roles.get(who, Role.MEMBER), now_ms())
            message = NewMessage(
                sender_id=user.id, body=who.value, client_id=f"{room.id}-{who.value}", created_at=1
            )
            (appended,) = await store.append_messages(room.id, [message])
            posted[who] = appended.message.id
    posted[Who.OUTSIDER] = posted[Who.OWNER]
    await store.set_muted(room.id, users[Who.MUTED].id, 0)
    await store.ban(room.id, users[Who.BANNED].id, owner.id, "", now_ms())
    return room.id, posted


def _frame(kind: str, room: str, mine: str, owners: str) -> protocol.ClientFrame:
    cid = f"c-{kind}"
    frames: dict[str, protocol.ClientFrame] = {
        "ping": protocol.Ping(nonce="n"),
        "presence": protocol.SetPresence(status="idle"),
        "join": protocol.Join(ref="f", room=room),
        "leave": protocol.Leave(ref="f", room=room),
        "resume": protocol.Resume(ref="f", rooms={room: 0}),
        "send": protocol.Send(ref="f", room=room, client_id=cid, body="hi"),
        "edit": protocol.Edit(ref="f", room=room, message=mine, client_id=cid, body="new"),
        "delete": protocol.Delete(ref="f", room=room, message=owners, client_id=cid),
        "react": protocol.React(ref="f", room=room, message=owners, client_id=cid, emoji="👍"),
        "mark_read": protocol.MarkRead(ref="f", room=room, seq=1),
        "typing": protocol.Typing(room=room),
        "to_device_ack": protocol.ToDeviceAck(ref="f", ids=("t_none",)),
    }
    return frames[kind]


async def _send(ws: WebSocketConnection, frame: protocol.ClientFrame) -> None:
    await ws.send_message(protocol.encode(frame).decode())


async def _until(ws: WebSocketConnection, done: typing.Callable[[object], bool]) -> list[object]:
    """Frames received up to and including the first for which `done` is true."""
    seen: list[object] = []
    with trio.fail_after(10):
        while not seen or not done(seen[-1]):
            seen.append(protocol.decode_server_frame(await ws.get_message()))
    return seen


def _answer(frame: object) -> bool:
    return isinstance(frame, protocol.Ack | protocol.ErrorReply) and frame.ref in ("f", "j")


async def _cell(port: int, token: str, kind: str, frame: protocol.ClientFrame) -> bool:
    """Whether the frame was accepted (see the module docstring)."""
    async with ws_connect(port) as ws:
        await _send(ws, protocol.Hello(token=token))
        (ready,) = await _until(ws, lambda f: True)
        if kind == "hello":
            return isinstance(ready, protocol.Ready)
        assert isinstance(ready, protocol.Ready)
        room = getattr(frame, "room", None)
        if kind in NEEDS_JOIN and room is not None:
            await _send(ws, protocol.Join(ref="j", room=room))
            await _until(ws, _answer)
        await _send(ws, frame)
        if kind in ("typing", "presence", "ping"):
            # No reply of its own (ping: its pong): a ping after it shows no error came first.
            await _send(ws, protocol.Ping(nonce="after"))
            seen = await _until(ws, lambda f: f == protocol.Pong(nonce="after"))
            return not any(isinstance(f, protocol.ErrorReply) for f in seen)
        seen = await _until(ws, _answer)
        if kind == "resume":  # a room one is not a member of is answered with room_removed
            return not any(isinstance(f, protocol.RoomRemoved) for f in seen)
        last = seen[-1]
        if isinstance(last, protocol.ErrorReply):
            assert last.code in REFUSALS, last
            return False
        return True


async def test_each_frame_type_answers_each_standing_as_documented(tmp_path: Path) -> None:
    table = documented()
    frame_types = sorted(cls.TYPE for cls in typing.get_args(protocol.ClientFrame))
    assert frame_types == sorted(FRAME_ACTIONS)
    wrong = []
    async with open_node(tmp_path) as running:
        users, tokens = await _users(running)
        for kind in frame_types:
            entry = FRAME_ACTIONS[kind]
            for who in Who:
                room, posted = await _room(running, users)
                frame = (
                    protocol.Hello(token=tokens[who])
                    if kind == "hello"
                    else _frame(kind, room, posted[who], posted[Who.OWNER])
                )
                accepted = await _cell(running.gateway_port, tokens[who], kind, frame)
                if entry in (ANYONE, SIGNED_IN):
                    expected = True
                else:
                    assert isinstance(entry, Action)
                    expected = table[(entry.value, who.value)]
                if kind == "typing" and not expected:
                    # A refused typing is dropped silently: nothing to tell apart here.
                    expected = True
                if accepted != expected:
                    wrong.append((kind, who.value, accepted))
    assert wrong == [], orjson.dumps(wrong).decode()
