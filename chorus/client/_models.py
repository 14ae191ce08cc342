"""Typed objects the SDK returns (extra JSON fields from newer servers are ignored)."""

from __future__ import annotations

from typing import Any, TypeVar

import attrs
import cattrs

from chorus.protocol import Message

T = TypeVar("T")

_converter = cattrs.Converter()


def parse(cls: type[T], data: Any) -> T:
    """Build `cls` from decoded JSON; raises `ValueError` naming what was wrong."""
    try:
        return _converter.structure(data, cls)
    except (cattrs.BaseValidationError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"unexpected {cls.__name__} from the server: {exc!r}") from None


@attrs.frozen(kw_only=True)
class User:
    id: str
    username: str
    display_name: str
    created_at: int


@attrs.frozen(kw_only=True)
class Room:
    """A room; in the caller's room list, `others` names a direct room's other members."""

    id: str
    name: str
    kind: str
    created_by: str
    created_at: int
    last_seq: int
    others: list[User] | None = None
    read_seq: int | None = None
    """In the caller's room list: the caller's read marker."""
    encrypted: bool = False
    """End-to-end encrypted (docs/e2e.md): messages travel as ciphertext only."""

    def label(self) -> str:
        """What to call the room: its name, or a direct room's other members."""
        if self.kind == "direct" and self.others:
            return ", ".join(user.display_name for user in self.others)
        return self.name


@attrs.frozen(kw_only=True)
class Invitation:
    """One of the caller's pending invitations (`HttpApi.my_invites`)."""

    room: Room
    invited_by: str
    created_at: int


@attrs.frozen(kw_only=True)
class Session:
    """A logged-in session: what register, login and refresh return."""

    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str
    user: User


@attrs.frozen(kw_only=True)
class SessionInfo:
    """One live session of the caller, as `HttpApi.sessions` lists it."""

    id: str
    current: bool
    """The session this client is using."""
    user_agent: str
    address: str
    created_at: int
    last_seen_at: int
    expires_at: int
    max_expires_at: int


@attrs.frozen(kw_only=True)
class TwoFactorState:
    """Whether the caller has 2FA on, an enrolment pending, and recovery codes left."""

    enabled: bool
    pending: bool
    recovery_codes_left: int


@attrs.frozen(kw_only=True)
class TwoFactorEnrolment:
    """A pending TOTP secret (shown once): put it in an authenticator app, then confirm."""

    secret: str
    otpauth_uri: str


@attrs.frozen(kw_only=True)
class Unread:
    """Unread messages and mentions of the caller in one room."""

    unread: int
    mentions: int


@attrs.frozen(kw_only=True)
class Notification:
    """An entry of the caller's notification inbox."""

    id: str
    room: str
    message: str
    seq: int
    kind: str
    created_at: int
    read_at: int | None = None


@attrs.frozen(kw_only=True)
class SearchHit:
    """A message that matched a search; `snippet` marks the matches."""

    message: Message
    snippet: str


@attrs.frozen(kw_only=True)
class MessageDetail:
    """One message with its reactions ({emoji: count}) and its thread's summary."""

    message: Message
    reactions: dict[str, int]
    reply_count: int
    last_reply_at: int | None
    deleted_at: int | None


@attrs.frozen(kw_only=True)
class Edit:
    """A message's text before one of its edits."""

    body: str
    written_at: int
    replaced_at: int
    seq: int
