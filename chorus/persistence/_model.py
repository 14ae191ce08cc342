"""The rows a `Store` reads and writes, as frozen attrs classes.

IDs are strings: a type prefix, an underscore and 16 url-safe random
characters (`u_…` users, `r_…` rooms, `m_…` messages, `s_…` sessions).
Timestamps are integer milliseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import enum
import secrets
import time
from typing import Literal, TypeAlias

import attrs

IdPrefix: TypeAlias = Literal["u", "r", "m", "s"]
"""The type prefix of an id: user, room, message, session."""


# The 64 url-safe characters in ASCII order, so that ids sort by creation time.
_SORTED_ALPHABET = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


def _encode(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 64)
        chars.append(_SORTED_ALPHABET[digit])
    return "".join(reversed(chars))


def new_id(prefix: IdPrefix) -> str:
    """A fresh id such as `m_P7JdHhE0mnaYS_lQ`: 7 characters of milliseconds, then 54 random bits.

    Ids of one kind sort by creation time (like UUIDv7), so inserts touch the
    end of an index instead of random pages: appends stay fast as tables grow.
    """
    return new_ids(prefix, 1)[0]


def new_ids(prefix: IdPrefix, count: int) -> list[str]:
    """`count` fresh ids, as from `new_id`, in ascending order."""
    stamp = _encode(now_ms(), 7)  # 42 bits of milliseconds: good until the year 2109
    randomness = secrets.randbits(54 * count)
    ids = []
    for _ in range(count):
        randomness, draw = divmod(randomness, 1 << 54)
        ids.append(f"{prefix}_{stamp}{_encode(draw, 9)}")
    ids.sort()
    return ids


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
    """A conversation between two users, created only by `Store.direct_room`."""


class Role(enum.Enum):
    """A member's role in one room."""

    OWNER = "owner"
    MODERATOR = "moderator"
    MEMBER = "member"


@attrs.frozen(kw_only=True)
class User:
    """An account. `username` is lower-case and unique among all users."""

    id: str
    username: str
    display_name: str
    created_at: int


@attrs.frozen(kw_only=True)
class Room:
    """A room; `last_seq` is the seq of its newest message (0 while it has none)."""

    id: str
    name: str
    kind: RoomKind
    created_by: str
    created_at: int
    last_seq: int


@attrs.frozen(kw_only=True)
class Membership:
    """One user's membership of one room; `read_seq` is the last seq they have read."""

    room_id: str
    user_id: str
    role: Role
    joined_at: int
    read_seq: int


@attrs.frozen(kw_only=True)
class Message:
    """A stored message; `seq` is its position in its room (1, 2, 3… without gaps)."""

    id: str
    room_id: str
    seq: int
    sender_id: str
    body: str
    client_id: str
    """Chosen by the sender's client; unique per sender across all rooms."""
    created_at: int
    edited_at: int | None


@attrs.frozen(kw_only=True)
class NewMessage:
    """A message to append; the store assigns its id and seq."""

    sender_id: str
    body: str
    client_id: str
    created_at: int


@attrs.frozen(kw_only=True)
class Appended:
    """The result of appending one `NewMessage`.

    `duplicate` is True when the sender had already used this `client_id`
    (in an earlier call or earlier in the same batch): then `message` is the
    original stored message, unchanged (its body, room and time are the
    original's), and no seq was consumed.
    """

    message: Message
    duplicate: bool


@attrs.frozen(kw_only=True)
class Session:
    """A login session; it is live while `revoked_at` is None and `now < expires_at`."""

    id: str
    user_id: str
    created_at: int
    expires_at: int
    revoked_at: int | None

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
