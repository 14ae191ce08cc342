"""Bot accounts, rooms and tokens written straight into the node's store.

No HTTP and no passwords: a bot user has no password hash (like a user of an
external identity provider), so provisioning thousands of them costs no
argon2 time. Sessions and access tokens are made exactly as `AuthService`
makes them, with the node's own signing key, so the gateway accepts them.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence

import attrs

from chorus.auth import AuthService, Passwords, TokenSigner
from chorus.config import Settings
from chorus.persistence import RemovedBots, Role, RoomKind, Store, now_ms

ROOM_DISTRIBUTIONS = ("fixed", "zipf")

RUN_ID = re.compile(r"[a-z0-9_.-]{1,20}")
"""What a run id may be: `bot-<run id>-<n>` must still be a valid username (3-32 characters)."""


@attrs.frozen(kw_only=True)
class BotAccount:
    """One provisioned bot: who it is, the token it says hello with, its rooms."""

    index: int
    user_id: str
    username: str
    token: str
    rooms: tuple[str, ...]


@attrs.frozen(kw_only=True)
class Provisioned:
    """What `provision` made for one run."""

    run_id: str
    bots: tuple[BotAccount, ...]
    rooms: tuple[str, ...]
    room_sizes: tuple[int, ...]


def check_run_id(text: str) -> str:
    """`text` if it is a valid run id, else `ValueError` saying what one is."""
    if not RUN_ID.fullmatch(text):
        raise ValueError(f"a run id is 1-20 of a-z, 0-9, '_', '.', '-' (got {text!r})")
    return text


def new_run_id() -> str:
    """A short random run prefix, so that reruns against one database never collide."""
    return secrets.token_hex(3)


def room_sizes(bots: int, rooms: int, room_size: int, distribution: str) -> list[int]:
    """Members per room: `fixed` gives every room `room_size`; `zipf` gives room k
    `room_size / (k + 1)` (at least 2), a few big rooms and a long tail of small ones.
    Never more than `bots`."""
    if distribution not in ROOM_DISTRIBUTIONS:
        raise ValueError(f"room distribution must be one of {', '.join(ROOM_DISTRIBUTIONS)}")
    if distribution == "fixed":
        sizes = [room_size] * rooms
    else:
        sizes = [max(2, round(room_size / (k + 1))) for k in range(rooms)]
    return [max(1, min(bots, size)) for size in sizes]


def assign_rooms(bots: int, sizes: Sequence[int]) -> list[list[int]]:
    """Member bot indexes of each room: consecutive bots, wrapping around, so that with
    `rooms * room_size == bots` every bot is in exactly one room."""
    members: list[list[int]] = []
    cursor = 0
    for size in sizes:
        members.append([(cursor + k) % bots for k in range(size)])
        cursor = (cursor + size) % bots
    return members


async def provision(
    store: Store,
    settings: Settings,
    *,
    bots: int,
    rooms: int,
    room_size: int,
    distribution: str = "fixed",
    access_ttl: int = 3600,
    run_id: str | None = None,
) -> Provisioned:
    """Create `bots` users named `bot-<run>-<n>`, `rooms` public rooms, their
    memberships, one session per bot and an access token valid `access_ttl`
    seconds, signed with the deployment's key from the store (created if
    missing, exactly as the node would).

    Users and rooms are marked with the run id (`bot_run`): the room directory
    does not list them and `Store.remove_bot_run(run_id)` removes them all. A
    bot name that is taken (the run id was used before) raises `Conflict`;
    bots made before it stay, marked."""
    from chorus.node import load_signing_key

    if bots < 1 or rooms < 1:
        raise ValueError("at least one bot and one room are needed")
    run_id = run_id or new_run_id()
    signer = TokenSigner(await load_signing_key(store), access_ttl=access_ttl)
    now = now_ms()
    users = []
    for index in range(bots):
        name = f"bot-{run_id}-{index}"
        users.append(await store.create_user(name, name, None, now, bot_run=run_id))
    sizes = room_sizes(bots, rooms, room_size, distribution)
    members = assign_rooms(bots, sizes)
    room_ids: list[str] = []
    rooms_of: list[list[str]] = [[] for _ in range(bots)]
    for number, member_indexes in enumerate(members):
        owner = users[member_indexes[0]]
        room = await store.create_room(
            f"bots-{run_id}-{number}", RoomKind.PUBLIC, owner.id, now, bot_run=run_id
        )
        room_ids.append(room.id)
        for index in member_indexes:
            if index != member_indexes[0]:
                await store.add_member(room.id, users[index].id, Role.MEMBER, now)
            rooms_of[index].append(room.id)
    # Sessions made by the node's own AuthService are indistinguishable from real ones.
    auth = AuthService(
        store,
        signer,
        Passwords(),
        refresh_ttl=settings.refresh_token_ttl,
        session_max_age=settings.session_max_age,
        clock=lambda: now,
    )
    accounts = []
    for index, user in enumerate(users):
        tokens = await auth.open_session(user)
        accounts.append(
            BotAccount(
                index=index,
                user_id=user.id,
                username=user.username,
                token=tokens.access_token,
                rooms=tuple(rooms_of[index]),
            )
        )
    return Provisioned(
        run_id=run_id, bots=tuple(accounts), rooms=tuple(room_ids), room_sizes=tuple(sizes)
    )


async def provision_node(
    settings: Settings,
    *,
    bots: int,
    rooms: int,
    room_size: int,
    distribution: str = "fixed",
    access_ttl: int = 3600,
    run_id: str | None = None,
) -> Provisioned:
    """`provision` on the store the node with these settings uses (`open_node_store`)."""
    from chorus.node import open_node_store

    async with open_node_store(settings) as store:
        return await provision(
            store,
            settings,
            bots=bots,
            rooms=rooms,
            room_size=room_size,
            distribution=distribution,
            access_ttl=access_ttl,
            run_id=run_id,
        )


async def remove_node_bots(settings: Settings, run_id: str) -> RemovedBots:
    """`Store.remove_bot_run` on the store the node with these settings uses."""
    from chorus.node import open_node_store

    async with open_node_store(settings) as store:
        return await store.remove_bot_run(run_id)
