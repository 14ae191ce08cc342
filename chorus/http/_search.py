"""`/api/v1/search`: full-text search over the messages the caller may read.

The store only ever searches rooms the caller is a member of, whatever the
filters; naming a room the caller is not in is refused here (403).
"""

from __future__ import annotations

import attrs

from chorus.actors.events import wire_message
from chorus.protocol import MAX_ID_CHARS, MAX_SAFE_INT, ErrorCode
from chorus.text import NOT_BLANK_PATTERN

from ._errors import bad_request
from ._input import integer, text
from ._output import SearchHitView, SearchPageView
from ._rooms import member_room
from ._routing import API_PREFIX, Call, Reply, RouteTable

table = RouteTable("search")

QUERY_CHARS = (1, 500)
SEARCH_LIMIT = (1, 100)
DEFAULT_SEARCH = 20
MAX_OFFSET = 10_000


@attrs.frozen(kw_only=True)
class SearchQuery:
    q: str = text(
        *QUERY_CHARS,
        'Words and "quoted phrases" that must all occur (any letter case); -word excludes.'
        " Not only whitespace.",
        pattern=NOT_BLANK_PATTERN,
    )
    room: str | None = text(1, MAX_ID_CHARS, "Only in this room.", default=None)
    sender: str | None = text(1, MAX_ID_CHARS, "Only messages of this user.", default=None)
    since: int | None = integer(
        0, MAX_SAFE_INT, "Only messages posted at or after this time.", default=None
    )
    until: int | None = integer(
        0, MAX_SAFE_INT, "Only messages posted before this time.", default=None
    )
    limit: int = integer(*SEARCH_LIMIT, "Most hits returned.", default=DEFAULT_SEARCH)
    offset: int = integer(0, MAX_OFFSET, "Hits to skip (the `next_offset` of a page).", default=0)


@table.route(
    "GET",
    f"{API_PREFIX}/search",
    summary="Search messages",
    input=SearchQuery,
    responses={200: SearchPageView},
    errors={403: "`room` names a room the caller is not a member of.", 404: "No such `room`."},
)
async def search(call: Call[SearchQuery]) -> Reply:
    """Messages matching `q` in the caller's rooms, newest first, with highlighted snippets.

    Only current, not deleted messages of rooms the caller is a member of.
    In `snippet`, each matching word is between ⟦ and ⟧ (U+27E6, U+27E7).
    """
    query = call.input
    if query.room is not None:
        await member_room(call, query.room)
    limit = query.limit
    try:
        # One more than asked tells whether another page exists.
        hits = await call.services.store.search(
            call.user_id,
            query.q,
            room_id=query.room,
            sender_id=query.sender,
            since=query.since,
            until=query.until,
            limit=limit + 1,
            offset=query.offset,
        )
    except ValueError as exc:
        raise bad_request(ErrorCode.INVALID_VALUE, f"q: {exc}") from None
    more = len(hits) > limit and query.offset + limit <= MAX_OFFSET
    page = SearchPageView(
        hits=[
            # Search never finds messages of encrypted rooms (the store leaves them out).
            SearchHitView(message=wire_message(hit.message, encrypted=False), snippet=hit.snippet)
            for hit in hits[:limit]
        ],
        next_offset=query.offset + limit if more else None,
    )
    return Reply(200, page)
