"""A new pooled connection stores a throwaway batch before its first real one, then rolls
it back.

A PostgreSQL backend compiles `chorus_append_messages` and plans its statements
on its first call, and asyncpg learns a statement's argument and result types
once per connection (its introspection queries). In a real batch both came
after the function had locked the room's row, so a backend's first batch held
that lock for as long as they took and every node appending to the room waited
behind it: at a three-node cluster's start, its thirty fresh connections made
the first second of sending the run's p99 (~300 ms against ~20 in every later
second; docs/benchmarks.md, "Issue #15, session 14"). `warm_up` pays that once
per connection, before the pool hands it out, on rows nobody else can see.
"""

from __future__ import annotations

import secrets

import asyncpg
import structlog

from .._errors import StoreError
from .._model import NewMessage
from .append import Append
from .dialect import Conn
from .standings import fingerprints, read_rows

_log = structlog.get_logger("chorus.store")


async def warm_up(conn: Conn) -> None:
    """Run a stored batch's statements once on `conn` (asyncpg's `init` hook, called for
    each new connection): the standings read, the checked append and the plain one, in a
    room and by a user made for it. One transaction, always rolled back: no row of it is
    ever visible to another connection, and no lock it takes is one another call waits for.

    A refusal by the database (say, a role without INSERT) is logged and leaves the
    connection as it was (the warm-up only saves time; the real calls then report
    whatever is wrong). A lost connection raises: asyncpg then discards it, as it does
    a connection that fails to open.
    """
    transaction = conn.transaction()
    await transaction.start()
    try:
        await _store_one_batch(conn, secrets.token_hex(8))
    except (asyncpg.PostgresError, StoreError) as exc:
        _log.warning("store.warm_up_failed", error=str(exc))
    finally:
        await transaction.rollback()


async def _store_one_batch(conn: Conn, suffix: str) -> None:
    user_id, room_id = f"u_warm_up_{suffix}", f"r_warm_up_{suffix}"
    await conn.execute(
        "INSERT INTO users (id, username, display_name, created_at) VALUES ($1, $1, $1, 0)",
        user_id,
    )
    await conn.execute(
        "INSERT INTO rooms (id, name, kind, created_by, created_at)"
        " VALUES ($1, $1, 'public', $2, 0)",
        room_id,
        user_id,
    )
    await conn.execute(
        "INSERT INTO memberships (room_id, user_id, role, joined_at) VALUES ($1, $2, 'member', 0)",
        room_id,
        user_id,
    )
    first, second = (
        NewMessage(sender_id=user_id, body="", client_id=client_id, created_at=0)
        for client_id in ("1", "2")
    )
    rows = await read_rows(conn, room_id, [user_id])
    await Append(room_id, [first], known=0).if_standings(conn, fingerprints(rows))
    # Known 0 and the room at 1: the function also runs its read of earlier events.
    await Append(room_id, [second], known=0)(conn)
