"""`SqliteStore`: the embedded `Store`, one SQLite file driven from a worker thread."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Final, TypeVar, final

import attrs
import outcome
import trio

from .._errors import Conflict, Forbidden, Gone, NotFound, StoreUnavailable
from .._migrations import load_migrations
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
from .._rows import EDIT as _EDIT
from .._rows import ERASE_MESSAGE as _ERASE_MESSAGE
from .._rows import MEMBERSHIP as _MEMBERSHIP
from .._rows import MESSAGE as _MESSAGE
from .._rows import MESSAGE_WIDTH as _MESSAGE_WIDTH
from .._rows import NOTIFICATION as _NOTIFICATION
from .._rows import ROOM as _ROOM
from .._rows import ROOM_WIDTH as _ROOM_WIDTH
from .._rows import SESSION as _SESSION
from .._rows import UNREAD_COUNTS as _UNREAD_COUNTS
from .._rows import USER as _USER
from .._rows import check_limit as _check_limit
from .._rows import edit as _edit
from .._rows import membership as _membership
from .._rows import message as _message
from .._rows import notification as _notification
from .._rows import room as _room
from .._rows import session as _session
from .._rows import user as _user
from .._rules import (
    Recipient,
    check_query,
    fan_out,
    fts5_query,
    group_key,
    needs_fan_out,
    valid_root,
)
from .group_commit import GroupCommit
from .schema import Synchronous, connect, migrate

T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT: Final = 5.0
COMMIT_WINDOW: Final = 0.003
"""Seconds between the starts of two group commits while writes keep coming (see
`GroupCommit`): under load a few milliseconds of latency buy several messages per
sync; a lone write is never delayed."""
"""Seconds a write waits for another process's lock before `StoreUnavailable`."""

# Failures of the database rather than of the caller's request: the caller
# answers "unavailable, retry" (and acknowledges nothing).
_UNAVAILABLE: Final = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
    }
)

# SQLite builds before 3.32 allow at most 999 parameters per statement.
_KEYS_PER_LOOKUP: Final = 400


def _numbered(sql: str) -> str:
    """PostgreSQL's `$n` parameters as SQLite's `?n` (the same numbered parameter)."""
    return re.sub(r"\$(\d+)", r"?\1", sql)


UNREAD_COUNTS: Final = _numbered(_UNREAD_COUNTS)
"""`Store.unread_counts` (see `_rows.UNREAD_COUNTS` for its plan)."""
_ERASE: Final = tuple(_numbered(sql) for sql in _ERASE_MESSAGE)

# The members a new message may mention or notify: all with ?2 (@room), else
# those named in the JSON array ?3 or among the thread followers in ?4.
_RECIPIENTS: Final = """
SELECT m.user_id, u.username, m.notify FROM memberships m JOIN users u ON u.id = m.user_id
WHERE m.room_id = ?1 AND (?2 OR u.username IN (SELECT value FROM json_each(?3))
                          OR m.user_id IN (SELECT value FROM json_each(?4)))
ORDER BY m.user_id
"""


@final
class SqliteStore:
    """The `Store` on one SQLite file; get one from `open_sqlite_store`.

    Calls never block the trio thread: they run in a worker thread, one
    transaction at a time and in arrival order (a fair `CapacityLimiter(1)`;
    SQLite has a single writer anyway). Writes are group-committed: those
    waiting while a transaction runs share the next one, each in its own
    savepoint, so many rooms storing batches cost one sync (`GroupCommit`).
    Cancelling a read either stops it before it starts or lets it finish;
    a write, once called, finishes: a transaction is never cut in half. A
    write that finished while its caller was being cancelled stays written,
    unacknowledged; an append retried with the same client ids then returns it.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, *, commit_window: float = 0.0) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._limiter = trio.CapacityLimiter(1)
        self._writes = GroupCommit(self._transaction_group, self._limiter, window=commit_window)
        self.path: Final = path

    def __repr__(self) -> str:
        return f"<SqliteStore {str(self.path)!r}{' closed' if self._conn is None else ''}>"

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

        def tx(db: sqlite3.Connection) -> User:
            try:
                db.execute(
                    "INSERT INTO users (id, username, display_name, created_at, bot_run)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (user.id, user.username, user.display_name, user.created_at, bot_run),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"username {user.username!r} is taken") from exc
            if password_hash is not None:
                db.execute(
                    "INSERT INTO credentials (user_id, password_hash, updated_at) VALUES (?, ?, ?)",
                    (user.id, password_hash, now),
                )
            return user

        return await self._write(tx)

    async def get_user(self, user_id: str) -> User | None:
        """See `Store.get_user`."""

        def tx(db: sqlite3.Connection) -> User | None:
            row = db.execute(f"SELECT {_USER} FROM users u WHERE u.id = ?", (user_id,)).fetchone()
            return None if row is None else _user(row)

        return await self._read(tx)

    async def get_user_by_username(self, username: str) -> User | None:
        """See `Store.get_user_by_username`."""

        def tx(db: sqlite3.Connection) -> User | None:
            row = db.execute(
                f"SELECT {_USER} FROM users u WHERE u.username = ?", (username.lower(),)
            ).fetchone()
            return None if row is None else _user(row)

        return await self._read(tx)

    async def get_credentials(self, username: str) -> tuple[User, str] | None:
        """See `Store.get_credentials`."""

        def tx(db: sqlite3.Connection) -> tuple[User, str] | None:
            row = db.execute(
                f"SELECT {_USER}, c.password_hash FROM users u"
                " JOIN credentials c ON c.user_id = u.id WHERE u.username = ?",
                (username.lower(),),
            ).fetchone()
            return None if row is None else (_user(row), row[4])

        return await self._read(tx)

    # -- sessions and refresh tokens ------------------------------------------------

    async def create_session(
        self, user_id: str, refresh_hash: str, now: int, expires_at: int
    ) -> Session:
        """See `Store.create_session`."""
        session = Session(
            id=new_id("s"), user_id=user_id, created_at=now, expires_at=expires_at, revoked_at=None
        )

        def tx(db: sqlite3.Connection) -> Session:
            _require_user(db, user_id)
            db.execute(
                "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                (session.id, user_id, now, expires_at),
            )
            _insert_refresh_token(db, refresh_hash, session.id, now)
            return session

        return await self._write(tx)

    async def get_session(self, session_id: str) -> Session | None:
        """See `Store.get_session`."""

        def tx(db: sqlite3.Connection) -> Session | None:
            row = db.execute(
                f"SELECT {_SESSION} FROM sessions s WHERE s.id = ?", (session_id,)
            ).fetchone()
            return None if row is None else _session(row)

        return await self._read(tx)

    async def rotate_refresh(self, presented_hash: str, new_hash: str, now: int) -> RefreshOutcome:
        """See `Store.rotate_refresh`."""

        def tx(db: sqlite3.Connection) -> RefreshOutcome:
            row = db.execute(
                f"SELECT t.used_at, {_SESSION} FROM refresh_tokens t"
                " JOIN sessions s ON s.id = t.session_id WHERE t.hash = ?",
                (presented_hash,),
            ).fetchone()
            if row is None:
                return RefreshInvalid(reason="unknown")
            used_at, session = row[0], _session(row[1:])
            if session.revoked_at is not None:
                return RefreshInvalid(reason="revoked")
            if now >= session.expires_at:
                return RefreshInvalid(reason="expired")
            if used_at is not None:
                db.execute("UPDATE sessions SET revoked_at = ? WHERE id = ?", (now, session.id))
                return RefreshReused(session=attrs.evolve(session, revoked_at=now))
            db.execute(
                "UPDATE refresh_tokens SET used_at = ? WHERE hash = ?", (now, presented_hash)
            )
            _insert_refresh_token(db, new_hash, session.id, now)
            return RefreshRotated(session=session)

        return await self._write(tx)

    async def revoke_session(self, session_id: str, now: int) -> bool:
        """See `Store.revoke_session`."""

        def tx(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (now, session_id),
            )
            return cursor.rowcount == 1

        return await self._write(tx)

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

        def tx(db: sqlite3.Connection) -> Room:
            _require_user(db, creator_id)
            _insert_room(db, room, direct_key=None, bot_run=bot_run)
            _insert_membership(db, room.id, creator_id, Role.OWNER, now)
            return room

        return await self._write(tx)

    async def get_room(self, room_id: str) -> Room | None:
        """See `Store.get_room`."""

        def tx(db: sqlite3.Connection) -> Room | None:
            return _find_room(db, room_id)

        return await self._read(tx)

    async def rooms_of(self, user_id: str) -> list[tuple[Room, Membership]]:
        """See `Store.rooms_of`."""

        def tx(db: sqlite3.Connection) -> list[tuple[Room, Membership]]:
            rows = db.execute(
                f"SELECT {_ROOM}, {_MEMBERSHIP} FROM memberships m"
                " JOIN rooms r ON r.id = m.room_id"
                " WHERE m.user_id = ? ORDER BY m.joined_at, m.room_id",
                (user_id,),
            )
            return [(_room(row[:_ROOM_WIDTH]), _membership(row[_ROOM_WIDTH:])) for row in rows]

        return await self._read(tx)

    async def public_rooms(self, limit: int, after_id: str | None = None) -> list[Room]:
        """See `Store.public_rooms`."""
        _check_limit(limit)

        def tx(db: sqlite3.Connection) -> list[Room]:
            rows = db.execute(
                f"SELECT {_ROOM} FROM rooms r"
                " WHERE r.kind = 'public' AND r.bot_run IS NULL AND r.id > ?"
                " ORDER BY r.id LIMIT ?",
                ("" if after_id is None else after_id, limit),
            )
            return [_room(row) for row in rows]

        return await self._read(tx)

    async def add_member(self, room_id: str, user_id: str, role: Role, now: int) -> Membership:
        """See `Store.add_member`."""

        def tx(db: sqlite3.Connection) -> Membership:
            existing = _find_membership(db, room_id, user_id)
            if existing is not None:
                return existing
            row = db.execute("SELECT direct_key FROM rooms WHERE id = ?", (room_id,)).fetchone()
            if row is None:
                raise NotFound(f"no room {room_id!r}")
            _require_user(db, user_id)
            direct_key: str | None = row[0]
            if direct_key is not None and user_id not in direct_key.split(":"):
                raise Conflict(f"room {room_id!r} is a direct room of other users")
            return _insert_membership(db, room_id, user_id, role, now)

        return await self._write(tx)

    async def remove_member(self, room_id: str, user_id: str) -> bool:
        """See `Store.remove_member`."""

        def tx(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "DELETE FROM memberships WHERE room_id = ? AND user_id = ?", (room_id, user_id)
            )
            return cursor.rowcount == 1

        return await self._write(tx)

    async def get_membership(self, room_id: str, user_id: str) -> Membership | None:
        """See `Store.get_membership`."""

        def tx(db: sqlite3.Connection) -> Membership | None:
            return _find_membership(db, room_id, user_id)

        return await self._read(tx)

    async def members(self, room_id: str) -> list[Membership]:
        """See `Store.members`."""

        def tx(db: sqlite3.Connection) -> list[Membership]:
            rows = db.execute(
                f"SELECT {_MEMBERSHIP} FROM memberships m WHERE m.room_id = ?"
                " ORDER BY m.joined_at, m.user_id",
                (room_id,),
            )
            return [_membership(row) for row in rows]

        return await self._read(tx)

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

        def tx(db: sqlite3.Connection) -> tuple[Room, bool]:
            row = db.execute(
                f"SELECT {_ROOM} FROM rooms r WHERE r.direct_key = ?", (key,)
            ).fetchone()
            if row is not None:
                return _room(row), False
            for user_id in users:
                _require_user(db, user_id)
            room = Room(
                id=new_id("r"),
                name="",
                kind=RoomKind.DIRECT,
                created_by=creator_id,
                created_at=now,
                last_seq=0,
            )
            _insert_room(db, room, direct_key=key)
            for user_id in users:
                _insert_membership(db, room.id, user_id, Role.MEMBER, now)
            return room, True

        return await self._write(tx)

    async def set_notify_level(self, room_id: str, user_id: str, level: NotifyLevel) -> Membership:
        """See `Store.set_notify_level`."""

        def tx(db: sqlite3.Connection) -> Membership:
            db.execute(
                "UPDATE memberships SET notify = ? WHERE room_id = ? AND user_id = ?",
                (level.value, room_id, user_id),
            )
            membership = _find_membership(db, room_id, user_id)
            if membership is None:
                raise NotFound(f"user {user_id!r} is not a member of room {room_id!r}")
            return membership

        return await self._write(tx)

    async def set_read_receipts(self, room_id: str, enabled: bool) -> Room:
        """See `Store.set_read_receipts`."""

        def tx(db: sqlite3.Connection) -> Room:
            db.execute("UPDATE rooms SET read_receipts = ? WHERE id = ?", (int(enabled), room_id))
            room = _find_room(db, room_id)
            if room is None:
                raise NotFound(f"no room {room_id!r}")
            return room

        return await self._write(tx)

    async def advance_read_seq(self, room_id: str, user_id: str, seq: int) -> int:
        """See `Store.advance_read_seq`."""

        def tx(db: sqlite3.Connection) -> int:
            row = db.execute(
                "SELECT m.read_seq, r.last_seq FROM memberships m"
                " JOIN rooms r ON r.id = m.room_id WHERE m.room_id = ? AND m.user_id = ?",
                (room_id, user_id),
            ).fetchone()
            if row is None:
                raise NotFound(f"user {user_id!r} is not a member of room {room_id!r}")
            read_seq, last_seq = int(row[0]), int(row[1])
            target = min(seq, last_seq)
            if target <= read_seq:
                return read_seq
            db.execute(
                "UPDATE memberships SET read_seq = ? WHERE room_id = ? AND user_id = ?",
                (target, room_id, user_id),
            )
            return target

        return await self._write(tx)

    async def unread_counts(self, user_id: str) -> dict[str, Unread]:
        """See `Store.unread_counts`; the query is `UNREAD_COUNTS`."""

        def tx(db: sqlite3.Connection) -> dict[str, Unread]:
            return {
                row[0]: Unread(unread=row[1], mentions=row[2])
                for row in db.execute(UNREAD_COUNTS, (user_id,))
            }

        return await self._read(tx)

    # -- messages --------------------------------------------------------------------

    async def append_messages(self, room_id: str, batch: Sequence[NewMessage]) -> list[Appended]:
        """See `Store.append_messages`."""
        # A copy: the worker thread must not see the caller change the batch.
        batch = list(batch)

        def tx(db: sqlite3.Connection) -> list[Appended]:
            row = db.execute("SELECT last_seq FROM rooms WHERE id = ?", (room_id,)).fetchone()
            if row is None:
                raise NotFound(f"no room {room_id!r}")
            seq: int = row[0]
            stored = _find_sent(db, [(new.sender_id, new.client_id) for new in batch])
            results: list[Appended] = []
            fresh: list[Message] = []
            # The few messages that do more than insert a row (replies, mentions).
            rich: list[tuple[int, NewMessage]] = []
            ids = iter(new_ids("m", len(batch)))
            for new in batch:
                original = stored.get((new.sender_id, new.client_id))
                if original is not None:
                    results.append(Appended(message=original, duplicate=True))
                    continue
                seq += 1
                message = Message(
                    id=next(ids),
                    room_id=room_id,
                    seq=seq,
                    sender_id=new.sender_id,
                    body=new.body,
                    client_id=new.client_id,
                    created_at=new.created_at,
                    edited_at=None,
                    thread_id=new.thread_id,
                )
                stored[new.sender_id, new.client_id] = message
                if needs_fan_out(new):
                    rich.append((len(results), new))
                results.append(Appended(message=message, duplicate=False))
                fresh.append(message)
            roots = _check_roots(db, room_id, {new.thread_id for _, new in rich})
            if fresh:
                try:
                    db.executemany(
                        "INSERT INTO messages"
                        " (id, room_id, seq, sender_id, body, client_id, created_at, thread_id)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            (
                                m.id,
                                m.room_id,
                                m.seq,
                                m.sender_id,
                                m.body,
                                m.client_id,
                                m.created_at,
                                m.thread_id,
                            )
                            for m in fresh
                        ],
                    )
                except sqlite3.IntegrityError as exc:
                    # Duplicates were filtered out above, so only a sender can be missing.
                    raise NotFound(
                        f"a sender of the batch for room {room_id!r} does not exist"
                    ) from exc
                db.execute("UPDATE rooms SET last_seq = ? WHERE id = ?", (seq, room_id))
            for index, new in rich:
                appended = results[index]
                notified = _fan_out(db, appended.message, new, roots)
                results[index] = attrs.evolve(appended, notified=notified)
            return results

        return await self._write(tx, gather=True)  # see COMMIT_WINDOW

    async def get_message(self, message_id: str) -> Message | None:
        """See `Store.get_message`."""

        def tx(db: sqlite3.Connection) -> Message | None:
            return _find_message(db, message_id)

        return await self._read(tx)

    async def edit_message(
        self, message_id: str, editor_id: str, body: str, client_id: str, now: int
    ) -> Appended:
        """See `Store.edit_message`."""

        def tx(db: sqlite3.Connection) -> Appended:
            original = _find_sent(db, [(editor_id, client_id)]).get((editor_id, client_id))
            if original is not None:
                return Appended(message=original, duplicate=True)
            target = _target(db, message_id)
            if target.sender_id != editor_id:
                raise Forbidden(f"only its sender may edit message {message_id!r}")
            if target.deleted_at is not None:
                raise Gone(f"message {message_id!r} was deleted")
            event = _append_event(db, target, EventKind.EDIT, editor_id, body, client_id, now)
            db.execute(
                "INSERT INTO message_edits (message_id, seq, body, written_at, replaced_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    message_id,
                    event.seq,
                    target.body,
                    target.edited_at if target.edited_at is not None else target.created_at,
                    now,
                ),
            )
            db.execute(
                "UPDATE messages SET body = ?, edited_at = ? WHERE id = ?", (body, now, message_id)
            )
            return Appended(message=event, duplicate=False)

        return await self._write(tx)

    async def delete_message(
        self, message_id: str, actor_id: str, client_id: str, now: int
    ) -> Appended:
        """See `Store.delete_message`."""

        def tx(db: sqlite3.Connection) -> Appended:
            original = _find_sent(db, [(actor_id, client_id)]).get((actor_id, client_id))
            if original is not None:
                return Appended(message=original, duplicate=True)
            target = _target(db, message_id)
            if target.sender_id != actor_id:
                role = db.execute(
                    "SELECT role FROM memberships WHERE room_id = ? AND user_id = ?",
                    (target.room_id, actor_id),
                ).fetchone()
                if role is None or Role(role[0]) is Role.MEMBER:
                    raise Forbidden(
                        f"only its sender or a moderator may delete message {message_id!r}"
                    )
            if target.deleted_at is not None:
                raise Gone(f"message {message_id!r} was already deleted")
            event = _append_event(db, target, EventKind.DELETE, actor_id, "", client_id, now)
            for statement in _ERASE:
                db.execute(statement, (message_id,))
            db.execute(
                "DELETE FROM mentions WHERE room_id = ? AND seq = ?", (target.room_id, target.seq)
            )
            db.execute(
                "UPDATE messages SET body = '', deleted_at = ?, deleted_by = ? WHERE id = ?",
                (now, actor_id, message_id),
            )
            if target.thread_id is not None:
                db.execute(
                    "UPDATE messages SET reply_count = reply_count - 1 WHERE id = ?",
                    (target.thread_id,),
                )
            return Appended(message=event, duplicate=False)

        return await self._write(tx)

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

        def tx(db: sqlite3.Connection) -> Appended | None:
            original = _find_sent(db, [(user_id, client_id)]).get((user_id, client_id))
            if original is not None:
                return Appended(message=original, duplicate=True)
            target = _target(db, message_id)
            if _find_membership(db, target.room_id, user_id) is None:
                raise Forbidden(f"user {user_id!r} is not a member of room {target.room_id!r}")
            if target.deleted_at is not None:
                raise Gone(f"message {message_id!r} was deleted")
            if present:
                changed = db.execute(
                    "INSERT INTO reactions (message_id, emoji, user_id, created_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (message_id, emoji, user_id, now),
                ).rowcount
            else:
                changed = db.execute(
                    "DELETE FROM reactions WHERE message_id = ? AND emoji = ? AND user_id = ?",
                    (message_id, emoji, user_id),
                ).rowcount
            if not changed:
                return None
            kind = EventKind.REACTION_ADD if present else EventKind.REACTION_REMOVE
            event = _append_event(db, target, kind, user_id, emoji, client_id, now)
            return Appended(message=event, duplicate=False)

        return await self._write(tx)

    async def edit_history(self, message_id: str) -> list[Edit]:
        """See `Store.edit_history`."""

        def tx(db: sqlite3.Connection) -> list[Edit]:
            rows = db.execute(
                f"SELECT {_EDIT} FROM message_edits e WHERE e.message_id = ? ORDER BY e.seq",
                (message_id,),
            )
            return [_edit(row) for row in rows]

        return await self._read(tx)

    async def reactions(self, message_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """See `Store.reactions`."""
        # One JSON parameter instead of one per id: any number of ids, one statement.
        ids = json.dumps(list(message_ids))

        def tx(db: sqlite3.Connection) -> dict[str, dict[str, int]]:
            found: dict[str, dict[str, int]] = {}
            rows = db.execute(
                "SELECT x.message_id, x.emoji, count(*) FROM reactions x"
                " WHERE x.message_id IN (SELECT value FROM json_each(?))"
                " GROUP BY x.message_id, x.emoji ORDER BY x.message_id, min(x.created_at), x.emoji",
                (ids,),
            )
            for message_id, emoji, count in rows:
                found.setdefault(message_id, {})[emoji] = count
            return found

        return await self._read(tx)

    async def reactors(self, message_id: str, emoji: str, limit: int) -> list[str]:
        """See `Store.reactors`."""
        _check_limit(limit)

        def tx(db: sqlite3.Connection) -> list[str]:
            rows = db.execute(
                "SELECT user_id FROM reactions WHERE message_id = ? AND emoji = ?"
                " ORDER BY created_at, user_id LIMIT ?",
                (message_id, emoji, limit),
            )
            return [row[0] for row in rows]

        return await self._read(tx)

    async def thread_messages(
        self,
        root_id: str,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int,
    ) -> list[Message]:
        """See `Store.thread_messages`."""
        return await self._page("msg.thread_id = ?", root_id, before, after, limit)

    async def followed_threads(self, user_id: str, limit: int) -> list[Message]:
        """See `Store.followed_threads`."""
        _check_limit(limit)

        def tx(db: sqlite3.Connection) -> list[Message]:
            rows = db.execute(
                f"SELECT {_MESSAGE} FROM thread_follows f"
                " JOIN messages msg ON msg.id = f.root_id"
                " JOIN memberships ms ON ms.room_id = msg.room_id AND ms.user_id = f.user_id"
                " WHERE f.user_id = ? ORDER BY msg.last_reply_at DESC, msg.id DESC LIMIT ?",
                (user_id, limit),
            )
            return [_message(row) for row in rows]

        return await self._read(tx)

    async def messages(
        self,
        room_id: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int,
    ) -> list[Message]:
        """See `Store.messages`."""
        return await self._page("msg.room_id = ?", room_id, before, after, limit)

    async def _page(
        self, where: str, key: str, before: int | None, after: int | None, limit: int
    ) -> list[Message]:
        """Events matching `where` (one `?` for `key`), paged as `Store.messages` pages."""
        _check_limit(limit)
        params: list[object] = [key]
        if after is not None:
            where += " AND msg.seq > ?"
            params.append(after)
        if before is not None:
            where += " AND msg.seq < ?"
            params.append(before)
        # Without `after` the newest end is wanted: read backwards, then flip.
        newest_first = after is None
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT {_MESSAGE} FROM messages msg WHERE {where} ORDER BY msg.seq {order} LIMIT ?"
        params.append(limit)

        def tx(db: sqlite3.Connection) -> list[Message]:
            found = [_message(row) for row in db.execute(sql, params)]
            if newest_first:
                found.reverse()
            return found

        return await self._read(tx)

    async def last_seq(self, room_id: str) -> int:
        """See `Store.last_seq`."""

        def tx(db: sqlite3.Connection) -> int:
            row = db.execute("SELECT last_seq FROM rooms WHERE id = ?", (room_id,)).fetchone()
            if row is None:
                raise NotFound(f"no room {room_id!r}")
            return int(row[0])

        return await self._read(tx)

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

        FTS5 over the current bodies of MESSAGE rows (`messages_fts`); the
        membership join does the permission check. Appends do not index
        (that would cost the hot path about two thirds of its speed): each
        search first indexes the messages appended since the last one, in
        its own write transaction, so a search after many appends takes
        longer (roughly a second per 100,000 new messages).
        """
        check_query(query)
        _check_limit(limit)
        _check_limit(offset, "offset")
        match = fts5_query(query)
        if match is None:
            return []
        where = ""
        params: list[object] = [user_id, match]
        for column, op, value in (
            ("room_id", "=", room_id),
            ("sender_id", "=", sender_id),
            ("created_at", ">=", since),
            ("created_at", "<", until),
        ):
            if value is not None:
                where += f" AND msg.{column} {op} ?"
                params.append(value)
        params += [limit, offset]
        sql = (
            f"SELECT {_MESSAGE},"
            f" snippet(messages_fts, 0, '{HIGHLIGHT_START}', '{HIGHLIGHT_END}', '', 24)"
            " FROM messages_fts"
            " JOIN messages msg ON msg.rowid = messages_fts.rowid"
            " JOIN memberships ms ON ms.room_id = msg.room_id AND ms.user_id = ?"
            " WHERE messages_fts MATCH ? AND msg.kind = 'message' AND msg.deleted_at IS NULL"
            f"{where} ORDER BY msg.created_at DESC, msg.id DESC LIMIT ? OFFSET ?"
        )

        def tx(db: sqlite3.Connection) -> list[SearchHit]:
            _index_new_messages(db)
            return [
                SearchHit(message=_message(row), snippet=row[_MESSAGE_WIDTH])
                for row in db.execute(sql, params)
            ]

        return await self._write(tx)

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
        _check_limit(limit)
        sql = f"SELECT {_NOTIFICATION} FROM notifications n WHERE n.user_id = ?"
        params: list[object] = [user_id]
        if before_id is not None:
            sql += " AND n.id < ?"
            params.append(before_id)
        if unread_only:
            sql += " AND n.read_at IS NULL"
        sql += " ORDER BY n.id DESC LIMIT ?"
        params.append(limit)

        def tx(db: sqlite3.Connection) -> list[Notification]:
            return [_notification(row) for row in db.execute(sql, params)]

        return await self._read(tx)

    async def mark_notifications_read(
        self, user_id: str, ids: Sequence[str] | None, now: int
    ) -> int:
        """See `Store.mark_notifications_read`."""
        sql = "UPDATE notifications SET read_at = ? WHERE user_id = ? AND read_at IS NULL"
        params: list[object] = [now, user_id]
        if ids is not None:
            sql += " AND id IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(list(ids)))

        def tx(db: sqlite3.Connection) -> int:
            return db.execute(sql, params).rowcount

        return await self._write(tx)

    # -- bot swarm runs --------------------------------------------------------------

    async def remove_bot_run(self, run_id: str) -> RemovedBots:
        """See `Store.remove_bot_run`."""

        def tx(db: sqlite3.Connection) -> RemovedBots:
            # Children without ON DELETE CASCADE first (messages.sender_id,
            # rooms.created_by); the cascades take the rest.
            bots = "SELECT id FROM users WHERE bot_run = ?"
            db.execute(f"DELETE FROM messages WHERE sender_id IN ({bots})", (run_id,))
            rooms = db.execute(
                f"DELETE FROM rooms WHERE bot_run = ? OR created_by IN ({bots})", (run_id, run_id)
            ).rowcount
            users = db.execute("DELETE FROM users WHERE bot_run = ?", (run_id,)).rowcount
            return RemovedBots(users=users, rooms=rooms)

        return await self._write(tx)

    # -- deployment secrets ----------------------------------------------------------

    async def shared_secret(self, name: str, candidate: bytes, now: int) -> bytes:
        """See `Store.shared_secret`."""

        def tx(db: sqlite3.Connection) -> bytes:
            db.execute(
                "INSERT INTO secrets (name, value, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO NOTHING",
                (name, candidate, now),
            )
            row = db.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
            return bytes(row[0])

        return await self._write(tx)

    # -- running transactions --------------------------------------------------------

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with _translate_errors(self.path):
            return await trio.to_thread.run_sync(
                self._read_transaction, work, limiter=self._limiter
            )

    async def _write(self, work: Callable[[sqlite3.Connection], T], *, gather: bool = False) -> T:
        with _translate_errors(self.path):
            return await self._writes.submit(work, gather=gather)

    def _read_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        # Runs in the worker thread, holding the limiter: nothing else touches
        # the connection meanwhile, including `aclose`. A deferred BEGIN: the
        # reads of one call see one snapshot, and (WAL) never wait for another
        # process that is writing.
        conn = self._open_connection()
        conn.execute("BEGIN")
        try:
            result = work(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    def _transaction_group(
        self, group: Sequence[Callable[[sqlite3.Connection], object]]
    ) -> list[outcome.Outcome[object]]:
        # One transaction, one savepoint per write. IMMEDIATE takes the write
        # lock up front, so a write that read rows (e.g. rooms.last_seq)
        # cannot find them changed by another process when it writes.
        conn = self._open_connection()
        conn.execute("BEGIN IMMEDIATE")
        results: list[outcome.Outcome[object]] = []
        try:
            for work in group:
                conn.execute("SAVEPOINT write")
                try:
                    result = work(conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO write")
                    conn.execute("RELEASE write")
                    results.append(outcome.Error(exc))
                else:
                    conn.execute("RELEASE write")
                    results.append(outcome.Value(result))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return results

    def _open_connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreUnavailable(f"{self.path}: the store is closed")
        return self._conn

    async def aclose(self) -> None:
        """Close the database once the call in progress (if any) has finished.

        Calls made afterwards raise `StoreUnavailable`. Closing twice is
        harmless; `open_sqlite_store` closes the store when its block exits.
        """
        await trio.to_thread.run_sync(self._close_in_thread, limiter=self._limiter)

    def _close_in_thread(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        # Recommended by SQLite before closing a long-lived connection: refreshes
        # the planner's statistics where the workload showed they are stale. It
        # is housekeeping only, so its failure must not fail the close.
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA optimize")
        conn.close()


@contextlib.asynccontextmanager
async def open_sqlite_store(
    path: Path,
    *,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    synchronous: Synchronous = "FULL",
    commit_window: float = COMMIT_WINDOW,
) -> AsyncIterator[SqliteStore]:
    """Open the SQLite database at `path` (created with its folder if missing) as a `Store`.

    Applies pending migrations first. Raises `SchemaTooNew` if the database
    was migrated by a newer Chorus, `StoreUnavailable` if it cannot be opened
    or stays locked longer than `busy_timeout` seconds. The store is closed
    when the block exits, after any call in progress has finished; later
    calls raise `StoreUnavailable`. See `Synchronous` for `synchronous` and
    `COMMIT_WINDOW` for `commit_window`.
    """
    with _translate_errors(path):
        conn = await trio.to_thread.run_sync(_open_migrated, path, busy_timeout, synchronous)
    store = SqliteStore(conn, path, commit_window=commit_window)
    try:
        yield store
    finally:
        # Shielded so that a cancelled owner still closes the file cleanly.
        with trio.CancelScope(shield=True):
            await store.aclose()


async def migrate_sqlite(path: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> list[int]:
    """Bring the SQLite database at `path` (created if missing) to the newest schema.

    Returns the versions applied, oldest first; empty when it was up to date,
    so running it again is harmless. Raises like `open_sqlite_store`.
    """

    def run() -> list[int]:
        conn = connect(path, busy_timeout=busy_timeout, synchronous="FULL")
        try:
            return migrate(conn, load_migrations("sqlite"), database=str(path), now=now_ms())
        finally:
            conn.close()

    with _translate_errors(path):
        return await trio.to_thread.run_sync(run)


def _open_migrated(path: Path, busy_timeout: float, synchronous: Synchronous) -> sqlite3.Connection:
    conn = connect(path, busy_timeout=busy_timeout, synchronous=synchronous)
    try:
        migrate(conn, load_migrations("sqlite"), database=str(path), now=now_ms())
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def _translate_errors(path: Path) -> Iterator[None]:
    """Turn sqlite3 errors that are the database's fault into `StoreError`s.

    Constraint failures that methods expect are translated where they happen,
    with a precise message; anything else (a bug, such as an SQL typo) is
    left as it is.
    """
    try:
        yield
    except sqlite3.Error as exc:
        # Errors raised by the sqlite3 module itself (not by SQLite) carry no code.
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in _UNAVAILABLE:
            raise StoreUnavailable(f"{path}: {exc} ({exc.sqlite_errorname})") from exc
        raise


# -- statements shared by several methods ---------------------------------------


def _require_user(db: sqlite3.Connection, user_id: str) -> None:
    if db.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchone() is None:
        raise NotFound(f"no user {user_id!r}")


def _find_room(db: sqlite3.Connection, room_id: str) -> Room | None:
    row = db.execute(f"SELECT {_ROOM} FROM rooms r WHERE r.id = ?", (room_id,)).fetchone()
    return None if row is None else _room(row)


def _find_membership(db: sqlite3.Connection, room_id: str, user_id: str) -> Membership | None:
    row = db.execute(
        f"SELECT {_MEMBERSHIP} FROM memberships m WHERE m.room_id = ? AND m.user_id = ?",
        (room_id, user_id),
    ).fetchone()
    return None if row is None else _membership(row)


def _insert_room(
    db: sqlite3.Connection, room: Room, *, direct_key: str | None, bot_run: str | None = None
) -> None:
    db.execute(
        "INSERT INTO rooms (id, name, kind, created_by, created_at, last_seq, direct_key, bot_run)"
        " VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
        (
            room.id,
            room.name,
            room.kind.value,
            room.created_by,
            room.created_at,
            direct_key,
            bot_run,
        ),
    )


def _insert_membership(
    db: sqlite3.Connection, room_id: str, user_id: str, role: Role, now: int
) -> Membership:
    db.execute(
        "INSERT INTO memberships (room_id, user_id, role, joined_at, read_seq)"
        " VALUES (?, ?, ?, ?, 0)",
        (room_id, user_id, role.value, now),
    )
    return Membership(room_id=room_id, user_id=user_id, role=role, joined_at=now, read_seq=0)


def _insert_refresh_token(
    db: sqlite3.Connection, token_hash: str, session_id: str, now: int
) -> None:
    try:
        db.execute(
            "INSERT INTO refresh_tokens (hash, session_id, issued_at) VALUES (?, ?, ?)",
            (token_hash, session_id, now),
        )
    except sqlite3.IntegrityError as exc:
        raise Conflict("that refresh token hash is already stored") from exc


def _find_sent(
    db: sqlite3.Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], Message]:
    """The stored messages among these (sender_id, client_id) pairs, by pair."""
    unique = list(dict.fromkeys(keys))
    found: dict[tuple[str, str], Message] = {}
    for start in range(0, len(unique), _KEYS_PER_LOOKUP):
        chunk = unique[start : start + _KEYS_PER_LOOKUP]
        # A join from a VALUES list probes the (sender_id, client_id) index
        # once per pair; `(a, b) IN (VALUES …)` would scan the whole table.
        values = ", ".join(["(?, ?)"] * len(chunk))
        rows = db.execute(
            f"WITH k (sender_id, client_id) AS (VALUES {values})"
            f" SELECT {_MESSAGE} FROM k CROSS JOIN messages msg"
            " ON msg.sender_id = k.sender_id AND msg.client_id = k.client_id",
            [part for pair in chunk for part in pair],
        )
        for row in rows:
            message = _message(row)
            found[message.sender_id, message.client_id] = message
    return found


def _find_message(db: sqlite3.Connection, message_id: str) -> Message | None:
    row = db.execute(
        f"SELECT {_MESSAGE} FROM messages msg WHERE msg.id = ?", (message_id,)
    ).fetchone()
    return None if row is None else _message(row)


def _target(db: sqlite3.Connection, message_id: str) -> Message:
    """The MESSAGE event an edit, delete or reaction acts on; `NotFound` if there is none."""
    target = _find_message(db, message_id)
    if target is None or target.kind is not EventKind.MESSAGE:
        raise NotFound(f"no message {message_id!r}")
    return target


def _append_event(
    db: sqlite3.Connection,
    target: Message,
    kind: EventKind,
    sender_id: str,
    body: str,
    client_id: str,
    now: int,
) -> Message:
    """Store an event acting on `target` with its room's next seq (the caller holds the lock)."""
    row = db.execute("SELECT last_seq FROM rooms WHERE id = ?", (target.room_id,)).fetchone()
    event = Message(
        id=new_id("m"),
        room_id=target.room_id,
        seq=int(row[0]) + 1,
        sender_id=sender_id,
        body=body,
        client_id=client_id,
        created_at=now,
        edited_at=None,
        kind=kind,
        target_id=target.id,
    )
    try:
        db.execute(
            "INSERT INTO messages"
            " (id, room_id, seq, sender_id, body, client_id, created_at, kind, target_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.id,
                event.room_id,
                event.seq,
                sender_id,
                body,
                client_id,
                now,
                kind.value,
                target.id,
            ),
        )
    except sqlite3.IntegrityError as exc:
        # The client id was checked first, so only the sender can be missing.
        raise NotFound(f"no user {sender_id!r}") from exc
    db.execute("UPDATE rooms SET last_seq = ? WHERE id = ?", (event.seq, event.room_id))
    return event


def _check_roots(db: sqlite3.Connection, room_id: str, root_ids: set[str | None]) -> dict[str, str]:
    """The sender of each thread root, after checking the roots may get replies (`ValueError`)."""
    senders: dict[str, str] = {}
    for root_id in root_ids:
        if root_id is None:
            continue
        root = _find_message(db, root_id)
        senders[root_id] = valid_root(root, root_id, room_id).sender_id
    return senders


def _index_new_messages(db: sqlite3.Connection) -> None:
    """Add the message rows appended since the last search to the search index.

    See migrations/sqlite/0003: rows up to `search_state.indexed_rowid` are
    indexed, later ones are read by one range scan of the rowid.
    """
    row = db.execute("SELECT indexed_rowid FROM search_state").fetchone()
    indexed = int(row[0])
    newest = db.execute("SELECT coalesce(max(rowid), 0) FROM messages").fetchone()[0]
    if newest <= indexed:
        return
    db.execute(
        "INSERT INTO messages_fts (rowid, body) SELECT rowid, body FROM messages"
        " WHERE rowid > ? AND rowid <= ? AND kind = 'message'",
        (indexed, newest),
    )
    db.execute("UPDATE search_state SET indexed_rowid = ?", (newest,))


def _fan_out(
    db: sqlite3.Connection, message: Message, new: NewMessage, root_senders: dict[str, str]
) -> tuple[Notification, ...]:
    """Record a new message's thread bookkeeping, mentions and notifications."""
    followers: list[str] = []
    if message.thread_id is not None:
        db.execute(
            "UPDATE messages SET reply_count = reply_count + 1, last_reply_at = ? WHERE id = ?",
            (message.created_at, message.thread_id),
        )
        db.executemany(
            "INSERT INTO thread_follows (user_id, root_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [
                (message.sender_id, message.thread_id),
                (root_senders[message.thread_id], message.thread_id),
            ],
        )
        followers = [
            row[0]
            for row in db.execute(
                "SELECT user_id FROM thread_follows WHERE root_id = ?", (message.thread_id,)
            )
        ]
    recipients = [
        Recipient(user_id=row[0], username=row[1], notify=NotifyLevel(row[2]))
        for row in db.execute(
            _RECIPIENTS,
            (
                message.room_id,
                new.mentions_room,
                json.dumps(sorted(new.mentions)),
                json.dumps(followers),
            ),
        )
    ]
    plan = fan_out(new, recipients, followers)
    db.executemany(
        "INSERT INTO mentions (user_id, room_id, seq) VALUES (?, ?, ?)",
        [(user_id, message.room_id, message.seq) for user_id in plan.mentioned],
    )
    notified = tuple(
        Notification(
            id=notification_id,
            user_id=user_id,
            room_id=message.room_id,
            message_id=message.id,
            seq=message.seq,
            kind=kind,
            created_at=message.created_at,
        )
        for notification_id, (user_id, kind) in zip(
            new_ids("n", len(plan.notify)), plan.notify, strict=True
        )
    )
    db.executemany(
        "INSERT INTO notifications (id, user_id, room_id, message_id, seq, kind, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (n.id, n.user_id, n.room_id, n.message_id, n.seq, n.kind.value, n.created_at)
            for n in notified
        ],
    )
    return notified
