"""Actor runtime: mailboxes, send/try_send/ask, registry, supervision, metrics."""

from __future__ import annotations

import functools

import attrs
import pytest
import trio
import trio.testing
from prometheus_client import REGISTRY

from chorus.actors import (
    ActorDead,
    ActorRef,
    AskTimeout,
    Inbox,
    NameTaken,
    Registry,
    Reply,
    actor_spec,
    run_actor,
)
from chorus.supervisors import ChildStartFailed, Restart, Supervisor

# -- a small counter actor, the way domain actors are written ------------------------


@attrs.frozen
class Add:
    amount: int


@attrs.frozen
class Total:
    reply: Reply[int]


@attrs.frozen
class Crash:
    pass


@attrs.frozen
class Hold:
    """Block the actor until `release` is set (to fill its mailbox)."""

    release: trio.Event


CounterMsg = Add | Total | Crash | Hold


class CounterCrashed(Exception):
    pass


async def counter(inbox: Inbox[CounterMsg]) -> None:
    total = 0
    async for message in inbox:
        match message:
            case Add(amount=amount):
                total += amount
            case Total(reply=reply):
                reply.send(total)
            case Crash():
                raise CounterCrashed("asked to crash")
            case Hold(release=release):
                await release.wait()


async def start_counter(
    sup: Supervisor,
    name: str = "counter:1",
    *,
    mailbox_size: int = 8,
    registry: Registry | None = None,
    restart: Restart = Restart.TRANSIENT,
) -> ActorRef[CounterMsg]:
    spec = actor_spec(name, counter, mailbox_size=mailbox_size, registry=registry, restart=restart)
    ref: ActorRef[CounterMsg] = await sup.start_child(spec)
    return ref


@pytest.fixture
async def sup(nursery: trio.Nursery) -> Supervisor:
    supervisor: Supervisor = await nursery.start(Supervisor("actors").run)
    return supervisor


# -- messaging ------------------------------------------------------------------------


async def test_messages_are_handled_in_order_and_ask_returns_the_answer(sup: Supervisor) -> None:
    ref = await start_counter(sup)
    for amount in (1, 2, 3):
        await ref.send(Add(amount))
    assert await ref.ask(Total, timeout=5) == 6


async def test_send_waits_while_the_mailbox_is_full(sup: Supervisor) -> None:
    ref = await start_counter(sup, mailbox_size=2)
    release = trio.Event()
    await ref.send(Hold(release))
    await trio.testing.wait_all_tasks_blocked()  # the actor now sits in Hold
    await ref.send(Add(1))
    await ref.send(Add(2))
    assert ref.depth == 2
    sent_third = trio.Event()

    async def third() -> None:
        await ref.send(Add(3))
        sent_third.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(third)
        await trio.testing.wait_all_tasks_blocked()
        assert not sent_third.is_set(), "send must wait for mailbox space"
        release.set()
    assert await ref.ask(Total, timeout=5) == 6


async def test_try_send_never_waits_and_reports_a_full_mailbox(sup: Supervisor) -> None:
    ref = await start_counter(sup, mailbox_size=1)
    release = trio.Event()
    await ref.send(Hold(release))
    await trio.testing.wait_all_tasks_blocked()
    assert ref.try_send(Add(5)) is True
    assert ref.try_send(Add(7)) is False
    release.set()
    assert await ref.ask(Total, timeout=5) == 5


async def test_ask_times_out_when_the_actor_does_not_answer(
    sup: Supervisor, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await start_counter(sup)
    await ref.send(Hold(trio.Event()))
    began = trio.current_time()
    with pytest.raises(AskTimeout):
        await ref.ask(Total, timeout=3)
    assert trio.current_time() - began == pytest.approx(3)


async def test_ask_timeout_covers_waiting_for_mailbox_space(
    sup: Supervisor, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await start_counter(sup, mailbox_size=1)
    await ref.send(Hold(trio.Event()))
    await trio.testing.wait_all_tasks_blocked()
    await ref.send(Add(1))
    with pytest.raises(AskTimeout):
        await ref.ask(Total, timeout=2)


async def test_ask_fails_with_actor_dead_when_the_actor_dies_before_answering(
    sup: Supervisor,
) -> None:
    ref = await start_counter(sup, restart=Restart.TEMPORARY)
    release = trio.Event()
    await ref.send(Hold(release))
    await ref.send(Crash())

    async def crash_soon() -> None:
        await trio.testing.wait_all_tasks_blocked()
        release.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(crash_soon)
        # The Total request sits behind Crash: it is never answered.
        with trio.fail_after(5), pytest.raises(ActorDead):
            await ref.ask(Total, timeout=60)
    assert not ref.alive


async def test_asking_or_sending_to_a_dead_actor_is_an_error_not_a_hang(sup: Supervisor) -> None:
    ref = await start_counter(sup, restart=Restart.TEMPORARY)
    await ref.send(Crash())
    await trio.testing.wait_all_tasks_blocked()
    with trio.fail_after(5):
        with pytest.raises(ActorDead):
            await ref.ask(Total, timeout=60)
        with pytest.raises(ActorDead):
            await ref.send(Add(1))
        with pytest.raises(ActorDead):
            ref.try_send(Add(1))


async def test_a_sender_blocked_on_a_full_mailbox_gets_actor_dead_when_the_actor_dies(
    sup: Supervisor,
) -> None:
    release = trio.Event()

    async def dies_without_reading(inbox: Inbox[Add]) -> None:
        await release.wait()
        raise CounterCrashed("gone")

    spec = actor_spec("doomed", dies_without_reading, mailbox_size=1, restart=Restart.TEMPORARY)
    ref: ActorRef[Add] = await sup.start_child(spec)
    await ref.send(Add(1))
    outcome: list[str] = []

    async def blocked_sender() -> None:
        try:
            await ref.send(Add(2))
            outcome.append("sent")
        except ActorDead:
            outcome.append("dead")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(blocked_sender)
        await trio.testing.wait_all_tasks_blocked()
        assert outcome == []
        release.set()
    assert outcome == ["dead"]


async def test_replies_after_the_asker_gave_up_are_dropped(
    autojump_clock: trio.testing.MockClock, sup: Supervisor
) -> None:
    kept: list[Reply[int]] = []

    async def hoarder(inbox: Inbox[Total]) -> None:
        async for message in inbox:
            kept.append(message.reply)

    ref: ActorRef[Total] = await sup.start_child(actor_spec("hoarder", hoarder))
    with pytest.raises(AskTimeout):
        await ref.ask(Total, timeout=1)
    assert kept[0].settled
    assert kept[0].send(42) is False


async def test_reply_fail_raises_in_the_asker(sup: Supervisor) -> None:
    async def refuser(inbox: Inbox[Total]) -> None:
        async for message in inbox:
            message.reply.fail(PermissionError("no"))

    ref: ActorRef[Total] = await sup.start_child(actor_spec("refuser", refuser))
    with pytest.raises(PermissionError, match="no"):
        await ref.ask(Total, timeout=5)


# -- stopping -------------------------------------------------------------------------


async def test_request_stop_handles_queued_messages_then_refuses_new_ones() -> None:
    handled: list[int] = []

    async def recorder(inbox: Inbox[Add]) -> None:
        async for message in inbox:
            handled.append(message.amount)

    async with trio.open_nursery() as nursery:
        ref: ActorRef[Add] = await nursery.start(
            functools.partial(run_actor, "recorder", recorder, mailbox_size=8)
        )
        for amount in range(5):
            ref.try_send(Add(amount))
        ref.request_stop()
        with pytest.raises(ActorDead):
            await ref.send(Add(99))
    assert handled == [0, 1, 2, 3, 4]
    assert not ref.alive


async def test_terminating_the_child_lets_the_actor_drain_its_mailbox(sup: Supervisor) -> None:
    ref = await start_counter(sup)
    release = trio.Event()
    await ref.send(Hold(release))
    await ref.send(Add(1))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sup.terminate_child, "counter:1")
        await trio.testing.wait_all_tasks_blocked()
        assert ref.alive  # still in its grace period, draining
        release.set()
    assert sup.which_child("counter:1") is None
    with pytest.raises(ActorDead):
        ref.try_send(Add(1))


# -- registry -------------------------------------------------------------------------


async def test_registry_finds_actors_by_name_until_they_exit(sup: Supervisor) -> None:
    registry = Registry()
    ref = await start_counter(sup, "room:1", registry=registry, restart=Restart.TEMPORARY)
    assert registry.whereis("room:1") is ref
    assert registry.names() == ["room:1"]
    await ref.send(Crash())
    await trio.testing.wait_all_tasks_blocked()
    assert registry.whereis("room:1") is None
    assert len(registry) == 0


async def test_names_are_unique_among_live_actors(nursery: trio.Nursery) -> None:
    registry = Registry()
    first = await nursery.start(Supervisor("a").run)
    second = await nursery.start(Supervisor("b").run)
    await start_counter(first, "room:1", registry=registry)
    with pytest.raises(ChildStartFailed) as failure:
        await start_counter(second, "room:1", registry=registry)
    assert isinstance(failure.value.__cause__, NameTaken)


async def test_a_restarted_actor_registers_its_new_ref_under_the_same_name(
    sup: Supervisor,
) -> None:
    registry = Registry()
    old = await start_counter(sup, "room:2", registry=registry, restart=Restart.PERMANENT)
    await old.send(Crash())
    with trio.fail_after(5):
        while registry.whereis("room:2") in (None, old):
            await trio.testing.wait_all_tasks_blocked()
    new = registry.whereis("room:2")
    assert new is not None
    assert not old.alive
    assert await new.ask(Total, timeout=5) == 0  # fresh state
    assert sup.which_child("room:2") is new


def test_unregister_keeps_a_successors_entry() -> None:
    registry = Registry()
    old: ActorRef[int] = ActorRef(trio.open_memory_channel[int](1)[0], name="x", kind="x")
    new: ActorRef[int] = ActorRef(trio.open_memory_channel[int](1)[0], name="x", kind="x")
    registry.register("x", old)
    old._exited()
    registry.register("x", new)  # the old holder is dead, so the name is free
    registry.unregister("x", old)
    assert registry.whereis("x") is new


# -- inbox and metrics ----------------------------------------------------------------


async def test_drain_takes_queued_messages_without_waiting(sup: Supervisor) -> None:
    batches: list[list[int]] = []
    release = trio.Event()

    async def batcher(inbox: Inbox[Add]) -> None:
        await release.wait()
        async for first in inbox:
            batches.append([first.amount, *(m.amount for m in inbox.drain(limit=3))])

    ref: ActorRef[Add] = await sup.start_child(actor_spec("batcher", batcher, mailbox_size=16))
    for amount in range(6):
        ref.try_send(Add(amount))
    release.set()
    await trio.testing.wait_all_tasks_blocked()
    assert batches == [[0, 1, 2, 3], [4, 5]]


async def test_mailbox_depth_is_exported_to_prometheus_by_kind(sup: Supervisor) -> None:
    ref = await start_counter(sup, "gauge:1")
    await ref.send(Hold(release := trio.Event()))
    await trio.testing.wait_all_tasks_blocked()
    for amount in range(3):
        await ref.send(Add(amount))
    labels = {"kind": "gauge"}
    assert ref.depth == 3
    assert ref.capacity == 8
    assert REGISTRY.get_sample_value("chorus_actor_mailbox_messages", labels) == 3
    assert REGISTRY.get_sample_value("chorus_actor_mailbox_max_depth", labels) == 3
    assert REGISTRY.get_sample_value("chorus_actors", labels) == 1
    release.set()
    ref.request_stop()
    await trio.testing.wait_all_tasks_blocked()
    assert REGISTRY.get_sample_value("chorus_actors", labels) == 0


def test_mailbox_must_hold_something() -> None:
    with pytest.raises(ValueError, match="at least one"):
        actor_spec("x", counter, mailbox_size=0)
