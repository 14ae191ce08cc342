"""Threads: `/api/v1/rooms/{room_id}/messages/{message_id}/thread` and `/api/v1/threads`.

A reply is posted like any message, with `thread` naming the root
(`_messages`). Users follow the threads they started or replied in.
"""

from __future__ import annotations

import attrs

from chorus import chat
from chorus.actors.events import wire_message

from ._input import integer
from ._messages import DEFAULT_HISTORY, HISTORY_LIMIT, MESSAGE, History
from ._output import ThreadsView, ThreadView, message_detail_view
from ._rooms import member_room
from ._routing import API_PREFIX, Call, Reply, RouteTable

table = RouteTable("threads")


@attrs.frozen(kw_only=True)
class ThreadsPage:
    limit: int = integer(*HISTORY_LIMIT, "Most threads returned.", default=DEFAULT_HISTORY)


@table.route(
    "GET",
    f"{MESSAGE}/thread",
    summary="A thread's replies",
    input=History,
    responses={200: ThreadView},
    errors={403: "Not a member of the room.", 404: "No such room, or no such message in it."},
)
async def get_thread(call: Call[History], room_id: str, message_id: str) -> Reply:
    """The root with its reactions and a page of replies, paged like the room history.

    `before` and `after` are room seqs. Replies show their current state
    (deleted ones as tombstones). A reply has no thread of its own: its page is empty.
    """
    store = call.services.store
    room = await member_room(call, room_id)
    root = await chat.room_message(store, room.id, message_id)
    query = call.input
    replies = await store.thread_messages(
        root.id, before=query.before, after=query.after, limit=query.limit
    )
    reactions = await store.reactions([root.id])
    sealed = room.encrypted
    view = ThreadView(
        root=message_detail_view(root, reactions.get(root.id, {}), encrypted=sealed),
        messages=[wire_message(reply, encrypted=sealed) for reply in replies],
    )
    return Reply(200, view)


@table.route(
    "GET",
    f"{API_PREFIX}/threads",
    summary="The threads the caller follows",
    input=ThreadsPage,
    responses={200: ThreadsView},
)
async def list_threads(call: Call[ThreadsPage]) -> Reply:
    """Roots of the threads the caller started or replied in, newest reply first.

    Only threads of rooms the caller is still a member of.
    """
    store = call.services.store
    roots = await store.followed_threads(call.user_id, call.input.limit)
    reactions = await store.reactions([root.id for root in roots])
    sealed = await chat.encrypted_rooms(store, {root.room_id for root in roots})
    threads = [
        message_detail_view(root, reactions.get(root.id, {}), encrypted=root.room_id in sealed)
        for root in roots
    ]
    return Reply(200, ThreadsView(threads=threads))
