"""The SDK's files against a real node: streamed uploads with progress, checks, downloads."""

from __future__ import annotations

import functools
import io
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
import trio
from PIL import Image

from chorus import protocol
from chorus.actors.files import variant_key
from chorus.client import CHUNK_BYTES, ApiError, FileRejected, HttpApi
from chorus.node import FILES_DIR
from tests.e2e.node import PASSWORD, RunningNode, chat_user, open_node
from tests.files.samples import executable, image_bytes
from tests.http.test_file_delivery import moto as moto  # a fixture: the files bucket on moto
from tests.polling import until
from tests.ports import free_port
from tests.s3server import S3_REGION, MotoServer

MIB = 1024 * 1024


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[RunningNode]:
    async with open_node(tmp_path / "node") as node:
        yield node


class Recorder:
    """A progress callback that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def __call__(self, done: int, total: int | None) -> None:
        self.calls.append((done, total))

    def assert_complete(self, size: int, total: int | None) -> None:
        """Called from 0 up to `size`, never going down, each time with `total`."""
        done = [call[0] for call in self.calls]
        assert done[0] == 0
        assert done[-1] == size
        assert done == sorted(done)
        assert {call[1] for call in self.calls} == {total}


class Generated(io.RawIOBase):
    """`size` bytes of text made as they are read, from a source that cannot seek (a pipe's
    kind): nothing tells its size beforehand and it can only be read once."""

    def __init__(self, size: int) -> None:
        self._left = size
        self.largest_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self._left)
        self.largest_read = max(self.largest_read, count)
        buffer[:count] = (b"all work and no play\n" * (count // 21 + 1))[:count]
        self._left -= count
        return count


def stored(running: RunningNode, file_id: str, variant: str = "original") -> bytes:
    """The bytes the node kept (local storage): what it serves."""
    data_dir = running.node.settings.data_dir
    return (data_dir / FILES_DIR / variant_key(file_id, variant)).read_bytes()


async def test_an_upload_from_a_path_is_streamed_with_progress(
    running: RunningNode, tmp_path: Path
) -> None:
    path = tmp_path / "minutes.txt"
    path.write_bytes(b"the meeting went well\n" * (5 * MIB // 22))
    size = path.stat().st_size
    progress = Recorder()
    async with chat_user(running) as ada:
        file = await ada.api.upload_file(path, progress=progress)
        assert (file.name, file.size, file.state) == ("minutes.txt", size, "pending")
        progress.assert_complete(size, size)
        # One call per chunk read and sent: the file went in pieces, never whole.
        assert len(progress.calls) == 1 + -(-size // CHUNK_BYTES)
        ready = await ada.client.wait_for_file(file.id)
        assert (ready.state, ready.content_type, ready.scan) == ("ready", "text/plain", "unscanned")
        assert stored(running, file.id) == path.read_bytes()


async def test_an_upload_of_unknown_size_is_streamed_from_a_file_object(
    running: RunningNode,
) -> None:
    generated = Generated(3 * MIB)
    source = io.BufferedReader(generated)
    progress = Recorder()
    async with chat_user(running) as ada:
        file = await ada.api.upload_file(source, name="log.txt", progress=progress)
        assert (file.name, file.size) == ("log.txt", 3 * MIB)
        progress.assert_complete(3 * MIB, None)
        assert len(progress.calls) >= 3 * MIB // CHUNK_BYTES
        assert generated.largest_read <= CHUNK_BYTES
        assert (await ada.api.wait_for_file(file.id)).state == "ready"


async def test_an_image_is_ready_with_its_dimensions_and_thumbnails(running: RunningNode) -> None:
    async with chat_user(running) as ada:
        png = io.BytesIO(image_bytes((1600, 900), "PNG"))
        file = await ada.api.upload_file(png, name="sunset.png", content_type="image/png")
        told = await ada.client.wait_for_file(file.id)
        assert (told.state, told.width, told.height) == ("ready", 1600, 900)
        assert [t.name for t in told.thumbnails] == ["320", "1280"]
        # The connection was told with a `file` frame, which the application sees too.
        frame = await ada.wait_for(lambda e: isinstance(e, protocol.FileUpdate))
        assert isinstance(frame, protocol.FileUpdate)
        assert frame.file == told
        # Polling, without the connection, finds the same.
        assert await ada.api.wait_for_file(file.id) == told


@pytest.mark.parametrize("waiter", ["realtime", "http"])
async def test_a_rejected_file_raises_with_its_reason(
    running: RunningNode, tmp_path: Path, waiter: str
) -> None:
    async with chat_user(running) as ada:
        file = await ada.api.upload_file(executable(tmp_path / "holiday.png"))
        wait = ada.client.wait_for_file if waiter == "realtime" else ada.api.wait_for_file
        with pytest.raises(FileRejected, match=r"holiday\.png was rejected: type_not_allowed") as e:
            await wait(file.id)
        assert e.value.reason == "type_not_allowed"
        assert (e.value.file.id, e.value.file.state) == (file.id, "rejected")


async def test_waiting_for_a_file_gives_up_at_its_deadline(tmp_path: Path) -> None:
    # Nothing listens where clamd should: files stay `scanning` (fail closed).
    clamd_down = {"scanner": "clamd", "clamd_address": f"tcp://127.0.0.1:{free_port()}"}
    async with open_node(tmp_path, **clamd_down) as running, chat_user(running) as ada:
        file = await ada.api.upload_file(io.BytesIO(b"x" * 10), name="a.txt")
        with pytest.raises(TimeoutError, match=r"a\.txt is still (pending|scanning) after 0\.5 s"):
            await ada.client.wait_for_file(file.id, timeout=0.5)
        with pytest.raises(TimeoutError, match=r"a\.txt is still scanning after 0\.5 s"):
            await ada.api.wait_for_file(file.id, timeout=0.5)


async def test_a_download_is_the_processed_file(running: RunningNode, tmp_path: Path) -> None:
    async with chat_user(running) as ada:
        jpeg = io.BytesIO(image_bytes((2000, 1000), "JPEG"))
        file = await ada.api.upload_file(jpeg, name="../../photo.jpg")
        await ada.client.wait_for_file(file.id)
        downloads = tmp_path / "downloads"
        downloads.mkdir()
        progress = Recorder()
        saved = await ada.api.download_file(file.id, downloads, progress=progress)
        assert saved.parent == downloads  # under its (sanitised) name, never outside
        assert saved.read_bytes() == stored(running, file.id)
        progress.assert_complete(saved.stat().st_size, saved.stat().st_size)
        assert list(downloads.iterdir()) == [saved]  # no .part left
        thumbnail = await ada.api.download_file(file.id, tmp_path / "small.jpg", variant="320")
        assert thumbnail.read_bytes() == stored(running, file.id, "320")
        with Image.open(thumbnail) as image:
            assert image.size == (320, 160)


async def test_a_download_from_s3_is_the_stored_object(tmp_path: Path, moto: MotoServer) -> None:
    settings = {
        "storage": "s3",
        "s3_bucket": "files",
        "s3_region": S3_REGION,
        "s3_endpoint_url": moto.endpoint_url,
    }
    async with open_node(tmp_path / "node", **settings) as running, chat_user(running) as ada:
        data = b"kept in a bucket\n" * 10_000
        file = await ada.api.upload_file(io.BytesIO(data), name="bucket.txt")
        await ada.client.wait_for_file(file.id)
        assert (await ada.api.file_url(file.id)).startswith(moto.endpoint_url)
        saved = await ada.api.download_file(file.id, tmp_path / "copy.txt")
        assert saved.read_bytes() == data


async def test_files_are_sent_as_attachments_and_the_room_can_fetch_them(
    running: RunningNode, tmp_path: Path
) -> None:
    async with chat_user(running) as ada, chat_user(running) as bob:
        room = await ada.api.create_room("general", "public")
        await ada.client.join(room.id)
        await bob.api.join_room(room.id)
        await bob.client.join(room.id)
        photo = await ada.api.upload_file(io.BytesIO(image_bytes((500, 400), "PNG")), name="a.png")
        photo = await ada.client.wait_for_file(photo.id)
        sent = await ada.client.send(room.id, "", attachments=[photo.id])
        assert (sent.body, sent.attachments) == ("", (photo,))
        await bob.wait_for_messages(1, room.id)
        assert bob.messages(room.id)[0].attachments == (photo,)
        # A member of the room may now fetch it, as its uploader could.
        saved = await bob.api.download_file(photo.id, tmp_path / "seen-by-bob.png")
        assert saved.read_bytes() == stored(running, photo.id)
        notes = await ada.api.upload_file(io.BytesIO(b"agenda\n"), name="agenda.txt")
        notes = await ada.api.wait_for_file(notes.id)
        posted = await ada.api.post(room.id, "over HTTP", "c-1", attachments=[notes.id])
        assert (posted.body, [f.name for f in posted.attachments]) == ("over HTTP", ["agenda.txt"])


async def test_a_file_not_checked_yet_cannot_be_attached(tmp_path: Path) -> None:
    clamd_down = {"scanner": "clamd", "clamd_address": f"tcp://127.0.0.1:{free_port()}"}
    async with open_node(tmp_path, **clamd_down) as running, chat_user(running) as ada:
        room = await ada.api.create_room("general", "public")
        await ada.client.join(room.id)
        file = await ada.api.upload_file(io.BytesIO(b"not yet\n"), name="wait.txt")
        with pytest.raises(ApiError) as refused:
            await ada.client.send(room.id, "too soon", attachments=[file.id])
        assert refused.value.code == "file_not_ready"


async def test_a_file_too_large_is_refused_with_its_code(tmp_path: Path) -> None:
    async with open_node(tmp_path, files_max_bytes=MIB) as running, chat_user(running) as ada:
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(MIB + 1))
        with pytest.raises(ApiError) as refused:
            await ada.api.upload_file(big)
        assert (refused.value.status, refused.value.code) == (413, "file_too_large")
        # Without a size known beforehand, refused as soon as the stream passes the limit.
        with pytest.raises(ApiError) as refused:
            await ada.api.upload_file(io.BufferedReader(Generated(2 * MIB)), name="endless.txt")
        assert (refused.value.status, refused.value.code) == (413, "file_too_large")


class Held(io.RawIOBase):
    """One chunk, then reads wait until `release` (an upload in progress, held open)."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self._first = True

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._first:
            self._first = False
            buffer[:10] = b"held open\n"
            return 10
        self.released.wait(30)
        return 0


async def test_one_upload_too_many_is_refused_with_its_code(tmp_path: Path) -> None:
    async with (
        open_node(tmp_path, files_concurrent_uploads=1) as running,
        chat_user(running) as ada,
        trio.open_nursery() as nursery,
    ):
        held = Held()
        nursery.start_soon(
            functools.partial(ada.api.upload_file, io.BufferedReader(held), name="slow.txt")
        )
        try:
            spool = running.node.services.files.spool_dir

            async def streaming() -> bool:  # the held upload took the one slot
                return any(path.suffix == ".part" for path in spool.iterdir())

            await until(streaming)
            with pytest.raises(ApiError) as refused:
                await ada.api.upload_file(io.BytesIO(b"quick\n"), name="quick.txt")
            assert (refused.value.status, refused.value.code) == (429, "too_many_uploads")
        finally:
            held.released.set()


async def test_an_upload_without_a_type_is_refused_with_its_code(running: RunningNode) -> None:
    async with chat_user(running) as ada:
        with pytest.raises(ApiError) as refused:
            await ada.api.upload_file(io.BytesIO(b"typeless\n"), name="x", content_type="")
        assert (refused.value.status, refused.value.code) == (415, "unsupported_media_type")


async def test_past_the_quota_an_upload_is_refused(tmp_path: Path) -> None:
    async with open_node(tmp_path, files_quota_bytes=100) as running, chat_user(running) as ada:
        await ada.api.upload_file(io.BytesIO(b"a" * 60), name="one.txt")
        with pytest.raises(ApiError) as refused:
            await ada.api.upload_file(io.BytesIO(b"b" * 60), name="two.txt")
        assert (refused.value.status, refused.value.code) == (413, "quota_exceeded")


async def test_an_expired_token_is_refreshed_and_the_upload_sent_again(
    running: RunningNode,
) -> None:
    async with HttpApi(running.http_url) as api:
        await api.register("ada", PASSWORD)
        assert api.session is not None
        fresh_refresh = api.session.refresh_token
        api.session = attrs.evolve(api.session, access_token="not-a-token")
        data = io.BytesIO(b"second time lucky\n")
        file = await api.upload_file(data, name="retry.txt")
        assert file.size == len(b"second time lucky\n")
        assert api.session.refresh_token != fresh_refresh


async def test_file_urls_start_with_the_public_url(tmp_path: Path) -> None:
    public = "https://chat.example.com/chorus"
    async with open_node(tmp_path, public_url=public) as running, chat_user(running) as ada:
        file = await ada.api.upload_file(io.BytesIO(b"hello\n"), name="hello.txt")
        await ada.client.wait_for_file(file.id)
        url = await ada.api.file_url(file.id)
        assert url.startswith(f"{public}/files/{file.id}/original?")
