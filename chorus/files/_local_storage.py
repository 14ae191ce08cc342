"""The embedded storage backend: one directory (under the data dir), one file per key.

Writes are atomic (a temporary name in the target directory, fsync, rename,
fsync of the directory), so a crash leaves the old object or the new one and,
at worst, a stray dot-file that no key can name. Reads for delivery go through
`open_range`, in bounded chunks, so a 100 MB file never sits in memory.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import trio

from ._storage import ObjectNotFound, StorageUnavailable, check_key

T = TypeVar("T")

CHUNK_SIZE = 256 * 1024
"""Bytes copied or read per step: the memory one transfer holds at a time."""


class LocalStorage:
    """Objects as files under `root` (created if missing). Implements `Storage`.

    Blocking file work runs in trio worker threads, at most `max_threads` at a
    time for this store.
    """

    def __init__(self, root: Path, *, max_threads: int = 4) -> None:
        self._root = root
        self._limiter = trio.CapacityLimiter(max_threads)

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*check_key(key).split("/"))

    async def _run(self, work: Callable[[], T]) -> T:
        return await trio.to_thread.run_sync(work, limiter=self._limiter)

    async def put(
        self, key: str, source: Path, *, content_type: str, content_disposition: str | None = None
    ) -> None:
        # The headers are the file record's business here: delivery builds them.
        del content_type, content_disposition
        target = self._path(key)
        await self._run(lambda: self._put(key, source, target))

    def _put(self, key: str, source: Path, target: Path) -> None:
        with source.open("rb") as reader:  # FileNotFoundError for the caller's bug
            temporary = target.parent / f".{target.name}.{secrets.token_hex(8)}.tmp"
            created = renamed = False
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with temporary.open("xb") as writer:
                    created = True
                    shutil.copyfileobj(reader, writer, CHUNK_SIZE)
                    writer.flush()
                    os.fsync(writer.fileno())
                temporary.replace(target)
                renamed = True
                _fsync_directory(target.parent)
            except OSError as error:
                # Not durable is not stored: the caller keeps its source and retries.
                # A dot-file left by a failing unlink is named by no key.
                with contextlib.suppress(OSError):
                    if renamed:
                        target.unlink(missing_ok=True)
                    elif created:
                        temporary.unlink(missing_ok=True)
                raise StorageUnavailable(
                    f"local storage in {self._root}: cannot store {key!r}: {error}"
                ) from error

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await self._run(lambda: self._wrap(key, lambda: path.unlink(missing_ok=True)))

    async def delete_prefix(self, prefix: str) -> None:
        # The prefix's directory goes too; `delete` leaves its (empty) directory,
        # which a concurrent `put` of a sibling may be about to use.
        directory = self._path(prefix)

        def remove() -> None:
            if directory.is_dir():
                shutil.rmtree(directory)

        await self._run(lambda: self._wrap(prefix, remove))

    async def exists(self, key: str) -> bool:
        path = self._path(key)
        return await self._run(lambda: self._wrap(key, path.is_file))

    async def size(self, key: str) -> int:
        path = self._path(key)

        def stat() -> int:
            try:
                return path.stat().st_size
            except FileNotFoundError:
                raise ObjectNotFound(key) from None

        return await self._run(lambda: self._wrap(key, stat))

    @asynccontextmanager
    async def open_range(self, key: str, start: int, stop: int) -> AsyncIterator[RangeReader]:
        """Read bytes `start` to `stop` (exclusive) of the object, in chunks.

        The caller validates the range against `size(key)` first (an HTTP
        Range request it cannot satisfy is a 416); a range past the end yields
        only the bytes there are. `ObjectNotFound` if there is no object.
        The file stays readable while open even if the object is deleted or
        replaced meanwhile (POSIX semantics): a delivery already under way ends.
        """
        if not 0 <= start <= stop:
            raise ValueError(f"invalid range {start}-{stop}")
        path = self._path(key)
        try:
            file = await trio.open_file(path, "rb")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        async with file:
            await file.seek(start)
            yield RangeReader(file.read, stop - start)

    def _wrap(self, key: str, work: Callable[[], T]) -> T:
        try:
            return work()
        except OSError as error:
            raise StorageUnavailable(f"local storage in {self._root}: {key!r}: {error}") from error


class RangeReader:
    """An async iterator of at most `CHUNK_SIZE`-byte chunks, `remaining` bytes in all."""

    def __init__(self, read: Callable[[int], Awaitable[bytes]], remaining: int) -> None:
        self._read = read
        self._remaining = remaining

    def __aiter__(self) -> RangeReader:
        return self

    async def __anext__(self) -> bytes:
        if self._remaining <= 0:
            raise StopAsyncIteration
        chunk = await self._read(min(CHUNK_SIZE, self._remaining))
        if not chunk:
            raise StopAsyncIteration
        self._remaining -= len(chunk)
        return chunk


def _fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (POSIX)."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
