"""Virus scanning: clamd's INSTREAM over TCP or a Unix socket, failing closed.

A `Scanner` answers `scan(path)` with a `ScanResult` (clean, infected with a
signature name, or unscanned when scanning is off) or raises
`ScannerUnavailable`: clamd is down, refuses the connection, times out, or
answers an error (its stream size limit included). The caller keeps the file
quarantined and retries; a file is never delivered without a result.

Every scan is counted in `chorus_file_scans_total{outcome}` and timed in
`chorus_file_scan_seconds`. No file content is ever logged or put in an error.
"""

from __future__ import annotations

import contextlib
import struct
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Final, Protocol
from urllib.parse import urlsplit

import attrs
import trio

from chorus.metrics import FILE_SCAN_SECONDS, FILE_SCANS

CHUNK_SIZE: Final = 64 * 1024
"""Bytes read from the file and sent per INSTREAM chunk (the most held in memory)."""

_MAX_REPLY: Final = 4096
_END_OF_STREAM: Final = struct.pack(">I", 0)


class ScanStatus(StrEnum):
    CLEAN = "clean"
    INFECTED = "infected"
    UNSCANNED = "unscanned"
    """No scanner is configured (`scanner = none`): the file metadata says so."""


@attrs.frozen
class ScanResult:
    """A scanner's verdict; `signature` names what was found when `status` is infected."""

    status: ScanStatus
    signature: str | None = None


class ScannerUnavailable(Exception):
    """No verdict: the scanner is down, refused, timed out or answered an error.

    Fail closed: the file stays quarantined and the scan is retried later.
    """


class Scanner(Protocol):
    """What the file pipeline scans with."""

    async def scan(self, path: Path) -> ScanResult:
        """The verdict on the file at `path`; `ScannerUnavailable` when there is none."""
        ...

    async def ping(self) -> None:
        """Return when the scanner answers; `ScannerUnavailable` when it does not (readiness)."""
        ...


class NoScanner:
    """`scanner = none`: every file is `unscanned` (an explicit choice, never a fallback)."""

    async def scan(self, path: Path) -> ScanResult:
        FILE_SCANS.labels(ScanStatus.UNSCANNED.value).inc()
        return ScanResult(ScanStatus.UNSCANNED)

    async def ping(self) -> None:
        return None


class _HungUp(Exception):
    """clamd closed the connection while we were sending."""


async def _send(stream: trio.SocketStream, data: bytes) -> None:
    try:
        await stream.send_all(data)
    except (trio.BrokenResourceError, OSError) as error:
        raise _HungUp from error


def _parse_reply(reply: bytes) -> ScanResult:
    """clamd's INSTREAM answer as a result; `ScannerUnavailable` for errors and the unexpected."""
    text = reply.decode("utf-8", "replace").strip()
    if text == "stream: OK":
        return ScanResult(ScanStatus.CLEAN)
    if text.startswith("stream: ") and text.endswith(" FOUND"):
        return ScanResult(ScanStatus.INFECTED, text.removeprefix("stream: ").removesuffix(" FOUND"))
    raise ScannerUnavailable(f"clamd answered {text[:200]!r}")


class ClamdScanner:
    """Scans with a clamd daemon at `address`: `tcp://host:port` or `unix:///path/to/socket`.

    Each call opens its own connection (clamd serves one command per
    connection), so one scanner is shared by concurrent tasks. `timeout`
    bounds a whole call, connecting included. The file is streamed in
    `chunk_size` pieces: memory stays bounded whatever its size.
    """

    def __init__(
        self, address: str, *, timeout: float = 60.0, chunk_size: int = CHUNK_SIZE
    ) -> None:
        parts = urlsplit(address)
        if parts.scheme == "tcp" and parts.hostname and parts.port:
            self._host: str | None = parts.hostname
            self._port = parts.port
            self._socket_path = ""
        elif parts.scheme == "unix" and parts.path and not parts.netloc:
            self._host, self._port, self._socket_path = None, 0, parts.path
        else:
            raise ValueError(
                f"clamd address must be tcp://host:port or unix:///path, not {address!r}"
            )
        self.address = address
        self._timeout = timeout
        self._chunk_size = chunk_size

    async def _connect(self) -> trio.SocketStream:
        try:
            if self._host is not None:
                return await trio.open_tcp_stream(self._host, self._port)
            return await trio.open_unix_socket(self._socket_path)
        except OSError as error:
            raise ScannerUnavailable(
                f"cannot connect to clamd at {self.address}: {error}"
            ) from None

    async def _reply(self, stream: trio.SocketStream) -> bytes:
        """Everything clamd says up to its NUL terminator (or until it closes)."""
        reply = b""
        try:
            while b"\0" not in reply and len(reply) < _MAX_REPLY:
                data = await stream.receive_some(_MAX_REPLY)
                if not data:
                    break
                reply += data
        except (trio.BrokenResourceError, OSError) as error:
            raise ScannerUnavailable(f"clamd at {self.address} dropped the connection") from error
        if not reply:
            raise ScannerUnavailable(f"clamd at {self.address} closed without answering")
        return reply.split(b"\0", 1)[0]

    async def _instream(self, read: Callable[[int], Awaitable[bytes]]) -> bytes:
        """Send what `read` gives as one INSTREAM command; clamd's reply."""
        stream = await self._connect()
        async with stream:
            # clamd hangs up mid-stream when it refuses it (size limit): its reply says why.
            # A failing `read` is not caught: the file's own errors are not the scanner's.
            with contextlib.suppress(_HungUp):
                await _send(stream, b"zINSTREAM\0")
                while chunk := await read(self._chunk_size):
                    await _send(stream, struct.pack(">I", len(chunk)) + chunk)
                await _send(stream, _END_OF_STREAM)
            return await self._reply(stream)

    async def scan(self, path: Path) -> ScanResult:
        """clamd's verdict on the file at `path` (see the class and module guarantees).

        `OSError` when the file itself cannot be read (not a scanner fault).
        """
        started = time.perf_counter()
        async with await trio.open_file(path, "rb") as file:
            try:
                with trio.fail_after(self._timeout):
                    reply = await self._instream(file.read)
                result = _parse_reply(reply)
            except trio.TooSlowError:
                error = ScannerUnavailable(f"clamd at {self.address} timed out ({self._timeout} s)")
                self._record("error", started)
                raise error from None
            except ScannerUnavailable:
                self._record("error", started)
                raise
        self._record(result.status.value, started)
        return result

    @staticmethod
    def _record(outcome: str, started: float) -> None:
        FILE_SCAN_SECONDS.observe(time.perf_counter() - started)
        FILE_SCANS.labels(outcome).inc()

    async def ping(self) -> None:
        """Return once clamd answers PING with PONG in time; else `ScannerUnavailable`."""
        try:
            with trio.fail_after(self._timeout):
                stream = await self._connect()
                async with stream:
                    with contextlib.suppress(_HungUp):
                        await _send(stream, b"zPING\0")
                    reply = await self._reply(stream)
        except trio.TooSlowError:
            raise ScannerUnavailable(f"clamd at {self.address} timed out") from None
        if reply != b"PONG":
            raise ScannerUnavailable(f"clamd at {self.address} answered {reply[:100]!r} to PING")
