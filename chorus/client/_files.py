"""File uploads and downloads for the SDK: streamed both ways, with progress (issue #13).

Neither direction holds a file in memory: an upload is read in
`CHUNK_BYTES` pieces (off the event loop) as httpx sends them, a download is
written piece by piece as it arrives.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

import httpx
import trio

from chorus import protocol

CHUNK_BYTES = 64 * 1024
"""How much of a file is read (upload) or written (download) at a time."""
NO_CLAIM = "application/octet-stream"
"""The Content-Type an upload declares by default: no claim, the server sniffs the bytes.

A type guessed from the file name would get files refused as `type_mismatch`
whenever the guess differs from what the server sniffs (`.py` guesses
text/x-python; the server sniffs text/plain), so the SDK only claims a type
when the caller names one.
"""
FIRST_POLL = 0.1
MAX_POLL = 2.0
"""Polling for a file's state starts every `FIRST_POLL` seconds and slows to `MAX_POLL`."""

Progress = Callable[[int, int | None], None]
"""Called with (bytes done, total bytes); the total is None when it cannot be known
(an upload from a pipe, a download without Content-Length). The first call is
(0, total), the last has all the bytes; the counts never go down, except when an
upload is sent again from its start (once, after the session was refreshed)."""

FileSource = str | os.PathLike[str] | BinaryIO
"""What can be uploaded: a path, or a file object opened in binary mode (read from its
current position to its end; the SDK does not close it)."""

Variant = Literal["original", "320", "1280"]
"""A file's original, or an image's thumbnail that fits in 320 or 1280 pixels."""


class FileRejected(Exception):
    """The server refused an uploaded file: `reason` says why (infected, type_not_allowed,
    type_mismatch, empty, image_too_large, ...), `file` is its final state."""

    def __init__(self, file: protocol.FileInfo) -> None:
        super().__init__(f"{file.name} was rejected: {file.reason}")
        self.file = file
        self.reason = file.reason or "rejected"


class ChunkCipher(Protocol):
    """Encrypts an upload as it is read (`chorus.client.e2e`): the server gets only what
    `update` returns, declared end-to-end encrypted."""

    def restart(self) -> None:
        """Back to the first byte: called before each attempt at sending the upload."""

    def update(self, chunk: bytes) -> bytes:
        """What to send for the file's next `chunk`: as many bytes (a stream cipher)."""


class Upload:
    """The bytes of one upload: their display name, size if known, and chunk stream
    (encrypted by `cipher` when there is one)."""

    def __init__(
        self, file: BinaryIO, name: str, size: int | None, cipher: ChunkCipher | None = None
    ) -> None:
        self._file = file
        self._start = _position(file)
        self.name = name
        self.size = size
        self.cipher = cipher

    async def rewind(self) -> bool:
        """Back to the first byte, for a second attempt; False if the source cannot."""
        if self._start is None:
            return False
        await trio.to_thread.run_sync(self._file.seek, self._start)
        return True

    def body(self, progress: Progress | None) -> httpx.AsyncByteStream:
        """The bytes as an httpx request body, read as sent (from the start of the
        cipher's stream); `progress` is told after each chunk is sent."""
        if self.cipher is not None:
            self.cipher.restart()
        return _Body(_Chunks(self._file, self.size, progress, self.cipher))


class _Chunks:
    """A file's bytes, `CHUNK_BYTES` at a time, read off the event loop.

    A class, not an async generator: httpx stops iterating when the server
    answers before the body is sent (413 from the Content-Length), and an
    abandoned generator is finalised late, with a ResourceWarning.
    """

    def __init__(
        self,
        file: BinaryIO,
        size: int | None,
        progress: Progress | None,
        cipher: ChunkCipher | None,
    ) -> None:
        self._file = file
        self._size = size
        self._progress = progress
        self._cipher = cipher
        self._sent: int | None = None
        self._last = 0

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        # Asked for the next chunk: the last one was written.
        self._sent = 0 if self._sent is None else self._sent + self._last
        if self._progress is not None:
            self._progress(self._sent, self._size)
        chunk = await trio.to_thread.run_sync(self._read)
        if not chunk:
            raise StopAsyncIteration
        self._last = len(chunk)
        return chunk

    def _read(self) -> bytes:
        """The next chunk to send, read (and encrypted) in a worker thread."""
        chunk = self._file.read(CHUNK_BYTES)
        return chunk if self._cipher is None else self._cipher.update(chunk)


class _Body(httpx.AsyncByteStream):
    def __init__(self, chunks: _Chunks) -> None:
        self._chunks = chunks

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks


@asynccontextmanager
async def open_upload(
    source: FileSource, name: str | None, cipher: ChunkCipher | None = None
) -> AsyncIterator[Upload]:
    """The upload of `source`, named `name` (default: the file's own name), encrypted
    by `cipher` if given.

    A path is opened here and closed at the end of the block; opening raises
    `FileNotFoundError`, `IsADirectoryError` or `PermissionError` as `open`
    does. A file object is left open.
    """
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        file: BinaryIO = await trio.to_thread.run_sync(path.open, "rb")
        try:
            yield Upload(file, name or path.name, _size(file), cipher)
        finally:
            file.close()
    else:
        own_name = os.path.basename(str(getattr(source, "name", "")))
        yield Upload(source, name or own_name or "file", _size(source), cipher)


def _position(file: BinaryIO) -> int | None:
    """Where a seekable file is now; None if it cannot seek (a pipe, a socket)."""
    try:
        return file.tell() if file.seekable() else None
    except OSError:
        return None


def _size(file: BinaryIO) -> int | None:
    """Bytes from the file's position to its end; None when that cannot be known."""
    start = _position(file)
    if start is None:
        return None
    try:
        return max(os.fstat(file.fileno()).st_size - start, 0)
    except (OSError, ValueError):  # no descriptor (BytesIO): measure by seeking
        end = file.seek(0, os.SEEK_END)
        file.seek(start)
        return max(end - start, 0)


async def wait_checked(
    fetch: Callable[[], Awaitable[protocol.FileInfo]],
    *,
    timeout: float,
    told: Callable[[float], Awaitable[protocol.FileInfo | None]] | None = None,
) -> protocol.FileInfo:
    """The file once checked: ready, or `FileRejected` raised with its reason.

    `fetch` gets its state (`GET /files/{id}`); between two fetches `told`
    (when given) waits up to the given seconds for the server to say the file
    is done (a `file` frame) and returns its state, or None if it said
    nothing; without `told`, it just sleeps. The pauses grow from
    `FIRST_POLL` to `MAX_POLL` seconds. `TimeoutError` after `timeout` seconds.
    """
    pause = FIRST_POLL
    file = await fetch()
    with trio.move_on_after(timeout):
        while file.state not in ("ready", "rejected"):
            heard = None
            if told is not None:
                heard = await told(pause)
            else:
                await trio.sleep(pause)
            file = heard if heard is not None else await fetch()
            pause = min(pause * 2, MAX_POLL)
    if file.state == "rejected":
        raise FileRejected(file)
    if file.state != "ready":
        raise TimeoutError(f"{file.name} is still {file.state} after {timeout:g} s")
    return file


async def download_to(response: httpx.Response, dest: Path, progress: Progress | None) -> Path:
    """Write a streamed response's body to `dest` as it arrives; `dest`.

    The bytes go to `dest` plus `.part` first and are renamed when complete,
    so `dest` never holds part of a file.
    """
    length = response.headers.get("content-length")
    total = int(length) if length is not None and length.isdigit() else None
    part = dest.with_name(dest.name + ".part")
    received = 0
    try:
        async with await trio.open_file(part, "wb") as out:
            if progress is not None:
                progress(0, total)
            async for chunk in response.aiter_bytes(CHUNK_BYTES):
                await out.write(chunk)
                received += len(chunk)
                if progress is not None:
                    progress(received, total)
        await trio.Path(part).replace(dest)
    finally:
        with trio.CancelScope(shield=True):  # an interrupted download leaves nothing behind
            await trio.Path(part).unlink(missing_ok=True)
    return dest


async def download_path(dest: str | os.PathLike[str] | None, name: str, file_id: str) -> Path:
    """Where a download goes: `dest`, or the file's `name` in `dest` when it is a
    directory (the current one when None). The name is only ever a last path part
    (the file's id when none is left)."""
    target = Path(dest) if dest is not None else Path()
    if await trio.Path(target).is_dir():
        name = Path(name).name
        return target / (name if name not in ("", ".", "..") else file_id)
    return target
