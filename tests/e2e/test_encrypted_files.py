"""Files in encrypted DMs between SDK users on a real node (local disk, and S3 on moto).

The server stores what it is given; these tests read its storage directly
(the node's files dir, the moto bucket) to check it never held the
plaintext, and change it there, as a compromised server would, to check the
receiver refuses what it did not send.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from chorus import protocol
from chorus.actors.files import variant_key
from chorus.client import Event
from chorus.client.e2e import EncryptedFile, FileTampered, Secured
from chorus.node import FILES_DIR
from tests.e2e.node import RunningNode, chat_user, open_node
from tests.e2e.secure import SecureUser, secure_user
from tests.files.storage.conftest import s3_client
from tests.http.test_file_delivery import moto as moto  # a fixture: the files bucket on moto
from tests.s3server import S3_REGION, MotoServer

OCTETS = "application/octet-stream"


class Recorder:
    """A progress callback that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def __call__(self, done: int, total: int | None) -> None:
        self.calls.append((done, total))


def secret_file(folder: Path, marker: str) -> tuple[Path, bytes]:
    """A file of several upload chunks whose name and bytes carry `marker`."""
    data = secrets.token_bytes(150_000) + marker.encode() + secrets.token_bytes(50_000)
    path = folder / f"plan-{marker}.txt"
    path.write_bytes(data)
    return path, data


def with_files(room_id: str) -> Callable[[Event], bool]:
    """Finds an opened message of the room that carries encrypted files."""

    def found(event: Event) -> bool:
        return (
            isinstance(event, Secured)
            and isinstance(event.event, protocol.MessageEvent)
            and event.event.message.room == room_id
            and bool(event.files)
        )

    return found


async def received_file(user: SecureUser, room_id: str) -> tuple[Secured, EncryptedFile]:
    got = await user.wait_for(with_files(room_id))
    assert isinstance(got, Secured)
    [file] = got.files
    return got, file


@asynccontextmanager
async def ada_and_bob(
    tmp_path: Path, **settings: object
) -> AsyncIterator[tuple[RunningNode, SecureUser, SecureUser]]:
    async with (
        open_node(tmp_path / "node", **settings) as node,
        secure_user(node.http_url, node.gateway_url, tmp_path / "ada.keys") as ada,
        secure_user(node.http_url, node.gateway_url, tmp_path / "bob.keys") as bob,
    ):
        yield node, ada, bob


def stored_locally(node: RunningNode, file_id: str) -> Path:
    return node.node.settings.data_dir / FILES_DIR / variant_key(file_id, "original")


async def test_a_file_in_an_encrypted_dm_reaches_the_peer_and_the_server_holds_ciphertext(
    tmp_path: Path,
) -> None:
    marker = f"marker-{secrets.token_hex(16)}"
    path, data = secret_file(tmp_path, marker)
    async with ada_and_bob(tmp_path) as (node, ada, bob):
        dm = await ada.api.direct_room(bob.id, encrypted=True)
        await ada.client.join(dm.id)
        progress = Recorder()
        sent = await ada.client.send_file(dm.id, path, caption="the plan", progress=progress)
        assert (sent.body, progress.calls[-1]) == ("", (len(data), len(data)))
        got, file = await received_file(bob, dm.id)
        assert isinstance(got.event, protocol.MessageEvent)
        assert got.event.message.body == "the plan"
        assert (file.name, file.content_type, file.size) == (path.name, "text/plain", len(data))
        # The server's view: an opaque file with a neutral name, unscanned.
        [opaque] = got.event.message.attachments
        assert (opaque.id, opaque.name, opaque.content_type) == (file.id, "attachment", OCTETS)
        assert opaque.scan == "unscanned"
        downloads = tmp_path / "downloads"
        downloads.mkdir()
        saved = await bob.e2e.download_file(file, downloads)
        assert saved == downloads / path.name
        assert saved.read_bytes() == data
        assert [p.name for p in downloads.iterdir()] == [path.name]  # nothing else left
        # Ada's own copy opens too (her other devices would read it the same way).
        _, own = await received_file(ada, dm.id)
        assert (await ada.e2e.download_file(own, tmp_path / "mine")).read_bytes() == data
        stored = stored_locally(node, file.id).read_bytes()
        assert len(stored) == len(data)
        assert marker.encode() not in stored
        # Neither the bytes nor the name are anywhere in the node's data (database included).
        node_data = b"".join(p.read_bytes() for p in (tmp_path / "node").rglob("*") if p.is_file())
        assert file.id.encode() in node_data
        assert marker.encode() not in node_data


async def test_a_file_the_server_alters_is_refused_and_nothing_is_saved(tmp_path: Path) -> None:
    path, _ = secret_file(tmp_path, "altered")
    async with ada_and_bob(tmp_path) as (node, ada, bob):
        dm = await ada.api.direct_room(bob.id, encrypted=True)
        await ada.client.join(dm.id)
        await ada.client.send_file(dm.id, path)
        _, file = await received_file(bob, dm.id)
        stored = stored_locally(node, file.id)
        original = stored.read_bytes()
        downloads = tmp_path / "downloads"
        downloads.mkdir()
        for altered in (
            original[:100] + bytes([original[100] ^ 1]) + original[101:],
            original[:-1],
        ):
            stored.write_bytes(altered)
            with pytest.raises(FileTampered, match="SHA-256 differs"):
                await bob.e2e.download_file(file, downloads)
            assert list(downloads.iterdir()) == []  # neither plaintext nor ciphertext stays
        stored.write_bytes(original)
        assert (await bob.e2e.download_file(file, downloads)).exists()


async def test_files_in_s3_are_ciphertext_and_altered_objects_are_refused(
    tmp_path: Path, moto: MotoServer
) -> None:
    marker = f"marker-{secrets.token_hex(16)}"
    path, data = secret_file(tmp_path, marker)
    settings = {
        "storage": "s3",
        "s3_bucket": "files",
        "s3_region": S3_REGION,
        "s3_endpoint_url": moto.endpoint_url,
    }
    bucket = s3_client(moto)
    async with ada_and_bob(tmp_path, **settings) as (_, ada, bob):
        dm = await ada.api.direct_room(bob.id, encrypted=True)
        await ada.client.join(dm.id)
        await ada.client.send_file(dm.id, path, caption="in the bucket")
        _, file = await received_file(bob, dm.id)
        assert (await bob.e2e.download_file(file, tmp_path / "copy")).read_bytes() == data
        [key] = [item["Key"] for item in bucket.list_objects_v2(Bucket="files")["Contents"]]
        assert file.id in key
        stored = bucket.get_object(Bucket="files", Key=key)["Body"].read()
        assert len(stored) == len(data)
        assert marker.encode() not in stored
        bucket.put_object(Bucket="files", Key=key, Body=stored[::-1])
        with pytest.raises(FileTampered):
            await bob.e2e.download_file(file, tmp_path / "altered")
        assert not (tmp_path / "altered").exists()


async def test_an_edited_caption_keeps_the_files_readable(tmp_path: Path) -> None:
    path, data = secret_file(tmp_path, "edited")
    async with ada_and_bob(tmp_path) as (_, ada, bob):
        dm = await ada.api.direct_room(bob.id, encrypted=True)
        await ada.client.join(dm.id)
        sent = await ada.client.send_file(dm.id, path, caption="first caption")
        await received_file(bob, dm.id)
        await ada.client.edit(dm.id, sent.id, "better caption")
        # History shows a message's latest ciphertext: the edit's, which carries the keys.
        [event] = [e for e in await bob.api.events(dm.id) if isinstance(e, protocol.MessageEvent)]
        opened = await bob.e2e.open_event(event)
        assert isinstance(opened, Secured)
        assert isinstance(opened.event, protocol.MessageEvent)
        assert opened.event.message.body == "better caption"
        [file] = opened.files
        assert file.name == path.name
        assert (await bob.e2e.download_file(file, tmp_path / "copy")).read_bytes() == data
        assert await bob.e2e.files_of(dm.id, sent.id) == opened.files


async def test_each_kind_of_room_takes_its_own_kind_of_file(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"plain notes\n")
    async with ada_and_bob(tmp_path) as (node, ada, bob), chat_user(node) as carol:
        # A plain room: the same call uploads as ever (named, sniffed, scanned).
        lobby = await carol.api.create_room("lobby", "public")
        for user in (ada, carol):
            await user.api.join_room(lobby.id)
            await user.client.join(lobby.id)
        sent = await ada.client.send_file(lobby.id, notes, caption="notes")
        [file] = sent.attachments
        assert (file.name, file.content_type) == ("notes.txt", "text/plain")
        await carol.wait_for_messages(1, lobby.id)
        assert sent.encrypted is None
        copy = await carol.api.download_file(file.id, tmp_path / "copy.txt")
        assert copy.read_bytes() == b"plain notes\n"
        # An encrypted file cannot go to a plain room, nor a plain file to an encrypted one.
        sealed = await ada.e2e.upload_file(notes)
        await ada.client.wait_for_file(sealed.id)
        with pytest.raises(ValueError, match="encrypted room"):
            await ada.client.send(lobby.id, "", attachments=[sealed])
        dm = await ada.api.direct_room(bob.id, encrypted=True)
        plain = await ada.api.upload_file(notes)
        await ada.client.wait_for_file(plain.id)
        with pytest.raises(ValueError, match="encrypted room"):
            await ada.client.send(dm.id, "", attachments=[plain.id])
        # Attached where it belongs, the encrypted file opens.
        await ada.client.join(dm.id)
        await ada.client.send(dm.id, "", attachments=[sealed])
        _, got = await received_file(bob, dm.id)
        assert got == sealed
