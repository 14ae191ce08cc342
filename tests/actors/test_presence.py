"""Presence actors under races between connections of the same user."""

from __future__ import annotations

import trio
import trio.testing

from chorus.actors.presence import ConnectionStatus, Presence
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
    actors = [presence.tracked(user) for user in users]
    gate = trio.Event()
    slow = Worker("slow", Journal(), gate=gate)  # another child, slow to start: holds the lock
    nursery.start_soon(supervisor.start_child, slow.spec(Restart.TEMPORARY))
    await trio.testing.wait_all_tasks_blocked()
    for user, actor in zip(users, actors, strict=True):
        assert actor is not None
        await presence.report(user, status(f"{user}-old", None))
        await actor.wait_stopped()  # its exit report queues behind the slow start
    reconnecting = users[-1]
    assert presence.board.status(reconnecting) == "offline"
    async with trio.open_nursery() as connections:
        connections.start_soon(presence.report, reconnecting, status("new", "online"))
        await trio.testing.wait_all_tasks_blocked()  # in line for the lock, ahead of the exits
        gate.set()
    await trio.testing.wait_all_tasks_blocked()
    actor = presence.tracked(reconnecting)
    assert actor is not None
    assert presence.board.status(reconnecting) == "online"
    await presence.report(reconnecting, status("new", None))
    await actor.wait_stopped()  # the last connection left: the actor is done
    assert presence.tracked(reconnecting) is None
    assert presence.board.status(reconnecting) == "offline"
