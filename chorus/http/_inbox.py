"""Read positions, unread counts and the notification inbox.

`POST /api/v1/rooms/{room_id}/read` moves the caller's read marker, as the
gateway's `mark_read` does: in a room that shows read receipts, its members'
connections get a `receipt` event. Notifications are created by the store
when messages mention or reply to a user; the inbox lists and marks them.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from chorus import chat
from chorus.persistence import now_ms
from chorus.protocol import MAX_ID_CHARS, MAX_SAFE_INT

from ._input import flag, integer, text, texts
from ._output import (
    MarkedView,
    NotificationPageView,
    ReadView,
    RoomUnreadView,
    UnreadView,
    notification_view,
)
from ._routing import API_PREFIX, Call, Reply, RouteTable

table = RouteTable("inbox")

PAGE_LIMIT = (1, 100)
DEFAULT_PAGE = 50


@attrs.frozen(kw_only=True)
class ReadUpTo:
    """How far the caller has read the room."""

    seq: int = integer(0, MAX_SAFE_INT, "The seq of the last event read.")


@attrs.frozen(kw_only=True)
class NotificationsPage:
    limit: int = integer(*PAGE_LIMIT, "Most notifications returned.", default=DEFAULT_PAGE)
    before: str | None = text(
        1, MAX_ID_CHARS, "The `next_before` of the previous page.", default=None
    )
    unread_only: bool = flag("Only notifications not yet read.", default=False)


@attrs.frozen(kw_only=True)
class MarkRead:
    """Which notifications to mark read: give `ids`, or `all: true`."""

    EXACTLY_ONE_OF: ClassVar[tuple[str, ...]] = ("ids", "all")

    ids: tuple[str, ...] | None = texts(
        1, PAGE_LIMIT[1], (1, MAX_ID_CHARS), "Notification ids.", default=None
    )
    all: bool = flag("Mark every notification of the caller read.", default=False)


@table.route(
    "POST",
    f"{API_PREFIX}/rooms/{{room_id}}/read",
    summary="Mark a room read",
    input=ReadUpTo,
    responses={200: ReadView},
    errors={403: "Not a member of the room.", 404: "No such room."},
)
async def mark_room_read(call: Call[ReadUpTo], room_id: str) -> Reply:
    """Moves the caller's read marker forward to `seq`: 200 with the stored marker.

    It never moves back nor past the room's last seq. In a room that shows
    read receipts, the room's subscribers get a `receipt` event.
    """
    services = call.services
    stored = await chat.mark_read(
        services.store, services.rooms, room_id, call.user_id, call.input.seq
    )
    return Reply(200, ReadView(read_seq=stored))


@table.route(
    "GET",
    f"{API_PREFIX}/unread",
    summary="Unread and mention counts",
    responses={200: UnreadView},
)
async def unread_counts(call: Call[object]) -> Reply:
    """For every room the caller is a member of: messages unread, and mentions among them."""
    counts = await call.services.store.unread_counts(call.user_id)
    rooms = [
        RoomUnreadView(room=room_id, unread=count.unread, mentions=count.mentions)
        for room_id, count in counts.items()
    ]
    return Reply(200, UnreadView(rooms=rooms))


@table.route(
    "GET",
    f"{API_PREFIX}/notifications",
    summary="The caller's notifications",
    input=NotificationsPage,
    responses={200: NotificationPageView},
)
async def list_notifications(call: Call[NotificationsPage]) -> Reply:
    """The caller's notification inbox, newest first, a page at a time (follow `next_before`)."""
    query = call.input
    limit = query.limit
    # One more than asked tells whether another page exists.
    found = await call.services.store.notifications(
        call.user_id, limit=limit + 1, before_id=query.before, unread_only=query.unread_only
    )
    next_before = found[limit - 1].id if len(found) > limit else None
    page = NotificationPageView(
        notifications=[notification_view(n) for n in found[:limit]], next_before=next_before
    )
    return Reply(200, page)


@table.route(
    "POST",
    f"{API_PREFIX}/notifications/read",
    summary="Mark notifications read",
    input=MarkRead,
    responses={200: MarkedView},
    errors={400: "Invalid body, or not exactly one of `ids` and `all: true`."},
)
async def mark_notifications_read(call: Call[MarkRead]) -> Reply:
    """Marks the listed (or all) unread notifications of the caller read.

    Ids of other users' notifications, unknown ids and read ones are skipped:
    `marked` counts the notifications this call changed.
    """
    marked = await call.services.store.mark_notifications_read(
        call.user_id, call.input.ids, now_ms()
    )
    return Reply(200, MarkedView(marked=marked))
