"""The room actor over a real SQLite store: batching, fan-out, acks, resume, idling."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest
import trio
import trio.testing
from prometheus_client import REGISTRY
from prometheus_client.values import MutexValue

from chorus import protocol
from chorus.actors import ActorRef, Reply
from chorus.actors.connection import GatewayResponder
from chorus.actors.events import wire_message
from chorus.actors.room import (
    Change,
    Post,
    Posted,
    ReplyResponder,
    RoomConfig,
    RoomMessage,
    Subscribe,
    Typing,
)
from chorus.persistence import NewMessage, Role, RoomKind, StoreError
from chorus.supervisors import Restart
from tests.actors.world import World
from tests.recorder import Recorder
from tests.supervisors.children import Journal, Worker


def post(world: World, client_id: str, origin: Recorder | None = None) -> Post:
    """A post as the gateway sends it from `origin`; without one, nobody hears the answer."""
    answers = origin if origin is not None else Recorder("nobody")
    return Post(
        sender_id=world.sender_id,
        body=f"body of {client_id}",
        client_id=client_id,
        created_at=1,
        responder=GatewayResponder(answers, f"ref-{client_id}", world.room_id),
        subscriber_id=None if origin is None else origin.id,
    )


async def subscribe(world: World, subscriber: Recorder, after_seq: int | None = None) -> int:
    def make(reply: Reply[int]) -> RoomMessage:
        return Subscribe(subscriber=subscriber, after_seq=after_seq, reply=reply)

    seq: int = await world.rooms.ask(world.room_id, make, timeout=5)
    return seq


async def test_posts_are_stored_in_order_broadcast_once_and_acknowledged(world: World) -> None:
    reader, poster = Recorder("reader"), Recorder("poster")
    await subscribe(world, reader)
    await subscribe(world, poster)
    for n in range(5):
        await world.rooms.send(world.room_id, post(world, f"c{n}", origin=poster))
    await poster.wait_for(5, protocol.Ack)
    await reader.wait_for(5, protocol.MessageEvent)
    assert [m.seq for m in reader.messages()] == [1, 2, 3, 4, 5]
    acks = [f for f in poster.frames if isinstance(f, protocol.Ack)]
    assert [(a.ref, a.seq) for a in acks] == [(f"ref-c{n}", n + 1) for n in range(5)]
    stored = await world.store.messages(world.room_id, limit=10)
    assert [wire_message(m, encrypted=False) for m in stored] == reader.messages()


@attrs.define(eq=False)
class CountingRecorder(Recorder):
    """A recorder that also counts the appends a broadcast made to it."""

    appends: int = 0

    def send_frame(self, frames: bytes) -> bool:
        self.appends += 1
        return super().send_frame(frames)


def _deliveries() -> float:
    return REGISTRY.get_sample_value("chorus_deliveries_total") or 0.0


async def test_a_stored_batch_reaches_each_subscriber_in_one_append(world: World) -> None:
    # Encoded once for everyone and appended once per subscriber, however many posts the
    # batch holds: the per-recipient work of a broadcast does not grow with the batch.
    readers = [CountingRecorder("reader-1"), CountingRecorder("reader-2")]
    for reader in readers:
        await subscribe(world, reader)
    actor = await world.rooms.actor(world.room_id)
    before = _deliveries()
    for n in range(5):  # all queued before the actor runs: it stores them as one batch
        assert actor.try_send(post(world, f"c{n}"))
    for reader in readers:
        await reader.wait_for(5, protocol.MessageEvent)
        assert [m.seq for m in reader.messages()] == [1, 2, 3, 4, 5]
        assert reader.appends == 1
    assert _deliveries() == before + 10


def _deliveries_timed() -> float:
    return REGISTRY.get_sample_value("chorus_delivery_seconds_count") or 0.0


async def test_each_stored_batch_times_its_delivery(world: World) -> None:
    # chorus_delivery_seconds feeds the p99 delivery latency alert (ops/prometheus).
    reader = Recorder("reader")
    await subscribe(world, reader)
    before = _deliveries_timed()
    await world.rooms.send(world.room_id, post(world, "timed"))
    await reader.wait_for(1, protocol.MessageEvent)
    assert _deliveries_timed() == before + 1


async def test_a_retried_client_id_is_acknowledged_with_the_original_and_not_broadcast(
    world: World,
) -> None:
    reader, poster = Recorder("reader"), Recorder("poster")
    await subscribe(world, reader)
    await subscribe(world, poster)
    await world.rooms.send(world.room_id, post(world, "same", origin=poster))
    await world.rooms.send(world.room_id, post(world, "same", origin=poster))
    await poster.wait_for(2, protocol.Ack)
    assert len(reader.messages()) == 1
    acks = [f for f in poster.frames if isinstance(f, protocol.Ack)]
    assert len(acks) == 2
    assert acks[0].message == acks[1].message


@attrs.define(eq=False)
class RawRecorder(Recorder):
    """A recorder that also keeps the JSON bytes of every frame it was sent."""

    payloads: list[bytes] = attrs.field(factory=list)

    def send(self, payload: bytes) -> bool:
        self.payloads.append(payload)
        return super().send(payload)


async def test_a_new_post_is_accepted_with_the_event_bytes_the_room_broadcast(
    world: World,
) -> None:
    # The gateway builds a send's ack from these bytes instead of encoding the message
    # again (`protocol.encode_send_ack`); a retry was not broadcast, so it has none.
    reader = RawRecorder("reader")
    await subscribe(world, reader)

    def over_http(reply: Reply[Posted]) -> RoomMessage:
        return attrs.evolve(post(world, "once"), responder=ReplyResponder(reply))

    posted: Posted = await world.rooms.ask(world.room_id, over_http, timeout=5)
    retried: Posted = await world.rooms.ask(world.room_id, over_http, timeout=5)
    assert reader.payloads == [posted.event]
    assert posted.event == protocol.encode(protocol.MessageEvent(message=posted.message))
    assert (retried.duplicate, retried.event) == (True, None)
    assert retried.message == posted.message


async def test_the_gateway_acks_a_new_and_a_retried_post_alike(world: World) -> None:
    poster = RawRecorder("poster")
    await subscribe(world, poster)
    for _ in range(2):  # stored, then a retry of the same client id
        await world.rooms.send(world.room_id, post(world, "same", origin=poster))
    await poster.wait_for(2, protocol.Ack)
    message = poster.messages()[0]
    ack = protocol.Ack(ref="ref-same", room=world.room_id, seq=message.seq, message=message)
    assert poster.payloads[1:] == [protocol.encode(ack)] * 2


async def test_subscribing_with_a_seq_replays_what_was_missed(world: World) -> None:
    poster = Recorder("poster")
    await subscribe(world, poster)
    for n in range(4):
        await world.rooms.send(world.room_id, post(world, f"c{n}", origin=poster))
    await poster.wait_for(4, protocol.Ack)
    late = Recorder("late")
    assert await subscribe(world, late, after_seq=1) == 4
    assert [m.seq for m in late.messages()] == [2, 3, 4]
    assert late.frames[-1] == protocol.Replayed(
        room=world.room_id, after_seq=1, last_seq=4, count=3
    )


async def test_too_far_behind_gets_a_marker_instead_of_a_replay(world: World) -> None:
    poster = Recorder("poster")
    await subscribe(world, poster)
    for n in range(7):
        await world.rooms.send(world.room_id, post(world, f"c{n}", origin=poster))
    await poster.wait_for(7, protocol.Ack)
    late = Recorder("late")
    await subscribe(world, late, after_seq=0)
    assert late.frames == [protocol.TooFar(room=world.room_id, after_seq=0, last_seq=7)]


async def test_a_resume_past_what_the_store_can_read_now_is_refused(world: World) -> None:
    """Another node stored seqs 1-2 (this node has heard of neither) and a client that
    saw them resumes here from 2: with the store failing, the room cannot deliver them
    to its own subscribers first, so the resume is refused (and retried) rather than
    answered with a gap that would later send them to that client twice."""
    poster = Recorder("poster")
    await subscribe(world, poster)
    elsewhere = [
        NewMessage(sender_id=world.sender_id, body="there", client_id=f"t{n}", created_at=1)
        for n in range(2)
    ]
    await world.store.append_messages(world.room_id, elsewhere)
    await world.store.aclose()
    moved = Recorder("moved")
    with pytest.raises(StoreError):
        await subscribe(world, moved, after_seq=2)
    assert moved.frames == []


async def test_a_resume_from_a_seq_the_room_never_reached_replays_nothing(world: World) -> None:
    """A client's mistake (a seq above the room's latest) is taken as it is: nothing to
    replay, and the room's next events reach it as they come."""
    poster = Recorder("poster")
    await subscribe(world, poster)
    await world.rooms.send(world.room_id, post(world, "c0", origin=poster))
    await poster.wait_for(1, protocol.Ack)
    ahead = Recorder("ahead")
    assert await subscribe(world, ahead, after_seq=5) == 1
    assert ahead.frames == [protocol.Replayed(room=world.room_id, after_seq=5, last_seq=1, count=0)]
    await world.rooms.send(world.room_id, post(world, "c1", origin=poster))
    await ahead.wait_for(1, protocol.MessageEvent)
    assert [m.seq for m in ahead.messages()] == [2]


async def test_closed_subscribers_are_dropped_on_the_next_broadcast(world: World) -> None:
    gone, stays = Recorder("gone"), Recorder("stays")
    await subscribe(world, gone)
    await subscribe(world, stays)
    gone.open = False
    await world.rooms.send(world.room_id, post(world, "one"))
    await stays.wait_for(1, protocol.MessageEvent)
    gone.open = True  # it would accept again, but the room has forgotten it
    await world.rooms.send(world.room_id, post(world, "two"))
    await stays.wait_for(2, protocol.MessageEvent)
    assert gone.messages() == []
    assert len(stays.messages()) == 2


async def test_a_typing_broadcast_skips_the_typist_and_drops_closed_subscribers(
    world: World,
) -> None:
    typist, gone, stays = Recorder("typist"), Recorder("gone"), Recorder("stays")
    for subscriber in (typist, gone, stays):
        await subscribe(world, subscriber)
    gone.open = False
    await world.rooms.send(world.room_id, Typing(user_id="u_typist", subscriber_id="typist"))
    await stays.wait_for(1, protocol.TypingEvent)
    gone.open = True  # it would accept again, but the room has forgotten it
    await world.rooms.send(world.room_id, post(world, "one"))
    await stays.wait_for(1, protocol.MessageEvent)
    await typist.wait_for(1, protocol.MessageEvent)
    assert gone.frames == []
    assert not any(isinstance(frame, protocol.TypingEvent) for frame in typist.frames)


async def test_an_idle_room_starts_again_while_its_supervisor_lags(world: World) -> None:
    # The room's exit report queues behind others' while a slow start holds the
    # supervisor: the next message must still start a fresh actor (no DuplicateChild).
    world.rooms.config = RoomConfig(idle_timeout=0.2)
    actor = await world.rooms.actor(world.room_id)
    journal = Journal()
    others = [
        await world.supervisor.start_child(Worker(f"w{n}", journal).spec(Restart.TEMPORARY))
        for n in range(4)
    ]
    gate = trio.Event()
    slow = Worker("slow", journal, gate=gate)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(world.supervisor.start_child, slow.spec(Restart.TEMPORARY))
        await journal.wait_for(lambda events: "start slow" in events)
        for other in others:
            other.finish()
        await journal.wait_count("stop w3", 1)
        with trio.fail_after(10):
            await actor.wait_stopped()  # idle: its exit report queues behind the others'
        fresh: list[ActorRef[RoomMessage]] = []

        async def find_room() -> None:
            fresh.append(await world.rooms.actor(world.room_id))

        nursery.start_soon(find_room)
        await trio.testing.wait_all_tasks_blocked()  # in line for the lock, ahead of the exits
        gate.set()
    assert fresh[0] is not actor
    assert world.rooms.running(world.room_id) is fresh[0]


async def test_an_idle_room_stops_and_forgets_its_name(world: World) -> None:
    # Store calls run in threads, which a mock clock would jump over: real (short) time.
    world.rooms.config = RoomConfig(idle_timeout=0.05)

    def over_http(reply: Reply[Posted]) -> RoomMessage:
        return attrs.evolve(post(world, "c"), responder=ReplyResponder(reply))

    await world.rooms.ask(world.room_id, over_http, timeout=5)  # stored, no subscriber left
    actor = world.rooms.running(world.room_id)
    assert actor is not None
    with trio.fail_after(10):
        await actor.wait_stopped()
    assert world.rooms.running(world.room_id) is None
    assert world.registry.names() == []
    # It comes back on demand, with its history.
    late = Recorder("late")
    assert await subscribe(world, late, after_seq=0) == 1
    assert [m.body for m in late.messages()] == ["body of c"]


async def test_a_failing_store_refuses_posts_with_unavailable(world: World) -> None:
    poster = Recorder("poster")
    await subscribe(world, poster)
    await world.store.aclose()
    await world.rooms.send(world.room_id, post(world, "lost", origin=poster))
    await poster.wait_for(1, protocol.ErrorReply)
    errors = [f for f in poster.frames if isinstance(f, protocol.ErrorReply)]
    assert [(e.ref, e.code) for e in errors] == [("ref-lost", protocol.ErrorCode.UNAVAILABLE)]


async def test_evicted_members_stop_receiving_the_rooms_events(world: World) -> None:
    kicked, kept = Recorder("kicked", user_id="u_kicked"), Recorder("kept", user_id="u_kept")
    await subscribe(world, kicked)
    await subscribe(world, kept)
    notice = protocol.encode(protocol.RoomRemoved(room=world.room_id, by="u_owner"))
    assert await world.rooms.evict(world.room_id, "u_kicked", notice) == {kicked.id}
    await world.rooms.send(world.room_id, post(world, "after"))
    await kept.wait_for(1, protocol.MessageEvent)
    assert kicked.messages() == []
    assert [f for f in kicked.frames if isinstance(f, protocol.RoomRemoved)] == [
        protocol.RoomRemoved(room=world.room_id, by="u_owner")
    ]


async def test_evicted_members_cannot_post_through_the_gateway(world: World) -> None:
    kicked = Recorder("kicked", user_id="u_kicked")
    await subscribe(world, kicked)
    notice = protocol.encode(protocol.RoomRemoved(room=world.room_id, by="u_owner"))
    await world.rooms.evict(world.room_id, "u_kicked", notice)
    await world.rooms.send(world.room_id, post(world, "sneaky", origin=kicked))
    await kicked.wait_for(1, protocol.ErrorReply)
    error = next(f for f in kicked.frames if isinstance(f, protocol.ErrorReply))
    assert error.code == protocol.ErrorCode.NOT_JOINED
    assert await world.store.messages(world.room_id, limit=5) == []


async def test_evicted_members_cannot_change_messages_through_the_gateway(world: World) -> None:
    new = NewMessage(sender_id=world.sender_id, body="hi", client_id="c", created_at=1)
    [stored] = await world.store.append_messages(world.room_id, [new])
    kicked = Recorder("kicked", user_id=world.sender_id)
    await subscribe(world, kicked)
    notice = protocol.encode(protocol.RoomRemoved(room=world.room_id, by="u_owner"))
    await world.rooms.evict(world.room_id, world.sender_id, notice)
    react = Change(
        kind="react",
        actor_id=world.sender_id,
        message_id=stored.message.id,
        client_id="r",
        created_at=2,
        body="ok",
        responder=GatewayResponder(kicked, "ref-r", world.room_id),
        subscriber_id=kicked.id,
    )
    await world.rooms.send(world.room_id, react)
    await kicked.wait_for(1, protocol.ErrorReply)
    error = next(f for f in kicked.frames if isinstance(f, protocol.ErrorReply))
    assert (error.ref, error.code) == ("ref-r", protocol.ErrorCode.NOT_JOINED)
    assert await world.store.reactions([stored.message.id]) == {}


class Faulty(Recorder):
    """A subscriber whose connection code is broken: a bug, not an expected failure."""

    def send_frame(self, frame: bytes) -> bool:
        raise RuntimeError("bug in a connection")


async def test_a_crashing_room_sends_its_subscribers_away_to_resume(world: World) -> None:
    survivor = Recorder("survivor")
    await subscribe(world, survivor)
    await subscribe(world, Faulty("faulty"))
    await world.rooms.send(world.room_id, post(world, "boom"))
    with trio.fail_after(10):
        while survivor.closed_with is None:
            await survivor.changed.wait()
    assert survivor.closed_with == protocol.CloseCode.INTERNAL_ERROR
    # The supervisor restarted the room; the message was stored before the crash.
    assert [m.body for m in await world.store.messages(world.room_id, limit=5)] == ["body of boom"]


async def test_a_client_id_reused_in_another_room_is_refused(world: World) -> None:
    other = await world.store.create_room("other", RoomKind.PUBLIC, world.sender_id, 0)
    poster = Recorder("poster")
    await subscribe(world, poster)
    await world.store.append_messages(
        other.id,
        [NewMessage(sender_id=world.sender_id, body="first", client_id="shared", created_at=1)],
    )
    await world.rooms.send(world.room_id, post(world, "shared", origin=poster))
    await poster.wait_for(1, protocol.ErrorReply)
    error = next(f for f in poster.frames if isinstance(f, protocol.ErrorReply))
    assert error.code == protocol.ErrorCode.CLIENT_ID_REUSED
    assert poster.messages() == []


async def test_each_sender_of_a_batch_is_checked_and_refused_on_its_own(world: World) -> None:
    muted = await world.store.create_user("muted", "Muted", "hash", 0)
    await world.store.add_member(world.room_id, muted.id, Role.MEMBER, 0)
    await world.store.set_muted(world.room_id, muted.id, 0)  # until lifted
    poster = Recorder("poster")
    await subscribe(world, poster)
    senders = [world.sender_id, muted.id, "u_missing", world.sender_id]
    posts = [
        attrs.evolve(post(world, f"c{n}", origin=poster), sender_id=sender)
        for n, sender in enumerate(senders)
    ]
    running = world.rooms.running(world.room_id)
    assert running is not None
    for each in posts:  # queued together: the room checks them as one batch
        running.try_send(each)
    await poster.wait_for(2, protocol.Ack)
    await poster.wait_for(2, protocol.ErrorReply)
    answers = {
        f.ref: (f.seq if isinstance(f, protocol.Ack) else f.code)
        for f in poster.frames
        if isinstance(f, protocol.Ack | protocol.ErrorReply)
    }
    assert answers == {
        "ref-c0": 1,
        "ref-c1": protocol.ErrorCode.FORBIDDEN,
        "ref-c2": protocol.ErrorCode.NOT_FOUND,
        "ref-c3": 2,
    }
    assert [m.body for m in poster.messages()] == ["body of c0", "body of c3"]


async def test_a_stored_post_is_counted_without_prometheus_clients_locked_values(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The counters and histograms of every message's path are plain numbers (LoopCounter,
    # LoopHistogram): a prometheus_client value's `inc` takes a lock and four Python calls.
    reader, poster = Recorder("reader"), Recorder("poster")
    await subscribe(world, reader)
    await subscribe(world, poster)
    locked: list[float] = []
    original: Callable[[MutexValue, float], None] = MutexValue.inc

    def counted(self: MutexValue, amount: float) -> None:
        locked.append(amount)
        original(self, amount)

    monkeypatch.setattr(MutexValue, "inc", counted)
    stored, timed = _sample("chorus_messages_stored_total"), _appends_timed()
    before = _deliveries(), _deliveries_timed()
    await world.rooms.send(world.room_id, post(world, "counted", origin=poster))
    await poster.wait_for(1, protocol.Ack)
    assert locked == []
    assert (_deliveries(), _deliveries_timed()) == (before[0] + 2, before[1] + 1)
    assert _sample("chorus_messages_stored_total") == stored + 1
    assert _appends_timed() == timed + 1


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _appends_timed() -> float:
    return _sample("chorus_store_seconds_count", {"operation": "append_messages"})
