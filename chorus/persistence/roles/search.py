"""Full-text search of messages, limited to the rooms of the searching user.

The query syntax, the checks and the statement's shape are here, once; each
engine supplies its full-text index as a `FullText` (FTS5 on SQLite,
`tsvector` on PostgreSQL).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import ClassVar, Protocol

import attrs

from .._model import SearchHit
from .._rows import MESSAGE, MESSAGE_WIDTH, check_limit, message
from .._sql import Engine, MakeTx, Tx, fetch
from .files import with_attachments


class Search(Protocol):
    """Finding messages by their words."""

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


@attrs.frozen(kw_only=True)
class FullText:
    """An engine's full-text index, as the parts of the search statement that differ.

    In the statement, `$1` is the searching user, `$2` the engine's query
    (`query(text)`) and `$3`… are `snippet_args`.
    """

    source: str
    """FROM items that name each matching message `msg` (`$2` is the query)."""
    match: str | None
    """A condition on those items (`$2` is the query); None when `source` alone matches."""
    snippet: str
    """The expression of `SearchHit.snippet`."""
    snippet_args: tuple[object, ...] = ()
    query: Callable[[str], str | None]
    """The untrusted text in the engine's query syntax (see `search_terms`); None: no term."""
    refresh: Callable[[], Tx[None]] | None = None
    """Brings the index up to date first, in the search's transaction, which then
    writes (SQLite indexes lazily); None for an index the engine keeps current."""


class SearchOnSql(Engine):
    """`Search` for every engine, over the engine's `_full_text`."""

    _full_text: ClassVar[FullText]

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
        """See `Search.search`."""
        full_text = self._full_text
        hits = search(
            full_text,
            user_id,
            query,
            room_id=room_id,
            sender_id=sender_id,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
        if hits is None:
            return []
        refresh = full_text.refresh
        if refresh is None:
            return await self._read(hits)

        def refreshed() -> Tx[list[SearchHit]]:
            yield from refresh()
            return (yield from hits())

        return await self._write(refreshed)


def search(
    full_text: FullText,
    user_id: str,
    query: str,
    *,
    room_id: str | None,
    sender_id: str | None,
    since: int | None,
    until: int | None,
    limit: int,
    offset: int,
) -> MakeTx[list[SearchHit]] | None:
    """The transaction of `Search.search` on `full_text`; None when it can match nothing.

    Raises `ValueError` for the caller's mistakes (see `Search.search`) at once.
    """
    if not query.strip():
        raise ValueError("the search query is empty")
    check_limit(limit)
    check_limit(offset, "offset")
    terms = full_text.query(query)
    if terms is None:
        return None
    params: list[object] = [user_id, terms, *full_text.snippet_args]
    where = ""
    for column, op, value in (
        ("room_id", "=", room_id),
        ("sender_id", "=", sender_id),
        ("created_at", ">=", since),
        ("created_at", "<", until),
    ):
        if value is not None:
            params.append(value)
            where += f" AND msg.{column} {op} ${len(params)}"
    params += [limit, offset]
    matching = "" if full_text.match is None else f"{full_text.match} AND "
    # The membership join is the permission check.
    sql = (
        f"SELECT {MESSAGE}, {full_text.snippet} FROM {full_text.source}"
        " JOIN memberships ms ON ms.room_id = msg.room_id AND ms.user_id = $1"
        # End-to-end encrypted rooms hold ciphertext only: never searched (docs/e2e.md).
        " JOIN rooms sr ON sr.id = msg.room_id AND NOT sr.encrypted"
        f" WHERE {matching}msg.kind = 'message' AND msg.deleted_at IS NULL{where}"
        " ORDER BY msg.created_at DESC, msg.id DESC"
        f" LIMIT ${len(params) - 1} OFFSET ${len(params)}"
    )

    def hits() -> Tx[list[SearchHit]]:
        found = yield from fetch(sql, *params)
        events = yield from with_attachments([message(row) for row in found])
        return [
            SearchHit(message=event, snippet=row[MESSAGE_WIDTH])
            for event, row in zip(events, found, strict=True)
        ]

    return hits


# A "quoted phrase" (closing quote optional), or a run of non-space characters.
_TERM = re.compile(r'(-?)"([^"]*)"?|(-?)(\S+)')


def search_terms(query: str) -> tuple[list[str], list[str]]:
    """The words and phrases of an untrusted search `query`: (to find, to exclude).

    The syntax both engines share: every word and "quoted phrase" must
    occur (a missing closing quote ends the phrase at the end); a `-` right
    before a word or phrase excludes it. Terms without a letter or digit are
    dropped: they hold no word to find (PostgreSQL ignores them too).
    """
    positive: list[str] = []
    negative: list[str] = []
    # No stored text holds a NUL (PostgreSQL refuses it), so it separates words.
    for found in _TERM.finditer(query.replace("\x00", " ")):
        quoted_minus, phrase, minus, word = found.groups()
        text = phrase if phrase is not None else word
        excluded = bool(quoted_minus if phrase is not None else minus)
        if any(char.isalnum() for char in text):
            (negative if excluded else positive).append(text)
    return positive, negative
