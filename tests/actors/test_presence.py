"""Presence actors under races between connections of the same user."""

from __future__ import annotations

import trio
import trio.testing

from chorus.actors.presence import ConnectionStatus, Presence
from chorus.protocol import PresenceStatus
from chorus.supervisors import Restart, Supervisor
from tests.actors.world import World
from tests.supervisors.children import Journal, Worker


def status(conn_id: str, value: str | None) -> ConnectionStatus:
    return ConnectionStatus(conn_id=conn_id, status=value)  # type: ignore[arg-type]


async def test_a_user_reconnecting_while_the_supervisor_lags_comes_back_online(
    world: World, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    # Seen under overload: the last connection of a user left, their presence actor
    # exited, and the reconnect's report found the supervisor still holding the
    # exited child (its exit queued behind other users' exits) until report gave up
    # with DuplicateChild, crashing the new connection.
    supervisor = await nursery.start(Supervisor("presence").run)
    presence = Presence(supervisor, world.registry, world.store, world.rooms)
    users = [f"u{n}" for n in range(6)]  # the last one reconnects
    for user in users:
        await presence.report(user, status(f"{user}-old", "online"))
    await trio.testing.wait_all_tasks_blocked()
    leaving = []
    for user in users:
        await presence.report(user, status(f"{user}-old", None))
        leaving.append(presence.tracked(user))  # coalescing the change, then it exits
    gate = trio.Event()
    slow = Worker("slow", Journal(), gate=gate)  # another child, slow to start: holds the lock
    nursery.start_soon(supervisor.start_child, slow.spec(Restart.TEMPORARY))
    for actor in leaving:
        assert actor is not None
        await actor.wait_stopped()  # its exit report queues behind the slow start
    reconnecting = users[-1]
    assert presence.board.status(reconnecting) == "offline"
    async with trio.open_nursery() as connections:
        connections.start_soon(presence.report, reconnecting, status("new", "online"))
        await trio.testing.wait_all_tasks_blocked()  # in line for the lock, ahead of the exits
        gate.set()
    await trio.testing.wait_all_tasks_blocked()
    assert presence.board.status(reconnecting) == "online"
    await presence.report(reconnecting, status("new", None))
    actor = presence.tracked(reconnecting)
    assert actor is not None
    await actor.wait_stopped()  # the last connection left: the actor is done
    assert presence.tracked(reconnecting) is None
    assert presence.board.status(reconnecting) == "offline"


async def test_an_idle_user_has_no_presence_actor_and_changes_are_still_coalesced(
    world: World, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    supervisor = await nursery.start(Supervisor("presence").run)
    presence = Presence(supervisor, world.registry, world.store, world.rooms, coalesce=0.5)
    announced: list[PresenceStatus] = []

    async def recorded(user_id: str, shown: PresenceStatus) -> None:
        announced.append(shown)  # and no store: no worker thread under the virtual clock
        presence.board.set(user_id, shown)

    presence.announce = recorded  # type: ignore[method-assign,assignment]
    await presence.report("ada", status("c1", "online"))
    actor = presence.tracked("ada")
    assert actor is not None
    with trio.fail_after(0.01):  # coming online is not delayed by the window
        await actor.wait_stopped()
    assert announced == ["online"]
    assert presence.tracked("ada") is None  # settled: no task while nothing changes
    # A second connection, gone again within the window: nothing to announce.
    await presence.report("ada", status("c2", "idle"))
    await presence.report("ada", status("c2", None))
    # The first connection going idle and back within the window: nothing either.
    await presence.report("ada", status("c1", "idle"))
    await trio.sleep(0.1)
    await presence.report("ada", status("c1", "online"))
    await trio.sleep(1)
    assert announced == ["online"]
    assert presence.tracked("ada") is None
    # The user's connections are still known between runs: the one left going idle
    # makes the user idle, after the window.
    await presence.report("ada", status("c1", "idle"))
    await trio.sleep(0.4)
    assert announced == ["online"]
    await trio.sleep(0.2)
    assert announced == ["online", "idle"]
    await presence.report("ada", status("c1", None))
    await trio.sleep(1)
    assert announced == ["online", "idle", "offline"]
    assert presence.tracked("ada") is None
    assert presence._users == {}
