"""`RealtimeClient`: the gateway connection, kept alive, resumed, and never losing a send."""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import attrs
import httpx
import structlog
import trio
from trio_websocket import (
    CloseReason,
    ConnectionClosed,
    HandshakeError,
    WebSocketConnection,
    wrap_client_stream,
)

from chorus import protocol
from chorus.protocol import CloseCode, ErrorCode

from ._files import NO_CLAIM, FileSource, Progress, wait_checked
from ._http import ApiError, HttpApi, RoomEvent
from ._models import Room
from .e2e._attachments import EncryptedFile
from .e2e._client import ONE_TIME_KEYS, E2EClient, E2EProblem, Secured

_log = structlog.get_logger("chorus.client")


@attrs.frozen(kw_only=True)
class RoomFound:
    """A room the user became a member of while disconnected; it is followed now.

    Found on reconnecting (see `RealtimeClient`); live additions come as
    `protocol.RoomAdded` instead.
    """

    room: Room


@attrs.frozen
class ConnectionLost:
    """On `events`: the connection dropped and the client is reconnecting.

    Yielded once per outage, however many attempts it takes; sends and
    requests wait meanwhile. `code` is the WebSocket close code, if any.
    """

    code: int | None
    reason: str


@attrs.frozen
class Reconnected:
    """On `events`: connected again after `ConnectionLost`, every joined room resumed.

    The `caught_up` messages missed during the outage were yielded before this.
    """

    caught_up: int


Event = (
    RoomEvent
    | protocol.TypingEvent
    | protocol.PresenceEvent
    | protocol.ReceiptEvent
    | protocol.NotificationEvent
    | protocol.Notice
    | protocol.TooFar
    | protocol.RoomAdded
    | protocol.RoomRemoved
    | protocol.RoomInvited
    | protocol.FileUpdate
    | RoomFound
    | ConnectionLost
    | Reconnected
    | Secured
    | E2EProblem
)
"""What `RealtimeClient.events` yields; room events arrive once each, in seq order per room
(those carrying ciphertext as `Secured`, with an `e2e` client); a presence event only when
that user's status changed."""


class _CatchUpFailed(Exception):
    """The HTTP catch-up after `too_far` failed: reconnect and resume from what was delivered."""


_CONNECTION_ERRORS = (
    OSError,
    HandshakeError,
    ConnectionClosed,
    trio.BrokenResourceError,
    _CatchUpFailed,
)
_RETRYABLE = {ErrorCode.UNAVAILABLE, ErrorCode.RATE_LIMITED, ErrorCode.INTERNAL}
_INTERNAL_ATTEMPTS = 3
"""A send the server keeps failing on (a server bug) is given up after this many tries."""
_FOLLOW_ATTEMPTS = 3
"""Tries to subscribe to a room the user was added to, when the server asks to retry."""
_FATAL_CLOSES = {CloseCode.SESSION_REVOKED, CloseCode.PROTOCOL_ERROR}


class Disconnected(Exception):
    """The connection dropped before the request was answered (it is retried)."""


@attrs.define(eq=False)
class _Pending:
    """A message sent but not yet acknowledged; resent after every reconnect."""

    room: str
    body: str
    client_id: str
    thread: str | None = None
    attachments: tuple[str, ...] = ()
    encrypted: protocol.MegolmEnvelope | None = None
    attempts: int = 0
    done: trio.Event = attrs.field(factory=trio.Event)
    result: protocol.Message | ApiError | None = None


@attrs.define(eq=False)
class _FileWatch:
    """Someone waits for a `file` frame about one file."""

    told: trio.Event = attrs.field(factory=trio.Event)
    file: protocol.FileInfo | None = None


@attrs.define(eq=False)
class _Request:
    done: trio.Event = attrs.field(factory=trio.Event)
    reply: protocol.Ack | protocol.ErrorReply | None = None


class RealtimeClient:
    """One user's live connection to the gateway.

    `run()` connects, authenticates and keeps the connection alive: after a
    drop (or a gateway not ready within `connect_timeout`) it reconnects with
    jittered exponential backoff (after a 4007 close from a draining node: after the
    delay its reason names) to the next of the server's gateways
    (`HttpApi.gateway_urls`, unless `gateway_url` names one), resumes every joined
    room from the last seq it delivered, and re-sends unacknowledged messages
    with their original client ids (the server answers a retry with the
    original message, so nothing is duplicated). A room more than the server's
    `resume_limit` behind (`too_far`) is caught up over HTTP before anything
    later is yielded. `events` yields each message exactly once, in seq order
    per room, and reports an outage with `ConnectionLost` then `Reconnected`.

    With `follow_rooms` (the default) it also subscribes by itself to every
    room the user is added to while connected (`room_added`: a direct room
    someone opened, an invitation, a join from another device), from the seq
    at which the user was added, so even a message sent in the same instant
    is delivered; a room the user leaves or is removed from is dropped
    (`room_removed`). Both events are also yielded, for the application.
    Membership events are not replayed, so on every reconnect it compares the
    user's rooms (`GET /rooms`) with those it knew: a room added meanwhile is
    followed from the user's read marker (or from its latest seq when more
    than a resume's worth is unread) and yielded as `RoomFound`; a followed
    room left meanwhile is answered `room_removed` by the server.

    With `e2e` (an `E2EClient` of the same session) encryption is transparent:
    `hello` names its device, to-device messages are opened and acknowledged,
    one-time keys are topped up when the server says they run low, `send`,
    `edit` and `react` encrypt in encrypted rooms, and room events carrying
    ciphertext are yielded opened, as `Secured` (refused to-device messages as
    `E2EProblem`).
    """

    def __init__(
        self,
        api: HttpApi,
        *,
        gateway_url: str | None = None,
        max_backoff: float = 5.0,
        rng: random.Random | None = None,
        follow_rooms: bool = True,
        connect_timeout: float = 10.0,
        e2e: E2EClient | None = None,
    ) -> None:
        self._api = api
        self._e2e = e2e
        self._connect_timeout = connect_timeout
        self._follow_rooms = follow_rooms
        self._gateway_url = gateway_url
        self._max_backoff = max_backoff
        self._rng = rng if rng is not None else random.Random()
        self._send_events, self.events = trio.open_memory_channel[Event](10_000)
        self._rooms: dict[str, int] = {}
        """Joined rooms and the last seq delivered from each."""
        self._member_of: set[str] | None = None
        """With `follow_rooms`: the rooms the user is known to be a member of."""
        self._outbox: dict[str, _Pending] = {}
        self._requests: dict[str, _Request] = {}
        self._refs = itertools.count(1)
        self._ref_to_client_id: dict[str, str] = {}
        self._ws: WebSocketConnection | None = None
        self._nursery: trio.Nursery | None = None
        self._connected = trio.Event()
        self.ready: protocol.Ready | None = None
        self._presence: dict[str, str] = {}
        """The last status yielded per user: the server sends a status once per room
        shared with the user (and a snapshot per room joined), the SDK yields changes."""
        self._down = False
        """Between `ConnectionLost` and `Reconnected`."""
        self._resume_ref: str | None = None
        self._caught_up = 0
        self._file_watches: dict[str, list[_FileWatch]] = {}

    # -- public API ---------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Stay connected until cancelled; ready once the first connection is authenticated.

        Raises `ApiError` when the session has ended for good (logged out or
        revoked, and refreshing fails).
        """
        # The server may list several gateways: after any failure, the next one is tried
        # first (a dead node's clients fail over at once instead of waiting for it).
        urls = [self._gateway_url] if self._gateway_url else await self._api.gateway_urls()
        turn = 0
        attempt = 0
        signalled = False
        while True:
            failure: BaseException | None = None
            # A gateway that accepts but never answers (a node starting or stopping)
            # counts as failed after connect_timeout.
            opening = trio.CancelScope(deadline=trio.current_time() + self._connect_timeout)
            try:
                with opening:
                    async with _open_ws(urls[turn % len(urls)]) as ws:
                        await self._session(ws)
                        opening.deadline = math.inf
                        attempt = 0
                        if not signalled:
                            signalled = True
                            task_status.started()
                        await self._read(ws)
            except* _CONNECTION_ERRORS as group:
                failure = _first_leaf(group)
            finally:
                self._disconnect()
            if opening.cancelled_caught:
                failure = TimeoutError(f"not ready within {self._connect_timeout:g} s")
            code = _close_code(failure)
            hint = _reconnect_hint(failure)
            _log.info("client.disconnected", error=str(failure), code=code)
            if signalled and not self._down:
                self._down = True
                await self._send_events.send(ConnectionLost(code=code, reason=str(failure)))
            if code in _FATAL_CLOSES:
                raise ApiError(401, "session_revoked", "the session has ended")
            if code == CloseCode.AUTH_FAILED:
                await self._api.refresh()  # raises ApiError if the session is over
            turn += 1
            if hint is not None:
                # A draining node spreads its clients over a window: come back when told
                # (to the next gateway), not at once with all the others.
                attempt = 0
                await trio.sleep(hint)
                continue
            attempt += 1
            await trio.sleep(self._backoff(attempt))

    async def join(self, room_id: str) -> int:
        """Subscribe to `room_id` (kept across reconnects); returns its latest seq."""
        ack = await self._request(lambda ref: protocol.Join(ref=ref, room=room_id))
        self._rooms.setdefault(room_id, ack.seq or 0)
        if self._member_of is not None:
            self._member_of.add(room_id)
        return ack.seq or 0

    async def leave(self, room_id: str) -> None:
        self._rooms.pop(room_id, None)
        await self._request(lambda ref: protocol.Leave(ref=ref, room=room_id))

    async def send(
        self,
        room_id: str,
        body: str,
        *,
        client_id: str | None = None,
        thread: str | None = None,
        attachments: Sequence[str | EncryptedFile] = (),
    ) -> protocol.Message:
        """Post `body` (as a reply in `thread`, a root message id); the stored message.

        `attachments` are your uploaded files, `ready` (see `wait_for_file`)
        and not attached yet: their ids in a plain room, the `EncryptedFile`s
        of `E2EClient.upload_file` in an encrypted one (their keys travel in
        the message); `body` may be "" when there are some. Waits through
        disconnects: the message is re-sent after each reconnect with the
        same client id until acknowledged. Raises `ApiError` if the server
        refuses it for good (e.g. not a member, or `file_not_ready`). In an
        encrypted room (with `e2e`) it is encrypted first, which takes the
        HTTP API (device lists, keys): its errors are raised before anything
        is queued. `ValueError` for attachments of the other kind of room.
        """
        sealed = self._e2e is not None and await self._e2e.is_encrypted(room_id)
        if any(isinstance(file, EncryptedFile) != sealed for file in attachments):
            raise ValueError(
                "attach the EncryptedFiles of E2EClient.upload_file in an encrypted room"
                " (their keys travel in the message), file ids in a plain one"
            )
        content: dict[str, Any] = {"type": "m.text", "body": body}
        if attachments and sealed:
            content["files"] = [f.to_content() for f in attachments if isinstance(f, EncryptedFile)]
        encrypted = await self._encrypt(room_id, content)
        pending = _Pending(
            room=room_id,
            body="" if encrypted else body,
            client_id=client_id or secrets.token_hex(8),
            thread=thread,
            attachments=tuple(f.id if isinstance(f, EncryptedFile) else f for f in attachments),
            encrypted=encrypted,
        )
        return await self._post(pending)

    async def send_file(
        self,
        room_id: str,
        source: FileSource,
        *,
        caption: str = "",
        name: str | None = None,
        content_type: str | None = None,
        thread: str | None = None,
        client_id: str | None = None,
        progress: Progress | None = None,
        timeout: float = 120.0,
    ) -> protocol.Message:
        """Upload a file, wait for the server's check, post it with `caption`; the message.

        The same call for every room: in an encrypted one (with `e2e`) the
        file is encrypted before it leaves (`E2EClient.upload_file`) and its
        key, name and type travel in the message. `content_type` is a claim
        the server checks in a plain room, what receivers are told in an
        encrypted one. Raises `OSError` (reading `source`), `ApiError` (the
        upload or the post), `FileRejected` or `TimeoutError` (the check:
        nothing is posted then).
        """
        attachment: str | EncryptedFile
        if self._e2e is not None and await self._e2e.is_encrypted(room_id):
            attachment = await self._e2e.upload_file(
                source, name=name, content_type=content_type, progress=progress
            )
            file_id = attachment.id
        else:
            claim = content_type or NO_CLAIM
            uploaded = await self._api.upload_file(
                source, name=name, content_type=claim, progress=progress
            )
            attachment = file_id = uploaded.id
        await self.wait_for_file(file_id, timeout=timeout)
        return await self.send(
            room_id, caption, client_id=client_id, thread=thread, attachments=[attachment]
        )

    async def _post(self, pending: _Pending) -> protocol.Message:
        self._outbox[pending.client_id] = pending
        if self._ws is not None:
            await self._transmit(self._ws, pending)
        await pending.done.wait()
        if isinstance(pending.result, ApiError):
            raise pending.result
        assert pending.result is not None
        return pending.result

    async def edit(self, room_id: str, message_id: str, body: str) -> int:
        """Replace the text of your message; the seq of the `edited` event.

        In an encrypted room the new ciphertext replaces the message's, so the
        keys of its files are carried over (read from the message, fetched):
        they stay readable.
        """
        client_id = secrets.token_hex(8)  # the same on every retry: applied once
        content: dict[str, Any] = {"type": "m.text", "body": body}
        if self._e2e is not None and await self._e2e.is_encrypted(room_id):
            files = await self._e2e.files_of(room_id, message_id)
            if files:
                content["files"] = [file.to_content() for file in files]
        encrypted = await self._encrypt(room_id, content)
        ack = await self._request(
            lambda ref: protocol.Edit(
                ref=ref,
                room=room_id,
                message=message_id,
                client_id=client_id,
                body="" if encrypted else body,
                encrypted=encrypted,
            )
        )
        return ack.seq or 0

    async def delete(self, room_id: str, message_id: str) -> int:
        """Delete a message (yours, or any as the room's owner or a moderator); the event's seq."""
        client_id = secrets.token_hex(8)
        ack = await self._request(
            lambda ref: protocol.Delete(
                ref=ref, room=room_id, message=message_id, client_id=client_id
            )
        )
        return ack.seq or 0

    async def react(
        self, room_id: str, message_id: str, emoji: str, *, remove: bool = False
    ) -> int | None:
        """Add (or `remove`) your reaction; the event's seq, None when nothing changed.

        In an encrypted room the reaction is an encrypted message (its seq is returned;
        receivers yield it as a `ReactionEvent` inside `Secured`).
        """
        if self._e2e is not None and await self._e2e.is_encrypted(room_id):
            content = {"type": "m.reaction", "message": message_id, "emoji": emoji}
            encrypted = await self._e2e.encrypt(room_id, {**content, "present": not remove})
            pending = _Pending(
                room=room_id, body="", client_id=secrets.token_hex(8), encrypted=encrypted
            )
            return (await self._post(pending)).seq
        client_id = secrets.token_hex(8)
        ack = await self._request(
            lambda ref: protocol.React(
                ref=ref,
                room=room_id,
                message=message_id,
                client_id=client_id,
                emoji=emoji,
                remove=remove,
            )
        )
        return ack.seq

    async def mark_read(self, room_id: str, seq: int) -> int:
        """Move your read marker in the room forward to `seq`; the stored marker."""
        ack = await self._request(lambda ref: protocol.MarkRead(ref=ref, room=room_id, seq=seq))
        return ack.seq or 0

    async def typing(self, room_id: str) -> None:
        """Tell the room's members this user is typing (dropped while disconnected)."""
        if self._ws is not None:
            await self._write(self._ws, protocol.Typing(room=room_id))

    async def set_presence(self, status: str) -> None:
        if self._ws is not None and status in ("online", "idle"):
            await self._write(self._ws, protocol.SetPresence(status=status))  # type: ignore[arg-type]

    async def wait_for_file(self, file_id: str, *, timeout: float = 120.0) -> protocol.FileInfo:
        """The uploaded file once the server has checked it, told by its `file` frame.

        Returns it `ready`; raises `FileRejected` (with the `reason`) if it was
        refused, `TimeoutError` if still unchecked after `timeout` seconds.
        The state is also fetched over HTTP now and then, with backoff: frames
        are not replayed, so one sent while the connection was down (or
        before this call) is never missed. The frame is still yielded on `events`.
        """
        watch = _FileWatch()
        # Watching before the first fetch: a frame sent in between is not lost.
        self._file_watches.setdefault(file_id, []).append(watch)

        async def told(pause: float) -> protocol.FileInfo | None:
            with trio.move_on_after(pause):
                await watch.told.wait()
            return watch.file

        try:
            return await wait_checked(lambda: self._api.file(file_id), timeout=timeout, told=told)
        finally:
            watches = self._file_watches.get(file_id, [])
            watches.remove(watch)
            if not watches:
                self._file_watches.pop(file_id, None)

    async def _encrypt(
        self, room_id: str, content: dict[str, Any]
    ) -> protocol.MegolmEnvelope | None:
        """`content` encrypted for the room if it is an encrypted room (and there is `e2e`)."""
        if self._e2e is None or not await self._e2e.is_encrypted(room_id):
            return None
        return await self._e2e.encrypt(room_id, content)

    @property
    def unacknowledged(self) -> int:
        """Messages waiting in the offline outbox."""
        return len(self._outbox)

    # -- connection lifecycle -------------------------------------------------------------

    async def _session(self, ws: WebSocketConnection) -> None:
        """Authenticate, resume the joined rooms, re-send the outbox."""
        session = self._api.session
        if session is None:
            raise RuntimeError("log in (HttpApi.login) before connecting")
        device = self._e2e.device_id if self._e2e is not None else None
        hello = protocol.Hello(token=session.access_token, client="chorus-sdk", device_id=device)
        await self._write(ws, hello)
        frame = protocol.decode_server_frame(await ws.get_message())
        if isinstance(frame, protocol.ErrorReply):
            raise ConnectionClosed(_close_reason(CloseCode.AUTH_FAILED, frame.message))
        if not isinstance(frame, protocol.Ready):
            raise ConnectionClosed(_close_reason(CloseCode.PROTOCOL_ERROR, "expected ready"))
        self.ready = frame
        self._ws = ws
        self._connected.set()
        found = await self._rooms_found() if self._follow_rooms else []
        if self._rooms:
            ref = self._next_ref()
            if self._down:
                self._resume_ref, self._caught_up = ref, 0
            await self._write(ws, protocol.Resume(ref=ref, rooms=dict(self._rooms)))
        elif self._down:
            await self._back_up()
        for pending in list(self._outbox.values()):
            await self._transmit(ws, pending)
        for room in found:
            await self._send_events.send(RoomFound(room=room))

    async def _rooms_found(self) -> list[Room]:
        """Rooms the user was added to since the last connection (none on the first one).

        Each is added to the rooms to resume, from the user's read marker when
        a resume can replay everything unread, else from the room's latest seq.
        """
        try:
            rooms = await self._api.my_rooms()
        except (ApiError, httpx.HTTPError) as exc:  # not worth a reconnect: try next time
            _log.warning("client.rooms_unavailable", error=str(exc))
            return []
        known, self._member_of = self._member_of, {room.id for room in rooms}
        if known is None:
            return []
        found = [room for room in rooms if room.id not in known and room.id not in self._rooms]
        limit = self.ready.resume_limit if self.ready is not None else 0
        for room in found:
            read = room.read_seq or 0
            self._rooms[room.id] = read if room.last_seq - read <= limit else room.last_seq
        return found

    async def _read(self, ws: WebSocketConnection) -> None:
        """Dispatch frames until the connection closes (raises its `ConnectionClosed`)."""
        heartbeat = self.ready.heartbeat_interval_ms / 1000 if self.ready else 30.0
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._heartbeat, ws, heartbeat)
            if self._e2e is not None and self.ready is not None:
                count = self.ready.one_time_key_count
                if count is not None and count < ONE_TIME_KEYS:
                    nursery.start_soon(self._top_up)
            while True:
                text = await ws.get_message()
                try:
                    frame = protocol.decode_server_frame(text)
                except protocol.ProtocolError as exc:
                    _log.warning("client.bad_frame", code=exc.code, message=exc.message)
                    continue
                await self._dispatch(frame)

    async def _top_up(self) -> None:
        """Publish one-time keys the device used up while this client was away."""
        assert self._e2e is not None
        try:
            await self._e2e.replenish()
        except (ApiError, httpx.HTTPError) as exc:  # the next `one_time_keys_low` retries
            _log.warning("client.key_upload_failed", error=str(exc))

    async def _heartbeat(self, ws: WebSocketConnection, interval: float) -> None:
        while True:
            await trio.sleep(interval)
            await self._write(ws, protocol.Ping())

    def _disconnect(self) -> None:
        self._ws = None
        self._nursery = None
        self._connected = trio.Event()
        self._resume_ref = None
        for request in self._requests.values():
            request.done.set()  # no reply: the caller retries after the reconnect
        self._requests.clear()

    async def _back_up(self) -> None:
        """The outage is over: the resume is answered (replays and catch-up came first)."""
        self._down, self._resume_ref = False, None
        await self._send_events.send(Reconnected(caught_up=self._caught_up))

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, 0.1 * 2**attempt)]."""
        return self._rng.uniform(0, min(self._max_backoff, 0.1 * 2**attempt))

    # -- frames ---------------------------------------------------------------------------

    async def _dispatch(self, frame: protocol.ServerFrame) -> None:
        match frame:
            case protocol.Ack(ref=ref) | protocol.ErrorReply(ref=ref) if (
                ref is not None and ref == self._resume_ref
            ):
                if isinstance(frame, protocol.ErrorReply):
                    _log.warning("client.resume_refused", code=frame.code, message=frame.message)
                await self._back_up()
            case protocol.MessageEvent(message=message):
                await self._deliver(message.room, message.seq, frame)
            case protocol.EditedEvent() | protocol.DeletedEvent() | protocol.ReactionEvent():
                await self._deliver(frame.room, frame.seq, frame)
            case protocol.Ack(ref=ref, message=message) if message is not None:
                self._acknowledged(message)
                self._answer(ref, frame)
            case protocol.Ack(ref=ref) | protocol.ErrorReply(ref=ref) if ref in self._requests:
                self._answer(ref, frame)
            case protocol.ErrorReply(ref=ref, code=code, message=text):
                self._refused(ref, code, text)
            case protocol.TooFar(room=room, after_seq=after_seq):
                await self._catch_up(room, after_seq)
                await self._send_events.send(frame)
            case protocol.RoomAdded(room=room, seq=seq):
                if self._member_of is not None:
                    self._member_of.add(room)
                if self._follow_rooms and room not in self._rooms:
                    self._rooms[room] = seq
                    assert self._nursery is not None  # frames are dispatched while reading
                    self._nursery.start_soon(self._follow, room, seq)
                await self._send_events.send(frame)
            case protocol.RoomRemoved(room=room):
                if self._member_of is not None:
                    self._member_of.discard(room)
                self._rooms.pop(room, None)
                await self._send_events.send(frame)
            case protocol.PresenceEvent(user=user, status=status):
                if self._presence.get(user) != status:
                    self._presence[user] = status
                    await self._send_events.send(frame)
            case protocol.ToDeviceEvent() if self._e2e is not None:
                await self._e2e.receive_to_device([frame])
                if self._ws is not None:  # acknowledged once processed (and saved)
                    await self._write(
                        self._ws, protocol.ToDeviceAck(ref=self._next_ref(), ids=(frame.id,))
                    )
                for problem in self._e2e.take_problems():
                    await self._send_events.send(problem)
            case protocol.OneTimeKeysLow() if self._e2e is not None:
                assert self._nursery is not None
                self._nursery.start_soon(self._top_up)
            case protocol.FileUpdate(file=file):
                for watch in self._file_watches.get(file.id, []):
                    watch.file = file
                    watch.told.set()
                await self._send_events.send(frame)
            case (
                protocol.TypingEvent()
                | protocol.ReceiptEvent()
                | protocol.NotificationEvent()
                | protocol.Notice()
                | protocol.RoomInvited()
            ):
                await self._send_events.send(frame)
            case _:
                pass  # pong, ready, replayed: nothing to do

    async def _deliver(self, room: str, seq: int, event: RoomEvent) -> None:
        """Hand a room event to `events` unless it was already delivered (replays overlap)."""
        last = self._rooms.get(room)
        if last is not None and seq <= last:
            return
        self._rooms[room] = seq
        if self._resume_ref is not None and isinstance(event, protocol.MessageEvent):
            self._caught_up += 1
        if self._e2e is not None:
            opened = await self._e2e.open_event(event)
            for problem in self._e2e.take_problems():
                await self._send_events.send(problem)
            await self._send_events.send(opened)
            return
        await self._send_events.send(event)

    async def _follow(self, room: str, seq: int) -> None:
        """Subscribe to a room the user was just added to, from the seq they were added at."""
        for attempt in range(1, _FOLLOW_ATTEMPTS + 1):
            try:
                await self._request(lambda ref: protocol.Resume(ref=ref, rooms={room: seq}))
                return
            except ApiError as exc:
                if exc.code not in _RETRYABLE or attempt == _FOLLOW_ATTEMPTS:
                    _log.warning("client.follow_failed", room=room, code=exc.code)
                    self._rooms.pop(room, None)
                    return
            await trio.sleep(self._backoff(attempt))

    async def _catch_up(self, room: str, after_seq: int) -> None:
        """Fetch over HTTP what a resume could not replay, in order, before any later frame.

        Live events that follow are then deduplicated by seq (`_deliver`), so each
        arrives once. If the API cannot be reached (or answers 5xx) the connection
        is dropped with `_CatchUpFailed`: the next resume starts from the last seq
        delivered, so nothing is skipped.
        """
        while True:
            try:
                page = await self._api.events(room, after=after_seq, limit=100)
            except httpx.HTTPError as exc:
                raise _CatchUpFailed(str(exc)) from exc
            except ApiError as exc:
                if exc.status < 500:
                    raise
                raise _CatchUpFailed(str(exc)) from exc
            for event in page:
                seq = event.message.seq if isinstance(event, protocol.MessageEvent) else event.seq
                await self._deliver(room, seq, event)
                after_seq = seq
            if len(page) < 100:
                return

    def _acknowledged(self, message: protocol.Message) -> None:
        pending = self._outbox.pop(message.client_id, None)
        if pending is not None:
            pending.result = message
            pending.done.set()

    def _refused(self, ref: str | None, code: ErrorCode, text: str) -> None:
        client_id = self._ref_to_client_id.pop(ref, None) if ref else None
        pending = self._outbox.get(client_id) if client_id else None
        if pending is None:
            _log.warning("client.error", code=code, message=text)
            return
        if code in _RETRYABLE and not (
            code == ErrorCode.INTERNAL and pending.attempts + 1 >= _INTERNAL_ATTEMPTS
        ):
            # Stays in the outbox; re-sent after a pause (and after any reconnect).
            pending.attempts += 1
            if self._nursery is not None and self._ws is not None:
                self._nursery.start_soon(self._retransmit, self._ws, pending)
            return
        del self._outbox[pending.client_id]
        pending.result = ApiError(400, code, text)
        pending.done.set()

    def _answer(self, ref: str, reply: protocol.Ack | protocol.ErrorReply) -> None:
        self._ref_to_client_id.pop(ref, None)
        request = self._requests.pop(ref, None)
        if request is not None:
            request.reply = reply
            request.done.set()

    async def _request(self, make: Callable[[str], protocol.ClientFrame]) -> protocol.Ack:
        """Send a request frame and wait for its ack; retried across reconnects."""
        while True:
            await self._connected.wait()
            ws = self._ws
            assert ws is not None
            ref = self._next_ref()
            request = self._requests[ref] = _Request()
            await self._write(ws, make(ref))
            await request.done.wait()
            if isinstance(request.reply, protocol.Ack):
                return request.reply
            if isinstance(request.reply, protocol.ErrorReply):
                raise ApiError(400, request.reply.code, request.reply.message)

    async def _retransmit(self, ws: WebSocketConnection, pending: _Pending) -> None:
        await trio.sleep(self._backoff(pending.attempts))
        if self._ws is ws and pending.client_id in self._outbox:
            await self._transmit(ws, pending)

    async def _transmit(self, ws: WebSocketConnection, pending: _Pending) -> None:
        ref = self._next_ref()
        self._ref_to_client_id[ref] = pending.client_id
        frame = protocol.Send(
            ref=ref,
            room=pending.room,
            client_id=pending.client_id,
            body=pending.body,
            thread=pending.thread,
            attachments=pending.attachments,
            encrypted=pending.encrypted,
        )
        await self._write(ws, frame)

    async def _write(self, ws: WebSocketConnection, frame: protocol.ClientFrame) -> None:
        # On a closed connection the reader notices too; outbox and requests are retried.
        with contextlib.suppress(ConnectionClosed):
            await ws.send_message(protocol.encode(frame).decode())

    def _next_ref(self) -> str:
        return f"r{next(self._refs)}"


@asynccontextmanager
async def _open_ws(url: str) -> AsyncIterator[WebSocketConnection]:
    """A WebSocket whose TCP stream we own and always close (see docs/decisions.md)."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    stream: trio.SocketStream | trio.SSLStream[trio.SocketStream] = (
        await trio.open_ssl_over_tcp_stream(host, port)
        if parts.scheme == "wss"
        else await trio.open_tcp_stream(host, port)
    )
    try:
        async with trio.open_nursery() as nursery:
            ws = await wrap_client_stream(
                nursery, stream, host, parts.path or "/", subprotocols=[protocol.SUBPROTOCOL]
            )
            try:
                yield ws
            finally:
                await ws.aclose()
                nursery.cancel_scope.cancel()
    finally:
        await stream.aclose()


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first exception in `group` that is not itself a group (nurseries nest them)."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _close_code(exc: BaseException | None) -> int | None:
    if isinstance(exc, ConnectionClosed) and exc.reason is not None:
        return exc.reason.code
    return None


def _reconnect_hint(exc: BaseException | None) -> float | None:
    """The delay a 4007 `RECONNECT` close asks for (a draining node), else None."""
    if not isinstance(exc, ConnectionClosed) or exc.reason is None:
        return None
    if exc.reason.code != CloseCode.RECONNECT:
        return None
    return protocol.reconnect_delay(exc.reason.reason or "") or 0.0


def _close_reason(code: int, reason: str) -> CloseReason:
    return CloseReason(code, reason)
