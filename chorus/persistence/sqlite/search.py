"""Full-text search on SQLite: FTS5 over the current bodies of MESSAGE rows (`messages_fts`).

Appends do not index (that would cost the hot path about two thirds of its
speed): each search first indexes the messages appended since the last one,
in its own write transaction, so a search after many appends takes longer
(roughly a second per 100,000 new messages).
"""

from __future__ import annotations

from typing import Final

from .._model import HIGHLIGHT_END, HIGHLIGHT_START
from .._sql import Tx, execute, fetch_value
from ..roles.search import FullText, search_terms


def fts5_query(query: str) -> str | None:
    """The search `query` (see `search_terms`) as an FTS5 MATCH expression that always parses.

    Every term becomes an FTS5 string (quotes doubled), so FTS5 operators
    and characters such as `*`, `NEAR(`, `^` or `:` are plain text. None
    when there is no term to find: the query matches nothing.
    """
    positive, negative = search_terms(query)
    if not positive:
        return None
    expression = " AND ".join(_fts5_string(term) for term in positive)
    for term in negative:
        expression = f"({expression}) NOT {_fts5_string(term)}"
    return expression


def _fts5_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def index_new_messages() -> Tx[None]:
    """Add the message rows appended since the last search to the search index.

    See migrations/sqlite/0003: rows up to `search_state.indexed_rowid` are
    indexed, later ones are read by one range scan of the rowid.
    """
    indexed = int((yield from fetch_value("SELECT indexed_rowid FROM search_state")))
    newest = yield from fetch_value("SELECT coalesce(max(rowid), 0) FROM messages")
    if newest <= indexed:
        return
    yield from execute(
        "INSERT INTO messages_fts (rowid, body) SELECT rowid, body FROM messages"
        " WHERE rowid > $1 AND rowid <= $2 AND kind = 'message'",
        indexed,
        newest,
    )
    yield from execute("UPDATE search_state SET indexed_rowid = $1", newest)


FTS5: Final = FullText(
    source="messages_fts JOIN messages msg ON msg.rowid = messages_fts.rowid",
    match="messages_fts MATCH $2",
    snippet="snippet(messages_fts, 0, $3, $4, '', 24)",
    snippet_args=(HIGHLIGHT_START, HIGHLIGHT_END),
    query=fts5_query,
    refresh=index_new_messages,
)
