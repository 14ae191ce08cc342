"""Who may do what: the one permission table (action by standing: allowed or not).

Every decision about roles is `allowed(action, who)`: the HTTP routes
(`chorus.http`), the WebSocket frames (`chorus.actors`) and the store's
own checks (who may delete a message) ask this module and nothing else.
What stays elsewhere is not about roles: a room's kind (direct rooms have
fixed members, only public rooms can be joined), integrity (the owner is
always a member), and `outranks`, which orders standings for actions on
another member.

A caller's `Who` toward a room combines their server role with their
standing in the room (`standing`): server admins and moderators act in
every room as such, whatever their membership; otherwise a ban, then a
mute, then the room role decide. `docs/permissions.md` shows `TABLE` as a
table; `tests/test_permissions.py` checks that the two agree and that every
HTTP route and WebSocket frame names its action (`ROUTE_ACTIONS`,
`FRAME_ACTIONS`).

This module imports nothing of Chorus, so the store may use it too.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class Who(enum.Enum):
    """A caller's standing toward one room, weakest first (see `standing`)."""

    OUTSIDER = "outsider"
    """Signed in, not a member of the room (and not banned from it)."""
    BANNED = "banned"
    MUTED = "muted"
    """A member who may read but not write, until unmuted or the mute expires."""
    MEMBER = "member"
    MODERATOR = "moderator"
    """The room's moderator."""
    OWNER = "owner"
    SERVER_MODERATOR = "server_moderator"
    ADMIN = "admin"
    """A server admin."""

    # Members are singletons compared by identity: hashed by identity too, in C. `Enum`'s
    # own hash (of the name, in Python) cost ~1,000 instructions per lookup in `TABLE`,
    # and every batch of posts looks up its senders' (`allowed`).
    __hash__ = object.__hash__


class Action(enum.Enum):
    """What the table decides. Room actions are about one room; `ADMIN` is server-wide."""

    __hash__ = object.__hash__  # as `Who`'s: `TABLE[action]` hashes it

    VIEW = "view"
    """See a room's members, history, threads and files; subscribe to it."""
    JOIN = "join"
    """Join a public room (private rooms: `INVITE`)."""
    LEAVE = "leave"
    """Leave, set one's own read marker and notification level."""
    SEND = "send"
    """Post a message, edit one's own, react, type."""
    SEND_LOCKED = "send_locked"
    """`SEND` in a locked room."""
    DELETE_ANY = "delete_any"
    """Delete anyone's message (a sender may always delete their own)."""
    INVITE = "invite"
    """Invite a user to a private room, list and revoke pending invitations, or add a user
    directly."""
    KICK = "kick"
    """Remove a member of a lower standing (see `outranks`)."""
    BAN = "ban"
    """Ban or unban a user of a lower standing."""
    MUTE = "mute"
    """Mute or unmute a member of a lower standing."""
    LOCK = "lock"
    """Lock or unlock the room."""
    SETTINGS = "settings"
    """Change the room's settings (read receipts)."""
    SET_ROLE = "set_role"
    """Make a member a moderator, or a moderator a member."""
    TRANSFER = "transfer"
    """Give the room's ownership to another member."""
    ADMIN = "admin"
    """The admin API: users, rooms, server roles and run-time settings of the whole server."""


_EVERYONE = frozenset(Who)
_READERS = frozenset({Who.MUTED, Who.MEMBER, Who.MODERATOR, Who.OWNER})
_WRITERS = frozenset({Who.MEMBER, Who.MODERATOR, Who.OWNER})
_MODERATORS = frozenset({Who.MODERATOR, Who.OWNER, Who.SERVER_MODERATOR, Who.ADMIN})
_STAFF = frozenset({Who.SERVER_MODERATOR, Who.ADMIN})

TABLE: Mapping[Action, frozenset[Who]] = {
    Action.VIEW: _READERS | _STAFF,
    # Reading messages, LEAVE and SEND also need a membership: staff read and write in the
    # rooms they are members of (with their server standing); they see any room's details
    # and moderate any room.
    Action.JOIN: _EVERYONE - {Who.BANNED},
    Action.LEAVE: _READERS | _STAFF,
    Action.SEND: _WRITERS | _STAFF,
    Action.SEND_LOCKED: _MODERATORS,
    Action.DELETE_ANY: _MODERATORS,
    Action.INVITE: _MODERATORS,
    Action.KICK: _MODERATORS,
    Action.BAN: _MODERATORS,
    Action.MUTE: _MODERATORS,
    Action.LOCK: _MODERATORS,
    Action.SETTINGS: frozenset({Who.OWNER, Who.ADMIN}),
    Action.SET_ROLE: frozenset({Who.OWNER, Who.ADMIN}),
    Action.TRANSFER: frozenset({Who.OWNER, Who.ADMIN}),
    Action.ADMIN: frozenset({Who.ADMIN}),
}
"""Who may do each action: the whole of the rules about roles."""

_RANK: Mapping[Who, int] = {
    Who.OUTSIDER: 0,
    Who.BANNED: 0,
    Who.MUTED: 0,
    Who.MEMBER: 0,
    Who.MODERATOR: 1,
    Who.OWNER: 2,
    Who.SERVER_MODERATOR: 3,
    Who.ADMIN: 4,
}


ANYONE = "anyone"
"""A route that needs no sign-in."""
SIGNED_IN = "signed_in"
"""A route any signed-in user may call: about themselves, or public data."""

Entry = Action | str

ROUTE_ACTIONS: Mapping[str, Entry] = {
    # accounts, sessions, two-factor: about the caller only
    "register": ANYONE,
    "login": ANYONE,
    "exchange": ANYONE,
    "refresh": ANYONE,
    "login_second_step": ANYONE,
    "logout": SIGNED_IN,
    "two_factor_state": SIGNED_IN,
    "enrol_two_factor": SIGNED_IN,
    "confirm_two_factor": SIGNED_IN,
    "disable_two_factor": SIGNED_IN,
    "list_sessions": SIGNED_IN,
    "revoke_session": SIGNED_IN,
    "revoke_other_sessions": SIGNED_IN,
    "change_password": SIGNED_IN,
    "get_me": SIGNED_IN,
    "get_user": SIGNED_IN,
    "get_user_by_name": SIGNED_IN,
    "update_me": SIGNED_IN,
    "set_avatar": SIGNED_IN,
    "remove_avatar": SIGNED_IN,
    "get_profile": SIGNED_IN,
    "list_blocks": SIGNED_IN,
    "block": SIGNED_IN,
    "unblock": SIGNED_IN,
    # rooms
    "create_room": SIGNED_IN,
    "list_my_rooms": SIGNED_IN,
    "list_public_rooms": SIGNED_IN,
    "open_direct_room": SIGNED_IN,
    "get_room": Action.VIEW,
    "update_room": Action.SETTINGS,
    "set_notify_level": Action.LEAVE,
    "join_room": Action.JOIN,
    "invite_member": Action.INVITE,
    "create_invite": Action.INVITE,
    "list_invites": Action.INVITE,
    "revoke_invite": Action.INVITE,
    "list_my_invites": SIGNED_IN,
    "accept_invite": SIGNED_IN,
    "decline_invite": SIGNED_IN,
    "remove_member": Action.KICK,
    "ban": Action.BAN,
    "list_bans": Action.BAN,
    "unban": Action.BAN,
    "mute": Action.MUTE,
    "unmute": Action.MUTE,
    "lock": Action.LOCK,
    "set_role": Action.SET_ROLE,
    "transfer": Action.TRANSFER,
    # messages
    "list_messages": Action.VIEW,
    "post_message": Action.SEND,
    "get_message": Action.VIEW,
    "edit_message": Action.SEND,
    "delete_message": Action.DELETE_ANY,
    "message_history": Action.VIEW,
    "add_reaction": Action.SEND,
    "remove_reaction": Action.SEND,
    "list_reactors": Action.VIEW,
    "get_thread": Action.VIEW,
    "mark_room_read": Action.LEAVE,
    # across the caller's rooms (each answer holds only rooms they are a member of)
    "list_threads": SIGNED_IN,
    "unread_counts": SIGNED_IN,
    "list_notifications": SIGNED_IN,
    "mark_notifications_read": SIGNED_IN,
    "search": SIGNED_IN,
    # end-to-end encryption keys and to-device messages: public keys are readable by anyone
    # signed in; a device's keys and queue only from the session that registered it
    "register_device": SIGNED_IN,
    "list_my_devices": SIGNED_IN,
    "delete_device": SIGNED_IN,
    "list_user_devices": SIGNED_IN,
    "query_keys": SIGNED_IN,
    "upload_keys": SIGNED_IN,
    "key_counts": SIGNED_IN,
    "claim_keys": SIGNED_IN,
    "send_to_device": SIGNED_IN,
    "list_to_device": SIGNED_IN,
    "ack_to_device": SIGNED_IN,
    # files: their own rules (the uploader, or members of a room a file is attached in)
    "upload_file": SIGNED_IN,
    "get_file": SIGNED_IN,
    "delete_file": SIGNED_IN,
    "get_file_url": SIGNED_IN,
    "fetch_file": ANYONE,
    # operations
    "get_gateway": ANYONE,
    "healthz": ANYONE,
    "readyz": ANYONE,
    "metrics": ANYONE,
    "openapi": ANYONE,
    # the admin API
    "admin_list_users": Action.ADMIN,
    "admin_set_role": Action.ADMIN,
    "admin_revoke_sessions": Action.ADMIN,
    "admin_reset_two_factor": Action.ADMIN,
    "admin_deactivate": Action.ADMIN,
    "admin_reactivate": Action.ADMIN,
    "admin_list_rooms": Action.ADMIN,
    "admin_transfer_room": Action.ADMIN,
    "admin_delete_room": Action.ADMIN,
    "admin_audit": Action.ADMIN,
    "admin_settings": Action.ADMIN,
    "admin_update_settings": Action.ADMIN,
}
"""Each HTTP route (by operation id) and the action it asks the table about. `remove_member`
is `LEAVE` when callers remove themselves; `delete_message` is allowed to the sender too;
`get_room` of a public room to anyone signed in."""

FRAME_ACTIONS: Mapping[str, Entry] = {
    "hello": ANYONE,
    "ping": SIGNED_IN,
    "presence": SIGNED_IN,
    "leave": SIGNED_IN,
    "join": Action.VIEW,
    "resume": Action.VIEW,
    "typing": Action.VIEW,
    "send": Action.SEND,
    "edit": Action.SEND,
    "react": Action.SEND,
    "delete": Action.DELETE_ANY,
    "mark_read": Action.LEAVE,
    "to_device_ack": SIGNED_IN,
}
"""Each WebSocket client frame type and the action it asks about (`delete`: or the sender)."""


def allowed(action: Action, who: Who) -> bool:
    """Whether a caller of standing `who` may do `action` (the table's cell)."""
    return who in TABLE[action]


def outranks(actor: Who, target: Who) -> bool:
    """Whether `actor` may kick, ban or mute `target`: strictly higher in the room.

    Members (muted or not) rank alike, below moderators, below the owner,
    below server moderators, below admins; nobody outranks an admin. The
    owner is never removed, whoever asks (the store keeps one owner per room).
    """
    return _RANK[actor] > _RANK[target]


def standing(
    server_role: str,
    room_role: str | None,
    *,
    muted: bool = False,
    banned: bool = False,
) -> Who:
    """The `Who` of a user: `server_role` is "admin", "moderator" or "member";
    `room_role` is their room role ("owner", "moderator", "member") or None for a
    non-member; `muted` only counts for a member, `banned` only for a non-member."""
    if server_role == "admin":
        return Who.ADMIN
    if server_role == "moderator":
        return Who.SERVER_MODERATOR
    if room_role is None:
        return Who.BANNED if banned else Who.OUTSIDER
    if room_role == "owner":
        return Who.OWNER
    if room_role == "moderator":
        return Who.MODERATOR
    return Who.MUTED if muted else Who.MEMBER


def markdown_table() -> str:
    """`TABLE` as the Markdown table of docs/permissions.md (a test keeps them equal)."""
    header = "| action | " + " | ".join(w.value for w in Who) + " |"
    rule = "|---|" + "---|" * len(Who)
    rows = [
        f"| `{action.value}` | "
        + " | ".join("yes" if allowed(action, w) else "no" for w in Who)
        + " |"
        for action in Action
    ]
    return "\n".join([header, rule, *rows])


def markdown_entries(entries: Mapping[str, Entry]) -> str:
    """`ROUTE_ACTIONS` or `FRAME_ACTIONS` as a Markdown list of docs/permissions.md."""
    return "\n".join(
        f"- `{name}`: " + (f"`{e.value}`" if isinstance(e, Action) else e)
        for name, e in entries.items()
    )
