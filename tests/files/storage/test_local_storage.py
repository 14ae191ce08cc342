"""The local directory backend's own guarantees: atomic puts, ranged reads in bounded chunks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chorus.files import LocalStorage, ObjectNotFound, StorageUnavailable
from chorus.files._local_storage import CHUNK_SIZE

DATA = os.urandom(3 * CHUNK_SIZE + 1234)


@pytest.fixture
async def storage(tmp_path: Path) -> LocalStorage:
    store = LocalStorage(tmp_path / "store")
    source = tmp_path / "upload"
    source.write_bytes(DATA)
    await store.put("files/f1/original", source, content_type="application/zip")
    return store


async def read(storage: LocalStorage, start: int, stop: int) -> list[bytes]:
    async with storage.open_range("files/f1/original", start, stop) as reader:
        return [chunk async for chunk in reader]


@pytest.mark.parametrize(
    ("start", "stop"),
    [(0, len(DATA)), (0, 1), (100, 2 * CHUNK_SIZE + 7), (len(DATA) - 1, len(DATA)), (5, 5)],
)
async def test_a_range_is_read_exactly_in_bounded_chunks(
    storage: LocalStorage, start: int, stop: int
) -> None:
    chunks = await read(storage, start, stop)
    assert b"".join(chunks) == DATA[start:stop]
    assert all(0 < len(chunk) <= CHUNK_SIZE for chunk in chunks)


async def test_a_range_past_the_end_gives_the_bytes_there_are(storage: LocalStorage) -> None:
    assert b"".join(await read(storage, len(DATA) - 10, len(DATA) + 100)) == DATA[-10:]
    assert await read(storage, len(DATA) + 5, len(DATA) + 100) == []


async def test_an_inverted_range_is_a_caller_error(storage: LocalStorage) -> None:
    with pytest.raises(ValueError, match="invalid range"):
        await read(storage, 10, 5)


async def test_a_missing_object_cannot_be_opened(storage: LocalStorage) -> None:
    with pytest.raises(ObjectNotFound):
        async with storage.open_range("files/f2/original", 0, 1):
            pass


async def test_a_delivery_under_way_ends_after_the_object_is_deleted(
    storage: LocalStorage,
) -> None:
    async with storage.open_range("files/f1/original", 0, len(DATA)) as reader:
        first = await reader.__anext__()
        await storage.delete("files/f1/original")
        rest = [chunk async for chunk in reader]
    assert first + b"".join(rest) == DATA
    assert not await storage.exists("files/f1/original")


async def test_a_put_that_fails_while_copying_leaves_the_old_object_and_no_debris(
    storage: LocalStorage, tmp_path: Path
) -> None:
    # Reading /proc/self/mem from offset 0 fails with EIO: a real I/O error
    # in the middle of the copy, after the temporary file was created.
    with pytest.raises(StorageUnavailable, match=r"cannot store 'files/f1/original'.*Input/output"):
        await storage.put("files/f1/original", Path("/proc/self/mem"), content_type="text/plain")
    assert b"".join(await read(storage, 0, len(DATA))) == DATA
    assert os.listdir(tmp_path / "store" / "files" / "f1") == ["original"]


async def test_a_put_that_cannot_make_its_directory_fails_clearly(
    storage: LocalStorage, tmp_path: Path
) -> None:
    # `files/f1/original` is a file, so it cannot also be a directory.
    source = tmp_path / "upload"
    with pytest.raises(StorageUnavailable, match=r"local storage in .*store: cannot store"):
        await storage.put("files/f1/original/320", source, content_type="image/png")
    assert b"".join(await read(storage, 0, len(DATA))) == DATA


async def test_objects_are_plain_files_under_the_root(
    storage: LocalStorage, tmp_path: Path
) -> None:
    assert (tmp_path / "store" / "files" / "f1" / "original").read_bytes() == DATA
