"""The connection actor: the chat protocol spoken over one gateway connection.

Its mailbox is its socket: the gateway hands it one complete text message
at a time and reads the next only when it has been handled, so a client's
frames are handled in order and a flooding client slows only itself. Other
actors reach it through `send`/`send_frame`/`close`, which never wait.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Literal, get_args

import attrs
import structlog
import trio

from chorus import chat, e2e, protocol
from chorus.auth import (
    AuthError,
    AuthService,
    ExternalSignIn,
    Principal,
    ProviderUnavailable,
    client_address,
)
from chorus.gateway import Connection
from chorus.metrics import CONNECTIONS, FRAMES_IN, RATE_LIMITED
from chorus.persistence import (
    Appended,
    FileNotReady,
    Forbidden,
    Gone,
    NotFound,
    Store,
    StoreError,
    now_ms,
)
from chorus.protocol import CloseCode, ErrorCode
from chorus.ratelimit import ImmediateRateLimiter, LocalRateLimiter, RateLimiter, TokenBucket
from chorus.runtime import LiveSettings

from ._errors import ActorDead, AskTimeout
from ._ref import ActorRef
from ._reply import Reply
from .presence import ConnectionStatus, Presence
from .room import (
    Change,
    ChangeKind,
    ClientIdReused,
    EncryptionRequired,
    NotJoined,
    Post,
    Posted,
    PresenceChanged,
    RoomFailed,
    RoomMessage,
    Subscribe,
    Subscriber,
    Typing,
    Unsubscribe,
)
from .rooms import Rooms

_log = structlog.get_logger("chorus.connection")
_ASK_TIMEOUT = 10.0
_FRAMES_IN = {
    kind: FRAMES_IN.labels(kind)
    for kind in (*(frame.TYPE for frame in get_args(protocol.ClientFrame)), "invalid")
}
"""`chorus_frames_in` of each frame type, bound once: `labels()` per frame was a lookup
under a lock on every message's path."""


@attrs.frozen(kw_only=True)
class ChatLimits:
    """Timeouts and rate limits of chat connections (a node takes them from its `Settings`)."""

    heartbeat_interval: float = 30.0
    auth_timeout: float = 10.0
    frames_per_second: float = 20.0
    frame_burst: float = 40.0
    """Frames per second and burst of one connection (counted on this node): every
    frame, pings and undecodable ones included. (The per-user write limit and the longest
    message are run-time settings: `ChatContext.live`.)"""
    strikes_before_close: int = 20
    """Rate-limited frames in a row before the connection is closed (4005)."""
    auth_attempts_per_minute: int = 30
    """`hello` frames with a provider token per minute from one client address, counted
    with the HTTP API's register, login and exchange attempts (`limit:auth:<ip>`)."""


@attrs.frozen
class GatewayResponder:
    """Answers a write sent over the gateway with an `ack` or an `error` frame for `ref`.

    A room `Responder` for posts (the ack carries the message) and for
    changes (the ack carries the event's seq, null when a reaction changed nothing).
    """

    connection: Subscriber
    ref: str
    room: str

    def accepted(self, result: Posted | Appended | None) -> None:
        if isinstance(result, Posted) and result.event is not None:
            # A new message: the room's broadcast bytes already hold it, copied, not re-encoded.
            event = result.event
            frame = protocol.encode_send_ack(self.ref, self.room, result.stored.seq, event)
        elif isinstance(result, Posted):  # a retried send: the stored message, encoded here
            message = result.message
            ack = protocol.Ack(ref=self.ref, room=self.room, seq=message.seq, message=message)
            frame = protocol.encode(ack)
        else:
            seq = None if result is None else result.message.seq
            frame = protocol.encode(protocol.Ack(ref=self.ref, room=self.room, seq=seq))
        self.connection.send(frame)

    def refused(self, error: Exception) -> None:
        self.connection.send(protocol.encode(error_reply(self.ref, error)))


def error_reply(ref: str | None, error: Exception) -> protocol.ErrorReply:
    """The gateway's `error` frame for a refusal (the HTTP API's mapping is `error_for`).

    Any `StoreError` not named here (the store is unavailable...) is `unavailable`.
    """
    code, text = ErrorCode.UNAVAILABLE, "could not store it; retry"
    match error:
        case RoomFailed():
            code, text = ErrorCode.INTERNAL, "the server failed on this request"
        case NotJoined():
            code, text = ErrorCode.NOT_JOINED, "you are not in this room"
        case EncryptionRequired():
            code, text = ErrorCode.ENCRYPTION_REQUIRED, str(error)
        case ClientIdReused():
            code, text = ErrorCode.CLIENT_ID_REUSED, str(error)
        case NotFound():
            code, text = ErrorCode.NOT_FOUND, str(error)
        case FileNotReady():
            code, text = ErrorCode.FILE_NOT_READY, str(error)
        case Forbidden():
            code, text = ErrorCode.FORBIDDEN, str(error)
        case Gone():
            code, text = ErrorCode.GONE, str(error)
        case ValueError():
            code, text = ErrorCode.INVALID_VALUE, str(error)
    return protocol.ErrorReply(ref=ref, code=code, message=text[: protocol.MAX_TEXT_CHARS])


class Sessions:
    """The chat connections of each session on this node (to close them on logout).

    A session or user has a few connections at most, so each has a list: an empty
    set costs more than a list of three (and every idle connection has one of each).
    """

    def __init__(self) -> None:
        self._by_session: dict[str, list[ChatConnection]] = {}
        self._by_user: dict[str, list[ChatConnection]] = {}

    def add(self, session_id: str, connection: ChatConnection) -> None:
        """Index `connection` (once: a connection is added once, after `hello`)."""
        self._by_session.setdefault(session_id, []).append(connection)
        self._by_user.setdefault(connection.user_id, []).append(connection)

    def discard(self, session_id: str, connection: ChatConnection) -> None:
        _discard(self._by_session, session_id, connection)
        _discard(self._by_user, connection.user_id, connection)

    def of_user(self, user_id: str) -> list[ChatConnection]:
        """The user's authenticated connections on this node (any session)."""
        return list(self._by_user.get(user_id, ()))

    def tell_everyone(self, frame: protocol.ServerFrame) -> None:
        """Send `frame` to every authenticated connection on this node (never waits)."""
        payload = protocol.encode(frame)
        for connections in self._by_session.values():
            for connection in connections:
                connection.send(payload)

    def session_ids(self) -> list[str]:
        """The sessions with connections open on this node."""
        return list(self._by_session)

    def connections(self, session_id: str) -> list[ChatConnection]:
        """The session's open connections on this node."""
        return list(self._by_session.get(session_id, ()))

    def revoke(self, session_id: str) -> None:
        """Close every connection of the session with 4002 (session revoked)."""
        for connection in self.connections(session_id):
            connection.close(CloseCode.SESSION_REVOKED, "session ended")


def _discard(index: dict[str, list[ChatConnection]], key: str, connection: ChatConnection) -> None:
    connections = index.get(key)
    if connections is not None and connection in connections:
        connections.remove(connection)
        if not connections:
            del index[key]


@attrs.frozen(kw_only=True)
class ChatContext:
    """The node services a chat connection uses."""

    auth: AuthService
    store: Store
    rooms: Rooms
    presence: Presence
    sessions: Sessions
    limits: ChatLimits
    live: LiveSettings
    """Run-time settings read at each frame: `sends_per_second`, `send_burst` (key
    `limit:send:<user_id>`) and `max_message_chars`."""
    limiter: RateLimiter = attrs.field(factory=LocalRateLimiter)
    """Limits shared by the nodes, checked exactly (in Redis when nodes share it):
    provider sign-ins in `hello`, per address."""
    send_limiter: ImmediateRateLimiter = attrs.field(factory=LocalRateLimiter)
    """The per-user write limit, shared by a user's connections (across nodes through
    Redis, without a round trip per message: `ReconciledRateLimiter`)."""
    external: ExternalSignIn | None = None
    """Sign-in with tokens of identity providers in `hello`; None without any."""


class ChatConnection:
    """Handles the frames of one client; also the room actors' `Subscriber` for it."""

    def __init__(self, conn: Connection, context: ChatContext) -> None:
        self._conn = conn
        self._context = context
        self.id = conn.id
        self.send_frame = conn.send_frame  # rooms call the outbox directly: the hot path
        self.user_id = ""
        self.device_id: str | None = None
        """The end-to-end encryption device `hello` named (this session's), if any."""
        self._to_device_sent: set[str] | None = None
        """Ids of the device's queued messages sent on this connection, not acknowledged yet
        (made with the first one: most connections never have any)."""
        self._principal: Principal | None = None
        self._joined: set[str] = set()
        self._bucket = TokenBucket(
            context.limits.frames_per_second, context.limits.frame_burst, trio.current_time()
        )
        self._strikes = 0
        conn.set_deadline(context.limits.auth_timeout, CloseCode.AUTH_TIMEOUT, sliding=False)
        CONNECTIONS.inc()

    # -- Subscriber ---------------------------------------------------------------------

    def send(self, payload: bytes) -> bool:
        return self._conn.send(payload)

    def close(self, code: int, reason: str) -> None:
        self._conn.close(code, reason)

    # -- Member (see `memberships`) -------------------------------------------------------

    def forget_room(self, room_id: str) -> None:
        self._joined.discard(room_id)

    # -- DeviceConnection (see `devices`) -----------------------------------------------

    async def deliver_to_device(self) -> None:
        """Send the device's queued messages not sent on this connection yet, oldest first.

        Each is sent once per connection; an unacknowledged one comes again on
        the device's next connection. Concurrent calls never send one twice:
        the check and the send happen without a checkpoint in between.
        """
        if self.device_id is None:
            return
        try:
            pending = await self._context.store.pending_to_device(
                self.user_id, self.device_id, now_ms(), e2e.MAX_QUEUED
            )
        except StoreError as exc:  # it stays queued: the next wake-up or connection gets it
            self._conn.log.warning("to_device.fetch_failed", error=str(exc))
            return
        if not pending:
            return
        if self._to_device_sent is None:
            self._to_device_sent = set()
        sent = self._to_device_sent
        for message in pending:
            if message.id not in sent:
                sent.add(message.id)
                self.send(protocol.encode(e2e.to_device_event(message)))

    # -- Handler ------------------------------------------------------------------------

    async def on_text(self, text: str) -> None:
        """Every frame, undecodable ones, pings and those before `hello` included, takes
        a token from the connection's bucket first: a flood is refused and then closed
        (4005) whatever it carries."""
        try:
            frame = protocol.decode_client_frame(text)
        except protocol.ProtocolError as exc:
            _FRAMES_IN["invalid"].inc()
            if self._within_rate(exc.ref):
                self._error(exc.ref, exc.code, exc.message)
            return
        _FRAMES_IN[frame.TYPE].inc()
        if not self._within_rate(getattr(frame, "ref", None)):
            return
        if self._principal is None:
            if isinstance(frame, protocol.Hello):
                await self._hello(frame)
            else:
                self._error(getattr(frame, "ref", None), ErrorCode.UNAUTHENTICATED, "hello first")
                self._conn.close(CloseCode.UNAUTHENTICATED, "send hello first")
            return
        writes = (protocol.Send, protocol.Edit, protocol.Delete, protocol.React)
        if isinstance(frame, writes) and not self._within_send_rate(frame):
            return
        self._strikes = 0
        if type(frame) is protocol.Send:
            # The hot frame, handled here without a coroutine of its own: a running room
            # with mailbox space takes the post without any await (see `_offer_to_room`).
            post = self._post(frame, self._principal)
            if post is not None and not self._offer_to_room(frame.ref, frame.room, post):
                await self._to_room(frame.ref, frame.room, post)
            return
        await self._dispatch(frame, self._principal)

    def on_ping(self) -> bool:
        """A WebSocket-level ping takes a token too: floods of them end in 4005 as well."""
        return self._within_rate(None)

    async def on_disconnect(self) -> None:
        CONNECTIONS.dec()
        if self._principal is None:
            return
        self._context.sessions.discard(self._principal.session_id, self)
        for room_id in self._joined:
            running = self._context.rooms.running(room_id)
            if running is not None:
                # Best effort: a room also drops subscribers whose connection has closed.
                with contextlib.suppress(ActorDead):
                    running.try_send(Unsubscribe(subscriber_id=self.id))
        await self._report_presence(None)

    # -- frames -------------------------------------------------------------------------

    async def _hello(self, hello: protocol.Hello) -> None:
        if not await self._sign_in_allowed(hello.token):
            self._error(None, ErrorCode.RATE_LIMITED, "too many sign-ins from this address")
            self._conn.close(CloseCode.RATE_LIMITED, "too many sign-in attempts")
            return
        client_address.set(self._conn.address)  # for the audit log (this connection's task)
        try:
            principal = await self._authenticate(hello.token)
        except AuthError as exc:
            self._error(None, ErrorCode.INVALID_TOKEN, str(exc))
            self._conn.close(CloseCode.AUTH_FAILED, "authentication failed")
            return
        except (StoreError, ProviderUnavailable):
            self._error(None, ErrorCode.UNAVAILABLE, "cannot check the token now; retry")
            self._conn.close(CloseCode.GOING_AWAY, "authentication unavailable")
            return
        try:
            key_count = await self._device_keys(principal, hello.device_id)
        except Forbidden as exc:
            self._error(None, ErrorCode.FORBIDDEN, str(exc))
            self._conn.close(CloseCode.AUTH_FAILED, "not this session's device")
            return
        except StoreError:
            self._error(None, ErrorCode.UNAVAILABLE, "cannot check the device now; retry")
            self._conn.close(CloseCode.GOING_AWAY, "device check unavailable")
            return
        self._principal = principal
        self.device_id = hello.device_id
        self.user_id = principal.user_id
        self._conn.user = principal.user_id
        self._context.sessions.add(principal.session_id, self)
        limits = self._context.limits
        self._conn.set_deadline(
            2 * limits.heartbeat_interval, CloseCode.HEARTBEAT_TIMEOUT, sliding=True
        )
        ready = protocol.Ready(
            session_id=principal.session_id,
            user_id=principal.user_id,
            heartbeat_interval_ms=int(limits.heartbeat_interval * 1000),
            resume_limit=self._context.rooms.config.resume_limit,
            device_id=hello.device_id,
            one_time_key_count=key_count,
        )
        self.send(protocol.encode(ready))
        if notice := self._context.live.current.server_notice:
            self.send(protocol.encode(protocol.Notice(code="info", message=notice)))
        await self._report_presence("online")
        await self.deliver_to_device()

    async def _device_keys(self, principal: Principal, device_id: str | None) -> int | None:
        """The unclaimed one-time keys of the device `hello` named (None without one).

        Raises `Forbidden` unless it is the live device of this very session:
        another session (even of the same user) never gets its messages.
        """
        if device_id is None:
            return None
        store = self._context.store
        device = await store.live_device(principal.user_id, device_id, now_ms())
        if device is None or device.session_id != principal.session_id:
            raise Forbidden(f"device {device_id!r} is not registered by this session")
        return (await store.key_counts(principal.user_id, device_id)).one_time_keys

    async def _sign_in_allowed(self, token: str) -> bool:
        """A provider token may create a user and opens a session: it is counted against
        the client address like a login (`limit:auth:<ip>`); Chorus tokens are not."""
        external = self._context.external
        if external is None or not external.recognises(token):
            return True
        per_minute = self._context.limits.auth_attempts_per_minute
        return await self._context.limiter.allow(
            f"limit:auth:{self._conn.address}", rate=per_minute / 60, burst=per_minute
        )

    async def _authenticate(self, token: str) -> Principal:
        """A Chorus access token, or a token of a configured identity provider.

        The latter signs in as the HTTP exchange does: a new session, whose id
        `ready` carries (its refresh token is not handed out: reconnect with
        a new provider token, or exchange one over HTTP for refreshable tokens).
        """
        external = self._context.external
        if external is not None and external.recognises(token):
            tokens = await external.sign_in(token)
            return Principal(user_id=tokens.user.id, session_id=tokens.session_id)
        return await self._context.auth.authenticate(token)

    async def _dispatch(self, frame: protocol.ClientFrame, principal: Principal) -> None:
        """Every frame after `hello` but `send` (which `on_text` handles)."""
        match frame:
            case protocol.Ping(nonce=nonce):
                self.send(protocol.encode(protocol.Pong(nonce=nonce)))
            case protocol.Hello():
                self._error(None, ErrorCode.INVALID_VALUE, "already authenticated")
            case protocol.Join(ref=ref, room=room):
                last_seqs = await self._subscribe(ref, {room: None})
                if last_seqs is not None:
                    ack = protocol.Ack(ref=ref, room=room, seq=last_seqs[room])
                    self.send(protocol.encode(ack))
                    self._announce_presence_in(room)
            case protocol.Resume(ref=ref, rooms=rooms):
                if await self._subscribe(ref, dict(rooms), resuming=True) is not None:
                    self.send(protocol.encode(protocol.Ack(ref=ref)))
            case protocol.Leave(ref=ref, room=room):
                self._joined.discard(room)
                running = self._context.rooms.running(room)
                if running is not None:
                    with contextlib.suppress(ActorDead):
                        await running.send(Unsubscribe(subscriber_id=self.id))
                self.send(protocol.encode(protocol.Ack(ref=ref, room=room)))
            case protocol.Edit(ref=ref, room=room, message=message, client_id=cid, body=body):
                await self._change(ref, room, "edit", message, cid, body, frame.encrypted)
            case protocol.Delete(ref=ref, room=room, message=message, client_id=cid):
                await self._change(ref, room, "delete", message, cid)
            case protocol.React(ref=ref, room=room, message=message, client_id=cid, emoji=emoji):
                await self._change(
                    ref, room, "unreact" if frame.remove else "react", message, cid, emoji
                )
            case protocol.MarkRead(ref=ref, room=room, seq=seq):
                await self._mark_read(ref, room, seq)
            case protocol.Typing(room=room):
                running = self._context.rooms.running(room)
                if room in self._joined and running is not None:
                    with contextlib.suppress(ActorDead):
                        running.try_send(Typing(user_id=principal.user_id, subscriber_id=self.id))
            case protocol.SetPresence(status=status):
                await self._report_presence(status)
            case protocol.ToDeviceAck(ref=ref, ids=ids):
                await self._ack_to_device(ref, ids)

    async def _subscribe(
        self, ref: str, rooms: dict[str, int | None], *, resuming: bool = False
    ) -> dict[str, int] | None:
        """Check membership of every room, then subscribe (replaying after the given seqs).

        Returns each room's latest seq; on failure sends the error reply itself
        and returns None. When `resuming`, rooms the user is not a member of are
        answered with `room_removed` and skipped instead.
        """
        context = self._context
        last_seqs: dict[str, int] = {}
        try:
            for room_id in list(rooms):
                try:
                    await chat.membership(context.store, room_id, self.user_id)
                except (NotFound, Forbidden) as refusal:
                    if not resuming:
                        self._refuse(ref, refusal)
                        return None
                    # Left or removed while the client was away: say so, resume the others.
                    del rooms[room_id]
                    self.send(protocol.encode(protocol.RoomRemoved(room=room_id)))
            for room_id, after_seq in rooms.items():
                last_seqs[room_id] = await context.rooms.ask(
                    room_id, self._subscription(after_seq), timeout=_ASK_TIMEOUT
                )
                # Interned: the members of a room share one id string (each decoded its own).
                self._joined.add(sys.intern(room_id))
                await self._send_presence_of_members(room_id)
        except (StoreError, ActorDead, AskTimeout):
            self._error(ref, ErrorCode.UNAVAILABLE, "cannot join now; retry")
            return None
        return last_seqs

    def _subscription(self, after_seq: int | None) -> Callable[[Reply[int]], Subscribe]:
        def make(reply: Reply[int]) -> Subscribe:
            return Subscribe(subscriber=self, after_seq=after_seq, reply=reply)

        return make

    def _announce_presence_in(self, room_id: str) -> None:
        """Tell a room just joined that this user is here (presence is per room audience)."""
        running = self._context.rooms.running(room_id)
        status = self._context.presence.board.status(self.user_id)
        if running is not None:
            with contextlib.suppress(ActorDead):
                change = PresenceChanged(
                    user_id=self.user_id, status="online" if status == "offline" else status
                )
                running.try_send(change)

    async def _send_presence_of_members(self, room_id: str) -> None:
        members = await self._context.store.member_ids(room_id)
        for user_id, status in (await self._context.presence.statuses(members)).items():
            if status != "offline":
                event = protocol.PresenceEvent(user=user_id, status=status)
                self.send(protocol.encode(event))

    def _post(self, send: protocol.Send, principal: Principal) -> Post | None:
        """The room's request for `send`, or None once its refusal is answered."""
        if (problem := self._context.live.current.body_problem(send.body)) is not None:
            self._error(send.ref, ErrorCode.INVALID_VALUE, problem)
            return None
        return Post(
            sender_id=principal.user_id,
            body=send.body,
            client_id=send.client_id,
            created_at=now_ms(),
            thread_id=send.thread,
            attachments=send.attachments,
            encrypted=send.encrypted,
            responder=GatewayResponder(self, send.ref, send.room),
            subscriber_id=self.id,
        )

    async def _change(
        self,
        ref: str,
        room: str,
        kind: ChangeKind,
        message: str,
        client_id: str,
        body: str = "",
        encrypted: protocol.MegolmEnvelope | None = None,
    ) -> None:
        if kind == "edit" and (problem := self._context.live.current.body_problem(body)):
            self._error(ref, ErrorCode.INVALID_VALUE, problem)
            return
        change = Change(
            kind=kind,
            actor_id=self.user_id,
            message_id=message,
            client_id=client_id,
            created_at=now_ms(),
            body=body,
            encrypted=encrypted,
            responder=GatewayResponder(self, ref, room),
            subscriber_id=self.id,
        )
        if not self._offer_to_room(ref, room, change):
            await self._to_room(ref, room, change)

    def _offer_to_room(self, ref: str, room: str, request: Post | Change) -> bool:
        """Hand a write to the room, or answer its refusal, if that needs no waiting; False
        when it does (then `_to_room`). The room answers through the request's
        `GatewayResponder`."""
        if room not in self._joined:
            self._error(ref, ErrorCode.NOT_JOINED, f"join room {room} before writing to it")
            return True
        try:
            # A running room with mailbox space takes it without a trio checkpoint: the
            # connection task goes on to its next read instead of being scheduled once more
            # per message. A full mailbox (backpressure) or a stopped room takes the slow path.
            running = self._context.rooms.running(room)
            return running is not None and _try_send(running, request)
        except ActorDead:
            self._error(ref, ErrorCode.UNAVAILABLE, "the room is restarting; retry")
            return True

    async def _to_room(self, ref: str, room: str, request: Post | Change) -> None:
        """Hand a write that `_offer_to_room` could not to the room, starting it or waiting
        for mailbox space."""
        try:
            await self._context.rooms.send(room, request)
        except ActorDead:
            self._error(ref, ErrorCode.UNAVAILABLE, "the room is restarting; retry")

    async def _ack_to_device(self, ref: str, ids: tuple[str, ...]) -> None:
        """Delete the device's messages it processed (`to_device_ack`).

        Like ids of other devices, ids sent on a connection without a device
        delete nothing: acknowledging is idempotent and never refused.
        """
        if self.device_id is None:
            self.send(protocol.encode(protocol.Ack(ref=ref)))
            return
        try:
            await self._context.store.ack_to_device(self.user_id, self.device_id, ids)
        except StoreError as refusal:
            self._refuse(ref, refusal)
            return
        if self._to_device_sent is not None:
            self._to_device_sent.difference_update(ids)
        self.send(protocol.encode(protocol.Ack(ref=ref)))

    async def _mark_read(self, ref: str, room: str, seq: int) -> None:
        """Move the read marker, as `POST /rooms/{id}/read` does (see `chat.mark_read`)."""
        context = self._context
        try:
            stored = await chat.mark_read(context.store, context.rooms, room, self.user_id, seq)
        except StoreError as refusal:
            self._refuse(ref, refusal)
            return
        self.send(protocol.encode(protocol.Ack(ref=ref, room=room, seq=stored)))

    def _within_rate(self, ref: str | None) -> bool:
        """This connection's frame rate (local by nature: one socket is on one node);
        a refusal answers `ref` with `rate_limited` or closes (see `_strike`)."""
        if self._bucket.take(trio.current_time()):
            return True
        self._strike(ref, "slow down")
        return False

    def _within_send_rate(
        self, frame: protocol.Send | protocol.Edit | protocol.Delete | protocol.React
    ) -> bool:
        """The user's rate of writes (messages, edits, deletes, reactions) over all its
        connections (and nodes), decided without waiting."""
        live = self._context.live.current
        allowed = self._context.send_limiter.take(
            f"limit:send:{self.user_id}", rate=live.sends_per_second, burst=live.send_burst
        )
        if not allowed:
            self._strike(frame.ref, "too many messages from this user; slow down")
        return allowed

    def _strike(self, ref: str | None, message: str) -> None:
        """Refuse a frame over a limit; too many in a row close the connection (4005)."""
        RATE_LIMITED.inc()
        self._strikes += 1
        if self._strikes >= self._context.limits.strikes_before_close:
            self._conn.close(CloseCode.RATE_LIMITED, "too many frames")
        else:
            self._error(ref, ErrorCode.RATE_LIMITED, message)

    async def _report_presence(self, status: Literal["online", "idle"] | None) -> None:
        update = ConnectionStatus(conn_id=self.id, status=status)
        try:
            await self._context.presence.report(self.user_id, update)
        except ActorDead:
            self._conn.log.warning("presence.report_failed", status=status)

    def _refuse(self, ref: str, error: Exception) -> None:
        """Answer `ref` with the error frame for a refusal (see `error_reply`)."""
        self.send(protocol.encode(error_reply(ref, error)))

    def _error(self, ref: str | None, code: ErrorCode, message: str) -> None:
        self.send(protocol.encode(protocol.ErrorReply(ref=ref, code=code, message=message)))


def _try_send(room: ActorRef[RoomMessage], request: Post | Change) -> bool:
    """`room.try_send(request)`; False (not raised) if the room is stopping: `Rooms.send`
    then starts it again."""
    try:
        return room.try_send(request)
    except ActorDead:
        return False
