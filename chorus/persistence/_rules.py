"""Backend-neutral rules of rich messaging: whom a new message notifies, group keys, search syntax.

Both backends load the facts (members, thread followers) in their own SQL
and apply these rules, so the two cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence

import attrs

from ._model import EventKind, Message, NewMessage, NotificationKind, NotifyLevel


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


def needs_fan_out(new: NewMessage) -> bool:
    """True when appending `new` does more than insert its row (the slow path)."""
    return new.thread_id is not None or bool(new.mentions) or new.mentions_room


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


def group_key(user_ids: Iterable[str]) -> str:
    """The `rooms.direct_key` of the direct room of exactly these users.

    The sorted distinct ids joined by ":" (ids never contain ":"), so for two
    users it is the key `direct_room` has always used.
    """
    return ":".join(sorted(set(user_ids)))


# A "quoted phrase" (closing quote optional), or a run of non-space characters.
_TERM = re.compile(r'(-?)"([^"]*)"?|(-?)(\S+)')


def check_query(query: str) -> None:
    """Raise `ValueError` for a search query that is empty or only spaces."""
    if not query.strip():
        raise ValueError("the search query is empty")


def search_terms(query: str) -> tuple[list[str], list[str]]:
    """The words and phrases of an untrusted search `query`: (to find, to exclude).

    The syntax both backends share: every word and "quoted phrase" must
    occur (a missing closing quote ends the phrase at the end); a `-` right
    before a word or phrase excludes it. Terms without a letter or digit are
    dropped: they hold no word to find (PostgreSQL ignores them too).
    """
    positive: list[str] = []
    negative: list[str] = []
    # No stored text holds a NUL (PostgreSQL refuses it), so it separates words.
    for match in _TERM.finditer(query.replace("\x00", " ")):
        quoted_minus, phrase, minus, word = match.groups()
        text = phrase if phrase is not None else word
        excluded = bool(quoted_minus if phrase is not None else minus)
        if any(char.isalnum() for char in text):
            (negative if excluded else positive).append(text)
    return positive, negative


def fts5_query(query: str) -> str | None:
    """The search `query` (see `search_terms`) as an FTS5 MATCH expression that always parses.

    Every term becomes an FTS5 string (quotes doubled), so FTS5 operators
    and characters such as `*`, `NEAR(`, `^` or `:` are plain text. None
    when there is no term to find: the query matches nothing.
    """
    positive, negative = search_terms(query)
    if not positive:
        return None
    expression = " AND ".join(_fts5_string(term) for term in positive)
    for term in negative:
        expression = f"({expression}) NOT {_fts5_string(term)}"
    return expression


def _fts5_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def websearch_query(query: str) -> str | None:
    """The search `query` (see `search_terms`) for PostgreSQL's `websearch_to_tsquery`.

    Every term is quoted (a quote inside a word becomes a space, which the
    parser treats the same), so the words "or" and "and" are plain words,
    as in `fts5_query`. None when there is no term to find.
    """
    positive, negative = search_terms(query)
    if not positive:
        return None
    quoted = [f'"{term.replace(chr(34), " ")}"' for term in positive]
    quoted += [f'-"{term.replace(chr(34), " ")}"' for term in negative]
    return " ".join(quoted)
