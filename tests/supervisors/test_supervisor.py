"""Supervisor semantics, one OTP rule per test."""

from __future__ import annotations

import math
import random

import pytest
import structlog
import trio
import trio.testing
from prometheus_client import REGISTRY

from chorus.supervisors import (
    Backoff,
    ChildSpec,
    ChildStartFailed,
    DuplicateChild,
    Restart,
    RestartIntensityExceeded,
    Shutdown,
    Strategy,
    Supervisor,
    SupervisorNotRunning,
    UnknownChild,
    supervisor_child,
)
from tests.supervisors.children import Boom, Handle, Journal, StoppableHandle, Worker


def workers(journal: Journal, *names: str, **options: bool) -> list[Worker]:
    return [Worker(name, journal, **options) for name in names]  # type: ignore[arg-type]


def handle(sup: Supervisor, child_id: str) -> Handle:
    value = sup.which_child(child_id)
    assert isinstance(value, Handle), f"{child_id} is not running"
    return value


async def crash_and_wait_restart(sup: Supervisor, journal: Journal, child_id: str) -> None:
    old = handle(sup, child_id)
    old.crash()
    with trio.fail_after(10):
        while sup.which_child(child_id) in (None, old):
            await journal.next_event()


# -- start and stop order ------------------------------------------------------------


async def test_children_start_in_order_each_after_the_previous_is_ready(
    journal: Journal, nursery: trio.Nursery
) -> None:
    a, b, c = workers(journal, "a", "b", "c")
    sup = await nursery.start(Supervisor("root", [a.spec(), b.spec(), c.spec()]).run)
    assert journal.events == ["start a", "ready a", "start b", "ready b", "start c", "ready c"]
    assert sup.child_ids() == ["a", "b", "c"]


async def test_request_stop_stops_children_in_reverse_order_and_returns(journal: Journal) -> None:
    a, b, c = workers(journal, "a", "b", "c")
    sup = Supervisor("root", [a.spec(), b.spec(), c.spec()])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        journal.events.clear()
        sup.request_stop()
    assert journal.events == ["stop c", "stop b", "stop a"]


async def test_cancelling_run_stops_children_in_reverse_order(journal: Journal) -> None:
    a, b, c = workers(journal, "a", "b", "c")
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            await nursery.start(Supervisor("root", [a.spec(), b.spec(), c.spec()]).run)
            journal.events.clear()
            scope.cancel()
    assert journal.events == ["stop c", "stop b", "stop a"]


async def test_stoppable_child_gets_its_grace_period_then_is_cancelled(
    journal: Journal, autojump_clock: trio.testing.MockClock
) -> None:
    stubborn = Worker("stubborn", journal, stoppable=True, honour_stop=False)
    sup = Supervisor("root", [stubborn.spec(shutdown=7.0)])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        value = handle(sup, "stubborn")
        began = trio.current_time()
        sup.request_stop()
    assert isinstance(value, StoppableHandle)
    assert value.stop_requested
    assert trio.current_time() - began == pytest.approx(7.0)
    assert journal.events[-1] == "stop stubborn"


async def test_stoppable_child_that_honours_the_request_ends_before_its_grace(
    journal: Journal, autojump_clock: trio.testing.MockClock
) -> None:
    polite = Worker("polite", journal, stoppable=True)
    sup = Supervisor("root", [polite.spec(shutdown=7.0)])
    with structlog.testing.capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            began = trio.current_time()
            sup.request_stop()
    assert trio.current_time() == began
    exits = [log for log in logs if log["event"] == "child.exited"]
    assert [log["reason"] for log in exits] == ["shutdown"]


async def test_static_child_start_failure_stops_started_ones_and_raises(journal: Journal) -> None:
    a = Worker("a", journal)
    b = Worker("b", journal, fail_start=lambda _run: True)
    c = Worker("c", journal)
    with pytest.raises(ChildStartFailed) as failure:
        await Supervisor("root", [a.spec(), b.spec(), c.spec()]).run()
    assert failure.value.child == "b"
    assert isinstance(failure.value.__cause__, Boom)
    assert journal.events == ["start a", "ready a", "start b", "stop a"]


async def test_child_returning_without_readiness_is_a_start_failure() -> None:
    async def forgetful(*, task_status: trio.TaskStatus[None]) -> None:
        return

    with pytest.raises(ChildStartFailed):
        await Supervisor("root", [ChildSpec(id="f", start=forgetful)]).run()


def test_duplicate_static_ids_are_rejected(journal: Journal) -> None:
    a = Worker("a", journal)
    with pytest.raises(ValueError, match="unique"):
        Supervisor("root", [a.spec(), a.spec()])


# -- strategies ----------------------------------------------------------------------


async def test_one_for_one_restarts_only_the_crashed_child(
    journal: Journal, nursery: trio.Nursery
) -> None:
    a, b, c = workers(journal, "a", "b", "c")
    sup = await nursery.start(Supervisor("root", [a.spec(), b.spec(), c.spec()]).run)
    journal.events.clear()
    await crash_and_wait_restart(sup, journal, "b")
    assert journal.events == ["stop b", "start b", "ready b"]
    assert (a.runs, b.runs, c.runs) == (1, 2, 1)


async def test_one_for_all_stops_the_others_in_reverse_then_restarts_all_in_order(
    journal: Journal, nursery: trio.Nursery
) -> None:
    a, b, c = workers(journal, "a", "b", "c")
    sup = await nursery.start(
        Supervisor("root", [a.spec(), b.spec(), c.spec()], strategy=Strategy.ONE_FOR_ALL).run
    )
    journal.events.clear()
    await crash_and_wait_restart(sup, journal, "b")
    await journal.wait_count("ready c", 1)
    assert journal.events == [
        "stop b",
        "stop c",
        "stop a",
        "start a",
        "ready a",
        "start b",
        "ready b",
        "start c",
        "ready c",
    ]
    assert sup.child_ids() == ["a", "b", "c"]


async def test_rest_for_one_restarts_the_crashed_child_and_those_started_after_it(
    journal: Journal, nursery: trio.Nursery
) -> None:
    a, b, c, d = workers(journal, "a", "b", "c", "d")
    specs = [a.spec(), b.spec(), c.spec(), d.spec()]
    sup = await nursery.start(Supervisor("root", specs, strategy=Strategy.REST_FOR_ONE).run)
    journal.events.clear()
    await crash_and_wait_restart(sup, journal, "b")
    await journal.wait_count("ready d", 1)
    assert journal.events == [
        "stop b",
        "stop d",
        "stop c",
        "start b",
        "ready b",
        "start c",
        "ready c",
        "start d",
        "ready d",
    ]
    assert a.runs == 1


async def test_one_for_all_drops_temporary_siblings(
    journal: Journal, nursery: trio.Nursery
) -> None:
    a, temp = workers(journal, "a", "temp")
    specs = [a.spec(), temp.spec(Restart.TEMPORARY)]
    sup = await nursery.start(Supervisor("root", specs, strategy=Strategy.ONE_FOR_ALL).run)
    await crash_and_wait_restart(sup, journal, "a")
    assert sup.child_ids() == ["a"]
    assert temp.runs == 1


# -- restart types -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("restart", "crash", "restarted"),
    [
        (Restart.PERMANENT, False, True),
        (Restart.PERMANENT, True, True),
        (Restart.TRANSIENT, False, False),
        (Restart.TRANSIENT, True, True),
        (Restart.TEMPORARY, False, False),
        (Restart.TEMPORARY, True, False),
    ],
)
async def test_restart_type_decides_whether_an_exit_is_restarted(
    journal: Journal, nursery: trio.Nursery, restart: Restart, crash: bool, restarted: bool
) -> None:
    (child,) = workers(journal, "child")
    sup = await nursery.start(Supervisor("root", [child.spec(restart)]).run)
    old = handle(sup, "child")
    old.crash() if crash else old.finish()
    await trio.testing.wait_all_tasks_blocked()
    assert child.runs == (2 if restarted else 1)
    assert sup.child_ids() == (["child"] if restarted else [])


async def test_raising_shutdown_is_a_shutdown_exit_so_transient_is_not_restarted(
    journal: Journal, nursery: trio.Nursery
) -> None:
    async def quits(*, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        raise Shutdown

    sup = await nursery.start(Supervisor("root").run)
    with structlog.testing.capture_logs() as logs:
        await sup.start_child(ChildSpec(id="q", start=quits, restart=Restart.TRANSIENT))
        await trio.testing.wait_all_tasks_blocked()
    assert sup.child_ids() == []
    assert [log["reason"] for log in logs if log["event"] == "child.exited"] == ["shutdown"]


# -- restart intensity ---------------------------------------------------------------


async def test_more_restarts_than_intensity_within_period_escalates(
    journal: Journal, autojump_clock: trio.testing.MockClock
) -> None:
    a, b = workers(journal, "a", "b")
    sup = Supervisor("root", [a.spec(), b.spec()], intensity=2, period=10)
    with pytest.RaisesGroup(RestartIntensityExceeded) as group:
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            for _ in range(3):
                await trio.sleep(1)
                handle(sup, "b").crash()
                await journal.wait_count("stop b", b.runs)
            await trio.sleep_forever()
    failure = group.value.exceptions[0]
    assert isinstance(failure, RestartIntensityExceeded)
    assert isinstance(failure.__cause__, Boom)
    assert failure.child == "b"
    assert b.runs == 3
    # Gave up: the survivors were stopped in reverse start order.
    assert journal.events[-2:] == ["stop b", "stop a"]


async def test_restarts_spread_wider_than_the_period_never_escalate(
    journal: Journal, autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    (b,) = workers(journal, "b")
    sup = await nursery.start(Supervisor("root", [b.spec()], intensity=2, period=10).run)
    for run in range(1, 11):
        await trio.sleep(6)
        await crash_and_wait_restart(sup, journal, "b")
        assert b.runs == run + 1


async def test_a_supervisor_that_gives_up_crashes_in_its_parent(
    journal: Journal, nursery: trio.Nursery
) -> None:
    (leaf,) = workers(journal, "leaf")
    inner = Supervisor("inner", [leaf.spec()], intensity=0)
    outer = await nursery.start(Supervisor("outer", [supervisor_child(inner)]).run)
    with structlog.testing.capture_logs() as logs:
        first_inner = outer.which_child("inner")
        handle(inner, "leaf").crash()
        await journal.wait_count("ready leaf", 2)
    assert first_inner is inner
    assert leaf.runs == 2  # the parent restarted `inner`, which started `leaf` afresh
    crash = [log for log in logs if log["event"] == "child.exited" and log["child"] == "inner"]
    assert crash[0]["reason"] == "crash"
    assert "RestartIntensityExceeded" in crash[0]["error"]


async def test_failed_restarts_count_against_the_budget(journal: Journal) -> None:
    flaky = Worker("flaky", journal, fail_start=lambda run: run > 1)
    sup = Supervisor("root", [flaky.spec()], intensity=3, period=60)
    with pytest.RaisesGroup(RestartIntensityExceeded):
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            handle(sup, "flaky").crash()
    assert flaky.runs == 4  # the first run, then three failed restart attempts


# -- backoff -------------------------------------------------------------------------


async def test_backoff_delays_restarts_exponentially(
    journal: Journal, autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    (b,) = workers(journal, "b")
    backoff = Backoff(initial=1.0, maximum=3.0, multiplier=2.0, jitter=0.0)
    sup = Supervisor("root", [b.spec()], intensity=10, period=1000, backoff=backoff)
    await nursery.start(sup.run)
    delays = []
    for _ in range(4):
        began = trio.current_time()
        await crash_and_wait_restart(sup, journal, "b")
        delays.append(trio.current_time() - began)
    assert delays == pytest.approx([1.0, 2.0, 3.0, 3.0])


def test_backoff_jitter_stays_within_its_fraction() -> None:
    backoff = Backoff(initial=1.0, maximum=100.0, multiplier=2.0, jitter=0.25)
    rng = random.Random(7)
    delays = [backoff.delay(3, rng) for _ in range(200)]
    assert all(3.0 <= delay <= 5.0 for delay in delays)
    assert len(set(delays)) > 100  # actually spread, not a constant


# -- dynamic children ----------------------------------------------------------------


async def test_dynamic_children_start_look_up_and_terminate(
    journal: Journal, nursery: trio.Nursery
) -> None:
    sup = await nursery.start(Supervisor("rooms").run)
    room = Worker("room:1", journal, stoppable=True)
    value = await sup.start_child(room.spec(Restart.TRANSIENT))
    assert sup.which_child("room:1") is value
    with pytest.raises(DuplicateChild):
        await sup.start_child(room.spec())
    await sup.terminate_child("room:1")
    assert value.stop_requested
    assert sup.which_child("room:1") is None
    assert journal.events[-1] == "stop room:1"
    with pytest.raises(UnknownChild):
        await sup.terminate_child("room:1")


async def test_dynamic_child_start_failure_is_reported_to_the_caller(
    journal: Journal, nursery: trio.Nursery
) -> None:
    sup = await nursery.start(Supervisor("rooms").run)
    broken = Worker("room:2", journal, fail_start=lambda _run: True)
    with pytest.raises(ChildStartFailed) as failure:
        await sup.start_child(broken.spec())
    assert isinstance(failure.value.__cause__, Boom)
    assert sup.child_ids() == []


async def test_dynamic_children_are_stopped_in_reverse_start_order(journal: Journal) -> None:
    sup = Supervisor("rooms")
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        for name in ("x", "y", "z"):
            await sup.start_child(Worker(name, journal).spec(Restart.TEMPORARY))
        journal.events.clear()
        sup.request_stop()
    assert journal.events == ["stop z", "stop y", "stop x"]


async def test_a_supervisor_that_is_not_running_refuses_dynamic_children(
    journal: Journal,
) -> None:
    sup = Supervisor("idle")
    with pytest.raises(SupervisorNotRunning):
        await sup.start_child(Worker("w", journal).spec())
    with pytest.raises(SupervisorNotRunning):
        await sup.terminate_child("w")


async def lagging(sup: Supervisor, journal: Journal, nursery: trio.Nursery) -> trio.Event:
    """Make `sup` lag as under load: a slow start holds its lock, an exit report waits.

    Exits from now on queue behind that one; setting the returned event ends the start.
    """
    first = await sup.start_child(Worker("first", journal).spec(Restart.TEMPORARY))
    gate = trio.Event()
    nursery.start_soon(sup.start_child, Worker("slow", journal, gate=gate).spec(Restart.TEMPORARY))
    await journal.wait_for(lambda events: "start slow" in events)
    first.finish()
    await trio.testing.wait_all_tasks_blocked()
    return gate


async def start_in_line(sup: Supervisor, spec: ChildSpec, gate: trio.Event) -> Handle:
    """Start `spec` from the lagging supervisor's lock queue, ahead of its pending exits."""
    started: list[Handle] = []

    async def start() -> None:
        started.append(await sup.start_child(spec))

    async with trio.open_nursery() as starters:
        starters.start_soon(start)
        await trio.testing.wait_all_tasks_blocked()
        gate.set()
    return started[0]


async def test_an_exited_temporary_child_can_start_again_before_its_exit_is_handled(
    journal: Journal, nursery: trio.Nursery
) -> None:
    # Under load the supervisor handles exits late, one per turn of its lock: a
    # child that has exited must not refuse a fresh start meanwhile (DuplicateChild).
    sup = await nursery.start(Supervisor("presence").run)
    rejoins = await sup.start_child(Worker("rejoins", journal).spec(Restart.TEMPORARY))
    gate = await lagging(sup, journal, nursery)
    rejoins.finish()
    await journal.wait_for(lambda events: "stop rejoins" in events)
    again = await start_in_line(sup, Worker("rejoins", journal).spec(Restart.TEMPORARY), gate)
    await trio.testing.wait_all_tasks_blocked()  # the stale exit report has been handled
    assert again is not rejoins
    assert sup.which_child("rejoins") is again
    assert sup.child_ids() == ["slow", "rejoins"]  # a fresh start goes last


async def test_a_crashed_child_awaiting_its_restart_still_refuses_a_second_start(
    journal: Journal, nursery: trio.Nursery
) -> None:
    sup = await nursery.start(Supervisor("rooms").run)
    crashing = await sup.start_child(Worker("room:1", journal).spec(Restart.TRANSIENT))
    gate = await lagging(sup, journal, nursery)
    crashing.crash()  # the supervisor will restart it: the id stays taken meanwhile
    await journal.wait_for(lambda events: "stop room:1" in events)
    with pytest.raises(ExceptionGroup) as refused:
        await start_in_line(sup, Worker("room:1", journal).spec(Restart.TRANSIENT), gate)
    assert refused.group_contains(DuplicateChild)
    await journal.wait_count("ready room:1", 2)


# -- observability -------------------------------------------------------------------


async def test_every_start_exit_and_restart_is_logged(
    journal: Journal, nursery: trio.Nursery
) -> None:
    (b,) = workers(journal, "b")
    with structlog.testing.capture_logs() as logs:
        sup = await nursery.start(Supervisor("logged", [b.spec()]).run)
        await crash_and_wait_restart(sup, journal, "b")
        await trio.testing.wait_all_tasks_blocked()
    events = [(log["event"], log.get("reason")) for log in logs]
    assert events == [
        ("child.started", None),
        ("child.exited", "crash"),
        ("child.restarting", None),
        ("child.started", None),
    ]
    assert all(log["supervisor"] == "logged" for log in logs)
    assert "Boom: b crashed" in logs[1]["error"]


async def test_restarts_are_counted_in_prometheus(journal: Journal, nursery: trio.Nursery) -> None:
    labels = {"supervisor": "counted", "child": "room"}

    def restarts() -> float:
        return REGISTRY.get_sample_value("chorus_supervisor_restarts_total", labels) or 0.0

    before = restarts()
    sup = await nursery.start(Supervisor("counted").run)
    spec = ChildSpec(id="room:9", start=Worker("room:9", journal), kind="room")
    await sup.start_child(spec)
    for _ in range(2):
        await crash_and_wait_restart(sup, journal, "room:9")
    assert restarts() - before == 2


async def test_supervisor_child_has_unlimited_grace(journal: Journal) -> None:
    spec = supervisor_child(Supervisor("inner"))
    assert spec.id == "inner"
    assert spec.shutdown == math.inf


async def test_a_child_whose_starter_is_cancelled_at_readiness_does_not_hang(
    journal: Journal, nursery: trio.Nursery
) -> None:
    # Regression: shielding a child that trio left in its cancelled starter hung forever.
    sup = await nursery.start(Supervisor("rooms").run)
    starter = trio.CancelScope()

    async def cancels_its_starter(*, task_status: trio.TaskStatus[None]) -> None:
        starter.cancel()
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            journal.add("cancelled")

    with starter:
        await sup.start_child(ChildSpec(id="c", start=cancels_its_starter))
    assert starter.cancelled_caught
    assert sup.child_ids() == []
    assert journal.events == ["cancelled"]


async def test_temporary_children_log_routine_events_at_debug(
    journal: Journal, nursery: trio.Nursery
) -> None:
    sup = await nursery.start(Supervisor("connections").run)
    with structlog.testing.capture_logs() as logs:
        await sup.start_child(Worker("conn:1", journal).spec(Restart.TEMPORARY))
        await sup.terminate_child("conn:1")
        crashing = Worker("conn:2", journal)
        await sup.start_child(crashing.spec(Restart.TEMPORARY))
        handle(sup, "conn:2").crash()
        await trio.testing.wait_all_tasks_blocked()
    levels = [(log["event"], log["child"], log["log_level"]) for log in logs]
    assert levels == [
        ("child.started", "conn:1", "debug"),
        ("child.exited", "conn:1", "debug"),
        ("child.started", "conn:2", "debug"),
        ("child.exited", "conn:2", "error"),
    ]
