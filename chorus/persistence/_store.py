"""`Store`: everything Chorus keeps durably, behind one backend-neutral protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ._model import (
    Appended,
    Edit,
    Membership,
    Message,
    NewMessage,
    Notification,
    NotifyLevel,
    RefreshOutcome,
    RemovedBots,
    Role,
    Room,
    RoomKind,
    SearchHit,
    Session,
    Unread,
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
      user may read, post in or manage a room. The exceptions, checked in
      the transaction and raising `Forbidden`: who may edit, delete or
      react to a message, and `search`, which only ever finds messages of
      rooms the user is a member of.

    Room events: every message, edit, delete and reaction is a row of its
    room's log (`Message`, see `EventKind`) and takes the room's next seq,
    so a client that replays seqs after its last one sees every change.
    Each write of events is idempotent by (sender, client id), across all
    rooms and kinds: a repeated client id stores nothing and returns the
    original event with `duplicate=True`.
    """

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
        """Create an account; `username` is stored lower-case.

        `password_hash` is None for users who sign in through an external
        identity provider. Raises `Conflict` if the username is taken, in any
        letter case. Validating the username's format is the caller's job.
        `bot_run` marks a user of the bot swarm run with that id (see
        `remove_bot_run`).
        """
        ...

    async def get_user(self, user_id: str) -> User | None:
        """The user with this id, or None."""
        ...

    async def get_user_by_username(self, username: str) -> User | None:
        """The user with this username (any letter case), or None."""
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

    async def create_room(
        self, name: str, kind: RoomKind, creator_id: str, now: int, *, bot_run: str | None = None
    ) -> Room:
        """Create a public or private room with `creator_id` as its owner.

        Raises `ValueError` for `RoomKind.DIRECT` (use `direct_room`) and
        `NotFound` if the creator does not exist. `bot_run` marks a room of
        the bot swarm run with that id: `public_rooms` never lists it (see
        `remove_bot_run`).
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

        Rooms of bot swarm runs (`create_room(bot_run=...)`) are not listed.

        Page through all of them by passing the last id of one page as
        `after_id` of the next; a page shorter than `limit` is the last.
        """
        ...

    async def add_member(self, room_id: str, user_id: str, role: Role, now: int) -> Membership:
        """Make the user a member of the room.

        Idempotent: an existing membership is returned unchanged (its role is
        not updated). Raises `NotFound` if the room or user does not exist and
        `Conflict` when adding a user who is not one of a direct (or group)
        room's users.
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

    async def group_room(
        self, creator_id: str, member_ids: Sequence[str], now: int
    ) -> tuple[Room, bool]:
        """The group direct room of `creator_id` and `member_ids`, and whether this call made it.

        A `RoomKind.DIRECT` room whose users are the set of `creator_id` and
        `member_ids` (duplicates ignored), which must have at least three
        users, else `ValueError` (two users: use `direct_room`). The same
        set of users, in any order and by any creator, always gets the same
        room, also under concurrency. Its membership is fixed: `add_member`
        refuses anyone else (`Conflict`). A new room has every user as a
        member with `Role.MEMBER`, is created by `creator_id` and has an
        empty name. Raises `NotFound` if a user does not exist. Size limits
        are the caller's job.
        """
        ...

    async def set_notify_level(self, room_id: str, user_id: str, level: NotifyLevel) -> Membership:
        """Set which of the room's messages notify the member; return the updated membership.

        Applies to messages appended afterwards. Raises `NotFound` if the
        user is not a member of the room.
        """
        ...

    async def set_read_receipts(self, room_id: str, enabled: bool) -> Room:
        """Set `Room.read_receipts`; return the updated room. `NotFound` for an unknown room."""
        ...

    async def advance_read_seq(self, room_id: str, user_id: str, seq: int) -> int:
        """Move the member's read marker forward to `seq`; return the stored marker.

        Never moves it backwards, and never past the room's `last_seq`.
        Raises `NotFound` if the user is not a member of the room.
        """
        ...

    async def unread_counts(self, user_id: str) -> dict[str, Unread]:
        """What the user has not read, for every room they are a member of (zeros included).

        Exact at the moment of the call: `Unread.unread` counts the MESSAGE
        events (thread replies included) after the member's `read_seq` that
        another user sent and that are not deleted; `Unread.mentions` counts
        the messages after `read_seq` that mention the member (by name or
        @room, at send time: edits do not change mentions; deletes remove
        them). Cost per room: one range scan of the (room, seq) index from
        `read_seq`, visiting each later event once, and one range scan of
        the member's mention rows from `read_seq`; rooms read to the end cost
        one index probe each. An unknown user has no rooms: `{}`.
        """
        ...

    # -- messages --------------------------------------------------------------------

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

    async def get_message(self, message_id: str) -> Message | None:
        """The event with this id (of any kind, in its current state), or None."""
        ...

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
        a deleted root keeps its replies but gets no new ones.
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
        """Messages matching `query` in the rooms the user is a member of, newest first.

        Only MESSAGE events that are not deleted, by their current body, in
        rooms where `user_id` is a member at the time of the call; never
        anything else, whatever the filters. Filters: `room_id`, `sender_id`,
        `since` <= `created_at` < `until`. Pages by `offset`, ordered by
        `created_at` then id, both descending.

        Query syntax (untrusted text is safe: it never raises a syntax
        error): every word and "quoted phrase" must occur, as whole words
        in any letter case; a `-` before a word or phrase excludes it. Words
        without a letter or digit are ignored; a query with no word left
        to find matches nothing. Raises `ValueError` for an empty query or
        a negative `limit` or `offset`.
        """
        ...

    # -- notifications ---------------------------------------------------------------

    async def notifications(
        self,
        user_id: str,
        *,
        limit: int,
        before_id: str | None = None,
        unread_only: bool = False,
    ) -> list[Notification]:
        """Up to `limit` of the user's notifications, newest first (by id).

        Page back by passing the last id of one page as `before_id`.
        Notifications of deleted messages are gone. `ValueError` if `limit` < 0.
        """
        ...

    async def mark_notifications_read(
        self, user_id: str, ids: Sequence[str] | None, now: int
    ) -> int:
        """Mark these (None: all) unread notifications of the user read at `now`.

        Returns how many changed; ids of other users' notifications, unknown
        ids and already read ones are skipped.
        """
        ...

    # -- bot swarm runs --------------------------------------------------------------

    async def remove_bot_run(self, run_id: str) -> RemovedBots:
        """Delete every user and room marked with `bot_run=run_id`, and what hangs off them.

        Gone with the users: their sessions and refresh tokens, memberships,
        reactions, thread follows, mentions, notifications, every message
        they sent (in any room) and every room they created (marked or not:
        a room cannot outlive its creator). Gone with the rooms: all their
        messages, memberships, mentions and notifications, whoever made them.
        Nothing else changes; a run id nothing is marked with removes nothing.
        """
        ...

    # -- deployment secrets ----------------------------------------------------------

    async def shared_secret(self, name: str, candidate: bytes, now: int) -> bytes:
        """The secret stored under `name`, storing `candidate` first if there is none.

        Every node on one database gets the same value, even when several
        call this at once for a new name: the first stored value wins and is
        never replaced.
        """
        ...
