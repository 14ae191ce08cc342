"""`Store`: everything Chorus keeps durably, behind one backend-neutral protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ._model import (
    Appended,
    Membership,
    Message,
    NewMessage,
    RefreshOutcome,
    Role,
    Room,
    RoomKind,
    Session,
    User,
)


class Store(Protocol):
    """Users, sessions, rooms, memberships and messages.

    Rules every backend keeps (the contract suite in `tests/persistence/`
    runs against each one):

    - Each method is one transaction: it happens entirely or not at all.
    - A method that returns has committed its writes durably; one that
      raises `StoreUnavailable` stored nothing (see there).
    - Missing rows a write depends on raise `NotFound`; uniqueness
      violations raise `Conflict`; other rule breaks by the caller raise
      `ValueError`. `get_*` lookups of missing rows return None, listings
      return an empty list; each method says where it differs.
    - Every method that records a time takes it as `now` (milliseconds since
      the epoch) from the caller.
    - The store checks integrity, not permissions: callers check that a
      user may read, post in or manage a room.
    """

    # -- users and credentials -------------------------------------------------------

    async def create_user(
        self, username: str, display_name: str, password_hash: str | None, now: int
    ) -> User:
        """Create an account; `username` is stored lower-case.

        `password_hash` is None for users who sign in through an external
        identity provider. Raises `Conflict` if the username is taken, in any
        letter case. Validating the username's format is the caller's job.
        """
        ...

    async def get_user(self, user_id: str) -> User | None:
        """The user with this id, or None."""
        ...

    async def get_credentials(self, username: str) -> tuple[User, str] | None:
        """The user with this username (any letter case) and their password hash.

        None when there is no such user or the user has no password.
        """
        ...

    # -- sessions and refresh tokens ------------------------------------------------
    # Tokens are stored only as hashes: callers hash what the client presents.

    async def create_session(
        self, user_id: str, refresh_hash: str, now: int, expires_at: int
    ) -> Session:
        """Open a session whose current refresh token has hash `refresh_hash`.

        Raises `NotFound` if the user does not exist, `Conflict` if the hash
        is already stored.
        """
        ...

    async def get_session(self, session_id: str) -> Session | None:
        """The session with this id (live or not), or None."""
        ...

    async def rotate_refresh(self, presented_hash: str, new_hash: str, now: int) -> RefreshOutcome:
        """Exchange a refresh token for a new one, atomically.

        - `RefreshRotated`: the presented token was the current one of a live
          session; it is now used and `new_hash` is the session's current token.
        - `RefreshReused`: the presented token had already been used (a stolen
          copy, or a client replaying it); the session is now revoked, so every
          token of it, even the newest, is refused from now on.
        - `RefreshInvalid`: unknown token, or its session is expired or
          revoked; nothing changed.

        There is no grace period: a client that retries a rotation whose answer
        it lost finds its session revoked and must sign in again.
        """
        ...

    async def revoke_session(self, session_id: str, now: int) -> bool:
        """Revoke a session; False if it does not exist or was already revoked."""
        ...

    # -- rooms and memberships -------------------------------------------------------

    async def create_room(self, name: str, kind: RoomKind, creator_id: str, now: int) -> Room:
        """Create a public or private room with `creator_id` as its owner.

        Raises `ValueError` for `RoomKind.DIRECT` (use `direct_room`) and
        `NotFound` if the creator does not exist.
        """
        ...

    async def get_room(self, room_id: str) -> Room | None:
        """The room with this id, or None."""
        ...

    async def rooms_of(self, user_id: str) -> list[tuple[Room, Membership]]:
        """Every room the user is a member of, with the membership, oldest joined first."""
        ...

    async def public_rooms(self, limit: int, after_id: str | None = None) -> list[Room]:
        """Up to `limit` public rooms in id order, starting after `after_id`.

        Page through all of them by passing the last id of one page as
        `after_id` of the next; a page shorter than `limit` is the last.
        """
        ...

    async def add_member(self, room_id: str, user_id: str, role: Role, now: int) -> Membership:
        """Make the user a member of the room.

        Idempotent: an existing membership is returned unchanged (its role is
        not updated). Raises `NotFound` if the room or user does not exist and
        `Conflict` when adding a third user to a direct room.
        """
        ...

    async def remove_member(self, room_id: str, user_id: str) -> bool:
        """End a membership; False if there was none."""
        ...

    async def get_membership(self, room_id: str, user_id: str) -> Membership | None:
        """The user's membership of the room, or None."""
        ...

    async def members(self, room_id: str) -> list[Membership]:
        """Every membership of the room, oldest joined first (empty for an unknown room)."""
        ...

    async def direct_room(self, a: str, b: str, now: int) -> tuple[Room, bool]:
        """The direct room between users `a` and `b`, and whether this call created it.

        Symmetric (`(a, b)` and `(b, a)` give the same room) and safe under
        concurrency: two callers never create two rooms for the same pair.
        A new room has both users as members with `Role.MEMBER`, is created by
        `a` and has an empty name. `a == b` gives a room with one member.
        Raises `NotFound` if either user does not exist.
        """
        ...

    async def advance_read_seq(self, room_id: str, user_id: str, seq: int) -> int:
        """Move the member's read marker forward to `seq`; return the stored marker.

        Never moves it backwards, and never past the room's `last_seq`.
        Raises `NotFound` if the user is not a member of the room.
        """
        ...

    # -- messages --------------------------------------------------------------------

    async def append_messages(self, room_id: str, batch: Sequence[NewMessage]) -> list[Appended]:
        """Store a batch of messages in one transaction; one `Appended` per input, in order.

        Each new message gets the room's next seq (contiguous: 1, 2, 3…).
        A `client_id` the sender already used (in any room, or earlier in this
        batch) stores nothing and consumes no seq: its `Appended` carries the
        original message with `duplicate=True`.

        Raises `NotFound` if the room or a sender does not exist; then nothing
        of the batch is stored.
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
        """Up to `limit` messages of the room, in ascending seq order.

        - neither bound: the latest `limit` messages;
        - `after`: the first `limit` with seq > after (catching up);
        - `before`: the last `limit` with seq < before (scrolling back);
        - both: the first `limit` with after < seq < before (filling a gap).

        An unknown room has no messages. Raises `ValueError` if `limit` < 0.
        """
        ...

    async def last_seq(self, room_id: str) -> int:
        """The seq of the room's newest message, 0 if none; `NotFound` for an unknown room."""
        ...

    # -- deployment secrets ----------------------------------------------------------

    async def shared_secret(self, name: str, candidate: bytes, now: int) -> bytes:
        """The secret stored under `name`, storing `candidate` first if there is none.

        Every node on one database gets the same value, even when several
        call this at once for a new name: the first stored value wins and is
        never replaced.
        """
        ...
