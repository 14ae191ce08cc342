"""`accept_clients`: a listener's accept loop, shared by the HTTP API and the gateway.

Every accepted socket goes through the node's `Admission`: admitted ones are
handed over with their `Ticket`; refused ones are answered with a short 503
at once and closed, never left waiting in the backlog. When `accept()`
itself fails for lack of descriptors (EMFILE/ENFILE), a spare descriptor kept
for that purpose is closed, one pending connection is accepted and closed at
once, and the spare is reopened: the backlog drains instead of filling up
while clients wait for timeouts.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections.abc import Awaitable, Callable

import structlog
import trio

from chorus.protocol import ErrorCode

from ._policy import Admission, Listener, Refusal, Ticket

_log = structlog.get_logger("chorus.admission")

ACCEPT_BURST = 64
"""Connections accepted in a row before the listener lets other tasks run."""
REFUSAL_LINGER = 1.0
"""Seconds a refused socket is read (and what it sends discarded) after the 503, so that
closing it does not reset the connection before the client has read the answer."""
MAX_LINGERING = 64
"""Refused sockets lingering at once, node-wide; beyond that they are closed at once."""
RETRY_AFTER = 5
_FAILURE_PAUSE = 0.05
_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE})
_CLIENT_GONE = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM})

_BODY = b'{"error":{"code":"%s","message":"too many connections; retry later"}}' % (
    ErrorCode.UNAVAILABLE.encode()
)
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nretry-after: %d\r\nconnection: close\r\n\r\n%s"
    % (len(_BODY), RETRY_AFTER, _BODY)
)
"""The whole answer to a refused connection, HTTP or WebSocket upgrade alike."""

Admitted = Callable[[socket.socket, tuple[str, int], Ticket], Awaitable[None]]
"""Takes over an admitted socket, its peer address and its ticket (even if it raises)."""


def open_listener(host: str, port: int, backlog: int) -> socket.socket:
    """A non-blocking listening TCP socket on `host:port` (an IPv6 literal listens on IPv6)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server((host, port), family=family, backlog=backlog)
    listener.setblocking(False)
    return listener


async def accept_clients(
    listener: socket.socket, name: Listener, admission: Admission, admitted: Admitted
) -> None:
    """Accept clients on the listening, non-blocking `listener` until cancelled.

    Never sleeps while connections are pending, whatever the node's state:
    each one is admitted, refused with a 503 or (out of descriptors) closed.
    Closing `listener` is the caller's job; refusals in progress end with
    this call.
    """
    spare = _Spare()
    try:
        async with trio.open_nursery() as refusals:
            while True:
                await trio.lowlevel.wait_readable(listener)
                for _ in range(ACCEPT_BURST):
                    try:
                        client, address = listener.accept()
                    except BlockingIOError:
                        break
                    except OSError as exc:
                        if exc.errno in _CLIENT_GONE:
                            continue
                        if exc.errno in _OUT_OF_DESCRIPTORS and spare.ready():
                            if spare.shed(listener):
                                admission.shed(name)
                            continue
                        # Not even a spare, or another failure: let descriptors come back.
                        _log.error("admission.accept_failed", listener=str(name), error=str(exc))
                        await trio.sleep(_FAILURE_PAUSE)
                        break
                    decision = admission.admit(name, address[0])
                    if isinstance(decision, Refusal):
                        _refuse(client, admission, refusals)
                    else:
                        await admitted(client, address[:2], decision)
                await trio.lowlevel.checkpoint()
    finally:
        spare.close()


def _refuse(client: socket.socket, admission: Admission, refusals: trio.Nursery) -> None:
    client.setblocking(False)
    try:
        client.send(REFUSAL)  # a fresh socket's send buffer takes it whole
        client.shutdown(socket.SHUT_WR)
    except OSError:
        client.close()
        return
    if admission.refusing >= MAX_LINGERING:
        _discard_pending(client)
        client.close()
        return
    admission.refusal_started()
    refusals.start_soon(_linger, client, admission)


async def _linger(client: socket.socket, admission: Admission) -> None:
    """Read until the client closes (or `REFUSAL_LINGER`), then close."""
    try:
        with trio.move_on_after(REFUSAL_LINGER):
            while True:
                await trio.lowlevel.wait_readable(client)
                try:
                    if not client.recv(4096):
                        break
                except BlockingIOError:
                    continue
                except OSError:
                    break
    finally:
        trio.lowlevel.notify_closing(client)
        client.close()
        admission.refusal_finished()


def _discard_pending(client: socket.socket) -> None:
    """Read what already arrived, so that closing sends FIN rather than a reset."""
    try:
        while client.recv(4096):
            pass
    except OSError:
        pass


class _Spare:
    """One descriptor held in reserve, to accept (and close) a connection when none is left."""

    def __init__(self) -> None:
        self._fd = _open_spare()

    def ready(self) -> bool:
        """True if the spare is held (reopening it if an earlier attempt failed)."""
        if self._fd is None:
            self._fd = _open_spare()
        return self._fd is not None

    def shed(self, listener: socket.socket) -> bool:
        """Accept one pending connection with the spare's descriptor and close it at once.

        False if none was pending. The spare is reopened afterwards.
        """
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            client, _address = listener.accept()
        except OSError:
            shed = False  # nothing pending any more, or the descriptor went elsewhere
        else:
            client.setblocking(False)
            with contextlib.suppress(OSError):
                client.send(REFUSAL)
            _discard_pending(client)
            client.close()
            shed = True
        self._fd = _open_spare()
        return shed

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _open_spare() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
