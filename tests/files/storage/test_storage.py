"""The `Storage` contract, run against every backend (local directory and S3 through moto)."""

from __future__ import annotations

import functools
import os
import tracemalloc
from pathlib import Path

import httpx
import pytest
import trio

from chorus.files import (
    InvalidKey,
    LocalStorage,
    ObjectNotFound,
    S3Storage,
    Storage,
)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


async def stored_bytes(storage: Storage, key: str) -> bytes:
    """What the backend delivers for `key`: the node's range reader, or a presigned S3 GET."""
    if isinstance(storage, LocalStorage):
        async with storage.open_range(key, 0, await storage.size(key)) as reader:
            return b"".join([chunk async for chunk in reader])
    assert isinstance(storage, S3Storage)
    url = await storage.presigned_get(
        key, ttl=60, display_name="x.bin", content_type="application/octet-stream"
    )
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    response.raise_for_status()
    return response.content


async def test_a_put_object_exists_with_its_size_and_bytes(
    storage: Storage, tmp_path: Path
) -> None:
    source = write(tmp_path / "upload", b"hello, files")
    await storage.put("files/f1/original", source, content_type="text/plain")
    assert await storage.exists("files/f1/original")
    assert await storage.size("files/f1/original") == 12
    assert await stored_bytes(storage, "files/f1/original") == b"hello, files"
    assert source.read_bytes() == b"hello, files"  # only read: the caller removes it


async def test_an_empty_file_is_stored(storage: Storage, tmp_path: Path) -> None:
    await storage.put("files/f1/original", write(tmp_path / "e", b""), content_type="text/plain")
    assert await storage.size("files/f1/original") == 0


async def test_put_replaces_the_object(storage: Storage, tmp_path: Path) -> None:
    await storage.put("files/f1/320", write(tmp_path / "a", b"first"), content_type="image/png")
    await storage.put("files/f1/320", write(tmp_path / "b", b"second!"), content_type="image/png")
    assert await storage.size("files/f1/320") == 7
    assert await stored_bytes(storage, "files/f1/320") == b"second!"


async def test_a_missing_object_does_not_exist_and_has_no_size(storage: Storage) -> None:
    assert not await storage.exists("files/nothing/original")
    with pytest.raises(ObjectNotFound):
        await storage.size("files/nothing/original")


async def test_delete_removes_and_is_idempotent(storage: Storage, tmp_path: Path) -> None:
    await storage.put("files/f1/original", write(tmp_path / "a", b"x"), content_type="text/plain")
    await storage.delete("files/f1/original")
    assert not await storage.exists("files/f1/original")
    await storage.delete("files/f1/original")
    await storage.delete("files/never/original")


async def test_delete_prefix_removes_one_files_variants_only(
    storage: Storage, tmp_path: Path
) -> None:
    source = write(tmp_path / "a", b"x")
    keys = ["files/ab/original", "files/ab/320", "files/abc/original", "files/a/original"]
    for key in keys:
        await storage.put(key, source, content_type="image/png")
    await storage.delete_prefix("files/ab")
    assert [await storage.exists(key) for key in keys] == [False, False, True, True]
    await storage.delete_prefix("files/ab")  # nothing left: fine
    await storage.delete_prefix("files/none")


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "../escape",
        "files/../../escape",
        "files//x",
        "files/.hidden",
        "files/x/",
        "files\\x",
        "files/x y",
        "files/é",
        "a" * 513,
        "files/x\x00",
    ],
)
async def test_keys_that_are_not_generated_names_are_refused(
    storage: Storage, tmp_path: Path, key: str
) -> None:
    source = write(tmp_path / "a", b"x")
    with pytest.raises(InvalidKey):
        await storage.put(key, source, content_type="text/plain")
    for call in (storage.delete, storage.delete_prefix, storage.exists, storage.size):
        with pytest.raises(InvalidKey):
            await call(key)
    assert os.listdir(tmp_path) == ["a"]  # nothing written beside


async def test_a_missing_source_is_the_callers_error(storage: Storage, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await storage.put("files/f1/original", tmp_path / "gone", content_type="text/plain")
    assert not await storage.exists("files/f1/original")


async def test_concurrent_puts_all_land(storage: Storage, tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        for number in range(8):
            source = write(tmp_path / f"s{number}", bytes([number]) * (number + 1))
            put = functools.partial(storage.put, content_type="text/plain")
            nursery.start_soon(put, f"files/f{number}/original", source)
    assert [await storage.size(f"files/f{n}/original") for n in range(8)] == list(range(1, 9))


BIG = 48 * 1024 * 1024
"""The big-file size in the suite (bench/files_storage.py runs 100 MB and more)."""


async def test_a_big_file_is_stored_with_bounded_memory(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "big"
    with source.open("wb") as file:  # sparse: no time spent writing it
        file.truncate(BIG)
    await storage.put("files/warm/original", write(tmp_path / "w", b"w"), content_type="text/plain")
    tracemalloc.start()
    try:
        await storage.put("files/big/original", source, content_type="application/zip")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert await storage.size("files/big/original") == BIG
    # Measured: 0.5 MiB local (256 KiB chunks), 5 to 9 MiB for S3 at any size
    # (bench/files_storage.py); reading the whole file would be 48 MiB.
    assert peak < 16 * 2**20, (
        f"peak Python memory {peak / 2**20:.1f} MiB for a {BIG >> 20} MiB file"
    )
    os.unlink(source)
