"""The uploader's connections are told with a `file` frame when a file is checked (issue #13)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio

from chorus import protocol
from chorus.client import HttpApi, RealtimeClient
from tests.clamdserver import EICAR, ClamdServer, running_clamd
from tests.files.samples import image_bytes
from tests.fixtures import open_test_node
from tests.http.conftest import PASSWORD

TEXT = b"quarterly figures\n"


@pytest.fixture
async def clamd() -> AsyncIterator[ClamdServer]:
    async with running_clamd() as server:
        yield server


@asynccontextmanager
async def uploader(
    tmp_path: Path, **settings: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, trio.MemoryReceiveChannel[protocol.FileUpdate]]]:
    """A node, a user connected over the WebSocket, an HTTP client with their token, and
    the `file` frames their connection gets."""
    async with open_test_node(tmp_path, **settings) as (_, addresses):
        assert addresses.http is not None
        assert addresses.gateway is not None
        base = "http://{}:{}".format(*addresses.http)
        async with HttpApi(base) as api, trio.open_nursery() as nursery:
            session = await api.register("ada", PASSWORD)
            gateway = "ws://{}:{}/".format(*addresses.gateway)
            client = RealtimeClient(api, gateway_url=gateway)
            with trio.fail_after(10):
                await nursery.start(client.run)
            send, receive = trio.open_memory_channel[protocol.FileUpdate](10)

            async def collect() -> None:
                async for event in client.events:
                    if isinstance(event, protocol.FileUpdate):
                        await send.send(event)

            nursery.start_soon(collect)
            auth = {"Authorization": f"Bearer {session.access_token}"}
            async with httpx.AsyncClient(base_url=f"{base}/api/v1", headers=auth) as http:
                yield http, receive
            nursery.cancel_scope.cancel()


async def post(http: httpx.AsyncClient, data: bytes, name: str, content_type: str) -> str:
    response = await http.post(
        "/files", params={"name": name}, content=data, headers={"Content-Type": content_type}
    )
    assert response.status_code == 202, response.text
    file_id: str = response.json()["id"]
    return file_id


async def next_frame(
    frames: trio.MemoryReceiveChannel[protocol.FileUpdate], timeout: float = 30
) -> protocol.FileInfo:
    with trio.fail_after(timeout):
        return (await frames.receive()).file


async def test_the_uploader_is_told_when_a_file_is_ready(tmp_path: Path) -> None:
    async with uploader(tmp_path) as (http, frames):
        file_id = await post(http, image_bytes((640, 480), "JPEG"), "photo.jpg", "image/jpeg")
        told = await next_frame(frames)
        assert (told.id, told.state, told.scan) == (file_id, "ready", "unscanned")
        assert [t.name for t in told.thumbnails] == ["320"]
        # The frame's file is the HTTP API's view of it, field for field.
        shown = (await http.get(f"/files/{file_id}")).json()
        assert orjson.loads(protocol.encode(protocol.FileUpdate(file=told)))["file"] == shown


async def test_eicar_is_rejected_and_the_reason_told_over_the_websocket(
    tmp_path: Path, clamd: ClamdServer
) -> None:
    settings = {"scanner": "clamd", "clamd_address": clamd.tcp_address}
    async with uploader(tmp_path, **settings) as (http, frames):
        bad = await post(http, EICAR, "invoice.txt", "text/plain")
        told = await next_frame(frames)
        assert (told.id, told.state, told.reason) == (bad, "rejected", "infected")
        good = await post(http, TEXT, "figures.txt", "text/plain")
        told = await next_frame(frames)
        assert (told.id, told.state, told.scan) == (good, "ready", "clean")
