"""Request bodies that one route may read past the app's 64 KiB limit, as a stream."""

from __future__ import annotations

from quart_trio.wrappers.request import TrioBody, TrioRequest
from werkzeug.exceptions import RequestEntityTooLarge


class StreamedBody(TrioBody):
    """A request body whose size limit an upload route sets before reading it."""

    def set_limit(self, limit: int) -> None:
        """Allow up to `limit` bytes buffered (not read yet) instead of the app's limit.

        Quart refuses a body at construction by its Content-Length against
        `MAX_CONTENT_LENGTH` (64 KiB), and later checks only what is buffered,
        never the total: the reader counts the total itself. Past `limit`
        buffered bytes Quart stops buffering and the next read raises 413.
        """
        self._max_content_length = limit
        if isinstance(self._must_raise, RequestEntityTooLarge):
            self._must_raise = None


class StreamedRequest(TrioRequest):
    """The app's request class: its body is a `StreamedBody`."""

    body_class = StreamedBody
