"""Changes to a message: edits, deletes and reactions, each an event of its room's log.

The rules of who may change what live here, once: only its sender may edit a
message; its sender or a moderator may delete it; members may react; a
deleted message is `Gone`. Who moderates is `chorus.permissions`'
`DELETE_ANY` (room moderators and owners, server moderators and admins).
Each change takes its room's next seq under the room's lock and is
idempotent by (sender, client id).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from chorus.permissions import Action, Who, allowed, standing

from .._errors import Forbidden, Gone, NotFound
from .._model import Appended, Edit, EventKind, Message, new_id
from .._rows import EDIT, MESSAGE, check_limit, edit, message
from .._sql import Engine, ForeignKeyViolation, Tx, execute, fetch, fetch_one, fetch_value
from .events import find_message
from .files import delete_files_of_message
from .rooms import find_membership

# What deleting message $1 erases besides its own row: the texts it had, and
# what pointed at it (its mention rows are keyed by seq, see `delete_message`).
_ERASE_MESSAGE = (
    "DELETE FROM message_edits WHERE message_id = $1",
    "UPDATE messages SET body = '' WHERE target_id = $1 AND kind = 'edit'",
    "DELETE FROM reactions WHERE message_id = $1",
    "DELETE FROM notifications WHERE message_id = $1",
)


class MessageChanges(Protocol):
    """Edits, deletes and reactions, and reading what they left."""

    async def edit_message(
        self, message_id: str, editor_id: str, body: str, client_id: str, now: int
    ) -> Appended:
        """Replace a message's body; record an EDIT event with the room's next seq.

        Only the message's sender may edit it (`Forbidden` for anyone else,
        members or not); a deleted message raises `Gone`; an id that is not
        a MESSAGE event raises `NotFound`. The message row gets `body` and
        `edited_at=now`; the previous body goes to `edit_history`. The event
        has `kind=EDIT`, `target_id=message_id`, `body`, `sender_id=editor_id`,
        `created_at=now`. Mentions and notifications are not changed.
        A repeated (editor, client id) returns the original event with
        `duplicate=True` (checked before everything else).
        """
        ...

    async def delete_message(
        self, message_id: str, actor_id: str, client_id: str, now: int
    ) -> Appended:
        """Delete a message, leaving a tombstone; record a DELETE event with the next seq.

        Allowed to its sender, and to the owners and moderators of its room
        (checked in the transaction); anyone else gets `Forbidden`. Deleting
        a deleted message raises `Gone`; an id that is not a MESSAGE event
        raises `NotFound`. The message row keeps its id, seq, sender and
        thread, with `body` "", `deleted_at=now` and `deleted_by=actor_id`.
        Its text does not survive anywhere: its edit history is removed and
        the bodies of its earlier EDIT events are emptied; its reactions,
        mentions and notifications are removed and it leaves the search
        index. A deleted reply no longer counts in its root's `reply_count`;
        a deleted root keeps its replies but gets no new ones. Its attached
        files are marked deleted (see `Files.delete_file`).
        The event has `kind=DELETE`, `target_id`, an empty body,
        `sender_id=actor_id`. Idempotent by (actor, client id) as above.
        """
        ...

    async def set_reaction(
        self,
        message_id: str,
        user_id: str,
        emoji: str,
        present: bool,
        client_id: str,
        now: int,
    ) -> Appended | None:
        """Add (`present`) or take back the user's reaction `emoji` to a message.

        A user has at most one reaction per emoji per message. When that
        changes, records a REACTION_ADD or REACTION_REMOVE event with the
        next seq (`body` is the emoji, `target_id` the message); when nothing
        changes (adding a present reaction, removing an absent one) stores
        nothing and returns None. The user must be a member of the message's
        room (`Forbidden`); a deleted message raises `Gone`; an id that is
        not a MESSAGE event raises `NotFound`; an empty emoji `ValueError`.
        Idempotent by (user, client id) as above, checked first.
        """
        ...

    async def edit_history(self, message_id: str) -> list[Edit]:
        """The bodies the message had before each of its edits, oldest first.

        Empty for a message never edited, a deleted one, or an unknown id.
        """
        ...

    async def reactions(self, message_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """The reaction counts of these messages: message id → emoji → number of users.

        One query. Messages without reactions (or unknown) are absent; each
        message's emojis are ordered by their oldest standing reaction, then
        by emoji.
        """
        ...

    async def reactors(self, message_id: str, emoji: str, limit: int) -> list[str]:
        """Up to `limit` ids of the users who reacted `emoji` to the message, earliest first."""
        ...


class MessageChangesOnSql(Engine):
    """`MessageChanges` for every engine: each method runs one transaction below."""

    async def edit_message(
        self, message_id: str, editor_id: str, body: str, client_id: str, now: int
    ) -> Appended:
        """See `MessageChanges.edit_message`."""
        return await self._write(lambda: edit_message(message_id, editor_id, body, client_id, now))

    async def delete_message(
        self, message_id: str, actor_id: str, client_id: str, now: int
    ) -> Appended:
        """See `MessageChanges.delete_message`."""
        return await self._write(lambda: delete_message(message_id, actor_id, client_id, now))

    async def set_reaction(
        self,
        message_id: str,
        user_id: str,
        emoji: str,
        present: bool,
        client_id: str,
        now: int,
    ) -> Appended | None:
        """See `MessageChanges.set_reaction`."""
        if not emoji:
            raise ValueError("the emoji is empty")
        return await self._write(
            lambda: set_reaction(message_id, user_id, emoji, present, client_id, now)
        )

    async def edit_history(self, message_id: str) -> list[Edit]:
        """See `MessageChanges.edit_history`."""
        return await self._read(lambda: edit_history(message_id))

    async def reactions(self, message_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """See `MessageChanges.reactions`."""
        return await self._read(lambda: reactions(list(message_ids)))

    async def reactors(self, message_id: str, emoji: str, limit: int) -> list[str]:
        """See `MessageChanges.reactors`."""
        check_limit(limit)
        return await self._read(lambda: reactors(message_id, emoji, limit))


def edit_message(
    message_id: str, editor_id: str, body: str, client_id: str, now: int
) -> Tx[Appended]:
    original = yield from _sent(editor_id, client_id)
    if original is not None:
        return original
    target = yield from _lock_target(message_id)
    if target.sender_id != editor_id:
        raise Forbidden(f"only its sender may edit message {message_id!r}")
    if target.deleted_at is not None:
        raise Gone(f"message {message_id!r} was deleted")
    event = yield from _append_event(target, EventKind.EDIT, editor_id, body, client_id, now)
    yield from execute(
        "INSERT INTO message_edits (message_id, seq, body, written_at, replaced_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        message_id,
        event.seq,
        target.body,
        target.edited_at if target.edited_at is not None else target.created_at,
        now,
    )
    yield from execute(
        "UPDATE messages SET body = $2, edited_at = $3 WHERE id = $1", message_id, body, now
    )
    return Appended(message=event, duplicate=False)


def delete_message(message_id: str, actor_id: str, client_id: str, now: int) -> Tx[Appended]:
    original = yield from _sent(actor_id, client_id)
    if original is not None:
        return original
    target = yield from _lock_target(message_id)
    if target.sender_id != actor_id:
        row = yield from fetch_one(
            "SELECT u.role, m.role FROM users u LEFT JOIN memberships m"
            " ON m.room_id = $1 AND m.user_id = u.id WHERE u.id = $2",
            target.room_id,
            actor_id,
        )
        who = Who.OUTSIDER if row is None else standing(row[0], row[1])
        if not allowed(Action.DELETE_ANY, who):
            raise Forbidden(f"only its sender or a moderator may delete message {message_id!r}")
    if target.deleted_at is not None:
        raise Gone(f"message {message_id!r} was already deleted")
    event = yield from _append_event(target, EventKind.DELETE, actor_id, "", client_id, now)
    for statement in _ERASE_MESSAGE:
        yield from execute(statement, message_id)
    yield from execute(
        "DELETE FROM mentions WHERE room_id = $1 AND seq = $2", target.room_id, target.seq
    )
    yield from execute(
        "UPDATE messages SET body = '', deleted_at = $2, deleted_by = $3 WHERE id = $1",
        message_id,
        now,
        actor_id,
    )
    if target.thread_id is not None:
        yield from execute(
            "UPDATE messages SET reply_count = reply_count - 1 WHERE id = $1", target.thread_id
        )
    yield from delete_files_of_message(message_id, now)
    return Appended(message=event, duplicate=False)


def set_reaction(
    message_id: str, user_id: str, emoji: str, present: bool, client_id: str, now: int
) -> Tx[Appended | None]:
    original = yield from _sent(user_id, client_id)
    if original is not None:
        return original
    target = yield from _lock_target(message_id)
    if (yield from find_membership(target.room_id, user_id)) is None:
        raise Forbidden(f"user {user_id!r} is not a member of room {target.room_id!r}")
    if target.deleted_at is not None:
        raise Gone(f"message {message_id!r} was deleted")
    if present:
        changed = yield from fetch_one(
            "INSERT INTO reactions (message_id, emoji, user_id, created_at)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
            message_id,
            emoji,
            user_id,
            now,
        )
    else:
        changed = yield from fetch_one(
            "DELETE FROM reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3"
            " RETURNING 1",
            message_id,
            emoji,
            user_id,
        )
    if changed is None:
        return None
    kind = EventKind.REACTION_ADD if present else EventKind.REACTION_REMOVE
    event = yield from _append_event(target, kind, user_id, emoji, client_id, now)
    return Appended(message=event, duplicate=False)


def edit_history(message_id: str) -> Tx[list[Edit]]:
    found = yield from fetch(
        f"SELECT {EDIT} FROM message_edits e WHERE e.message_id = $1 ORDER BY e.seq", message_id
    )
    return [edit(row) for row in found]


def reactions(message_ids: list[str]) -> Tx[dict[str, dict[str, int]]]:
    found: dict[str, dict[str, int]] = {}
    for message_id, emoji, count in (
        yield from fetch(
            "SELECT x.message_id, x.emoji, count(*) FROM reactions x"
            " WHERE x.message_id = ANY($1)"
            " GROUP BY x.message_id, x.emoji ORDER BY x.message_id, min(x.created_at), x.emoji",
            message_ids,
        )
    ):
        found.setdefault(message_id, {})[emoji] = count
    return found


def reactors(message_id: str, emoji: str, limit: int) -> Tx[list[str]]:
    found = yield from fetch(
        "SELECT user_id FROM reactions WHERE message_id = $1 AND emoji = $2"
        " ORDER BY created_at, user_id LIMIT $3",
        message_id,
        emoji,
        limit,
    )
    return [row[0] for row in found]


def _sent(sender_id: str, client_id: str) -> Tx[Appended | None]:
    """The event already stored under (sender, client id), as a duplicate, or None.

    Read before the room's lock: an event stored with the same ids meanwhile
    makes the insert fail on PostgreSQL, which runs the change again (see
    `postgres/store.py`), and then this finds it.
    """
    row = yield from fetch_one(
        f"SELECT {MESSAGE} FROM messages msg WHERE msg.sender_id = $1 AND msg.client_id = $2",
        sender_id,
        client_id,
    )
    return None if row is None else Appended(message=message(row), duplicate=True)


def _lock_target(message_id: str) -> Tx[Message]:
    """Lock the room of the MESSAGE event a change acts on, then read that message.

    Read after the lock, the target shows every event of its room committed
    before. `NotFound` unless `message_id` is a MESSAGE event.
    """
    room_id = yield from fetch_value(
        "SELECT room_id FROM messages WHERE id = $1 AND kind = 'message'", message_id
    )
    if room_id is None:
        raise NotFound(f"no message {message_id!r}")
    yield from execute("SELECT 1 FROM rooms WHERE id = $1 FOR NO KEY UPDATE", room_id)
    target = yield from find_message(message_id)
    assert target is not None  # events are never removed but with their room
    return target


def _append_event(
    target: Message, kind: EventKind, sender_id: str, body: str, client_id: str, now: int
) -> Tx[Message]:
    """Store an event acting on `target` with its room's next seq (its room is locked)."""
    seq = yield from fetch_value(
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
        yield from execute(
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
    except ForeignKeyViolation as exc:
        raise NotFound(f"no user {sender_id!r}") from exc
    return event
