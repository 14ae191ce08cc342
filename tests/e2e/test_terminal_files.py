"""`chorus chat` with files: `/upload`, attachments in the transcript, `/download` (issue #13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chorus import protocol
from chorus.client import _file_commands
from tests.e2e.node import ChatUser, open_node
from tests.e2e.test_terminal import NEW_ACCOUNT, bob_in_general, chatting
from tests.files.samples import executable, image_bytes
from tests.ports import free_port

NOTES = b"1. ship it\n2. celebrate\n"


def only_message(user: ChatUser, room_id: str) -> protocol.Message:
    [message] = user.messages(room_id)
    return message


async def test_upload_posts_the_file_with_its_caption(tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(image_bytes((800, 600), "PNG"))
    async with bob_in_general(tmp_path / "node") as (ada, room, keyboard, screen):
        keyboard.type(f"/upload {logo} our new logo")
        await screen.wait_for("uploading logo.png… 0% of ")
        await screen.wait_for("uploading logo.png… 100% of ")
        await screen.wait_for("checking logo.png…")
        await ada.wait_for_messages(1, room.id)
        message = only_message(ada, room.id)
        assert message.body == "our new logo"
        [file] = message.attachments
        assert (file.name, file.state, file.width, file.height) == ("logo.png", "ready", 800, 600)
        # bob's own message comes back to him with the file under it
        await screen.wait_for("bob: our new logo\n    [file] logo.png, ")
        await screen.wait_for(f", image/png, 800x600 ({file.id})")


async def test_a_file_with_spaces_in_its_path_and_no_caption(tmp_path: Path) -> None:
    notes = tmp_path / "meeting notes.txt"
    notes.write_bytes(NOTES)
    async with bob_in_general(tmp_path / "node") as (ada, room, keyboard, screen):
        keyboard.type(f'/upload "{notes}"')
        await ada.wait_for_messages(1, room.id)
        message = only_message(ada, room.id)
        assert message.body == ""
        assert [f.name for f in message.attachments] == ["meeting notes.txt"]
        await screen.wait_for(f"[file] meeting notes.txt, {len(NOTES)} B, text/plain (")


async def test_a_refused_file_is_explained_and_not_posted(tmp_path: Path) -> None:
    disguised = executable(tmp_path / "cat.png")
    async with bob_in_general(tmp_path / "node") as (ada, room, keyboard, screen):
        keyboard.type(f"/upload {disguised} look at my cat")
        await screen.wait_for(
            "! cat.png was refused: files of this type are not accepted (type_not_allowed)"
        )
        keyboard.type("sorry, wrong file")
        await ada.wait_for_messages(1, room.id)
        assert only_message(ada, room.id).body == "sorry, wrong file"  # nothing came before


async def test_paths_that_cannot_be_uploaded_are_told_clearly(tmp_path: Path) -> None:
    async with bob_in_general(tmp_path / "node") as (ada, room, keyboard, screen):
        keyboard.type(f"/upload {tmp_path / 'nowhere.pdf'}")
        await screen.wait_for(f"! no such file: {tmp_path / 'nowhere.pdf'}")
        keyboard.type(f"/upload {tmp_path}")
        await screen.wait_for(f"! {tmp_path} is a directory")
        # Readable by nobody, not even root: reading the start of one's memory fails.
        keyboard.type("/upload /proc/self/mem")
        await screen.wait_for("! cannot read /proc/self/mem: ")
        keyboard.type("/upload")
        await screen.wait_for("usage: /upload PATH [CAPTION]")
        keyboard.type("still here")
        await ada.wait_for_messages(1, room.id)
        assert only_message(ada, room.id).body == "still here"


async def test_a_file_held_by_a_scanner_that_is_down_is_not_posted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_file_commands, "CHECK_TIMEOUT", 0.5)
    notes = tmp_path_file(tmp_path, "notes.txt", NOTES)
    clamd_down = {"scanner": "clamd", "clamd_address": f"tcp://127.0.0.1:{free_port()}"}
    async with (
        open_node(tmp_path / "node", **clamd_down) as running,
        chatting(running, "bob", *NEW_ACCOUNT) as (keyboard, screen),
    ):
        keyboard.type("/create general")
        await screen.wait_for("== general ==")
        keyboard.type(f"/upload {notes}")
        await screen.wait_for(
            "! notes.txt is still being checked after 0.5 s (is the server's virus scanner"
            " down?); it was not posted"
        )
        keyboard.type("/help")  # the chat goes on
        await screen.wait_for("/upload PATH [CAPTION]")


async def test_attachments_show_in_history_and_download(tmp_path: Path) -> None:
    async with bob_in_general(tmp_path / "node") as (ada, room, keyboard, screen):
        notes = await ada.api.upload_file(tmp_path_file(tmp_path, "notes.txt", NOTES))
        photo = await ada.api.upload_file(
            tmp_path_file(tmp_path, "photo.jpg", image_bytes((400, 300), "JPEG"))
        )
        for file in (notes, photo):
            await ada.client.wait_for_file(file.id)
        await ada.client.send(room.id, "minutes and a photo", attachments=[notes.id, photo.id])
        await screen.wait_for("ada: minutes and a photo\n")
        await screen.wait_for(f"    [file] notes.txt, {len(NOTES)} B, text/plain ({notes.id})\n")
        await screen.wait_for("    [file] photo.jpg, ")
        await screen.wait_for(f", image/jpeg, 400x300 ({photo.id})\n")
        screen.clear()
        keyboard.type("/history")
        await screen.wait_for(f"    [file] notes.txt, {len(NOTES)} B, text/plain ({notes.id})\n")
        downloads = tmp_path / "downloads"
        downloads.mkdir()
        keyboard.type(f"/download 1 {downloads}")
        await screen.wait_for(f"saved {downloads / 'photo.jpg'}")
        assert (downloads / "notes.txt").read_bytes() == NOTES
        keyboard.type(f"/download {notes.id} {tmp_path}")
        await screen.wait_for(f"saved {tmp_path / 'notes.txt'}")
        keyboard.type("/download 1 /no/such/dir")
        await screen.wait_for("! /no/such/dir is not a directory")


async def test_help_lists_the_file_commands(tmp_path: Path) -> None:
    async with bob_in_general(tmp_path / "node") as (_, _, keyboard, screen):
        keyboard.type("/help")
        await screen.wait_for("/upload PATH [CAPTION]")
        await screen.wait_for("/download N|FILE_ID [DIR]")


def tmp_path_file(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path
