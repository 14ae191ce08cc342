"""The rows a `Store` reads and writes, as frozen attrs classes.

IDs are strings: a type prefix, an underscore and 16 url-safe random
characters (`u_…` users, `r_…` rooms, `m_…` messages and other room events,
`s_…` sessions, `n_…` notifications, `f_…` files, `t_…` to-device messages).
Timestamps are integer milliseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import binascii
import enum
import secrets
import time
from collections.abc import Sequence
from typing import Literal, TypeAlias

import attrs

IdPrefix: TypeAlias = Literal["u", "r", "m", "s", "n", "f", "t"]
"""The type prefix of an id: user, room, message (any room event), session, notification, file,
to-device message."""


# The 64 url-safe characters in ASCII order, so that ids sort by creation time.
_SORTED_ALPHABET = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
_FROM_BASE64 = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    _SORTED_ALPHABET.encode("ascii"),
)
"""Base64's digit for each value 0..63 -> ours for the same value."""
_MILLIS_BITS = 42
_DRAW_BITS = 54


def _encode(millis: int, draw: int) -> str:
    """The 16 characters of an id: 7 digits of `millis` (its low 42 bits) then 9 of `draw`
    (< 2**54), in base 64 over `_SORTED_ALPHABET`, most significant first.

    The 96 bits are 12 bytes, which base64 writes as exactly these 16 digits (6 bits
    each, in order, no padding), in its own alphabet: one C call and a translation
    instead of 16 `divmod`s in Python (~27,000 instructions per message appended).
    """
    value = (millis & ((1 << _MILLIS_BITS) - 1)) << _DRAW_BITS | draw
    digits = binascii.b2a_base64(value.to_bytes(12, "big"), newline=False)
    return digits.translate(_FROM_BASE64).decode("ascii")


def new_id(prefix: IdPrefix) -> str:
    """A fresh id such as `m_P7JdHhE0mnaYS_lQ`: 7 characters of milliseconds, then 54 random bits.

    Ids of one kind sort by creation time (like UUIDv7), so inserts touch the
    end of an index instead of random pages: appends stay fast as tables grow.
    """
    return new_ids(prefix, 1)[0]


_last_id = (0, 0)
"""The (milliseconds, random part) of the newest id this process made."""


def new_ids(prefix: IdPrefix, count: int) -> list[str]:
    """`count` fresh ids, as from `new_id`, in ascending order.

    Within one process ids only grow, even within one millisecond (the
    random part then counts up from the last one, like a monotonic ULID), so
    "newest first by id" is exact for rows made by one node. Ids are names,
    not secrets: nothing is authorized by knowing one.
    """
    global _last_id
    if count <= 0:
        return []
    millis = now_ms()
    last_millis, last_draw = _last_id
    draws: Sequence[int]
    if millis <= last_millis:  # same millisecond (or the clock stepped back): count up
        millis, first = last_millis, last_draw + 1
        if first + count > 1 << _DRAW_BITS:  # the random part ran out: borrow the next ms
            millis, first = millis + 1, 0
        draws = range(first, first + count)
    elif count == 1:  # one message appended: no draws to split and sort
        draws = (secrets.randbits(_DRAW_BITS),)
    else:
        randomness = secrets.randbits(_DRAW_BITS * count)
        split = []
        for _ in range(count):
            randomness, draw = divmod(randomness, 1 << _DRAW_BITS)
            split.append(draw)
        draws = sorted(split)
    _last_id = (millis, draws[-1])
    # 42 bits of milliseconds: good until the year 2109.
    return [f"{prefix}_{_encode(millis, draw)}" for draw in draws]


def now_ms() -> int:
    """The current wall-clock time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


class RoomKind(enum.Enum):
    """Who can find and join a room."""

    PUBLIC = "public"
    """Listed by `Store.public_rooms`; anyone may join."""
    PRIVATE = "private"
    """Not listed; members are added by its owner or moderators."""
    DIRECT = "direct"
    """A conversation of a fixed set of users, created only by `Store.direct_room`
    (two users) or `Store.group_room` (three or more); nobody else can join it."""


class Role(enum.Enum):
    """A member's role in one room."""

    OWNER = "owner"
    MODERATOR = "moderator"
    MEMBER = "member"


class NotifyLevel(enum.Enum):
    """Which messages of a room create notifications for one member."""

    ALL = "all"
    """Mentions, @room and replies in followed threads (the default)."""
    MENTIONS = "mentions"
    """The same notifications as ALL: the levels differ only in what clients do
    with unread messages that are not mentions (e.g. a badge versus a dot)."""
    NONE = "none"
    """No notifications from this room at all (muted)."""


class EventKind(enum.Enum):
    """What a room event (a row of a room's log, with its own seq) is."""

    MESSAGE = "message"
    """A message: the row always shows its current body, edit time and tombstone."""
    EDIT = "edit"
    """`target_id` was edited; `body` is its new text."""
    DELETE = "delete"
    """`target_id` was deleted; `body` is empty."""
    REACTION_ADD = "reaction_add"
    """The sender reacted to `target_id` with the emoji in `body`."""
    REACTION_REMOVE = "reaction_remove"
    """The sender took back their reaction `body` to `target_id`."""


class NotificationKind(enum.Enum):
    """Why a notification was created; one notification per user per message, the
    first reason that applies in this order."""

    MENTION = "mention"
    """The message mentions the user by name."""
    REPLY = "reply"
    """A reply in a thread the user follows."""
    ROOM_MENTION = "room_mention"
    """The message mentions @room."""


@attrs.frozen(kw_only=True)
class User:
    """An account. `username` is lower-case and unique among all users."""

    id: str
    username: str
    display_name: str
    created_at: int


@attrs.frozen(kw_only=True)
class Room:
    """A room; `last_seq` is the seq of its newest event (0 while it has none)."""

    id: str
    name: str
    kind: RoomKind
    created_by: str
    created_at: int
    last_seq: int
    read_receipts: bool = True
    """Whether members may see each other's read markers (callers enforce it)."""
    encrypted: bool = False
    """End-to-end encrypted (direct rooms only): set at creation, never changed. Its
    messages' bodies are Megolm envelopes (JSON text) the server cannot read."""


@attrs.frozen(kw_only=True)
class Membership:
    """One user's membership of one room; `read_seq` is the last seq they have read."""

    room_id: str
    user_id: str
    role: Role
    joined_at: int
    read_seq: int
    notify: NotifyLevel = NotifyLevel.ALL


@attrs.frozen(kw_only=True)
class Message:
    """A stored room event; `seq` is its position in its room (1, 2, 3… without gaps).

    Most events are messages (`kind` MESSAGE); the other kinds record an
    edit, delete or reaction of the message `target_id` (see `EventKind` for
    what `body` holds then). A MESSAGE row always shows the message's current
    state: its latest body and `edited_at`, and once deleted a tombstone
    (`body` "", `deleted_at` and `deleted_by` set). `reply_count` and
    `last_reply_at` describe the thread rooted at this message (replies not
    deleted; time of the newest reply).
    """

    id: str
    room_id: str
    seq: int
    sender_id: str
    body: str
    client_id: str
    """Chosen by the sender's client; unique per sender across all rooms and event kinds."""
    created_at: int
    edited_at: int | None
    kind: EventKind = EventKind.MESSAGE
    target_id: str | None = None
    """The message an EDIT, DELETE or REACTION_* event acts on; None for MESSAGE."""
    thread_id: str | None = None
    """For MESSAGE: the id of the thread's root when this is a thread reply."""
    deleted_at: int | None = None
    deleted_by: str | None = None
    reply_count: int = 0
    last_reply_at: int | None = None
    attachments: tuple[StoredFile, ...] = ()
    """For MESSAGE: the files attached to it, in order (filled where the store says so)."""


@attrs.frozen(kw_only=True)
class NewMessage:
    """A message to append; the store assigns its id and seq."""

    sender_id: str
    body: str
    client_id: str
    created_at: int
    thread_id: str | None = None
    """Make it a reply in the thread of this root message (see `Store.append_messages`)."""
    mentions: frozenset[str] = frozenset()
    """Lower-case usernames the body mentions, as parsed by the caller."""
    mentions_room: bool = False
    """True when the body mentions @room."""
    attachments: tuple[str, ...] = ()
    """Ids of the sender's READY files to attach, in order (see `Store.append_messages`)."""


@attrs.frozen(kw_only=True)
class Appended:
    """The result of appending one `NewMessage`.

    `duplicate` is True when the sender had already used this `client_id`
    (in an earlier call or earlier in the same batch): then `message` is the
    original stored event in its current state (its body, room and time are
    the original's), no seq was consumed and nothing was notified.
    Single-event writes (`Store.edit_message` and the like) answer the same way.

    `notified` holds the notifications this call created for this message,
    so the caller can push them to their users live.
    """

    message: Message
    duplicate: bool
    notified: tuple[Notification, ...] = ()


@attrs.frozen
class AdmittedBatch:
    """The result of `Store.append_admitted`."""

    results: list[Appended | Exception]
    """One per message of the batch, in order: its `Appended`, or its refusal."""
    earlier: list[Message]
    """The room's events after the caller's `known` seq that came before the batch's
    first new one (other writers stored them meanwhile), oldest first, at most
    `EARLIER_LIMIT` of them (the oldest): read in the same call, so a caller that
    delivers the room's events in order need not read them separately. Fewer (none)
    if that read failed after the batch was stored: the caller reads the rest itself."""


@attrs.frozen(kw_only=True)
class Notification:
    """An entry of a user's notification inbox; unread while `read_at` is None."""

    id: str
    user_id: str
    room_id: str
    message_id: str
    seq: int
    """The message's seq in its room."""
    kind: NotificationKind
    created_at: int
    """The message's `created_at`."""
    read_at: int | None = None


@attrs.frozen(kw_only=True)
class Edit:
    """One earlier version of an edited message."""

    body: str
    """The text the message had before this edit."""
    written_at: int
    """When that text was written (the message's creation or an earlier edit)."""
    replaced_at: int
    """When this edit replaced it."""
    seq: int
    """The seq of the EDIT event that replaced it."""


@attrs.frozen(kw_only=True)
class Unread:
    """What a member has not read in one room (events after their `read_seq`)."""

    unread: int
    """Messages (thread replies included) not sent by the member and not deleted."""
    mentions: int
    """Messages that mention the member, by name or @room (and are not deleted)."""


@attrs.frozen(kw_only=True)
class RemovedBots:
    """What `Store.remove_bot_run` deleted."""

    users: int
    rooms: int


@attrs.frozen(kw_only=True)
class SearchHit:
    """A message found by `Store.search`, with the matching part of its body.

    `snippet` is an excerpt of the current body where each matching word is
    wrapped in `HIGHLIGHT_START` and `HIGHLIGHT_END`. A long body is cut
    to some words around the first matches (at word boundaries, with no
    mark where it is cut); the exact cut differs between backends.
    """

    message: Message
    snippet: str


HIGHLIGHT_START = "\u27e6"
"""Opens a highlighted match in `SearchHit.snippet` ("⟦", rare in chat text)."""
HIGHLIGHT_END = "\u27e7"
"""Closes a highlighted match in `SearchHit.snippet` ("⟧")."""


@attrs.frozen(kw_only=True)
class Session:
    """A login session; it is live while `revoked_at` is None and `now < expires_at`.

    `expires_at` is the idle deadline (each refresh pushes it forward), never
    past `max_expires_at`, the absolute one fixed when the session opened.
    """

    id: str
    user_id: str
    created_at: int
    expires_at: int
    revoked_at: int | None
    max_expires_at: int = attrs.field(
        default=attrs.Factory(lambda self: self.expires_at, takes_self=True)
    )
    last_seen_at: int = attrs.field(
        default=attrs.Factory(lambda self: self.created_at, takes_self=True)
    )
    """The last login or refresh of the session."""
    user_agent: str = ""
    """The `User-Agent` of the client that opened the session (cut short by the caller)."""
    address: str = ""
    """The client address that opened the session (behind trusted proxies, the forwarded one)."""

    def is_live(self, now: int) -> bool:
        """True when the session is neither revoked nor expired at `now`."""
        return self.revoked_at is None and now < self.expires_at


@attrs.frozen(kw_only=True)
class RefreshRotated:
    """The presented refresh token was current: it is now used and the new one is current."""

    session: Session


@attrs.frozen(kw_only=True)
class RefreshReused:
    """The presented token had already been used: it leaked, so `session` is now revoked."""

    session: Session


@attrs.frozen(kw_only=True)
class RefreshInvalid:
    """Nothing changed: the token is unknown, or its session is expired or revoked."""

    reason: Literal["unknown", "expired", "revoked"]


RefreshOutcome: TypeAlias = RefreshRotated | RefreshReused | RefreshInvalid
"""What `Store.rotate_refresh` did; match on the class."""


class FileState(enum.Enum):
    """Where an uploaded file is in the pipeline; only READY files are ever delivered.

    PENDING (stored, not yet checked) → SCANNING (type checked, being scanned
    and processed: quarantined) → READY or REJECTED; PENDING may also go
    straight to REJECTED (a bad type). READY and REJECTED are final.
    """

    PENDING = "pending"
    SCANNING = "scanning"
    READY = "ready"
    REJECTED = "rejected"


FILE_MOVES: frozenset[tuple[FileState, FileState]] = frozenset(
    {
        (FileState.PENDING, FileState.SCANNING),
        (FileState.PENDING, FileState.REJECTED),
        (FileState.SCANNING, FileState.READY),
        (FileState.SCANNING, FileState.REJECTED),
    }
)
"""The transitions a file may make (`Store.move_file` refuses any other)."""


@attrs.frozen(kw_only=True)
class FileVariant:
    """A rendition of an image file made by the pipeline (a thumbnail), stored beside it."""

    name: str
    """Its name in storage keys and URLs, e.g. "320" for the thumbnail that fits 320 px."""
    width: int
    height: int
    size: int
    content_type: str


@attrs.frozen(kw_only=True)
class NewFile:
    """An upload whose bytes have arrived (spooled by `node`); the store assigns its id."""

    owner_id: str
    name: str
    """The display name (already sanitised): metadata only, never part of a storage key."""
    declared_type: str
    """The Content-Type the client declared."""
    size: int
    sha256: str
    node: str
    """The node whose spool holds the bytes until the pipeline has stored them."""
    created_at: int
    encrypted: bool = False
    """Declared end-to-end encrypted by its uploader: opaque bytes (see `StoredFile`)."""


@attrs.frozen(kw_only=True)
class FileChecks:
    """What the pipeline found out about a file that passed: recorded as it becomes READY."""

    content_type: str
    """Sniffed from the bytes (and matching what was declared)."""
    scan: Literal["clean", "unscanned"]
    """"unscanned" when the node has no scanner (`scanner = none`)."""
    width: int | None = None
    height: int | None = None
    variants: tuple[FileVariant, ...] = ()


@attrs.frozen(kw_only=True)
class StoredFile:
    """An uploaded file's row: its metadata, its state, and the message it is attached to."""

    id: str
    owner_id: str
    name: str
    declared_type: str
    content_type: str | None
    """Sniffed from the bytes; None until the type check has run."""
    size: int
    sha256: str
    state: FileState
    reason: str | None
    """Why it was rejected (a stable code such as "infected"); None otherwise."""
    scan: Literal["clean", "unscanned"] | None
    width: int | None
    height: int | None
    variants: tuple[FileVariant, ...]
    node: str
    room_id: str | None
    """Set, with `message_id` and `position`, once a message attaches it (only once)."""
    message_id: str | None
    position: int | None
    """Its place among the message's attachments, from 0."""
    created_at: int
    updated_at: int
    deleted_at: int | None
    encrypted: bool = False
    """Declared end-to-end encrypted: stored as it came, never type-checked, processed or
    scanned (they would see ciphertext); attachable only in encrypted rooms."""
