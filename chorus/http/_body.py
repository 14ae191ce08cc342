"""Request bodies that one route may read past the app's 64 KiB limit, as a stream.

Quart's ASGI receiver appends every chunk hypercorn hands it to the request
body at once, with no backpressure: a route that reads slower than the
client sends (an upload written to disk) let the body buffer grow to the
whole upload. And a body refused at construction (Content-Length over the
app's 64 KiB) drops what arrives until the route lifts the limit, so the
first chunks of an upload were lost (`test_a_large_upload_is_stored_whole`).
Here the receiver waits instead: it takes the next chunk from hypercorn only
when the body has room, so hypercorn's bounded queue fills, it stops reading
the socket, and TCP slows the client down.
"""

from __future__ import annotations

import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, ASGISendEvent
from quart.wrappers import Request
from quart_trio.asgi import TrioASGIHTTPConnection
from quart_trio.wrappers.request import TrioBody, TrioRequest
from werkzeug.exceptions import RequestEntityTooLarge

STREAM_BUFFER_BYTES = 1024 * 1024
"""Most bytes a streamed body holds unread (plus one chunk, at most 64 KiB, from hypercorn)."""


class StreamedBody(TrioBody):
    """A request body that is either read whole (the app's limit) or streamed by its route.

    Until the route calls `set_limit`, it behaves as Quart's body, except that
    a body already refused (413) takes nothing more in: the receiver waits,
    so nothing is dropped and nothing piles up. After `set_limit` it holds at
    most `STREAM_BUFFER_BYTES` unread.
    """

    def __init__(self, expected_content_length: int | None, max_content_length: int | None):
        super().__init__(expected_content_length, max_content_length)
        self._streamed = False
        self._ended = False
        self._dropping = False
        self._room = trio.lowlevel.ParkingLot()

    def set_limit(self, limit: int) -> None:
        """Stream this body: up to `limit` bytes in all (the reader counts them), held
        `STREAM_BUFFER_BYTES` at a time.

        Lifts the 413 that Quart decided at construction from Content-Length
        against `MAX_CONTENT_LENGTH` (64 KiB): the route has checked the
        length against `limit` itself.
        """
        self._max_content_length = limit
        self._streamed = True
        if isinstance(self._must_raise, RequestEntityTooLarge):
            self._must_raise = None
            if not self._ended:
                # Quart marked the body complete when it passed 64 KiB (so that an
                # awaiting reader wakes up to the 413): it is not, the reader would
                # stop at the first moment it caught up with the client
                # (`test_a_chunked_upload_is_not_cut_where_the_reader_caught_up`).
                self._complete.clear()
        self._room.unpark_all()

    def end(self) -> None:
        """The client sent the body's last chunk."""
        self._ended = True
        self.set_complete()

    async def __anext__(self) -> bytes:
        try:
            return await super().__anext__()
        finally:
            self._room.unpark_all()

    def append(self, data: bytes) -> None:
        """Buffer a chunk from the client (dropped once the response is on its way)."""
        if not self._dropping:
            super().append(data)

    def drop_unread(self) -> None:
        """The answer is being sent: what is left of the body is read and dropped.

        Hypercorn puts `http.disconnect` in its queue of request events when the
        response ends, and waits for room there: a receiver still waiting for
        the route to read would never make it, and the response would never end.
        """
        self._dropping = True
        self._data.clear()
        self._room.unpark_all()

    def has_room(self) -> bool:
        """Whether the receiver may take the next chunk in now."""
        if self._dropping:
            return True
        if self._must_raise is not None:
            return False  # refused: a chunk would be dropped (or lifted by set_limit later)
        return not self._streamed or len(self._data) < STREAM_BUFFER_BYTES

    async def wait_for_room(self) -> None:
        """Return once `has_room()`; while the route has not read enough, wait."""
        while not self.has_room():
            await self._room.park()


class StreamedRequest(TrioRequest):
    """The app's request class: its body is a `StreamedBody`."""

    body_class = StreamedBody


class StreamedHttpConnection(TrioASGIHTTPConnection):
    """Quart-trio's HTTP connection whose receiver waits for room in the body.

    Waiting lets hypercorn's queue of request events (10) fill up, and
    hypercorn puts one last `http.disconnect` there, waiting for room, when
    the response ends (`test_a_streamed_body_over_the_limit_is_refused_while_it_arrives`
    hung on a loaded machine). So from the response's first message on the
    receiver drops what is left of the body instead of waiting; and if the
    app returns before that event was taken (it failed), a task beside it
    empties the queue until that event.
    """

    async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        self._disconnected = False
        try:
            await super().__call__(receive, send)
        finally:
            if not self._disconnected:
                # The connection's own nursery (hypercorn's, whose task this is): the
                # drain ends with the connection at the latest.
                nursery = trio.lowlevel.current_task().parent_nursery
                if nursery is not None:
                    nursery.start_soon(_drain, receive)

    async def handle_request(  # type: ignore[override]
        self, nursery: trio.Nursery, request: Request, send: ASGISendCallable
    ) -> None:
        body = request.body

        async def answer(message: ASGISendEvent) -> None:
            if isinstance(body, StreamedBody):
                body.drop_unread()
            await send(message)

        await super().handle_request(nursery, request, answer)

    async def handle_messages(  # type: ignore[override]
        self, nursery: trio.Nursery, request: Request, receive: ASGIReceiveCallable
    ) -> None:
        body = request.body
        while True:
            if isinstance(body, StreamedBody):
                await body.wait_for_room()
            message = await receive()
            if message["type"] == "http.request":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    if isinstance(body, StreamedBody):
                        body.end()
                    else:
                        body.set_complete()
            elif message["type"] == "http.disconnect":
                self._disconnected = True
                break
        # As quart-trio's: the client is gone, so is the request's handling.
        nursery.cancel_scope.cancel()


DRAIN_SECONDS = 30
"""Longest a finished request's leftover events are read (hypercorn sends the last at once)."""


async def _drain(receive: ASGIReceiveCallable) -> None:
    """Read and drop request events until `http.disconnect` (unread body chunks)."""
    with trio.move_on_after(DRAIN_SECONDS):
        while (await receive())["type"] != "http.disconnect":
            pass
