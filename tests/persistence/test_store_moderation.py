"""Store contract: server roles, bans, mutes, locks, room roles, ownership and blocks."""

from __future__ import annotations

import attrs
import pytest

from chorus.permissions import Who
from chorus.persistence import (
    Appended,
    Conflict,
    Forbidden,
    NotFound,
    Role,
    RoomKind,
    Standing,
    Store,
    User,
)
from chorus.persistence.roles.moderation import standing_from_row
from tests.persistence.helpers import T0, make_room, make_user, texts


async def test_server_roles_default_to_member_and_can_be_granted_and_listed(
    store: Store,
) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    assert await store.server_role(ada.id) == "member"
    await store.set_server_role(bob.id, "admin")
    await store.set_server_role(ada.id, "moderator")
    assert [u.id for u in await store.users_with_role("admin")] == [bob.id]
    assert [(u.username, r) for u, r in await store.list_users(10)] == [
        ("ada", "moderator"),
        ("bob", "admin"),
    ]
    assert [u.username for u, _ in await store.list_users(10, after="ada")] == ["bob"]
    assert [u.username for u, _ in await store.list_users(10, role="moderator")] == ["ada"]
    with pytest.raises(ValueError, match="not a server role"):
        await store.set_server_role(ada.id, "owner")
    with pytest.raises(NotFound):
        await store.set_server_role("u_missing", "admin")


async def test_standing_reads_roles_mutes_with_expiry_bans_and_locks(store: Store) -> None:
    ada, bob, carol = [await make_user(store, n) for n in ("ada", "bob", "carol")]
    room = await make_room(store, ada)
    await store.add_member(room.id, bob.id, Role.MEMBER, T0)
    assert (await store.standing(room.id, ada.id, T0)).who is Who.OWNER
    assert (await store.standing(room.id, bob.id, T0)).who is Who.MEMBER
    assert (await store.standing(room.id, carol.id, T0)).who is Who.OUTSIDER
    await store.set_muted(room.id, bob.id, T0 + 1000)
    assert (await store.standing(room.id, bob.id, T0)).who is Who.MUTED
    assert (await store.standing(room.id, bob.id, T0 + 1000)).who is Who.MEMBER  # expired
    await store.set_muted(room.id, bob.id, 0)
    assert (await store.standing(room.id, bob.id, T0 + 10**9)).who is Who.MUTED
    await store.set_muted(room.id, bob.id, None)
    assert (await store.standing(room.id, bob.id, T0)).who is Who.MEMBER
    await store.set_locked(room.id, True)
    assert (await store.standing(room.id, bob.id, T0)).locked
    with pytest.raises(NotFound):
        await store.standing("r_missing", bob.id, T0)


async def test_standings_read_several_users_at_once_and_leave_out_unknown_ones(
    store: Store,
) -> None:
    ada, bob, carol = [await make_user(store, n) for n in ("ada", "bob", "carol")]
    room = await make_room(store, ada)
    await store.add_member(room.id, bob.id, Role.MEMBER, T0)
    await store.set_muted(room.id, bob.id, T0 + 1000)
    found = await store.standings(room.id, [ada.id, bob.id, carol.id, "u_missing", bob.id], T0)
    assert {user: standing.who for user, standing in found.items()} == {
        ada.id: Who.OWNER,
        bob.id: Who.MUTED,
        carol.id: Who.OUTSIDER,
    }
    assert found[bob.id] == await store.standing(room.id, bob.id, T0)
    assert await store.standings("r_missing", [ada.id, bob.id], T0) == {}
    assert await store.standings(room.id, [], T0) == {}


async def test_append_admitted_stores_only_what_the_admission_lets_through(
    store: Store,
) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    room = await make_room(store, ada)
    await store.add_member(room.id, bob.id, Role.MEMBER, T0)
    await store.set_muted(room.id, bob.id, T0 + 1000)
    seen: dict[str, Who | None] = {}

    def admit(user_id: str, found: Standing | None) -> Exception | None:
        seen[user_id] = None if found is None else found.who
        return Forbidden("muted") if found is None or found.who is Who.MUTED else None

    batch = [*texts(ada, "a1"), *texts(bob, "b1"), *texts(ada, "a2")]
    batch.append(attrs.evolve(texts(ada, "x")[0], sender_id="u_missing"))
    results = (await store.append_admitted(room.id, batch, admit, T0)).results
    assert seen == {ada.id: Who.OWNER, bob.id: Who.MUTED, "u_missing": None}
    assert [r.message.seq if isinstance(r, Appended) else type(r) for r in results] == [
        1,
        Forbidden,
        2,
        Forbidden,
    ]
    assert [m.client_id for m in await store.messages(room.id, limit=10)] == ["a1", "a2"]
    later = await store.append_admitted(room.id, texts(bob, "b2"), admit, T0 + 1000)  # expired
    assert [r.message.seq for r in later.results if isinstance(r, Appended)] == [3]
    assert later.earlier == []  # not asked for (no `known`)


async def test_append_admitted_judges_each_sender_on_the_standing_the_single_read_gives(
    store: Store,
) -> None:
    """The batch's standings (one statement on PostgreSQL, one per sender on SQLite) are
    each sender's own: roles, an expired and a lasting mute, a ban, a locked room, a block
    in a direct room; unknown users and an unknown room have none; a repeated sender one."""
    ada, bob, carol, dave, erin, fay = [
        await make_user(store, n) for n in ("ada", "bob", "carol", "dave", "erin", "fay")
    ]
    await store.set_server_role(fay.id, "moderator")
    room = await make_room(store, ada)
    await store.add_member(room.id, bob.id, Role.MODERATOR, T0)
    for muted, until in ((carol, T0 - 1), (dave, 0)):  # expired; until unmuted
        await store.add_member(room.id, muted.id, Role.MEMBER, T0)
        await store.set_muted(room.id, muted.id, until)
    await store.add_member(room.id, erin.id, Role.MEMBER, T0)
    await store.ban(room.id, erin.id, ada.id, "spam", T0)
    await store.set_locked(room.id, True)
    dm, _ = await store.direct_room(ada.id, bob.id, T0)
    await store.block(ada.id, bob.id, T0)

    async def judged(room_id: str, senders: list[User]) -> dict[str, Standing | None]:
        seen: dict[str, Standing | None] = {}

        def admit(user_id: str, found: Standing | None) -> Exception | None:
            seen[user_id] = found
            return Forbidden("no")

        batch = [m for i, sender in enumerate(senders) for m in texts(sender, f"c{i}")]
        results = (await store.append_admitted(room_id, batch, admit, T0)).results
        assert all(isinstance(r, Forbidden) for r in results)
        return seen

    ghost = attrs.evolve(ada, id="u_missing")
    everyone = [ada, bob, carol, dave, erin, fay, ghost, bob]
    expected: dict[str, Standing | None] = {ghost.id: None}
    for user in everyone[:6]:
        expected[user.id] = await store.standing(room.id, user.id, T0)
    assert await judged(room.id, everyone) == expected
    assert {u: s.who for u, s in expected.items() if s is not None} == {
        ada.id: Who.OWNER,
        bob.id: Who.MODERATOR,
        carol.id: Who.MEMBER,
        dave.id: Who.MUTED,
        erin.id: Who.BANNED,
        fay.id: Who.SERVER_MODERATOR,
    }
    assert all(s is None or s.locked for s in expected.values())
    in_dm = await judged(dm.id, [ada, bob])
    assert in_dm == {u.id: await store.standing(dm.id, u.id, T0) for u in (ada, bob)}
    assert [(s := in_dm[u.id]) is not None and s.blocked for u in (ada, bob)] == [False, True]
    assert await judged("r_missing", [ada, bob]) == {ada.id: None, bob.id: None}


async def test_append_admitted_refuses_a_batch_whose_admitted_sender_or_room_is_missing(
    store: Store,
) -> None:
    # An admission may let through a sender the store has no standing for: the append
    # then fails as `append_messages` does, storing none of the batch.
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)

    def admit(user_id: str, found: Standing | None) -> Exception | None:
        return None

    ghost = attrs.evolve(texts(ada, "g1")[0], sender_id="u_missing")
    for batch in ([*texts(ada, "a1"), ghost], [ghost]):
        with pytest.raises(NotFound):
            await store.append_admitted(room.id, batch, admit, T0)
    with pytest.raises(NotFound):
        await store.append_admitted("r_missing", texts(ada, "a1"), admit, T0)
    assert await store.messages(room.id, limit=10) == []
    assert await store.last_seq(room.id) == 0
    stored = await store.append_admitted(room.id, texts(ada, "a1"), admit, T0)
    assert [(r.message.seq, r.duplicate) for r in stored.results if isinstance(r, Appended)] == [
        (1, False)
    ]


async def test_append_admitted_reads_back_what_others_stored_since_the_callers_known_seq(
    store: Store,
) -> None:
    """A room actor of one node knows seqs up to 1; another node stored 2 and 3 meanwhile:
    its append (seq 4) returns 2 and 3 with it, so it need not read them separately."""
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)

    def admit(user_id: str, found: Standing | None) -> Exception | None:
        return None

    await store.append_messages(room.id, texts(ada, "here-1", "there-2", "there-3"))
    stored = await store.append_admitted(room.id, texts(ada, "here-4"), admit, T0, known=1)
    assert [r.message.seq for r in stored.results if isinstance(r, Appended)] == [4]
    assert [(m.seq, m.client_id) for m in stored.earlier] == [(2, "there-2"), (3, "there-3")]
    stored = await store.append_admitted(room.id, texts(ada, "here-5"), admit, T0, known=4)
    assert stored.earlier == []  # nothing in between
    retried = await store.append_admitted(room.id, texts(ada, "here-4"), admit, T0, known=0)
    assert [(r.message.seq, r.duplicate) for r in retried.results if isinstance(r, Appended)] == [
        (4, True)
    ]
    assert retried.earlier == []  # nothing new stored: nothing to read before it


async def test_append_admitted_judges_each_batch_on_the_standings_when_it_is_stored(
    store: Store,
) -> None:
    """The same senders' batches one after another (PostgreSQL keeps the standings it read
    and checks them in the append's statement): every change to a sender's standing
    between two batches decides the next one, whichever way it goes, whether the sender
    was admitted or refused before, alone in the batch or not."""
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    room = await make_room(store, ada)
    await store.add_member(room.id, bob.id, Role.MEMBER, T0)
    dm, _ = await store.direct_room(ada.id, bob.id, T0)
    seen: dict[str, Standing | None] = {}

    def admit(user_id: str, found: Standing | None) -> Exception | None:
        seen[user_id] = found
        if found is None or found.who in (Who.MUTED, Who.BANNED, Who.OUTSIDER):
            return Forbidden("not a member in good standing")
        if found.blocked or (found.locked and found.room_role is Role.MEMBER):
            return Forbidden("locked or blocked")
        return None

    sent = 0

    async def bob_posts(room_id: str, *, alone: bool = False) -> bool:
        """Whether bob's message was stored, checking the standing it was judged on."""
        nonlocal sent
        sent += 1
        batch = texts(bob, f"b{sent}") + ([] if alone else texts(ada, f"a{sent}"))
        results = (await store.append_admitted(room_id, batch, admit, T0)).results
        assert seen[bob.id] == await store.standing(room_id, bob.id, T0)
        if not alone:
            assert isinstance(results[1], Appended)
            assert not results[1].duplicate
        if isinstance(results[0], Forbidden):
            assert f"b{sent}" not in [m.client_id for m in await store.messages(room_id, limit=99)]
            return False
        assert isinstance(results[0], Appended)
        assert not results[0].duplicate
        return True

    posts = [await bob_posts(room.id), await bob_posts(room.id)]
    await store.set_muted(room.id, bob.id, T0 + 1000)
    posts += [await bob_posts(room.id), await bob_posts(room.id, alone=True)]
    await store.set_muted(room.id, bob.id, None)
    posts += [await bob_posts(room.id, alone=True)]
    await store.set_locked(room.id, True)
    posts += [await bob_posts(room.id)]
    await store.set_member_role(room.id, bob.id, Role.MODERATOR)
    posts += [await bob_posts(room.id)]
    await store.set_locked(room.id, False)
    await store.ban(room.id, bob.id, ada.id, "spam", T0)
    posts += [await bob_posts(room.id)]
    await store.unban(room.id, bob.id)
    posts += [await bob_posts(room.id)]  # an outsider now
    await store.add_member(room.id, bob.id, Role.MEMBER, T0)
    posts += [await bob_posts(room.id)]
    assert posts == [True, True, False, False, True, False, True, False, False, True]
    dm_posts = [await bob_posts(dm.id)]
    await store.block(ada.id, bob.id, T0)
    dm_posts += [await bob_posts(dm.id)]
    await store.unblock(ada.id, bob.id)
    dm_posts += [await bob_posts(dm.id)]
    assert dm_posts == [True, False, True]


async def test_a_ban_ends_the_membership_and_outlives_it_until_lifted(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    room = await make_room(store, ada)
    await store.add_member(room.id, bob.id, Role.MEMBER, T0)
    assert await store.ban(room.id, bob.id, ada.id, "spam", T0) is True
    assert await store.get_membership(room.id, bob.id) is None
    assert (await store.standing(room.id, bob.id, T0)).who is Who.BANNED
    assert await store.ban(room.id, bob.id, ada.id, "again", T0) is False  # updates the reason
    assert [(b.user_id, b.reason) for b in await store.bans(room.id)] == [(bob.id, "again")]
    with pytest.raises(Conflict):
        await store.ban(room.id, ada.id, bob.id, "", T0)
    assert await store.unban(room.id, bob.id) is True
    assert await store.unban(room.id, bob.id) is False
    assert (await store.standing(room.id, bob.id, T0)).who is Who.OUTSIDER


async def test_room_roles_change_but_ownership_only_moves_by_transfer(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    room = await make_room(store, ada)
    await store.add_member(room.id, bob.id, Role.MEMBER, T0)
    assert (await store.set_member_role(room.id, bob.id, Role.MODERATOR)).role is Role.MODERATOR
    with pytest.raises(ValueError, match="transfer_ownership"):
        await store.set_member_role(room.id, bob.id, Role.OWNER)
    with pytest.raises(Conflict):
        await store.set_member_role(room.id, ada.id, Role.MEMBER)
    await store.set_muted(room.id, bob.id, 0)
    assert await store.transfer_ownership(room.id, bob.id) == ada.id
    roles = {m.user_id: m.role for m in await store.members(room.id)}
    assert roles == {ada.id: Role.MODERATOR, bob.id: Role.OWNER}
    assert (await store.standing(room.id, bob.id, T0)).who is Who.OWNER  # never a muted owner
    assert await store.muted_until(room.id, bob.id) is None
    with pytest.raises(NotFound):
        await store.transfer_ownership(room.id, "u_missing")


async def test_blocks_mark_the_blocked_user_in_shared_direct_rooms_only(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    dm, _ = await store.direct_room(ada.id, bob.id, T0)
    public = await store.create_room("lobby", RoomKind.PUBLIC, ada.id, T0)
    await store.add_member(public.id, bob.id, Role.MEMBER, T0)
    await store.block(ada.id, bob.id, T0)
    await store.block(ada.id, bob.id, T0)  # idempotent
    assert await store.blocked(ada.id) == [bob.id]
    assert await store.blocks_between([bob.id, ada.id])
    assert (await store.standing(dm.id, bob.id, T0)).blocked
    assert not (await store.standing(dm.id, ada.id, T0)).blocked
    assert not (await store.standing(public.id, bob.id, T0)).blocked
    with pytest.raises(ValueError, match="themselves"):
        await store.block(ada.id, ada.id, T0)
    assert await store.unblock(ada.id, bob.id) is True
    assert not await store.blocks_between([ada.id, bob.id])


async def test_all_rooms_lists_public_and_private_rooms_not_direct_ones(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    public = await make_room(store, ada, "a")
    private = await make_room(store, ada, "b", RoomKind.PRIVATE)
    await store.direct_room(ada.id, bob.id, T0)
    assert {r.id for r in await store.all_rooms(10)} == {public.id, private.id}


async def test_delete_room_takes_everything_in_it_and_names_its_members(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    room = await make_room(store, ada)
    await store.add_member(room.id, bob.id, Role.MEMBER, T0)
    (first,) = await store.append_messages(room.id, texts(ada, "c1"))
    await store.append_messages(room.id, texts(bob, "c2"))
    await store.set_reaction(first.message.id, bob.id, "👍", True, "r1", T0)
    await store.edit_message(first.message.id, ada.id, "edited", "e1", T0)
    eve = await make_user(store, "eve")
    await store.ban(room.id, eve.id, ada.id, "", T0)
    assert await store.delete_room(room.id, T0) == [ada.id, bob.id]
    assert await store.get_room(room.id) is None
    assert await store.members(room.id) == []
    assert await store.get_message(first.message.id) is None
    assert await store.rooms_of(bob.id) == []
    with pytest.raises(NotFound):
        await store.delete_room(room.id, T0)
    dm, _ = await store.direct_room(ada.id, bob.id, T0)
    with pytest.raises(ValueError, match="direct"):
        await store.delete_room(dm.id, T0)


def test_a_standing_row_is_read_as_of_now_into_one_shared_standing() -> None:
    # Every batch of posts reads its senders' standings: equal rows share one (frozen)
    # `Standing`, and a mute is judged against `now` before anything is shared.
    row = ("member", 0, "member", T0 + 1000, 0, 0)
    muted, expired = standing_from_row(row, T0), standing_from_row(row, T0 + 2000)
    assert (muted.muted, expired.muted) == (True, False)
    assert muted.who is Who.MUTED
    assert expired.who is Who.MEMBER
    assert standing_from_row(("member", 0, "member", T0 + 5000, 0, 0), T0) is muted
    forever = standing_from_row(("member", 1, "owner", 0, 0, 1), T0 + 10**9)
    assert (forever.muted, forever.locked, forever.blocked) == (True, True, True)
    assert forever.room_role is Role.OWNER
    with pytest.raises(ValueError, match="guest"):
        standing_from_row(("member", 0, "guest", None, 0, 0), T0)
