"""`PostgresStore`: the shared `Store` of a cluster, asyncpg behind the trio-asyncio bridge.

Each public method builds an asyncio coroutine function `tx(conn)` holding
the SQL of one transaction and hands it to `_run`, which crosses the bridge
(`bridge.py`), takes a pooled connection, runs `tx` in a transaction
(or, for a single statement, in the statement's own) and translates driver
errors into `StoreError`s.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, Final, TypeVar, final

import asyncpg
import attrs
import trio

from .. import _rows as rows
from .._errors import (
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    SchemaTooNew,
    StoreError,
    StoreUnavailable,
)
from .._migrations import Migration, load_migrations
from .._model import (
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    Appended,
    Edit,
    EventKind,
    Membership,
    Message,
    NewMessage,
    Notification,
    NotifyLevel,
    RefreshInvalid,
    RefreshOutcome,
    RefreshReused,
    RefreshRotated,
    RemovedBots,
    Role,
    Room,
    RoomKind,
    SearchHit,
    Session,
    Unread,
    User,
    new_id,
    new_ids,
    now_ms,
)
from .._rules import (
    Recipient,
    check_query,
    fan_out,
    group_key,
    needs_fan_out,
    valid_root,
    websearch_query,
)
from .bridge import AsyncioBridge, open_asyncio_bridge

T = TypeVar("T")
Conn = Any  # an asyncpg connection (asyncpg ships no type information)
Tx = Callable[[Conn], Awaitable[T]]

DEFAULT_CONNECT_TIMEOUT: Final = 5.0
"""Seconds to open one connection (TCP, TLS, login) before `StoreUnavailable`."""
DEFAULT_COMMAND_TIMEOUT: Final = 15.0
"""Seconds one statement (or waiting for a pooled connection) may take before `StoreUnavailable`."""

# SQLSTATE classes and codes that mean "the database, not the request, failed":
# connection exceptions, insufficient resources, operator intervention
# (shutdown, statement timeout), system errors, transaction rollbacks
# (serialization failure, deadlock) and lock_not_available.
_UNAVAILABLE_CLASSES: Final = frozenset({"08", "40", "53", "57", "58", "XX"})
_UNAVAILABLE_CODES: Final = frozenset({"55P03", "55006"})

# The URL may hold a password: it never appears in messages or logs.
_PASSWORD = re.compile(r"(://[^:/@]*:)[^/]*@")

# An arbitrary constant: the advisory lock that serialises concurrent migrations.
_MIGRATION_LOCK: Final = 0x63686F727573  # "chorus"

# A cross-room duplicate client id racing with this append (see `append_messages`)
# makes it start again; more than this many collisions in a row is not a race.
_APPEND_ATTEMPTS: Final = 3

# The members a new message may mention or notify: all with $2 (@room), else
# those named in $3 or among the thread followers in $4.
_RECIPIENTS: Final = """
SELECT m.user_id, u.username, m.notify FROM memberships m JOIN users u ON u.id = m.user_id
WHERE m.room_id = $1 AND ($2 OR u.username = ANY($3::text[]) OR m.user_id = ANY($4::text[]))
ORDER BY m.user_id
"""

# ts_headline options: the markers of `SearchHit.snippet`, and an excerpt of
# about as many words as SQLite's snippet() gives.
_HEADLINE: Final = (
    f'StartSel="{HIGHLIGHT_START}", StopSel="{HIGHLIGHT_END}", MaxWords=24, MinWords=12'
)

_SCHEMA_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)
"""


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by `***`, for messages and logs."""
    return _PASSWORD.sub(r"\1***@", url)


class _SenderClientRace(Exception):
    """Another transaction stored the same (sender, client id) in another room meanwhile."""


@final
class PostgresStore:
    """The `Store` on a PostgreSQL database; get one from `open_postgres_store`.

    Calls run concurrently on a pool of connections, each as one transaction
    (READ COMMITTED, with row locks where rows are read then written). Any
    number of stores, in any number of processes, may share one database:
    appends lock their room's row, so seqs stay contiguous across nodes.

    Errors: a database that cannot be reached, refuses connections, times out
    or is shutting down raises `StoreUnavailable` within the connect and
    command timeouts; the pool reconnects by itself once it is back. No
    asyncpg or socket exception reaches callers. A connection lost during
    COMMIT leaves the outcome unknown to the client: then `StoreUnavailable`
    is raised although the write may have been stored. Retrying an append is
    safe (client ids); other writes should be checked before being repeated.

    Cancelling a call cancels its statement; the transaction is rolled back
    and the connection reset before it returns to the pool, and the call
    raises `trio.Cancelled` only after that (see `bridge.py`).
    """

    def __init__(self, pool: Any, bridge: AsyncioBridge, url: str, acquire_timeout: float) -> None:
        self._pool = pool
        self._acquire_timeout = acquire_timeout
        self._bridge = bridge
        self._closed = False
        self.url: Final = redact_url(url)

    def __repr__(self) -> str:
        return f"<PostgresStore {self.url!r}{' closed' if self._closed else ''}>"

    # -- users and credentials -------------------------------------------------------

    async def create_user(
        self,
        username: str,
        display_name: str,
        password_hash: str | None,
        now: int,
        *,
        bot_run: str | None = None,
    ) -> User:
        """See `Store.create_user`."""
        user = User(
            id=new_id("u"), username=username.lower(), display_name=display_name, created_at=now
        )

        async def tx(db: Conn) -> User:
            try:
                await db.execute(
                    "INSERT INTO users (id, username, display_name, created_at, bot_run)"
                    " VALUES ($1, $2, $3, $4, $5)",
                    user.id,
                    user.username,
                    user.display_name,
                    user.created_at,
                    bot_run,
                )
            except asyncpg.UniqueViolationError as exc:
                raise Conflict(f"username {user.username!r} is taken") from exc
            if password_hash is not None:
                await db.execute(
                    "INSERT INTO credentials (user_id, password_hash, updated_at)"
                    " VALUES ($1, $2, $3)",
                    user.id,
                    password_hash,
                    now,
                )
            return user

        return await self._run(tx)

    async def get_user(self, user_id: str) -> User | None:
        """See `Store.get_user`."""

        async def tx(db: Conn) -> User | None:
            row = await db.fetchrow(f"SELECT {rows.USER} FROM users u WHERE u.id = $1", user_id)
            return None if row is None else rows.user(row)

        return await self._run(tx)

    async def get_user_by_username(self, username: str) -> User | None:
        """See `Store.get_user_by_username`."""

        async def tx(db: Conn) -> User | None:
            row = await db.fetchrow(
                f"SELECT {rows.USER} FROM users u WHERE lower(u.username) = $1", username.lower()
            )
            return None if row is None else rows.user(row)

        return await self._run(tx)

    async def get_credentials(self, username: str) -> tuple[User, str] | None:
        """See `Store.get_credentials`."""

        async def tx(db: Conn) -> tuple[User, str] | None:
            row = await db.fetchrow(
                f"SELECT {rows.USER}, c.password_hash FROM users u"
                " JOIN credentials c ON c.user_id = u.id WHERE lower(u.username) = $1",
                username.lower(),
            )
            return None if row is None else (rows.user(row), row[4])

        return await self._run(tx)

    # -- sessions and refresh tokens ------------------------------------------------

    async def create_session(
        self, user_id: str, refresh_hash: str, now: int, expires_at: int
    ) -> Session:
        """See `Store.create_session`."""
        session = Session(
            id=new_id("s"), user_id=user_id, created_at=now, expires_at=expires_at, revoked_at=None
        )

        async def tx(db: Conn) -> Session:
            try:
                await db.execute(
                    "INSERT INTO sessions (id, user_id, created_at, expires_at)"
                    " VALUES ($1, $2, $3, $4)",
                    session.id,
                    user_id,
                    now,
                    expires_at,
                )
            except asyncpg.ForeignKeyViolationError as exc:
                raise NotFound(f"no user {user_id!r}") from exc
            await _insert_refresh_token(db, refresh_hash, session.id, now)
            return session

        return await self._run(tx)

    async def get_session(self, session_id: str) -> Session | None:
        """See `Store.get_session`."""

        async def tx(db: Conn) -> Session | None:
            row = await db.fetchrow(
                f"SELECT {rows.SESSION} FROM sessions s WHERE s.id = $1", session_id
            )
            return None if row is None else rows.session(row)

        return await self._run(tx)

    async def rotate_refresh(self, presented_hash: str, new_hash: str, now: int) -> RefreshOutcome:
        """See `Store.rotate_refresh`."""

        async def tx(db: Conn) -> RefreshOutcome:
            # Locking both rows makes two concurrent rotations of one token take
            # turns: the second sees the token used, as a replay would.
            row = await db.fetchrow(
                f"SELECT t.used_at, {rows.SESSION} FROM refresh_tokens t"
                " JOIN sessions s ON s.id = t.session_id WHERE t.hash = $1 FOR NO KEY UPDATE",
                presented_hash,
            )
            if row is None:
                return RefreshInvalid(reason="unknown")
            used_at, session = row[0], rows.session(row[1:])
            if session.revoked_at is not None:
                return RefreshInvalid(reason="revoked")
            if now >= session.expires_at:
                return RefreshInvalid(reason="expired")
            if used_at is not None:
                await db.execute(
                    "UPDATE sessions SET revoked_at = $1 WHERE id = $2", now, session.id
                )
                return RefreshReused(session=attrs.evolve(session, revoked_at=now))
            await db.execute(
                "UPDATE refresh_tokens SET used_at = $1 WHERE hash = $2", now, presented_hash
            )
            await _insert_refresh_token(db, new_hash, session.id, now)
            return RefreshRotated(session=session)

        return await self._run(tx)

    async def revoke_session(self, session_id: str, now: int) -> bool:
        """See `Store.revoke_session`."""

        async def tx(db: Conn) -> bool:
            status: str = await db.execute(
                "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                now,
                session_id,
            )
            return status == "UPDATE 1"

        return await self._run(tx)

    # -- rooms and memberships -------------------------------------------------------

    async def create_room(
        self, name: str, kind: RoomKind, creator_id: str, now: int, *, bot_run: str | None = None
    ) -> Room:
        """See `Store.create_room`."""
        if kind is RoomKind.DIRECT:
            raise ValueError("direct rooms are created by direct_room()")
        room = Room(
            id=new_id("r"), name=name, kind=kind, created_by=creator_id, created_at=now, last_seq=0
        )

        async def tx(db: Conn) -> Room:
            try:
                await _insert_room(db, room, direct_key=None, bot_run=bot_run)
            except asyncpg.ForeignKeyViolationError as exc:
                raise NotFound(f"no user {creator_id!r}") from exc
            await _insert_membership(db, room.id, creator_id, Role.OWNER, now)
            return room

        return await self._run(tx)

    async def get_room(self, room_id: str) -> Room | None:
        """See `Store.get_room`."""

        async def tx(db: Conn) -> Room | None:
            row = await db.fetchrow(f"SELECT {rows.ROOM} FROM rooms r WHERE r.id = $1", room_id)
            return None if row is None else rows.room(row)

        return await self._run(tx)

    async def rooms_of(self, user_id: str) -> list[tuple[Room, Membership]]:
        """See `Store.rooms_of`."""

        async def tx(db: Conn) -> list[tuple[Room, Membership]]:
            found = await db.fetch(
                f"SELECT {rows.ROOM}, {rows.MEMBERSHIP} FROM memberships m"
                " JOIN rooms r ON r.id = m.room_id"
                " WHERE m.user_id = $1 ORDER BY m.joined_at, m.room_id",
                user_id,
            )
            return [
                (rows.room(row[: rows.ROOM_WIDTH]), rows.membership(row[rows.ROOM_WIDTH :]))
                for row in found
            ]

        return await self._run(tx)

    async def public_rooms(self, limit: int, after_id: str | None = None) -> list[Room]:
        """See `Store.public_rooms`."""
        rows.check_limit(limit)

        async def tx(db: Conn) -> list[Room]:
            found = await db.fetch(
                f"SELECT {rows.ROOM} FROM rooms r"
                " WHERE r.kind = 'public' AND r.bot_run IS NULL AND r.id > $1"
                " ORDER BY r.id LIMIT $2",
                "" if after_id is None else after_id,
                limit,
            )
            return [rows.room(row) for row in found]

        return await self._run(tx)

    async def add_member(self, room_id: str, user_id: str, role: Role, now: int) -> Membership:
        """See `Store.add_member`."""

        async def tx(db: Conn) -> Membership:
            existing = await _find_membership(db, room_id, user_id)
            if existing is not None:
                return existing
            row = await db.fetchrow("SELECT direct_key FROM rooms WHERE id = $1", room_id)
            if row is None:
                raise NotFound(f"no room {room_id!r}")
            await _require_user(db, user_id)
            direct_key: str | None = row[0]
            if direct_key is not None and user_id not in direct_key.split(":"):
                raise Conflict(f"room {room_id!r} is a direct room of other users")
            try:
                status: str = await db.execute(
                    "INSERT INTO memberships (room_id, user_id, role, joined_at, read_seq)"
                    " VALUES ($1, $2, $3, $4, 0) ON CONFLICT (room_id, user_id) DO NOTHING",
                    room_id,
                    user_id,
                    role.value,
                    now,
                )
            except asyncpg.ForeignKeyViolationError as exc:
                raise NotFound(f"no user {user_id!r}") from exc
            if status == "INSERT 0 1":
                return Membership(
                    room_id=room_id, user_id=user_id, role=role, joined_at=now, read_seq=0
                )
            # A concurrent add_member of the same pair committed first.
            raced = await _find_membership(db, room_id, user_id)
            assert raced is not None
            return raced

        return await self._run(tx)

    async def remove_member(self, room_id: str, user_id: str) -> bool:
        """See `Store.remove_member`."""

        async def tx(db: Conn) -> bool:
            status: str = await db.execute(
                "DELETE FROM memberships WHERE room_id = $1 AND user_id = $2", room_id, user_id
            )
            return status == "DELETE 1"

        return await self._run(tx)

    async def get_membership(self, room_id: str, user_id: str) -> Membership | None:
        """See `Store.get_membership`."""

        async def tx(db: Conn) -> Membership | None:
            return await _find_membership(db, room_id, user_id)

        return await self._run(tx)

    async def members(self, room_id: str) -> list[Membership]:
        """See `Store.members`."""

        async def tx(db: Conn) -> list[Membership]:
            found = await db.fetch(
                f"SELECT {rows.MEMBERSHIP} FROM memberships m WHERE m.room_id = $1"
                " ORDER BY m.joined_at, m.user_id",
                room_id,
            )
            return [rows.membership(row) for row in found]

        return await self._run(tx)

    async def direct_room(self, a: str, b: str, now: int) -> tuple[Room, bool]:
        """See `Store.direct_room`."""
        # Ids never contain ":" (prefix, "_", url-safe base64), so the key is unambiguous.
        return await self._direct(a, list(dict.fromkeys((a, b))), ":".join(sorted((a, b))), now)

    async def group_room(
        self, creator_id: str, member_ids: Sequence[str], now: int
    ) -> tuple[Room, bool]:
        """See `Store.group_room`."""
        users = sorted({creator_id, *member_ids})
        if len(users) < 3:
            raise ValueError("a group room needs at least three users; use direct_room for two")
        return await self._direct(creator_id, users, group_key(users), now)

    async def _direct(
        self, creator_id: str, users: list[str], key: str, now: int
    ) -> tuple[Room, bool]:
        """The direct room of exactly `users` (its `direct_key` is `key`), created if missing."""
        select = f"SELECT {rows.ROOM} FROM rooms r WHERE r.direct_key = $1"

        async def tx(db: Conn) -> tuple[Room, bool]:
            row = await db.fetchrow(select, key)
            if row is not None:
                return rows.room(row), False
            for user_id in users:
                await _require_user(db, user_id)
            room = Room(
                id=new_id("r"),
                name="",
                kind=RoomKind.DIRECT,
                created_by=creator_id,
                created_at=now,
                last_seq=0,
            )
            # ON CONFLICT waits for a concurrent creator of the same key to
            # finish; if it committed, its room is the one (read again: READ
            # COMMITTED gives each statement a fresh snapshot).
            inserted = await db.fetchval(
                "INSERT INTO rooms (id, name, kind, created_by, created_at, last_seq, direct_key)"
                " VALUES ($1, $2, $3, $4, $5, 0, $6)"
                " ON CONFLICT (direct_key) DO NOTHING RETURNING id",
                room.id,
                room.name,
                room.kind.value,
                room.created_by,
                room.created_at,
                key,
            )
            if inserted is None:
                row = await db.fetchrow(select, key)
                assert row is not None
                return rows.room(row), False
            for user_id in users:
                await _insert_membership(db, room.id, user_id, Role.MEMBER, now)
            return room, True

        return await self._run(tx)

    async def set_notify_level(self, room_id: str, user_id: str, level: NotifyLevel) -> Membership:
        """See `Store.set_notify_level`."""

        async def tx(db: Conn) -> Membership:
            row = await db.fetchrow(
                "UPDATE memberships m SET notify = $3 WHERE m.room_id = $1 AND m.user_id = $2"
                f" RETURNING {rows.MEMBERSHIP}",
                room_id,
                user_id,
                level.value,
            )
            if row is None:
                raise NotFound(f"user {user_id!r} is not a member of room {room_id!r}")
            return rows.membership(row)

        return await self._run(tx, transaction=False)

    async def set_read_receipts(self, room_id: str, enabled: bool) -> Room:
        """See `Store.set_read_receipts`."""

        async def tx(db: Conn) -> Room:
            row = await db.fetchrow(
                f"UPDATE rooms r SET read_receipts = $2 WHERE r.id = $1 RETURNING {rows.ROOM}",
                room_id,
                enabled,
            )
            if row is None:
                raise NotFound(f"no room {room_id!r}")
            return rows.room(row)

        return await self._run(tx, transaction=False)

    async def advance_read_seq(self, room_id: str, user_id: str, seq: int) -> int:
        """See `Store.advance_read_seq`."""

        async def tx(db: Conn) -> int:
            # One statement: the row lock it takes makes concurrent advances
            # apply one after the other, and the marker only moves forward.
            stored = await db.fetchval(
                "UPDATE memberships m SET read_seq = greatest(m.read_seq, least($3, r.last_seq))"
                " FROM rooms r WHERE r.id = m.room_id AND m.room_id = $1 AND m.user_id = $2"
                " RETURNING m.read_seq",
                room_id,
                user_id,
                seq,
            )
            if stored is None:
                raise NotFound(f"user {user_id!r} is not a member of room {room_id!r}")
            return int(stored)

        return await self._run(tx)

    async def unread_counts(self, user_id: str) -> dict[str, Unread]:
        """See `Store.unread_counts`; the query is `_rows.UNREAD_COUNTS`."""

        async def tx(db: Conn) -> dict[str, Unread]:
            found = await db.fetch(rows.UNREAD_COUNTS, user_id)
            return {row[0]: Unread(unread=row[1], mentions=row[2]) for row in found}

        return await self._run(tx, transaction=False)

    # -- messages --------------------------------------------------------------------

    async def append_messages(self, room_id: str, batch: Sequence[NewMessage]) -> list[Appended]:
        """See `Store.append_messages`.

        One statement, `chorus_append_messages` (migrations/postgres): it
        locks the room's row, so appends to one room from any number of nodes
        run one after the other and take contiguous seqs; then, with a fresh
        snapshot, it finds the client ids already used, inserts the new
        messages with one multi-row INSERT and moves `last_seq`. A batch with
        replies or mentions then checks the thread roots and fans out in the
        same transaction (still under the room lock).
        """
        batch = list(batch)
        ids = new_ids("m", len(batch))
        args = (
            room_id,
            ids,
            [new.sender_id for new in batch],
            [new.body for new in batch],
            [new.client_id for new in batch],
            [new.created_at for new in batch],
            [new.thread_id for new in batch],
        )
        rich = any(needs_fan_out(new) for new in batch)

        async def tx(db: Conn) -> list[Appended]:
            try:
                found = await db.fetch(
                    "SELECT * FROM chorus_append_messages($1, $2, $3, $4, $5, $6, $7)", *args
                )
            except asyncpg.NoDataFoundError as exc:
                raise NotFound(f"no room {room_id!r}") from exc
            except asyncpg.ForeignKeyViolationError as exc:
                raise NotFound(
                    f"a sender of the batch for room {room_id!r} does not exist"
                ) from exc
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name == "messages_sender_client":
                    raise _SenderClientRace from exc
                raise
            results = [
                Appended(message=rows.message(row[1:16]), duplicate=row[16]) for row in found
            ]
            if rich:
                await _fan_out_batch(db, room_id, batch, results)
            return results

        # The plain hot path is one statement, so it needs no transaction block.
        return await self._retrying_races(tx, transaction=rich, what=f"the batch for {room_id!r}")

    async def _retrying_races(self, work: Tx[T], *, transaction: bool, what: str) -> T:
        """Run `work`, starting again when it raced with the same client id stored elsewhere."""
        for attempt in range(_APPEND_ATTEMPTS):
            try:
                return await self._run(work, transaction=transaction)
            except _SenderClientRace as exc:
                # The same client id was just stored in another room (the room
                # lock does not cover that): start again, and the lookup finds
                # it as a duplicate.
                if attempt == _APPEND_ATTEMPTS - 1:
                    raise StoreUnavailable(
                        f"{self.url}: client ids of {what}"
                        " keep being stored concurrently elsewhere; retry"
                    ) from exc
        raise AssertionError("unreachable")

    async def get_message(self, message_id: str) -> Message | None:
        """See `Store.get_message`."""

        async def tx(db: Conn) -> Message | None:
            return await _find_message(db, message_id)

        return await self._run(tx, transaction=False)

    async def edit_message(
        self, message_id: str, editor_id: str, body: str, client_id: str, now: int
    ) -> Appended:
        """See `Store.edit_message`."""

        async def tx(db: Conn) -> Appended:
            original, target = await _lock_target(db, message_id, editor_id, client_id)
            if original is not None:
                return Appended(message=original, duplicate=True)
            if target.sender_id != editor_id:
                raise Forbidden(f"only its sender may edit message {message_id!r}")
            if target.deleted_at is not None:
                raise Gone(f"message {message_id!r} was deleted")
            event = await _append_event(db, target, EventKind.EDIT, editor_id, body, client_id, now)
            await db.execute(
                "INSERT INTO message_edits (message_id, seq, body, written_at, replaced_at)"
                " VALUES ($1, $2, $3, $4, $5)",
                message_id,
                event.seq,
                target.body,
                target.edited_at if target.edited_at is not None else target.created_at,
                now,
            )
            await db.execute(
                "UPDATE messages SET body = $2, edited_at = $3 WHERE id = $1",
                message_id,
                body,
                now,
            )
            return Appended(message=event, duplicate=False)

        return await self._retrying_races(tx, transaction=True, what="an edit")

    async def delete_message(
        self, message_id: str, actor_id: str, client_id: str, now: int
    ) -> Appended:
        """See `Store.delete_message`."""

        async def tx(db: Conn) -> Appended:
            original, target = await _lock_target(db, message_id, actor_id, client_id)
            if original is not None:
                return Appended(message=original, duplicate=True)
            if target.sender_id != actor_id:
                role = await db.fetchval(
                    "SELECT role FROM memberships WHERE room_id = $1 AND user_id = $2",
                    target.room_id,
                    actor_id,
                )
                if role is None or Role(role) is Role.MEMBER:
                    raise Forbidden(
                        f"only its sender or a moderator may delete message {message_id!r}"
                    )
            if target.deleted_at is not None:
                raise Gone(f"message {message_id!r} was already deleted")
            event = await _append_event(db, target, EventKind.DELETE, actor_id, "", client_id, now)
            for statement in rows.ERASE_MESSAGE:
                await db.execute(statement, message_id)
            await db.execute(
                "DELETE FROM mentions WHERE room_id = $1 AND seq = $2", target.room_id, target.seq
            )
            await db.execute(
                "UPDATE messages SET body = '', deleted_at = $2, deleted_by = $3 WHERE id = $1",
                message_id,
                now,
                actor_id,
            )
            if target.thread_id is not None:
                await db.execute(
                    "UPDATE messages SET reply_count = reply_count - 1 WHERE id = $1",
                    target.thread_id,
                )
            return Appended(message=event, duplicate=False)

        return await self._retrying_races(tx, transaction=True, what="a delete")

    async def set_reaction(
        self,
        message_id: str,
        user_id: str,
        emoji: str,
        present: bool,
        client_id: str,
        now: int,
    ) -> Appended | None:
        """See `Store.set_reaction`."""
        if not emoji:
            raise ValueError("the emoji is empty")

        async def tx(db: Conn) -> Appended | None:
            original, target = await _lock_target(db, message_id, user_id, client_id)
            if original is not None:
                return Appended(message=original, duplicate=True)
            if await _find_membership(db, target.room_id, user_id) is None:
                raise Forbidden(f"user {user_id!r} is not a member of room {target.room_id!r}")
            if target.deleted_at is not None:
                raise Gone(f"message {message_id!r} was deleted")
            if present:
                status: str = await db.execute(
                    "INSERT INTO reactions (message_id, emoji, user_id, created_at)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    message_id,
                    emoji,
                    user_id,
                    now,
                )
            else:
                status = await db.execute(
                    "DELETE FROM reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3",
                    message_id,
                    emoji,
                    user_id,
                )
            if status.endswith(" 0"):
                return None
            kind = EventKind.REACTION_ADD if present else EventKind.REACTION_REMOVE
            event = await _append_event(db, target, kind, user_id, emoji, client_id, now)
            return Appended(message=event, duplicate=False)

        return await self._retrying_races(tx, transaction=True, what="a reaction")

    async def edit_history(self, message_id: str) -> list[Edit]:
        """See `Store.edit_history`."""

        async def tx(db: Conn) -> list[Edit]:
            found = await db.fetch(
                f"SELECT {rows.EDIT} FROM message_edits e WHERE e.message_id = $1 ORDER BY e.seq",
                message_id,
            )
            return [rows.edit(row) for row in found]

        return await self._run(tx, transaction=False)

    async def reactions(self, message_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """See `Store.reactions`."""

        async def tx(db: Conn) -> dict[str, dict[str, int]]:
            found: dict[str, dict[str, int]] = {}
            for message_id, emoji, count in await db.fetch(
                "SELECT x.message_id, x.emoji, count(*) FROM reactions x"
                " WHERE x.message_id = ANY($1::text[])"
                " GROUP BY x.message_id, x.emoji ORDER BY x.message_id, min(x.created_at), x.emoji",
                list(message_ids),
            ):
                found.setdefault(message_id, {})[emoji] = count
            return found

        return await self._run(tx, transaction=False)

    async def reactors(self, message_id: str, emoji: str, limit: int) -> list[str]:
        """See `Store.reactors`."""
        rows.check_limit(limit)

        async def tx(db: Conn) -> list[str]:
            found = await db.fetch(
                "SELECT user_id FROM reactions WHERE message_id = $1 AND emoji = $2"
                " ORDER BY created_at, user_id LIMIT $3",
                message_id,
                emoji,
                limit,
            )
            return [row[0] for row in found]

        return await self._run(tx, transaction=False)

    async def thread_messages(
        self,
        root_id: str,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int,
    ) -> list[Message]:
        """See `Store.thread_messages`."""
        return await self._page("msg.thread_id = $1", root_id, before, after, limit)

    async def followed_threads(self, user_id: str, limit: int) -> list[Message]:
        """See `Store.followed_threads`."""
        rows.check_limit(limit)

        async def tx(db: Conn) -> list[Message]:
            found = await db.fetch(
                f"SELECT {rows.MESSAGE} FROM thread_follows f"
                " JOIN messages msg ON msg.id = f.root_id"
                " JOIN memberships ms ON ms.room_id = msg.room_id AND ms.user_id = f.user_id"
                " WHERE f.user_id = $1"
                " ORDER BY msg.last_reply_at DESC NULLS LAST, msg.id DESC LIMIT $2",
                user_id,
                limit,
            )
            return [rows.message(row) for row in found]

        return await self._run(tx, transaction=False)

    async def messages(
        self,
        room_id: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int,
    ) -> list[Message]:
        """See `Store.messages`."""
        return await self._page("msg.room_id = $1", room_id, before, after, limit)

    async def _page(
        self, where: str, key: str, before: int | None, after: int | None, limit: int
    ) -> list[Message]:
        """Events matching `where` (`$1` is `key`), paged as `Store.messages` pages."""
        rows.check_limit(limit)
        params: list[object] = [key]
        if after is not None:
            params.append(after)
            where += f" AND msg.seq > ${len(params)}"
        if before is not None:
            params.append(before)
            where += f" AND msg.seq < ${len(params)}"
        # Without `after` the newest end is wanted: read backwards, then flip.
        newest_first = after is None
        order = "DESC" if newest_first else "ASC"
        params.append(limit)
        sql = (
            f"SELECT {rows.MESSAGE} FROM messages msg WHERE {where}"
            f" ORDER BY msg.seq {order} LIMIT ${len(params)}"
        )

        async def tx(db: Conn) -> list[Message]:
            found = [rows.message(row) for row in await db.fetch(sql, *params)]
            if newest_first:
                found.reverse()
            return found

        return await self._run(tx)

    async def last_seq(self, room_id: str) -> int:
        """See `Store.last_seq`."""

        async def tx(db: Conn) -> int:
            last = await db.fetchval("SELECT last_seq FROM rooms WHERE id = $1", room_id)
            if last is None:
                raise NotFound(f"no room {room_id!r}")
            return int(last)

        return await self._run(tx)

    # -- search ----------------------------------------------------------------------

    async def search(
        self,
        user_id: str,
        query: str,
        *,
        room_id: str | None = None,
        sender_id: str | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int,
        offset: int = 0,
    ) -> list[SearchHit]:
        """See `Store.search`.

        `websearch_to_tsquery('simple', …)` over the GIN index
        `messages_search`; the membership join does the permission check.
        """
        check_query(query)
        rows.check_limit(limit)
        rows.check_limit(offset, "offset")
        terms = websearch_query(query)
        if terms is None:
            return []
        where = ""
        params: list[object] = [user_id, terms, _HEADLINE]
        for column, op, value in (
            ("room_id", "=", room_id),
            ("sender_id", "=", sender_id),
            ("created_at", ">=", since),
            ("created_at", "<", until),
        ):
            if value is not None:
                params.append(value)
                where += f" AND msg.{column} {op} ${len(params)}"
        params += [limit, offset]
        sql = (
            f"SELECT {rows.MESSAGE}, ts_headline('simple', msg.body, q, $3)"
            " FROM websearch_to_tsquery('simple', $2) q"
            " JOIN messages msg ON to_tsvector('simple'::regconfig, msg.body) @@ q"
            " JOIN memberships ms ON ms.room_id = msg.room_id AND ms.user_id = $1"
            " WHERE msg.kind = 'message' AND msg.deleted_at IS NULL"
            f"{where} ORDER BY msg.created_at DESC, msg.id DESC"
            f" LIMIT ${len(params) - 1} OFFSET ${len(params)}"
        )

        async def tx(db: Conn) -> list[SearchHit]:
            return [
                SearchHit(message=rows.message(row), snippet=row[rows.MESSAGE_WIDTH])
                for row in await db.fetch(sql, *params)
            ]

        return await self._run(tx, transaction=False)

    # -- notifications ---------------------------------------------------------------

    async def notifications(
        self,
        user_id: str,
        *,
        limit: int,
        before_id: str | None = None,
        unread_only: bool = False,
    ) -> list[Notification]:
        """See `Store.notifications`."""
        rows.check_limit(limit)
        sql = f"SELECT {rows.NOTIFICATION} FROM notifications n WHERE n.user_id = $1"
        params: list[object] = [user_id]
        if before_id is not None:
            params.append(before_id)
            sql += f" AND n.id < ${len(params)}"
        if unread_only:
            sql += " AND n.read_at IS NULL"
        params.append(limit)
        sql += f" ORDER BY n.id DESC LIMIT ${len(params)}"

        async def tx(db: Conn) -> list[Notification]:
            return [rows.notification(row) for row in await db.fetch(sql, *params)]

        return await self._run(tx, transaction=False)

    async def mark_notifications_read(
        self, user_id: str, ids: Sequence[str] | None, now: int
    ) -> int:
        """See `Store.mark_notifications_read`."""
        sql = "UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL"
        params: list[object] = [now, user_id]
        if ids is not None:
            sql += " AND id = ANY($3::text[])"
            params.append(list(ids))

        async def tx(db: Conn) -> int:
            status: str = await db.execute(sql, *params)
            return int(status.rsplit(" ", 1)[1])

        return await self._run(tx, transaction=False)

    # -- bot swarm runs --------------------------------------------------------------

    async def remove_bot_run(self, run_id: str) -> RemovedBots:
        """See `Store.remove_bot_run`."""

        async def tx(db: Conn) -> RemovedBots:
            # Children without ON DELETE CASCADE first (messages.sender_id,
            # rooms.created_by); the cascades take the rest.
            bots = "SELECT id FROM users WHERE bot_run = $1"
            await db.execute(f"DELETE FROM messages WHERE sender_id IN ({bots})", run_id)
            rooms = await db.fetchval(
                "WITH gone AS (DELETE FROM rooms"
                f" WHERE bot_run = $1 OR created_by IN ({bots}) RETURNING 1)"
                " SELECT count(*) FROM gone",
                run_id,
            )
            users = await db.fetchval(
                "WITH gone AS (DELETE FROM users WHERE bot_run = $1 RETURNING 1)"
                " SELECT count(*) FROM gone",
                run_id,
            )
            return RemovedBots(users=users, rooms=rooms)

        return await self._run(tx)

    # -- deployment secrets ----------------------------------------------------------

    async def shared_secret(self, name: str, candidate: bytes, now: int) -> bytes:
        """See `Store.shared_secret`."""

        async def tx(db: Conn) -> bytes:
            # Under READ COMMITTED a concurrent insert of the same name makes
            # ON CONFLICT wait for it and then do nothing; the SELECT that
            # follows (a new snapshot) sees the winner's value.
            await db.execute(
                "INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (name) DO NOTHING",
                name,
                candidate,
                now,
            )
            value = await db.fetchval("SELECT value FROM secrets WHERE name = $1", name)
            return bytes(value)

        return await self._run(tx)

    # -- running transactions --------------------------------------------------------

    async def _run(self, work: Tx[T], *, transaction: bool = True) -> T:
        """Run `work` on a pooled connection, in a transaction unless it is one statement."""
        if self._closed:
            raise StoreUnavailable(f"{self.url}: the store is closed")
        with _translate_errors(self.url):
            return await self._bridge.run(self._on_connection, work, transaction)

    async def _on_connection(self, work: Tx[T], transaction: bool) -> T:
        # asyncio side. Pool.acquire waits at most the command timeout for a free
        # (or newly connected) connection; release rolls back anything left open.
        async with self._pool.acquire(timeout=self._acquire_timeout) as conn:
            if not transaction:
                return await work(conn)
            async with conn.transaction():
                return await work(conn)

    async def aclose(self) -> None:
        """Close the pool; calls in progress finish first, later calls raise `StoreUnavailable`.

        Closing twice is harmless; `open_postgres_store` closes the store when
        its block exits.
        """
        if self._closed:
            return
        self._closed = True
        with _translate_errors(self.url):
            await self._bridge.run(self._pool.close)


@contextlib.asynccontextmanager
async def open_postgres_store(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
) -> AsyncIterator[PostgresStore]:
    """Open the PostgreSQL database at `url` (`postgresql://user:pass@host:port/db`) as a `Store`.

    Applies pending migrations first (safe while other nodes do the same).
    Keeps a pool of `min_size` to `max_size` connections on one trio-asyncio
    loop for the block's lifetime. Raises `StoreUnavailable` if the database
    cannot be reached within `connect_timeout` seconds, `SchemaTooNew` if a
    newer Chorus migrated it. Statements (and waits for a free connection)
    longer than `command_timeout` seconds raise `StoreUnavailable`.
    """
    async with open_asyncio_bridge() as bridge:
        with _translate_errors(redact_url(url)):
            await bridge.run(_migrate, url, connect_timeout)
            pool = await bridge.run(
                _create_pool, url, min_size, max_size, connect_timeout, command_timeout
            )
        store = PostgresStore(pool, bridge, url, acquire_timeout=command_timeout)
        try:
            yield store
        finally:
            # Shielded so that a cancelled owner still closes its connections cleanly.
            with trio.CancelScope(shield=True):
                await store.aclose()


async def migrate_postgres(
    url: str, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
) -> list[int]:
    """Bring the PostgreSQL database at `url` to the newest schema.

    Returns the versions applied, oldest first; empty when it was up to date,
    so running it again is harmless. Raises like `open_postgres_store`.
    """
    async with open_asyncio_bridge() as bridge:
        with _translate_errors(redact_url(url)):
            return await bridge.run(_migrate, url, connect_timeout)


# -- asyncio side ------------------------------------------------------------------


async def _create_pool(
    url: str, min_size: int, max_size: int, connect_timeout: float, command_timeout: float
) -> Any:
    return await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=connect_timeout,
        command_timeout=command_timeout,
        # Idle connections are closed after a while and reopened on demand.
        max_inactive_connection_lifetime=300.0,
        reset=_keep_session,
    )


async def _keep_session(conn: Conn) -> None:
    """Reset nothing when a connection goes back to the pool (asyncpg's `reset` hook).

    The store never changes session state (no SET, LISTEN, session locks or
    cursors), and the pool still rolls back a transaction left open (after a
    cancellation) before calling this. asyncpg's default reset costs one more
    round trip per call.
    """


async def _migrate(url: str, connect_timeout: float) -> list[int]:
    conn = await asyncpg.connect(url, timeout=connect_timeout)
    try:
        return await migrate(
            conn, load_migrations("postgres"), database=redact_url(url), now=now_ms()
        )
    finally:
        await conn.close()


async def migrate(
    conn: Conn, migrations: Sequence[Migration], *, database: str, now: int
) -> list[int]:
    """Apply the migrations the database lacks, each in its own transaction.

    Returns the versions applied. Raises `SchemaTooNew` (changing nothing)
    if the database is newer than `migrations`. Each step holds a
    transaction-scoped advisory lock while it re-reads the version, so nodes
    starting together migrate once. A failing migration is rolled back and
    the database stays at the previous version.
    """
    known = migrations[-1].version if migrations else 0
    applied: list[int] = []
    for migration in migrations:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(_SCHEMA_MIGRATIONS)
            current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
            if current > known:
                raise SchemaTooNew(database, current, known)
            if current < migration.version:
                # Without arguments asyncpg uses the simple query protocol,
                # which runs a whole script (inside this transaction).
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    now,
                )
                applied.append(migration.version)
    return applied


async def schema_version(conn: Conn) -> int:
    """The newest migration applied to the database; 0 for a new database."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))


@contextlib.contextmanager
def _translate_errors(database: str) -> Iterator[None]:
    """Turn every driver and network error into a `StoreError` (or `ValueError`).

    Constraint failures that methods expect are translated where they happen,
    with a precise message. Failures of the database or the network become
    `StoreUnavailable`; anything else a plain `StoreError`.
    """
    try:
        yield
    except StoreError:
        raise
    except asyncpg.PostgresError as exc:
        code: str = exc.sqlstate or ""
        text = f"{database}: {exc.__class__.__name__}: {exc} (SQLSTATE {code})"
        if code[:2] in _UNAVAILABLE_CLASSES or code in _UNAVAILABLE_CODES:
            raise StoreUnavailable(text) from exc
        # Anything else is a bug, or data PostgreSQL cannot hold (class 22, such as a
        # NUL character in a text): a plain StoreError, so callers that handle
        # store failures refuse the request instead of crashing.
        raise StoreError(text) from exc
    except (asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
        # Client-side: the connection was lost or closed, the pool is closed.
        raise StoreUnavailable(f"{database}: {exc.__class__.__name__}: {exc}") from exc
    except TimeoutError as exc:  # asyncio.TimeoutError is TimeoutError since 3.11
        raise StoreUnavailable(
            f"{database}: timed out (connecting, waiting for a connection or a statement)"
        ) from exc
    except OSError as exc:
        raise StoreUnavailable(f"{database}: cannot connect: {exc}") from exc


# -- statements shared by several methods ---------------------------------------


async def _require_user(db: Conn, user_id: str) -> None:
    if await db.fetchval("SELECT 1 FROM users WHERE id = $1", user_id) is None:
        raise NotFound(f"no user {user_id!r}")


async def _find_membership(db: Conn, room_id: str, user_id: str) -> Membership | None:
    row = await db.fetchrow(
        f"SELECT {rows.MEMBERSHIP} FROM memberships m WHERE m.room_id = $1 AND m.user_id = $2",
        room_id,
        user_id,
    )
    return None if row is None else rows.membership(row)


async def _insert_room(
    db: Conn, room: Room, *, direct_key: str | None, bot_run: str | None = None
) -> None:
    await db.execute(
        "INSERT INTO rooms (id, name, kind, created_by, created_at, last_seq, direct_key, bot_run)"
        " VALUES ($1, $2, $3, $4, $5, 0, $6, $7)",
        room.id,
        room.name,
        room.kind.value,
        room.created_by,
        room.created_at,
        direct_key,
        bot_run,
    )


async def _insert_membership(
    db: Conn, room_id: str, user_id: str, role: Role, now: int
) -> Membership:
    await db.execute(
        "INSERT INTO memberships (room_id, user_id, role, joined_at, read_seq)"
        " VALUES ($1, $2, $3, $4, 0)",
        room_id,
        user_id,
        role.value,
        now,
    )
    return Membership(room_id=room_id, user_id=user_id, role=role, joined_at=now, read_seq=0)


async def _insert_refresh_token(db: Conn, token_hash: str, session_id: str, now: int) -> None:
    try:
        await db.execute(
            "INSERT INTO refresh_tokens (hash, session_id, issued_at) VALUES ($1, $2, $3)",
            token_hash,
            session_id,
            now,
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict("that refresh token hash is already stored") from exc


async def _find_message(db: Conn, message_id: str) -> Message | None:
    row = await db.fetchrow(
        f"SELECT {rows.MESSAGE} FROM messages msg WHERE msg.id = $1", message_id
    )
    return None if row is None else rows.message(row)


async def _lock_target(
    db: Conn, message_id: str, sender_id: str, client_id: str
) -> tuple[Message | None, Message]:
    """Lock the room of the message an event acts on; then (the original event, the target).

    The original is the event already stored under (sender, client id), if
    any. The target is read after the lock, so it shows every event of its
    room committed before. `NotFound` unless `message_id` is a MESSAGE event.
    """
    room_id = await db.fetchval(
        "SELECT room_id FROM messages WHERE id = $1 AND kind = 'message'", message_id
    )
    if room_id is None:
        raise NotFound(f"no message {message_id!r}")
    await db.execute("SELECT 1 FROM rooms WHERE id = $1 FOR NO KEY UPDATE", room_id)
    row = await db.fetchrow(
        f"SELECT {rows.MESSAGE} FROM messages msg WHERE msg.sender_id = $1 AND msg.client_id = $2",
        sender_id,
        client_id,
    )
    original = None if row is None else rows.message(row)
    target = await _find_message(db, message_id)
    assert target is not None  # events are never removed but with their room
    return original, target


async def _append_event(
    db: Conn,
    target: Message,
    kind: EventKind,
    sender_id: str,
    body: str,
    client_id: str,
    now: int,
) -> Message:
    """Store an event acting on `target` with its room's next seq (the caller holds the lock)."""
    seq = await db.fetchval(
        "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq",
        target.room_id,
    )
    event = Message(
        id=new_id("m"),
        room_id=target.room_id,
        seq=int(seq),
        sender_id=sender_id,
        body=body,
        client_id=client_id,
        created_at=now,
        edited_at=None,
        kind=kind,
        target_id=target.id,
    )
    try:
        await db.execute(
            "INSERT INTO messages"
            " (id, room_id, seq, sender_id, body, client_id, created_at, kind, target_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            event.id,
            event.room_id,
            event.seq,
            sender_id,
            body,
            client_id,
            now,
            kind.value,
            target.id,
        )
    except asyncpg.ForeignKeyViolationError as exc:
        raise NotFound(f"no user {sender_id!r}") from exc
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "messages_sender_client":
            raise _SenderClientRace from exc
        raise
    return event


async def _fan_out_batch(
    db: Conn, room_id: str, batch: Sequence[NewMessage], results: list[Appended]
) -> None:
    """Check the thread roots of a stored batch and fan out its new rich messages.

    Runs in the append's transaction, under its room lock. Replaces the
    `Appended` of each fanned-out message with one carrying its notifications.
    """
    fresh_ids = {a.message.id for a in results if not a.duplicate}
    root_senders: dict[str, str] = {}
    for index, new in enumerate(batch):
        appended = results[index]
        if appended.duplicate or not needs_fan_out(new):
            continue
        message = appended.message
        followers: list[str] = []
        if message.thread_id is not None:
            root_id = message.thread_id
            if root_id not in root_senders:
                # A root stored by this very batch is refused, as SQLite does.
                root = None if root_id in fresh_ids else await _find_message(db, root_id)
                root_senders[root_id] = valid_root(root, root_id, room_id).sender_id
            await db.execute(
                "UPDATE messages SET reply_count = reply_count + 1, last_reply_at = $2"
                " WHERE id = $1",
                root_id,
                message.created_at,
            )
            await db.execute(
                "INSERT INTO thread_follows (user_id, root_id) VALUES ($1, $3), ($2, $3)"
                " ON CONFLICT DO NOTHING",
                message.sender_id,
                root_senders[root_id],
                root_id,
            )
            followers = [
                row[0]
                for row in await db.fetch(
                    "SELECT user_id FROM thread_follows WHERE root_id = $1", root_id
                )
            ]
        recipients = [
            Recipient(user_id=row[0], username=row[1], notify=NotifyLevel(row[2]))
            for row in await db.fetch(
                _RECIPIENTS, room_id, new.mentions_room, sorted(new.mentions), followers
            )
        ]
        plan = fan_out(new, recipients, followers)
        if plan.mentioned:
            await db.executemany(
                "INSERT INTO mentions (user_id, room_id, seq) VALUES ($1, $2, $3)",
                [(user_id, room_id, message.seq) for user_id in plan.mentioned],
            )
        notified = tuple(
            Notification(
                id=notification_id,
                user_id=user_id,
                room_id=room_id,
                message_id=message.id,
                seq=message.seq,
                kind=kind,
                created_at=message.created_at,
            )
            for notification_id, (user_id, kind) in zip(
                new_ids("n", len(plan.notify)), plan.notify, strict=True
            )
        )
        if notified:
            await db.executemany(
                "INSERT INTO notifications"
                " (id, user_id, room_id, message_id, seq, kind, created_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                [
                    (n.id, n.user_id, n.room_id, n.message_id, n.seq, n.kind.value, n.created_at)
                    for n in notified
                ],
            )
        results[index] = attrs.evolve(appended, notified=notified)
