"""The room actor: stores a room's messages in batches and fans them out to subscribers.

One runs per room that has local subscribers (or a pending post); it stops
itself after `idle_timeout` seconds without subscribers or messages. All writes
to a room pass through its actor, so the room's sequence numbers are assigned
and delivered in order. Every event is encoded once into WebSocket frame bytes
and appended to every subscriber's outbox without waiting (DESIGN.md §8).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from typing import Generic, Literal, Protocol, TypeVar

import attrs
import structlog
import trio

from chorus import chat, e2e, protocol
from chorus.cluster import Bus
from chorus.deadlines import Deadlines, Entry
from chorus.gateway import Fanout, text_frame
from chorus.metrics import (
    APPEND_SECONDS,
    DELIVERIES,
    DELIVERY_SECONDS,
    FRAMES_OUT_BROADCAST,
    MESSAGES_STORED,
)
from chorus.persistence import (
    Appended,
    Forbidden,
    Gone,
    Message,
    NewMessage,
    Notification,
    Store,
    StoreError,
    StoreUnavailable,
    now_ms,
)

from ._errors import ActorDead
from ._ref import ActorRef, Inbox
from ._reply import Reply
from .events import event_payload, mentions, message_event, wire_message

_log = structlog.get_logger("chorus.room")
R = TypeVar("R")
R_contra = TypeVar("R_contra", contravariant=True)


class Subscriber(Protocol):
    """A connection subscribed to a room: sending never waits (see `chorus.gateway`)."""

    @property
    def id(self) -> str: ...

    @property
    def user_id(self) -> str: ...

    def send(self, payload: bytes) -> bool: ...

    def send_frame(self, frames: bytes) -> bool:
        """Queue one or more whole WebSocket frames, built once for every recipient: a
        `bytes` object, which may be kept by reference (it never changes)."""
        ...

    def close(self, code: int, reason: str) -> None: ...


@attrs.frozen(kw_only=True)
class RoomConfig:
    resume_limit: int = 1000
    """Most messages replayed by one resume before answering `too_far`."""
    idle_timeout: float = 60.0
    """Seconds without subscribers or messages before the actor stops."""
    batch_limit: int = 256
    """Most mailbox messages handled (and posts stored) per round."""
    typing_ttl_ms: int = 5000
    """How long clients show a typing indicator unless it is repeated."""
    typing_interval: float = 2.0
    """Seconds between two typing events forwarded for the same user."""
    resync_interval: float = 2.0
    """With a bus: most seconds between two store checks for events the bus lost, while
    the room has subscribers."""


@attrs.frozen(kw_only=True)
class Subscribe:
    """Add `subscriber`; with `after_seq` (resume) first replay what it missed.

    The reply is the room's latest seq once the subscriber is added.
    """

    subscriber: Subscriber
    after_seq: int | None
    reply: Reply[int]


@attrs.frozen(kw_only=True)
class Unsubscribe:
    subscriber_id: str


class Responder(Protocol[R_contra]):
    """Answers one write to the room (a `Post` or a `Change`) for the front end that sent it.

    The room calls one of the two, once (neither only if the room crashes: the
    asker's `ask` then fails, the gateway's connection is closed to resume);
    neither may wait. The gateway's (`connection.GatewayResponder`) sends an `ack` or `error` frame;
    an `ask`er's (`ReplyResponder`, the HTTP API's) settles its reply.
    """

    def accepted(self, result: R_contra) -> None:
        """Stored (or a retry of a stored write) and already queued to the subscribers."""

    def refused(self, error: Exception) -> None:
        """Nothing was stored: retrying with the same client id is safe.

        `error` is a `StoreError` (`NotFound`, `Forbidden`, `Gone`...), a
        `ValueError` (a rule broken), `NotJoined`, `ClientIdReused` or `RoomFailed`.
        """


@attrs.frozen
class ReplyResponder(Generic[R]):
    """Settles `reply` with the room's answer: how an `ask` (the HTTP API's) gets it."""

    reply: Reply[R]

    def accepted(self, result: R) -> None:
        self.reply.send(result)

    def refused(self, error: Exception) -> None:
        self.reply.fail(error)


@attrs.frozen(kw_only=True)
class Posted:
    """What a post is accepted with."""

    stored: Message
    """The stored message (the original one when `duplicate`), its attachments filled."""
    encrypted: bool
    """Its room is end-to-end encrypted (see `wire_message`)."""
    duplicate: bool
    """The client id was already used in this room: nothing new was stored."""
    event: bytes | None = None
    """`message` encoded as the `message` event the room broadcast (None when `duplicate`):
    the gateway builds its ack from these bytes (`protocol.encode_send_ack`) rather than
    encoding the message a second time."""

    @property
    def message(self) -> protocol.Message:
        """The stored message's protocol form, built on each call: the room writes a new
        message's event bytes without it (`message_event`), and only an HTTP reply or a
        retried send needs it. Its checks passed when the room encoded `stored`."""
        return wire_message(self.stored, encrypted=self.encrypted)


@attrs.frozen(kw_only=True)
class Post:
    """Store a message, broadcast it, then answer `responder`."""

    sender_id: str
    body: str
    client_id: str
    created_at: int
    thread_id: str | None = None
    """Post as a reply in the thread rooted at this message of the room."""
    attachments: tuple[str, ...] = ()
    """Ids of the sender's ready files to attach (see `NewMessage.attachments`)."""
    encrypted: protocol.MegolmEnvelope | None = None
    """The message, in an end-to-end encrypted room (where `body` must be empty)."""
    responder: Responder[Posted]
    subscriber_id: str | None = None
    """The gateway's connection posting: refused (`NotJoined`) unless it still is a
    subscriber, so that a member evicted from the room cannot post any more."""


ChangeKind = Literal["edit", "delete", "react", "unreact"]


@attrs.frozen(kw_only=True)
class Change:
    """Edit, delete or react to a message of the room: a sequenced event like a post.

    Stored, broadcast, then answered like a `Post`. `body` is the new text of
    an edit, or the emoji of a reaction. It is accepted with the stored event,
    or None when a reaction changed nothing. Refusals: `NotFound` (no such
    message in this room), `Forbidden`, `Gone` (deleted), other `StoreError`s.
    """

    kind: ChangeKind
    actor_id: str
    message_id: str
    client_id: str
    created_at: int
    body: str = ""
    encrypted: protocol.MegolmEnvelope | None = None
    """The new text of an edit in an end-to-end encrypted room (where `body` must be empty)."""
    responder: Responder[Appended | None]
    subscriber_id: str | None = None
    """As for a `Post`: the gateway's connection, which must still be a subscriber."""


@attrs.frozen(kw_only=True)
class Receipt:
    """A member's read marker moved (the caller checked that the room shows receipts)."""

    user_id: str
    seq: int


@attrs.frozen(kw_only=True)
class Typing:
    user_id: str
    subscriber_id: str


@attrs.frozen(kw_only=True)
class PresenceChanged:
    """A member's presence changed (sent by their presence actor)."""

    user_id: str
    status: protocol.PresenceStatus


@attrs.frozen(kw_only=True)
class Published:
    """A typing or presence event another node (or this one) published on the bus."""

    payload: bytes


@attrs.frozen(kw_only=True)
class Heard:
    """Stored events from the bus wait in the actor's `_Heard` buffer (one such
    message for all that arrive until the actor handles it)."""


@attrs.frozen(kw_only=True)
class Evict:
    """`user_id` is no longer a member: stop sending them this room's events.

    Each of their subscribers gets `notice` (a `room_removed` frame) as the
    last frame of the room; the reply is the ids of those subscribers.
    """

    user_id: str
    notice: bytes
    reply: Reply[set[str]]


@attrs.frozen(kw_only=True)
class Resync:
    """Wakes the actor to check the store for events the bus lost (queued by the node's
    resync timer, see `RoomActor.deadline_reached`; the check itself follows the batch)."""


RoomMessage = (
    Subscribe
    | Unsubscribe
    | Post
    | Change
    | Receipt
    | Typing
    | PresenceChanged
    | Evict
    | Published
    | Heard
    | Resync
)

Notify = Callable[[Sequence[Notification], Message], None]
"""Hands the notifications an append created (and their message) to their users; never waits."""


class RoomActor:
    """The state of one room's actor; `run` is its behaviour."""

    def __init__(
        self,
        room_id: str,
        store: Store,
        config: RoomConfig,
        bus: Bus | None = None,
        origin: str = "",
        notify: Notify | None = None,
        resyncs: Deadlines | None = None,
    ) -> None:
        """`resyncs` is the node's resync timer (its `run` must be running): with a bus,
        it calls `deadline_reached` every `resync_interval` while the room has subscribers.
        Without a bus it is not used: the store is then the only source of events."""
        self.room_id = room_id
        self._notify = notify
        self._origin = origin.encode()
        self._store = store
        self._config = config
        self._bus = bus
        self._topic = f"room:{room_id}"
        self._subscribers: dict[str, Subscriber] = {}
        self._fanout = Fanout()
        """Each subscriber's `send_frame`, by id: what a broadcast goes through. Changed
        only with `_subscribers`."""
        self._typing_sent: dict[str, float] = {}
        self._delivered = 0
        """The room's seqs up to here have been queued to subscribers, in order, once."""
        self._heard = _Heard()
        self._failure: Exception | None = None
        """What a delivery in the bus's task raised (`_deliver_heard_now`): the actor raises
        it on its next `Heard`, as if its own delivery had raised."""
        self._encrypted = False
        """End-to-end encrypted: read once at start, since it never changes."""
        self._resyncs = resyncs if bus is not None else None
        self.deadline_entry: Entry | None = None
        """This actor's live entry in `_resyncs` (the timer's, see `Deadlines`)."""
        self._resync_due = False
        """The timer found a resync due: `_loop` does it after the batch at hand."""
        self._ref: ActorRef[RoomMessage] | None = None

    async def run(self, inbox: Inbox[RoomMessage]) -> None:
        self._ref = inbox.ref
        try:
            await self._serve(inbox)
        except Exception:
            # The room's next actor starts with no subscribers: send them away to
            # reconnect and resume, rather than leave them silently unsubscribed.
            for subscriber in self._subscribers.values():
                subscriber.close(protocol.CloseCode.INTERNAL_ERROR, "room restarting; resume")
            raise
        finally:
            if self._resyncs is not None:
                self._resyncs.forget(self)  # the timer's heap lets go of a stopped actor now

    def deadline_reached(self, now: float) -> float:
        """The resync timer's call (in its task, without waiting; `chorus.deadlines.Watched`).

        While the room has subscribers: marks a resync due, wakes the actor with a
        `Resync` (unless one is already due: one message for both), and asks to be
        called again in `resync_interval`. A full mailbox takes no `Resync`, but the
        actor, busy with it, finds the resync due after its batch. Without
        subscribers there is nothing to resynchronise: the timer lets go, and the
        next subscriber watches again (`_subscribe`).
        """
        if not self._subscribers or self._ref is None:
            return math.inf
        if not self._resync_due:
            self._resync_due = True
            try:
                self._ref.try_send(Resync())
            except ActorDead:
                return math.inf  # stopping: `run` forgets it
        return now + self._config.resync_interval

    async def _serve(self, inbox: Inbox[RoomMessage]) -> None:
        subscription = None
        if self._bus is not None:
            # Subscribe before reading the last seq, so nothing falls in between.
            subscription = await self._bus.subscribe(
                self._topic,
                _forward_to(
                    inbox.ref,
                    self._heard,
                    lambda: self._delivered,
                    self._origin,
                    lambda: self._deliver_heard_now(inbox),
                ),
            )
        try:
            self._delivered = await self._store.last_seq(self.room_id)
            room = await self._store.get_room(self.room_id)
            self._encrypted = room is not None and room.encrypted
            await self._loop(inbox)
        finally:
            if subscription is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(1):
                    await subscription.unsubscribe()

    async def _loop(self, inbox: Inbox[RoomMessage]) -> None:
        while (first := await self._next(inbox)) is not None:
            posts: list[Post] = []
            for message in [first, *inbox.drain(self._config.batch_limit - 1)]:
                if isinstance(message, Post):
                    posts.append(message)
                    continue
                # Earlier posts go first, so a subscriber sees what came before it.
                await self._store_posts(posts)
                posts = []
                await self._handle(message)
            await self._store_posts(posts)
            if self._resync_due:
                await self._resync()

    async def _next(self, inbox: Inbox[RoomMessage]) -> RoomMessage | None:
        """The next message, or None when stopped, or after `idle_timeout` seconds without
        subscribers or messages (nothing is left queued then).

        A room with subscribers waits without a deadline (a cancel scope costs
        ~49,000 instructions, once per batch): with a bus, its resync comes as a
        `Resync` message from the node's timer (`deadline_reached`), so subscribers
        are resynchronised with the store at least every `resync_interval` seconds
        and a publication the bus lost is delivered within that bound even if
        nothing follows it.
        """
        if self._subscribers:
            return await _receive(inbox)
        with trio.move_on_after(self._config.idle_timeout):
            return await _receive(inbox)
        # A message may have arrived as the deadline passed.
        pending = inbox.drain(1)
        return pending[0] if pending else None

    async def _resync(self) -> None:
        """Deliver what other nodes stored that the bus did not bring."""
        self._resync_due = False
        if not self._subscribers:
            return  # gone since the timer's call: nobody to resynchronise
        try:
            last = await self._store.last_seq(self.room_id)
        except StoreError as exc:
            _log.warning("room.resync_failed", room=self.room_id, error=str(exc))
            return
        if last > self._delivered:
            DELIVERIES.inc(await self._backfill(last))

    async def _handle(self, message: RoomMessage) -> None:
        match message:
            case Subscribe():
                await self._subscribe(message)
            case Unsubscribe(subscriber_id=subscriber_id):
                self._subscribers.pop(subscriber_id, None)
                self._fanout.remove(subscriber_id)
            case Change():
                await self._change(message)
            case Receipt(user_id=user_id, seq=seq):
                event = protocol.encode(
                    protocol.ReceiptEvent(room=self.room_id, user=user_id, seq=seq)
                )
                self._broadcast(text_frame(event))
                await self._share(event)
            case Typing():
                await self._typing(message)
            case Published(payload=payload):
                self._published(payload)
            case Resync():
                pass  # it only woke the actor: `_loop` resyncs after the batch
            case Heard():
                self._heard.woken = False
                if self._failure is not None:
                    raise self._failure
                DELIVERIES.inc(await self._accept(self._heard.take()))
            case Evict(user_id=user_id, notice=notice, reply=reply):
                reply.send(self._evict(user_id, notice))
            case PresenceChanged(user_id=user_id, status=status):
                event = protocol.encode(protocol.PresenceEvent(user=user_id, status=status))
                self._broadcast(text_frame(event))
                await self._share(event)

    async def _subscribe(self, request: Subscribe) -> None:
        subscriber = request.subscriber
        if request.after_seq is not None:
            try:
                if request.after_seq > self._delivered:
                    await self._deliver_up_to(request.after_seq)
                self._replay(subscriber, request.after_seq, await self._missed(request.after_seq))
            except StoreError as exc:
                request.reply.fail(exc)
                return
        self._subscribers[subscriber.id] = subscriber
        self._fanout.add(subscriber.id, subscriber.send_frame)
        if self._resyncs is not None and self.deadline_entry is None:
            # The first subscriber (or the first since the timer last found none).
            self._resyncs.watch(self, trio.current_time() + self._config.resync_interval)
        request.reply.send(self._delivered)

    async def _deliver_up_to(self, seq: int) -> None:
        """Deliver the room up to `seq` to this node's subscribers, before one resumes from it.

        A client resuming from `seq` saw the room up to there on another node,
        whose publications this node has not all heard yet: were it subscribed
        first, it would be sent those events again when the gap is filled. Raises
        `StoreUnavailable` if the store has events up to there that could not be
        read (the resume is refused and retried, never answered with a gap that
        would deliver them twice). A `seq` the room never reached (a client's
        mistake) is taken as it is: that client gets the events above the room's
        latest as they come.
        """
        DELIVERIES.inc(await self._backfill(seq))
        if self._delivered < seq and await self._store.last_seq(self.room_id) > self._delivered:
            raise StoreUnavailable("the room's latest events could not be read; retry")

    async def _missed(self, after_seq: int) -> Sequence[Message] | None:
        """Messages after `after_seq`, or None when more than the resume limit were missed."""
        behind = self._delivered - after_seq
        if behind > self._config.resume_limit:
            return None
        if behind <= 0:
            return ()
        # Only up to what the others have been sent: later ones reach everyone together.
        return await self._store.messages(
            self.room_id, after=after_seq, before=self._delivered + 1, limit=behind
        )

    def _replay(
        self, subscriber: Subscriber, after_seq: int, missed: Sequence[Message] | None
    ) -> None:
        room, last = self.room_id, self._delivered
        if missed is None:
            subscriber.send(
                protocol.encode(protocol.TooFar(room=room, after_seq=after_seq, last_seq=last))
            )
            return
        for event in missed:
            subscriber.send(event_payload(event, encrypted=self._encrypted))
        marker = protocol.Replayed(room=room, after_seq=after_seq, last_seq=last, count=len(missed))
        subscriber.send(protocol.encode(marker))

    def _evict(self, user_id: str, notice: bytes) -> set[str]:
        evicted = {s.id for s in self._subscribers.values() if s.user_id == user_id}
        for subscriber_id in evicted:
            self._fanout.remove(subscriber_id)
            self._subscribers.pop(subscriber_id).send(notice)
        return evicted

    async def _typing(self, typing: Typing) -> None:
        if typing.subscriber_id not in self._subscribers:
            return
        now = trio.current_time()
        if (
            now - self._typing_sent.get(typing.user_id, -float("inf"))
            < self._config.typing_interval
        ):
            return
        self._typing_sent[typing.user_id] = now
        event = protocol.TypingEvent(
            room=self.room_id, user=typing.user_id, expires_in_ms=self._config.typing_ttl_ms
        )
        payload = protocol.encode(event)
        self._broadcast(text_frame(payload), skip=typing.subscriber_id)
        await self._share(payload)

    async def _share(self, event: bytes) -> None:
        """Pass a typing or presence event to the room's subscribers on other nodes."""
        if self._bus is not None:
            await self._publish(ephemeral_envelope(self._origin, event))

    def _published(self, payload: bytes) -> None:
        """An ephemeral envelope from another node (`_forward_to` drops this node's own, and
        stored events come through `_heard`)."""
        if payload[:1] == _EPHEMERAL:
            self._broadcast(text_frame(payload.partition(b" ")[2]))

    def _broadcast(self, frames: bytes, count: int = 1, skip: str | None = None) -> int:
        """Queue `frames` (`count` whole frames, encoded once) to every subscriber but `skip`.

        Each subscriber gets them in one append, in order and never interleaved
        with other frames. Drops closed subscribers. Returns the deliveries:
        recipients times `count`.
        """
        for subscriber_id in self._fanout.offer(frames, skip):
            del self._subscribers[subscriber_id]
        deliveries = (len(self._fanout) - (skip in self._fanout)) * count
        FRAMES_OUT_BROADCAST.inc(deliveries)
        return deliveries

    def _broadcast_all(self, frames: list[bytes]) -> int:
        """Queue `frames` to every subscriber as one append each (see `_broadcast`)."""
        if not frames:
            return 0
        return self._broadcast(b"".join(frames), len(frames))

    def _may_write(self, request: Post | Change) -> bool:
        """Gateway writes must come from a subscriber (an evicted member is refused)."""
        if request.subscriber_id is None or request.subscriber_id in self._subscribers:
            return True
        request.responder.refused(NotJoined())
        return False

    def _sealed_as_needed(self, request: Post | Change) -> bool:
        """In an encrypted room only envelopes are stored, and only there (else refused).

        A reaction names its emoji in the clear, so it is refused there too:
        reactions travel inside encrypted messages (docs/e2e.md).
        """
        if isinstance(request, Change) and request.kind == "delete":
            return True
        sealed = request.encrypted is not None
        plain = bool(request.body) or (isinstance(request, Change) and request.kind != "edit")
        if self._encrypted and (plain or not sealed):
            request.responder.refused(EncryptionRequired())
        elif not self._encrypted and sealed:
            request.responder.refused(ValueError("encrypted: this room is not encrypted"))
        else:
            return True
        return False

    async def _may_send(self, posts: list[Post]) -> list[Post]:
        """The posts whose senders may post now (mutes, locks, bans and blocks:
        `chat.send_refusals`, one read for all of them); the others are refused. For
        batches with replies, whose threads are read after their senders are checked."""
        if not posts:
            return posts
        try:
            # One read for every sender of the batch: the room's batches of posts from
            # many members would otherwise wait for one store round trip per sender.
            refusals = await chat.send_refusals(
                self._store, self.room_id, (post.sender_id for post in posts)
            )
        except StoreError as exc:
            refusals = {post.sender_id: exc for post in posts}
        kept = []
        for post in posts:
            refusal = refusals[post.sender_id]
            if refusal is None:
                kept.append(post)
            else:
                post.responder.refused(refusal)
        return kept

    async def _store_posts(self, posts: list[Post]) -> None:
        """Store `posts`, broadcast the new ones, then acknowledge each, in their order.

        Posts without attachments are stored together, in one transaction. A
        post with attachments gets a transaction of its own (they are rare):
        a file that cannot be attached refuses that post only, where it would
        roll back all of a shared one. Runs of posts keep their order, so seqs
        still follow the order the posts arrived in.
        """
        posts = [post for post in posts if self._may_write(post) and self._sealed_as_needed(post)]
        if any(post.thread_id is not None for post in posts):
            # Replies (rare): the senders are checked before their threads are read, so a
            # refused sender learns nothing of the thread. Otherwise the store checks the
            # senders with the append (`_store_batch`).
            posts = await self._may_send(posts)
            posts = [post for post in posts if await self._thread_ok(post)]
        posts = [post for post in posts if not post.attachments or await self._attachable(post)]
        run: list[Post] = []
        for post in posts:
            if post.attachments:
                await self._store_batch(run)
                await self._store_batch([post])
                run = []
            else:
                run.append(post)
        await self._store_batch(run)

    async def _store_batch(self, posts: list[Post]) -> None:
        """Store `posts` in one transaction, broadcast the new ones, then acknowledge each.

        The store checks that their senders may post now (mutes, locks, bans and
        blocks: `chat.sender_admission`) in the same call, read at every batch, so a
        change applies from the next batch on; the others are refused.
        """
        if not posts:
            return
        batch = [_new_message(post) for post in posts]
        admit = chat.sender_admission(self.room_id)
        started = time.perf_counter()
        try:
            # With `known`, the append also reads back what other nodes stored since this
            # node's last delivered event: with several nodes writing to a room, nearly
            # every batch follows some whose publications are still on the bus, and
            # reading them separately cost a store round trip per batch
            # (docs/benchmarks.md, "Issue #15, session 8: the gap after an own append").
            stored = await self._store.append_admitted(
                self.room_id, batch, admit, now_ms(), known=self._delivered
            )
        except StoreError as exc:
            for post in posts:
                post.responder.refused(exc)
            return
        except Exception:
            # A bug in storing them (nothing was stored): refuse these posts rather than
            # crash the room, or their clients would re-send them after every restart,
            # taking the room (and every subscriber's connection to it) down again and again.
            _log.exception("room.append_failed", room=self.room_id, posts=len(posts))
            for post in posts:
                post.responder.refused(RoomFailed())
            return
        finally:
            APPEND_SECONDS.observe(time.perf_counter() - started)
        results: list[Appended] = []
        admitted: list[Post] = []
        for post, result in zip(posts, stored.results, strict=True):
            if isinstance(result, Exception):
                post.responder.refused(result)
            else:
                admitted.append(post)
                results.append(result)
        posts = admitted
        # Every result is encoded, broadcast or not, so that each passes the protocol's checks
        # here, before any is delivered or acknowledged.
        encoded = [message_event(result.message, encrypted=self._encrypted) for result in results]
        events = [
            event if not result.duplicate and result.message.room_id == self.room_id else None
            for event, result in zip(encoded, results, strict=True)
        ]
        new = [
            (result.message.seq, event)
            for result, event in zip(results, events, strict=True)
            if event is not None
        ]
        if new and self._bus is not None:
            # Published first: other nodes need not wait for a gap this node may have to
            # fill before its own delivery (`_accept`).
            await self._publish(_stored_envelope(new))
        # Deliver before acknowledging: a sender never sees its ack before others can see
        # the message.
        DELIVERIES.inc(await self._accept([*self._earlier(stored.earlier), *new]))
        DELIVERY_SECONDS.observe(time.perf_counter() - started)
        for post, result, event in zip(posts, results, events, strict=True):
            if result.message.room_id != self.room_id:
                post.responder.refused(ClientIdReused(post.client_id))
            else:
                post.responder.accepted(
                    Posted(
                        stored=result.message,
                        encrypted=self._encrypted,
                        duplicate=result.duplicate,
                        event=event,
                    )
                )
            if result.notified and self._notify is not None:
                # Notifications (and push webhooks) of an encrypted room carry no content.
                shown = attrs.evolve(result.message, body="") if self._encrypted else result.message
                self._notify(result.notified, shown)
        MESSAGES_STORED.inc(len(new))

    def _earlier(self, events: Sequence[Message]) -> list[tuple[int, bytes]]:
        """`events` (other nodes', after the delivered seq) as payloads to deliver; those
        the bus already brought are taken from `_heard`, already encoded."""
        heard = self._heard.events
        return [
            (
                event.seq,
                heard.pop(event.seq, b"") or event_payload(event, encrypted=self._encrypted),
            )
            for event in events
        ]

    async def _attachable(self, post: Post) -> bool:
        """Files declared end-to-end encrypted go in encrypted rooms, and only they do there
        (else the post is refused here); the store checks the rest (owner, state)."""
        for file_id in post.attachments:
            try:
                file = await self._store.get_file(file_id)
            except StoreError as exc:
                post.responder.refused(exc)
                return False
            if file is None or file.encrypted == self._encrypted:
                continue
            why = (
                "it is not end-to-end encrypted (upload it with encrypted=true)"
                if self._encrypted
                else "it is end-to-end encrypted and this room is not"
            )
            post.responder.refused(Forbidden(f"file {file_id!r} cannot be attached here: {why}"))
            return False
        return True

    async def _thread_ok(self, post: Post) -> bool:
        """A reply's root must be a live, top-level message of this room (else refused here,
        so that the rest of the batch is stored)."""
        if post.thread_id is None:
            return True
        try:
            root = await chat.room_message(self._store, self.room_id, post.thread_id)
        except StoreError as exc:
            post.responder.refused(exc)
            return False
        if root.thread_id is not None:
            post.responder.refused(
                ValueError("replies cannot have replies: reply to the thread's root")
            )
        elif root.deleted_at is not None:
            post.responder.refused(Gone(f"message {post.thread_id} was deleted"))
        else:
            return True
        return False

    async def _change(self, change: Change) -> None:
        """Store an edit, delete or reaction as the room's next event, broadcast, acknowledge."""
        if not (self._may_write(change) and self._sealed_as_needed(change)):
            return
        try:
            if change.kind != "delete":  # a muted sender may still delete their own message
                await chat.check_may_send(self._store, self.room_id, change.actor_id)
            await chat.room_message(self._store, self.room_id, change.message_id)
            result = await self._apply(change)
        except (StoreError, ValueError) as exc:
            change.responder.refused(exc)
            return
        except Exception:  # a bug in storing it: refused, as for posts
            _log.exception("room.change_failed", room=self.room_id, kind=change.kind)
            change.responder.refused(RoomFailed())
            return
        if result is not None and result.message.room_id != self.room_id:
            change.responder.refused(ClientIdReused(change.client_id))
            return
        if result is not None and not result.duplicate:
            event = result.message
            payload = event_payload(event, encrypted=self._encrypted)
            if self._bus is not None:  # first, as in `_store_batch`
                await self._publish(_stored_envelope([(event.seq, payload)]))
            DELIVERIES.inc(await self._accept([(event.seq, payload)]))
        change.responder.accepted(result)

    async def _apply(self, change: Change) -> Appended | None:
        store, at = self._store, change.created_at
        match change.kind:
            case "edit":
                body = (
                    change.body
                    if change.encrypted is None
                    else e2e.megolm_content(change.encrypted)
                )
                return await store.edit_message(
                    change.message_id, change.actor_id, body, change.client_id, at
                )
            case "delete":
                return await store.delete_message(
                    change.message_id, change.actor_id, change.client_id, at
                )
            case "react" | "unreact":
                return await store.set_reaction(
                    change.message_id,
                    change.actor_id,
                    change.body,
                    change.kind == "react",
                    change.client_id,
                    at,
                )

    async def _accept(self, events: list[tuple[int, bytes]]) -> int:
        """Queue new events to subscribers in seq order, filling gaps from the store.

        Events at or below the delivered seq were already sent (a node hears its
        own publications, and the bus and the store overlap): they are skipped,
        so no client gets a message twice. Returns the deliveries made.
        """
        deliveries = 0
        frames: list[bytes] = []  # queued to everyone at once: one append per subscriber
        for seq, payload in sorted(events):
            if seq > self._delivered + 1:
                deliveries += self._broadcast_all(frames)  # they come before the gap's events
                frames = []
                deliveries += await self._backfill(seq - 1)
            if seq == self._delivered + 1:
                frames.append(text_frame(payload))
                self._delivered = seq
        return deliveries + self._broadcast_all(frames)

    async def _backfill(self, up_to: int) -> int:
        """Deliver the events after the delivered seq, up to `up_to` (a gap): those the
        bus already brought (`_heard`) first, then, if some are still missing, the
        store's.

        A gap that this node's own append leaves comes back with the append
        (`AdmittedBatch.earlier`); this fills the others: a publication heard
        after one the bus lost or dropped, a resync, or what that read missed.
        """
        deliveries = self._deliver_heard(up_to)
        try:
            while self._delivered < up_to:
                page = await self._store.messages(
                    self.room_id,
                    after=self._delivered,
                    before=up_to + 1,
                    limit=min(500, up_to - self._delivered),
                )
                if not page:
                    break
                deliveries += self._broadcast_all(
                    [text_frame(event_payload(event, encrypted=self._encrypted)) for event in page]
                )
                self._delivered = page[-1].seq
        except StoreError as exc:
            # The gap stays; the next event or resync fills it.
            _log.warning("room.backfill_failed", room=self.room_id, error=str(exc))
        self._heard.forget(self._delivered)
        return deliveries

    def _deliver_heard_now(self, inbox: Inbox[RoomMessage]) -> bool:
        """The bus callback's call, in the bus's task: deliver the events the bus brought
        now, if the actor would do just that; True if none are left for it.

        Only while the actor has subscribers and is parked in its mailbox with
        nothing handed to it (`Inbox.parked`), and only the events that follow
        the delivered seq without a gap: the actor, woken with `Heard`, would
        deliver exactly these before anything else, so they go out in the same
        order, once, and without the actor's wake-up (a task step and a
        scheduler round per peer publication: docs/benchmarks.md, "Issue #15,
        session 11: a node's cost per message in `cluster-3`"). What follows a
        gap is left to the actor, which fills it from the store. If the
        delivery raises (a bug), the actor raises it on the `Heard` it is then
        sent, so the room crashes and its subscribers resume, as when its own
        delivery raises.
        """
        heard = self._heard.events
        if not (heard and self._subscribers and self._failure is None and inbox.parked()):
            return False
        try:
            DELIVERIES.inc(self._deliver_heard(max(heard)))
        except Exception as exc:
            self._failure = exc
            return False
        self._heard.forget(self._delivered)
        return not self._heard.events

    def _deliver_heard(self, up_to: int) -> int:
        """Deliver the events the bus brought that follow the delivered seq without a
        hole, up to `up_to`."""
        frames: list[bytes] = []  # queued to everyone at once: one append per subscriber
        while self._delivered < up_to:
            payload = self._heard.events.pop(self._delivered + 1, None)
            if payload is None:
                break
            frames.append(text_frame(payload))
            self._delivered += 1
        return self._broadcast_all(frames)

    async def _publish(self, envelope: bytes) -> None:
        """Tell other nodes (best effort: stored events lost on the way are filled in there)."""
        assert self._bus is not None
        try:
            await self._bus.publish(self._topic, envelope)
        except Exception as exc:  # the bus is best effort: stored messages are safe
            _log.warning("room.publish_failed", room=self.room_id, error=str(exc))


_STORED, _EPHEMERAL = b"M", b"E"


async def _receive(inbox: Inbox[RoomMessage]) -> RoomMessage | None:
    """The next message, or None once the mailbox is closed."""
    try:
        return await inbox.receive()
    except trio.EndOfChannel:
        return None


def _stored_envelope(events: list[tuple[int, bytes]]) -> bytes:
    """A bus payload for a stored batch: `M`, then a line `<seq> <event JSON>` per event,
    in increasing seq order (`_delivered_already` reads only the last line)."""
    return _STORED + b"\n".join(b"%d %s" % (seq, payload) for seq, payload in events)


def _open_stored(body: bytes) -> list[tuple[int, bytes]]:
    events = []
    for line in body.split(b"\n"):  # JSON from orjson never holds a raw newline
        seq, _, event = line.partition(b" ")
        events.append((int(seq), event))
    return events


def ephemeral_envelope(origin: bytes, event: bytes) -> bytes:
    """A bus payload for typing or presence: `E<origin node> <event JSON>`."""
    return _EPHEMERAL + origin + b" " + event


HEARD_LIMIT = 4096
"""Most stored events from the bus waiting for a room actor; past it they are dropped
(and read from the store when the gap shows)."""


class _Heard:
    """Stored events the bus brought, by seq, until the room actor takes them.

    The bus callback adds to it without waiting and wakes the actor with one
    `Heard` message for everything that arrives until the actor handles it, not
    one message per publication (each would also end the actor's batch of posts
    early, see `_loop`). The actor takes them when it handles `Heard`, or
    before, when a gap in seqs shows that they are needed (`_backfill`).
    """

    def __init__(self) -> None:
        self.events: dict[int, bytes] = {}
        self.woken = False
        """A `Heard` message is in the actor's mailbox."""

    def add(self, events: list[tuple[int, bytes]], delivered: int) -> None:
        for seq, payload in events:
            if seq > delivered and len(self.events) < HEARD_LIMIT:
                self.events[seq] = payload

    def take(self) -> list[tuple[int, bytes]]:
        """All of them, in seq order (none are left)."""
        events, self.events = sorted(self.events.items()), {}
        return events

    def forget(self, delivered: int) -> None:
        """Drop those at or below `delivered` (delivered from the store meanwhile)."""
        for seq in [seq for seq in self.events if seq <= delivered]:
            del self.events[seq]


def _forward_to(
    ref: ActorRef[RoomMessage],
    heard: _Heard,
    delivered: Callable[[], int],
    origin: bytes,
    deliver_now: Callable[[], bool],
) -> Callable[[bytes], None]:
    """A bus callback that hands payloads to the room's actor without waiting.

    Stored batches whose events are all at or below `delivered()` (the actor's
    delivered seq) are dropped here, before they are decoded: above all the
    node's own publications, which the bus brings back to it. Others go to
    `heard`, and are delivered at once if `deliver_now()` can (the room's
    `_deliver_heard_now`), else the actor is woken with `Heard`; typing and
    presence are queued as `Published`, but this node's own (from `origin`,
    already shown here) are dropped too.
    """
    own = _EPHEMERAL + origin + b" "

    def deliver(payload: bytes) -> None:
        if _delivered_already(payload, delivered()) or payload.startswith(own):
            return  # first: the node's own publications, a third of what it hears in 3 nodes
        # A full or stopped mailbox drops a message: a gap is filled from the store later.
        with contextlib.suppress(ActorDead):
            if payload[:1] != _STORED:
                ref.try_send(Published(payload=payload))
            else:
                heard.add(_open_stored(payload[1:]), delivered())
                if not heard.woken and not deliver_now():
                    heard.woken = ref.try_send(Heard())

    return deliver


def _delivered_already(payload: bytes, delivered: int) -> bool:
    """Whether `payload` is a stored batch with no event after seq `delivered`.

    Reads only the seq of its last line (events are in increasing seq order);
    anything else (an ephemeral event, a malformed payload) is not.
    """
    if payload[:1] != _STORED:
        return False
    start = payload.rfind(b"\n") + 1 or 1
    end = payload.find(b" ", start)
    return end > start and payload[start:end].isdigit() and int(payload[start:end]) <= delivered


def _new_message(post: Post) -> NewMessage:
    if post.encrypted is not None:  # opaque: mentions are inside the ciphertext
        body, names, everyone = e2e.megolm_content(post.encrypted), frozenset[str](), False
    else:
        body, (names, everyone) = post.body, mentions(post.body)
    return NewMessage(
        sender_id=post.sender_id,
        body=body,
        client_id=post.client_id,
        created_at=post.created_at,
        thread_id=post.thread_id,
        mentions=names,
        mentions_room=everyone,
        attachments=post.attachments,
    )


class NotJoined(Exception):
    """A gateway request from a connection that is not subscribed to the room."""


class EncryptionRequired(Exception):
    """Plaintext (a body, a reaction) sent to an end-to-end encrypted room: nothing stored."""

    def __init__(self) -> None:
        super().__init__(
            "this room is end-to-end encrypted: send the message as `encrypted` with an empty"
            " body (reactions go inside encrypted messages)"
        )


class RoomFailed(Exception):
    """The room failed to handle a request (a bug, logged); the request was refused."""


class ClientIdReused(Exception):
    """The user already used this client id for a write in another room: nothing was stored."""

    def __init__(self, client_id: str) -> None:
        super().__init__(f"client_id {client_id!r} was already used in another room")
