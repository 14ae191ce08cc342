"""The event log: appending messages, reading a room's events and its threads.

Every message, edit, delete and reaction is a row of its room's log (see
`EventKind`); edits, deletes and reactions are written by `changes.py`. The
append itself is each engine's fast path (`sqlite/append.py`,
`postgres/append.py`); what a new message records for others is `fanout.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from .._errors import NotFound
from .._model import AdmittedBatch, Appended, Message, NewMessage
from .._rows import MESSAGE, MESSAGE_WIDTH, check_limit, message
from .._sql import Engine, Tx, fetch, fetch_one, fetch_value
from .files import with_attachments
from .moderation import Standing

Admit = Callable[[str, Standing | None], Exception | None]
"""Whether a user may post, from their standing in the room (None: no such user or room):
the refusal, or None. Called inside the store's call (a worker thread for SQLite), so it
only decides: no I/O, no waiting."""


def admitted(
    batch: Sequence[NewMessage], found: Mapping[str, Standing], admit: Admit
) -> tuple[list[NewMessage], list[Exception | None]]:
    """The messages of `batch` whose senders are admitted, and each message's refusal."""
    verdicts = {sender: admit(sender, found.get(sender)) for sender in {m.sender_id for m in batch}}
    refusals = [verdicts[new.sender_id] for new in batch]
    return [new for new, no in zip(batch, refusals, strict=True) if no is None], refusals


EARLIER_LIMIT = 500
"""Most events `append_admitted` reads back before a batch (`AdmittedBatch.earlier`);
PostgreSQL's append function (migration 15) has the same number."""


def earlier_needed(known: int | None, appended: Sequence[Appended]) -> int | None:
    """The seq of the first new event of `appended` if the room has events after seq
    `known` before it (`earlier` reads them), else None: nothing to read (nearly always
    with one node), decided without running a transaction."""
    first = min((a.message.seq for a in appended if not a.duplicate), default=None)
    if known is None or first is None or first <= known + 1:
        return None
    return first


def earlier(room_id: str, known: int, first: int) -> Tx[list[Message]]:
    """The room's events after seq `known` and before seq `first` (the first new event of
    the batch, from `earlier_needed`), oldest first, at most `EARLIER_LIMIT`: those other
    writers stored in between (see `EventLog.append_admitted`). Run after the append, so
    all of them are committed (the append took the seqs after them under the room's
    lock)."""
    # `page`, but one statement when none of them has files (nearly always): with several
    # nodes, nearly every batch has events before it, and a statement costs the database
    # more than checking for files this way.
    found = yield from fetch(
        f"SELECT {MESSAGE}, EXISTS (SELECT 1 FROM files f"
        "  WHERE f.message_id = msg.id AND f.deleted_at IS NULL)"
        " FROM messages msg WHERE msg.room_id = $1 AND msg.seq > $2 AND msg.seq < $3"
        " ORDER BY msg.seq LIMIT $4",
        room_id,
        known,
        first,
        min(EARLIER_LIMIT, first - known - 1),
    )
    events = [message(row) for row in found]
    if any(row[MESSAGE_WIDTH] for row in found):
        events = yield from with_attachments(events)
    return events


def with_refusals(
    refusals: Sequence[Exception | None], appended: Sequence[Appended]
) -> list[Appended | Exception]:
    """One result per message: its refusal, else the next of `appended` (in order)."""
    stored = iter(appended)
    return [next(stored) if refusal is None else refusal for refusal in refusals]


class EventLog(Protocol):
    """Each room's log of events, and the threads within it."""

    async def append_messages(self, room_id: str, batch: Sequence[NewMessage]) -> list[Appended]:
        """Store a batch of messages in one transaction; one `Appended` per input, in order.

        Each new message gets the room's next seq (contiguous: 1, 2, 3…).
        A `client_id` the sender already used (in any room, for any event
        kind, or earlier in this batch) stores nothing, consumes no seq and
        notifies nobody: its `Appended` carries the original event, in its
        current state, with `duplicate=True`.

        Thread replies (`NewMessage.thread_id`): the root must be a MESSAGE
        of this room that is neither a reply itself nor deleted, else
        `ValueError` and nothing of the batch is stored (callers check it
        with `get_message` first; a concurrent delete can still win). Each
        reply adds one to the root's `reply_count`, sets its
        `last_reply_at` to the reply's `created_at`, and makes the replier
        and the root's sender follow the thread (`followed_threads`).

        Mentions (`NewMessage.mentions`, `mentions_room`) are resolved among
        the room's members at append time: unknown names and non-members are
        ignored, and nobody mentions themself. Each mentioned member counts
        it in `Unread.mentions`. Notifications (at most one per user and
        message, never for the sender, never for members whose level is
        `NotifyLevel.NONE`): MENTION for members mentioned by name, else
        REPLY for the thread's followers who are members, else ROOM_MENTION
        for every member when @room is mentioned. Each `Appended.notified`
        holds the notifications its message created.

        Raises `NotFound` if the room or a sender does not exist; then nothing
        of the batch is stored.
        """
        ...

    async def append_admitted(
        self,
        room_id: str,
        batch: Sequence[NewMessage],
        admit: Admit,
        now: int,
        *,
        known: int | None = None,
    ) -> AdmittedBatch:
        """`append_messages` for the messages whose senders `admit` lets post, deciding on
        their standing in the room (`Moderation.standings` at `now`) read with the append,
        in one call: a room actor's batch costs one round trip to the store, not two.

        `results` has one result per input, in order: an `Appended`, or the refusal
        `admit` returned (nothing of that message is stored). With `known` (the seq up
        to which the caller has the room's events), `earlier` holds the events between
        it and the batch's first new seq, read in the same call (see
        `AdmittedBatch.earlier`); empty without `known` or when nothing new was stored.
        Raises as `append_messages` does.
        """
        ...

    async def get_message(self, message_id: str) -> Message | None:
        """The event with this id (of any kind, in its current state), or None."""
        ...

    async def thread_messages(
        self,
        root_id: str,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int,
    ) -> list[Message]:
        """Up to `limit` replies of the thread rooted at `root_id`, in ascending seq order.

        The root itself is not included. `after` and `before` are room seqs
        and page exactly as in `messages`. Deleted replies appear as
        tombstones. Unknown roots have no replies; `ValueError` if `limit` < 0.
        """
        ...

    async def followed_threads(self, user_id: str, limit: int) -> list[Message]:
        """Up to `limit` roots of the threads the user follows, newest reply first.

        A user follows the threads they replied in and the threads rooted at
        their messages (from the first reply on). Only threads of rooms the
        user is still a member of are listed.
        """
        ...

    async def messages(
        self,
        room_id: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int,
    ) -> list[Message]:
        """Up to `limit` events of the room (all kinds, see `EventKind`), in ascending seq order.

        - neither bound: the latest `limit` messages;
        - `after`: the first `limit` with seq > after (catching up);
        - `before`: the last `limit` with seq < before (scrolling back);
        - both: the first `limit` with after < seq < before (filling a gap).

        An unknown room has no messages. Raises `ValueError` if `limit` < 0.
        """
        ...

    async def last_seq(self, room_id: str) -> int:
        """The seq of the room's newest event, 0 if none; `NotFound` for an unknown room."""
        ...


class EventLogOnSql(Engine):
    """`EventLog` for every engine but `append_messages`, which each engine writes."""

    async def get_message(self, message_id: str) -> Message | None:
        """See `EventLog.get_message`."""
        return await self._read(lambda: find_message(message_id))

    async def thread_messages(
        self,
        root_id: str,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int,
    ) -> list[Message]:
        """See `EventLog.thread_messages`."""
        check_limit(limit)
        return await self._read(lambda: page("msg.thread_id = $1", root_id, before, after, limit))

    async def followed_threads(self, user_id: str, limit: int) -> list[Message]:
        """See `EventLog.followed_threads`."""
        check_limit(limit)
        return await self._read(lambda: followed_threads(user_id, limit))

    async def messages(
        self,
        room_id: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int,
    ) -> list[Message]:
        """See `EventLog.messages`."""
        check_limit(limit)
        return await self._read(lambda: page("msg.room_id = $1", room_id, before, after, limit))

    async def last_seq(self, room_id: str) -> int:
        """See `EventLog.last_seq`."""
        return await self._read(lambda: last_seq(room_id))


def find_message(message_id: str) -> Tx[Message | None]:
    """The event with its attachments (see `files.with_attachments`), or None."""
    row = yield from fetch_one(f"SELECT {MESSAGE} FROM messages msg WHERE msg.id = $1", message_id)
    if row is None:
        return None
    [found] = yield from with_attachments([message(row)])
    return found


def page(
    where: str, key: str, before: int | None, after: int | None, limit: int
) -> Tx[list[Message]]:
    """Events matching `where` (`$1` is `key`), paged as `EventLog.messages` pages."""
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
    found = yield from fetch(
        f"SELECT {MESSAGE} FROM messages msg WHERE {where}"
        f" ORDER BY msg.seq {order} LIMIT ${len(params)}",
        *params,
    )
    events = [message(row) for row in found]
    if newest_first:
        events.reverse()
    return (yield from with_attachments(events))


def followed_threads(user_id: str, limit: int) -> Tx[list[Message]]:
    found = yield from fetch(
        f"SELECT {MESSAGE} FROM thread_follows f"
        " JOIN messages msg ON msg.id = f.root_id"
        " JOIN memberships ms ON ms.room_id = msg.room_id AND ms.user_id = f.user_id"
        " WHERE f.user_id = $1"
        " ORDER BY msg.last_reply_at DESC NULLS LAST, msg.id DESC LIMIT $2",
        user_id,
        limit,
    )
    return (yield from with_attachments([message(row) for row in found]))


def last_seq(room_id: str) -> Tx[int]:
    last = yield from fetch_value("SELECT last_seq FROM rooms WHERE id = $1", room_id)
    if last is None:
        raise NotFound(f"no room {room_id!r}")
    return int(last)
