"""Full-text search on PostgreSQL: `websearch_to_tsquery('simple', …)` over the GIN index
`messages_search` (migrations/postgres/0003), kept current by PostgreSQL itself."""

from __future__ import annotations

from typing import Final

from .._model import HIGHLIGHT_END, HIGHLIGHT_START
from ..roles.search import FullText, search_terms

# ts_headline options: the markers of `SearchHit.snippet`, and an excerpt of
# about as many words as SQLite's snippet() gives.
_HEADLINE: Final = (
    f'StartSel="{HIGHLIGHT_START}", StopSel="{HIGHLIGHT_END}", MaxWords=24, MinWords=12'
)


def websearch_query(query: str) -> str | None:
    """The search `query` (see `search_terms`) for PostgreSQL's `websearch_to_tsquery`.

    Every term is quoted (a quote inside a word becomes a space, which the
    parser treats the same), so the words "or" and "and" are plain words,
    as in SQLite's `fts5_query`. None when there is no term to find.
    """
    positive, negative = search_terms(query)
    if not positive:
        return None
    quoted = [f'"{term.replace(chr(34), " ")}"' for term in positive]
    quoted += [f'-"{term.replace(chr(34), " ")}"' for term in negative]
    return " ".join(quoted)


TSVECTOR: Final = FullText(
    source="websearch_to_tsquery('simple', $2) q"
    " JOIN messages msg ON to_tsvector('simple'::regconfig, msg.body) @@ q",
    match=None,
    snippet="ts_headline('simple', msg.body, q, $3)",
    snippet_args=(_HEADLINE,),
    query=websearch_query,
)
