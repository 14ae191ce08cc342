"""`/api/v1/files`: uploads streamed to the spool, the pipeline, quotas and limits (issue #13)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from chorus.files import LocalStorage
from chorus.node import FILES_DIR, SPOOL_DIR, load_node_name, open_node_store
from chorus.persistence import NewFile, now_ms
from tests.clamdserver import EICAR, ClamdServer, running_clamd
from tests.files.samples import image_bytes
from tests.fixtures import node_settings
from tests.http.conftest import Account, Server, assert_error, open_server
from tests.polling import until

FILES = "/api/v1/files"


@pytest.fixture
async def clamd() -> AsyncIterator[ClamdServer]:
    """A private clamd for one test (fails, never skips, when clamd is not installed)."""
    async with running_clamd() as server:
        yield server


TEXT = b"meeting notes\nnothing secret\n"


async def upload(
    server: Server,
    user: Account,
    data: bytes | AsyncIterator[bytes],
    *,
    name: str = "notes.txt",
    content_type: str | None = "text/plain",
) -> httpx.Response:
    headers = {"Content-Type": content_type} if content_type is not None else {}
    return await server.post(FILES, user, params={"name": name}, content=data, headers=headers)


async def final(server: Server, user: Account, file_id: str, timeout: float = 30) -> dict[str, Any]:
    """The file's view once the pipeline is done with it (ready or rejected, and its
    spooled bytes removed: the pipeline records the outcome, then cleans up)."""
    seen: dict[str, Any] = {}

    async def done() -> bool:
        response = await server.get(f"{FILES}/{file_id}", user)
        assert response.status_code == 200, response.text
        seen.update(response.json())
        spooled = any(path.name.startswith(file_id) for path in spool_of(server))
        return seen["state"] in ("ready", "rejected") and not spooled

    await until(done, timeout=timeout)
    return seen


def spool_of(server: Server) -> list[Path]:
    return sorted(server.services.files.spool_dir.iterdir())


async def test_an_upload_is_spooled_checked_and_stored(server: Server) -> None:
    ada = await server.register("ada")
    response = await upload(server, ada, TEXT)
    assert response.status_code == 202, response.text
    view = response.json()
    assert view["state"] == "pending"
    assert (view["name"], view["size"], view["content_type"]) == (
        "notes.txt",
        len(TEXT),
        "text/plain",
    )
    done = await final(server, ada, view["id"])
    assert done["state"] == "ready"
    assert (done["scan"], done["reason"], done["thumbnails"]) == ("unscanned", None, [])
    assert done["content_type"].startswith("text/plain")
    storage = server.services.files.storage
    assert isinstance(storage, LocalStorage)
    stored = server.services.settings.data_dir / FILES_DIR / "files" / view["id"] / "original"
    assert stored.read_bytes() == TEXT
    assert spool_of(server) == []  # the spool file went once stored
    record = await server.services.store.get_file(view["id"])
    assert record is not None
    assert record.sha256 == hashlib.sha256(TEXT).hexdigest()


@pytest.mark.parametrize("sized", [True, False], ids=["content-length", "chunked"])
async def test_a_large_upload_is_stored_whole_sent_sized_or_chunked(
    server: Server, sized: bool
) -> None:
    # Regression: Quart's 64 KiB body limit applied until the route raised it, so
    # a Content-Length over it lost the body's start and a chunked body was cut
    # short once 64 KiB were buffered unread; either way stored as `ready`.
    data = b"".join(b"line %07d of the minutes\n" % n for n in range(200_000))  # 5.2 MB

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 65536):
            yield data[start : start + 65536]

    ada = await server.register("ada")
    response = await upload(server, ada, data if sized else pieces())
    assert response.status_code == 202, response.text
    assert response.json()["size"] == len(data)
    assert (await final(server, ada, response.json()["id"]))["state"] == "ready"
    record = await server.services.store.get_file(response.json()["id"])
    assert record is not None
    assert record.sha256 == hashlib.sha256(data).hexdigest()


async def test_a_large_upload_is_stored_whole(server: Server) -> None:
    # Regression: with a Content-Length over the app's 64 KiB body limit, Quart
    # dropped the chunks that arrived before the route lifted the limit (a 70 kB
    # file was stored empty, 5 MB lost 250 kB); chunked bodies lost nothing.
    ada = await server.register("ada")
    for size in (70_000, 3_000_000):
        data = os.urandom(size // 2).hex().encode()  # text: on the allow-list
        response = await upload(server, ada, data)
        assert response.status_code == 202, response.text
        view = response.json()
        assert view["size"] == size
        done = await final(server, ada, view["id"])
        assert done["state"] == "ready", done
        stored = server.services.settings.data_dir / FILES_DIR / "files" / view["id"] / "original"
        assert hashlib.sha256(stored.read_bytes()).digest() == hashlib.sha256(data).digest()


async def test_a_chunked_upload_is_not_cut_where_the_reader_caught_up(server: Server) -> None:
    # Regression: a chunked body that passed 64 KiB before the route lifted the
    # app's limit was marked complete by Quart; the route then stopped at the
    # first moment it had read everything sent so far, and stored a cut file.
    ada = await server.register("ada")
    first, rest = b"a" * (256 * 1024), b"b" * (256 * 1024)

    async def spooled() -> bool:
        parts = [p for p in spool_of(server) if p.suffix == ".part"]
        # Half: the spool file's write buffer may still hold the end of `first`.
        return bool(parts) and parts[0].stat().st_size >= len(first) // 2

    async def body() -> AsyncIterator[bytes]:
        yield first
        await until(spooled)  # the server has caught up with the client
        yield rest

    response = await upload(server, ada, body())
    assert response.status_code == 202, response.text
    assert response.json()["size"] == len(first) + len(rest)


async def test_an_image_is_re_encoded_with_thumbnails(server: Server) -> None:
    ada = await server.register("ada")
    png = image_bytes((2000, 1000), "PNG")
    response = await upload(server, ada, png, name="map.png", content_type="image/png")
    assert response.status_code == 202, response.text
    done = await final(server, ada, response.json()["id"])
    assert done["state"] == "ready", done
    assert (done["width"], done["height"]) == (2000, 1000)
    bounds = {(t["name"], t["width"], t["height"]) for t in done["thumbnails"]}
    assert bounds == {("320", 320, 160), ("1280", 1280, 640)}


async def test_an_executable_named_png_is_rejected_with_its_reason(
    server: Server, tmp_path: Path
) -> None:
    ada = await server.register("ada")
    elf = b"\x7fELF\x02\x01\x01" + bytes(200)
    response = await upload(server, ada, elf, name="cat.png", content_type="image/png")
    assert response.status_code == 202, response.text
    done = await final(server, ada, response.json()["id"])
    assert (done["state"], done["reason"]) == ("rejected", "type_not_allowed")
    assert spool_of(server) == []


async def test_hostile_names_are_sanitised(server: Server) -> None:
    ada = await server.register("ada")
    hostile = "../../etc/\u202epasswd\u200b.txt"
    response = await upload(server, ada, TEXT, name=hostile)
    assert response.status_code == 202, response.text
    assert response.json()["name"] == "passwd.txt"


async def test_a_name_and_a_content_type_are_required(server: Server) -> None:
    ada = await server.register("ada")
    no_name = await server.post(FILES, ada, content=TEXT, headers={"Content-Type": "text/plain"})
    assert_error(no_name, 400, "missing_field")
    no_type = await upload(server, ada, TEXT, content_type=None)
    assert_error(no_type, 415, "unsupported_media_type")
    assert spool_of(server) == []


async def test_a_declared_size_over_the_limit_is_refused_at_once(tmp_path: Path) -> None:
    async with open_server(tmp_path, files_max_bytes=1000) as server:
        ada = await server.register("ada")
        response = await upload(server, ada, bytes(1001))
        assert_error(response, 413, "file_too_large")
        assert spool_of(server) == []
        assert (await upload(server, ada, b"x" * 1000)).status_code == 202


async def test_a_streamed_body_over_the_limit_is_refused_while_it_arrives(
    tmp_path: Path,
) -> None:
    # No Content-Length (chunked): the limit holds on what arrives. The client
    # offers 64 MiB; the server answers 413 and closes long before it is sent.
    limit = 256 * 1024
    async with open_server(tmp_path, files_max_bytes=limit) as server:
        ada = await server.register("ada")
        host, port = server.address
        stream = await trio.open_tcp_stream(host, port)
        head = (
            f"POST {FILES}?name=big.txt HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {ada.access_token}\r\nContent-Type: text/plain\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        await stream.send_all(head.encode())
        chunk = b"10000\r\n" + b"a" * 65536 + b"\r\n"
        sent, answer = 0, b""
        answered = trio.Event()
        async with trio.open_nursery() as nursery:

            async def read_answer() -> None:
                nonlocal answer
                with trio.fail_after(30):
                    while not answer.endswith(b"}}"):  # the error's JSON body
                        data = await stream.receive_some(65536)
                        if not data:
                            break
                        answer += data
                answered.set()

            nursery.start_soon(read_answer)
            try:
                while sent < 64 * 1024 * 1024:
                    await stream.send_all(chunk)
                    sent += 65536
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            await answered.wait()
        await stream.aclose()
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert b'"file_too_large"' in answer
        assert sent < 16 * 1024 * 1024, sent
        await until(lambda: _empty(server))
        assert await server.services.store.bytes_stored(ada.id) == 0


async def _empty(server: Server) -> bool:
    return spool_of(server) == []


async def test_the_quota_counts_every_file_kept(tmp_path: Path) -> None:
    async with open_server(tmp_path, files_quota_bytes=100) as server:
        ada = await server.register("ada")
        first = await upload(server, ada, b"a" * 60)
        assert first.status_code == 202
        assert_error(await upload(server, ada, b"b" * 60), 413, "quota_exceeded")

        # Streamed without a length: refused once its size is known, nothing kept.
        async def chunks() -> AsyncIterator[bytes]:
            yield b"c" * 60

        assert_error(await upload(server, ada, chunks()), 413, "quota_exceeded")
        assert spool_of(server) == [] or all(p.name == first.json()["id"] for p in spool_of(server))
        deleted = await server.delete(f"{FILES}/{first.json()['id']}", ada)
        assert deleted.status_code == 204
        assert (await upload(server, ada, b"d" * 60)).status_code == 202


async def test_concurrent_uploads_per_user_are_capped(tmp_path: Path) -> None:
    async with open_server(tmp_path, files_concurrent_uploads=1) as server:
        ada, bob = await server.register("ada"), await server.register("bob")
        send, receive = trio.open_memory_channel[bytes](0)

        async def slow() -> AsyncIterator[bytes]:
            async for chunk in receive:
                yield chunk

        results: list[httpx.Response] = []
        async with trio.open_nursery() as nursery:

            async def first() -> None:
                results.append(await upload(server, ada, slow()))

            nursery.start_soon(first)
            await send.send(b"first part ")  # the first upload is now streaming
            await until(lambda: _streaming(server))
            assert_error(await upload(server, ada, TEXT), 429, "too_many_uploads")
            assert (await upload(server, bob, TEXT)).status_code == 202  # per user
            await send.send(b"last part\n")
            await send.aclose()
        assert results[0].status_code == 202, results[0].text
        assert (await upload(server, ada, TEXT)).status_code == 202  # the slot came back


async def _streaming(server: Server) -> bool:
    return any(path.suffix == ".part" for path in spool_of(server))


async def test_only_the_owner_sees_or_deletes_an_unattached_file(server: Server) -> None:
    ada, bob = await server.register("ada"), await server.register("bob")
    file_id = (await upload(server, ada, TEXT)).json()["id"]
    assert_error(await server.get(f"{FILES}/{file_id}", bob), 404, "not_found")
    assert_error(await server.delete(f"{FILES}/{file_id}", bob), 404, "not_found")
    assert (await server.delete(f"{FILES}/{file_id}", ada)).status_code == 204
    assert_error(await server.get(f"{FILES}/{file_id}", ada), 404, "not_found")
    assert_error(await server.get(f"{FILES}/nosuchfile", ada), 404, "not_found")


async def test_eicar_is_rejected_as_infected(tmp_path: Path, clamd: ClamdServer) -> None:
    settings = {"scanner": "clamd", "clamd_address": clamd.tcp_address}
    async with open_server(tmp_path, **settings) as server:
        ada = await server.register("ada")
        bad = await upload(server, ada, EICAR, name="eicar.txt")
        good = await upload(server, ada, TEXT)
        assert (await final(server, ada, bad.json()["id"]))["reason"] == "infected"
        clean = await final(server, ada, good.json()["id"])
        assert (clean["state"], clean["scan"]) == ("ready", "clean")


async def test_a_file_waits_scanning_while_clamd_is_down(
    tmp_path: Path, clamd: ClamdServer
) -> None:
    settings = {"scanner": "clamd", "clamd_address": clamd.tcp_address}
    async with open_server(tmp_path, **settings) as server:
        ada = await server.register("ada")
        await clamd.stop()
        file_id = (await upload(server, ada, TEXT)).json()["id"]

        async def scanning() -> bool:
            found = await server.services.store.get_file(file_id)
            return found is not None and found.state.value == "scanning"

        await until(scanning)
        await clamd.start()
        done = await final(server, ada, file_id, timeout=60)
        assert (done["state"], done["scan"]) == ("ready", "clean")


async def test_a_restarted_node_finishes_the_files_of_its_spool(tmp_path: Path) -> None:
    settings = node_settings(tmp_path)
    node = load_node_name(tmp_path)
    async with open_server(tmp_path) as server:
        ada = await server.register("ada")
    # As a node that stopped before checking them leaves them: one spooled, one lost.
    async with open_node_store(settings) as store:
        made = []
        for name in ("kept.txt", "lost.txt"):
            new = NewFile(
                owner_id=ada.id,
                name=name,
                declared_type="text/plain",
                size=len(TEXT),
                sha256=hashlib.sha256(TEXT).hexdigest(),
                node=node,
                created_at=now_ms(),
            )
            made.append(await store.create_file(new))
    (tmp_path / SPOOL_DIR / made[0].id).write_bytes(TEXT)
    async with open_server(tmp_path) as server:
        kept = await final(server, ada, made[0].id)
        lost = await final(server, ada, made[1].id)
    assert kept["state"] == "ready"
    assert (lost["state"], lost["reason"]) == ("rejected", "interrupted")
