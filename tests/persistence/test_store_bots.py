"""Store contract: users and rooms of bot swarm runs (hidden, removed per run; any backend)."""

from __future__ import annotations

from chorus.persistence import RemovedBots, RoomKind, Store, User
from tests.persistence.helpers import T0, join, make_room, make_user, say


async def make_bot(store: Store, run: str, number: int) -> User:
    name = f"bot-{run}-{number}"
    return await store.create_user(name, name, None, T0, bot_run=run)


async def test_public_rooms_never_lists_the_rooms_of_bot_runs(store: Store) -> None:
    ada = await make_user(store, "ada")
    bot = await make_bot(store, "run1", 0)
    real = [(await make_room(store, ada, f"real {n}")).id for n in range(3)]
    for number in range(4):
        await store.create_room(f"bots {number}", RoomKind.PUBLIC, bot.id, T0, bot_run="run1")
    # A page boundary inside the bots' rooms must not end the listing early.
    first = await store.public_rooms(2)
    rest = await store.public_rooms(10, first[-1].id)
    assert [room.id for room in first + rest] == sorted(real)


async def test_remove_bot_run_deletes_the_run_and_everything_of_it(store: Store) -> None:
    ada = await make_user(store, "ada")
    lounge = await make_room(store, ada, "lounge")
    bots = [await make_bot(store, "run1", number) for number in range(3)]
    other_run = await make_bot(store, "run2", 0)
    room = await store.create_room("bots 0", RoomKind.PUBLIC, bots[0].id, T0, bot_run="run1")
    await join(store, room, bots[1], bots[2], ada)
    # A room a bot made without the mark, a message a bot sent to a real room, a
    # real user's message in the run's room: all go with the run.
    unmarked, _ = await store.direct_room(bots[1].id, ada.id, T0)
    await join(store, lounge, bots[2], other_run)
    stray = await say(store, lounge, bots[2], "hello from a bot", "c1")
    kept = await say(store, lounge, ada, "hello from ada", "c2")
    in_run_room = await say(store, room, ada, "hi bots", "c3")
    session = await store.create_session(bots[0].id, "refresh-hash", T0, T0 + 1000)

    removed = await store.remove_bot_run("run1")

    assert removed == RemovedBots(users=3, rooms=2)
    for bot in bots:
        assert await store.get_user(bot.id) is None
    assert await store.get_room(room.id) is None
    assert await store.get_room(unmarked.id) is None
    assert await store.get_session(session.id) is None
    assert await store.get_message(stray.message.id) is None
    assert await store.get_message(in_run_room.message.id) is None
    assert await store.get_message(kept.message.id) == kept.message
    assert [m.user_id for m in await store.members(lounge.id)] == [ada.id, other_run.id]
    assert [r.id for r, _ in await store.rooms_of(ada.id)] == [lounge.id]
    assert await store.get_user(other_run.id) == other_run
    assert await store.remove_bot_run("run1") == RemovedBots(users=0, rooms=0)


async def test_remove_bot_run_of_an_unknown_run_removes_nothing(store: Store) -> None:
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)
    assert await store.remove_bot_run("nothing") == RemovedBots(users=0, rooms=0)
    assert await store.get_user(ada.id) == ada
    assert await store.get_room(room.id) == room
