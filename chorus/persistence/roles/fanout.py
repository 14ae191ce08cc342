"""What a new message records for others: thread bookkeeping, mentions and notifications.

Both engines' appends insert a batch on their fast path, then run
`fan_out_batch` in the same transaction for the few messages that reply in a
thread or mention someone (`needs_fan_out`). The rules of who is mentioned
and notified are `fan_out`, plain Python over the facts the SQL loads.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import attrs

from .._model import (
    Appended,
    EventKind,
    Message,
    NewMessage,
    Notification,
    NotificationKind,
    NotifyLevel,
    new_ids,
)
from .._sql import Tx, execute, execute_many, fetch
from .events import find_message
from .files import attach_files, with_attachments

# The members a new message may mention or notify: all with $2 (@room), else
# those named in $3 or among the thread followers in $4.
_RECIPIENTS = """
SELECT m.user_id, u.username, m.notify FROM memberships m JOIN users u ON u.id = m.user_id
WHERE m.room_id = $1 AND ($2 OR u.username = ANY($3) OR m.user_id = ANY($4))
ORDER BY m.user_id
"""


@attrs.frozen(kw_only=True)
class Recipient:
    """A member of the room a message is appended to, as the fan-out rules need it."""

    user_id: str
    username: str
    notify: NotifyLevel


@attrs.frozen(kw_only=True)
class Fanout:
    """What one new message records for others (see `fan_out`)."""

    mentioned: tuple[str, ...]
    """User ids that get a row in `mentions` (counted as unread mentions)."""
    notify: tuple[tuple[str, NotificationKind], ...]
    """(user id, kind) of each notification to create, at most one per user."""


def needs_fan_out(new: NewMessage) -> bool:
    """True when appending `new` does more than insert its row (the slow path)."""
    return _notifies(new) or bool(new.attachments)


def _notifies(new: NewMessage) -> bool:
    """True when `new` may mention or notify someone (a reply, or a mention)."""
    return new.thread_id is not None or bool(new.mentions) or new.mentions_room


def fan_out(new: NewMessage, members: Sequence[Recipient], followers: Collection[str]) -> Fanout:
    """Who `new` mentions and notifies, among the room's `members`.

    `members` must include every member the message mentions by name (all
    members when it mentions @room) and every member among `followers`, the
    thread's followers (empty when `new` is no reply). Names of non-members
    are ignored and the sender never mentions nor notifies themself. A
    mention row is recorded whatever the member's notification level; a
    notification only when the level is not NONE, of the first kind that
    applies: MENTION, then REPLY, then ROOM_MENTION.
    """
    by_name = {m.username: m for m in members}
    named = {by_name[name].user_id for name in new.mentions if name in by_name}
    everyone = {m.user_id for m in members} if new.mentions_room else set()
    mentioned = (named | everyone) - {new.sender_id}
    replied = set(followers) - {new.sender_id}
    notify: list[tuple[str, NotificationKind]] = []
    for member in members:
        user_id = member.user_id
        if user_id == new.sender_id or member.notify is NotifyLevel.NONE:
            continue
        if user_id in named:
            notify.append((user_id, NotificationKind.MENTION))
        elif user_id in replied:
            notify.append((user_id, NotificationKind.REPLY))
        elif user_id in everyone:
            notify.append((user_id, NotificationKind.ROOM_MENTION))
    ordered = tuple(m.user_id for m in members if m.user_id in mentioned)
    return Fanout(mentioned=ordered, notify=tuple(notify))


def valid_root(root: Message | None, root_id: str, room_id: str) -> Message:
    """`root`, if a message of room `room_id` may get thread replies; else `ValueError`.

    It must be a MESSAGE event of that room, not a reply itself, not deleted.
    """
    if (
        root is None
        or root.room_id != room_id
        or root.kind is not EventKind.MESSAGE
        or root.thread_id is not None
        or root.deleted_at is not None
    ):
        raise ValueError(
            f"{root_id!r} cannot have replies: it is not a message of room {room_id!r}"
            " that is neither a reply nor deleted"
        )
    return root


def fan_out_batch(
    room_id: str, batch: Sequence[NewMessage], results: Sequence[Appended]
) -> Tx[list[Appended]]:
    """Check the thread roots of a just stored batch, attach its files, fan out the rest.

    Runs in the append's transaction (under the room's lock on PostgreSQL),
    after its rows were inserted; `results` holds one `Appended` per message
    of `batch`. Returns them, each fanned-out one carrying its attachments and
    notifications. A bad thread root raises `ValueError`, a file that cannot
    be attached `Forbidden` (see `files.attach_files`); either rolls the batch back.
    """
    fanned = list(results)
    fresh_ids = {a.message.id for a in results if not a.duplicate}
    root_senders: dict[str, str] = {}
    for index, new in enumerate(batch):
        appended = fanned[index]
        if appended.duplicate and new.attachments:  # the original, with its attachments
            [original] = yield from with_attachments([appended.message])
            fanned[index] = attrs.evolve(appended, message=original)
        if appended.duplicate or not needs_fan_out(new):
            continue
        msg = appended.message
        if new.attachments:
            files = yield from attach_files(
                room_id, msg.id, msg.sender_id, new.attachments, msg.created_at
            )
            msg = attrs.evolve(msg, attachments=files)
            fanned[index] = appended = attrs.evolve(appended, message=msg)
            if not _notifies(new):
                continue
        followers: list[str] = []
        if msg.thread_id is not None:
            root_id = msg.thread_id
            if root_id not in root_senders:
                # A root stored by this very batch cannot get replies yet.
                root = None if root_id in fresh_ids else (yield from find_message(root_id))
                root_senders[root_id] = valid_root(root, root_id, room_id).sender_id
            yield from execute(
                "UPDATE messages SET reply_count = reply_count + 1, last_reply_at = $2"
                " WHERE id = $1",
                root_id,
                msg.created_at,
            )
            yield from execute(
                "INSERT INTO thread_follows (user_id, root_id) VALUES ($1, $3), ($2, $3)"
                " ON CONFLICT DO NOTHING",
                msg.sender_id,
                root_senders[root_id],
                root_id,
            )
            follows = yield from fetch(
                "SELECT user_id FROM thread_follows WHERE root_id = $1", root_id
            )
            followers = [row[0] for row in follows]
        members = yield from fetch(
            _RECIPIENTS, room_id, new.mentions_room, sorted(new.mentions), followers
        )
        recipients = [
            Recipient(user_id=row[0], username=row[1], notify=NotifyLevel(row[2]))
            for row in members
        ]
        plan = fan_out(new, recipients, followers)
        yield from execute_many(
            "INSERT INTO mentions (user_id, room_id, seq) VALUES ($1, $2, $3)",
            [(user_id, room_id, msg.seq) for user_id in plan.mentioned],
        )
        notified = tuple(
            Notification(
                id=notification_id,
                user_id=user_id,
                room_id=room_id,
                message_id=msg.id,
                seq=msg.seq,
                kind=kind,
                created_at=msg.created_at,
            )
            for notification_id, (user_id, kind) in zip(
                new_ids("n", len(plan.notify)), plan.notify, strict=True
            )
        )
        yield from execute_many(
            "INSERT INTO notifications (id, user_id, room_id, message_id, seq, kind, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            [
                (n.id, n.user_id, n.room_id, n.message_id, n.seq, n.kind.value, n.created_at)
                for n in notified
            ],
        )
        fanned[index] = attrs.evolve(appended, notified=notified)
    return fanned
