"""Request bodies that some routes may stream past the app's 64 KiB limit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from quart_trio.wrappers.request import TrioRequest


class StreamedRequest(TrioRequest):
    """The app's request class: a route of `body_limits` gets its own body limit.

    Quart's body limit (`MAX_CONTENT_LENGTH`) bounds the bytes buffered, not
    yet read. It must be right when the request is built, before the route
    runs: past it Quart drops what arrives (a Content-Length over it drops
    the body from the start) and ends the body early (an upload was stored
    cut short, with no error). So the upload route's limit is chosen here,
    by method and path, not by the route once it runs.
    """

    body_limits: ClassVar[Mapping[tuple[str, str], int]] = {}
    """(method, path) -> most bytes of its body buffered at once."""

    def __init__(self, method: str, scheme: str, path: str, *args: Any, **kwargs: Any) -> None:
        limit = self.body_limits.get((method, path))
        if limit is not None:
            kwargs["max_content_length"] = limit
        super().__init__(method, scheme, path, *args, **kwargs)


def streamed_request(body_limits: Mapping[tuple[str, str], int]) -> type[StreamedRequest]:
    """A request class giving the routes of `body_limits` their own body limits."""
    return type("StreamedRequest", (StreamedRequest,), {"body_limits": dict(body_limits)})
