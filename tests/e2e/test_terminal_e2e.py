"""`chorus chat` with end-to-end encryption: `/edm`, the locks, `/verify`, and the key file."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from chorus.actors.files import variant_key
from chorus.client import HttpApi
from chorus.client.e2e import KeyStore, Trust
from chorus.client.terminal import key_file_for, run_chat
from chorus.node import FILES_DIR
from tests.cli.test_serve import CHORUS
from tests.e2e.node import PASSWORD, RunningNode, open_node
from tests.e2e.secure import SecureUser, secure_user
from tests.e2e.test_terminal import NEW_ACCOUNT, Keyboard, Screen

PASSPHRASE = "bob's key-file passphrase"


@asynccontextmanager
async def chatting_securely(
    running: RunningNode, key_dir: Path, username: str, *answers: str
) -> AsyncIterator[tuple[Keyboard, Screen]]:
    """`chorus chat` with encryption on (keys in `key_dir`); /quit when the block ends."""
    keyboard, screen = Keyboard(), Screen()
    for answer in answers:
        keyboard.type(answer)
    chat = functools.partial(run_chat, key_dir=key_dir)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(chat, running.http_url, username, keyboard, screen)
        await screen.wait_for("/help lists the commands")
        yield keyboard, screen
        keyboard.type("/quit")


@asynccontextmanager
async def ada_and_bob(
    tmp_path: Path,
) -> AsyncIterator[tuple[RunningNode, SecureUser, Keyboard, Screen]]:
    """A node, ada on the SDK with encryption, bob newly registered in `chorus chat`."""
    async with (
        open_node(tmp_path / "node") as running,
        secure_user(running.http_url, running.gateway_url, tmp_path / "ada.keys", "ada") as ada,
        chatting_securely(running, tmp_path / "keys", "bob", *NEW_ACCOUNT, PASSPHRASE) as (
            keyboard,
            screen,
        ),
    ):
        yield running, ada, keyboard, screen


async def test_verify_shows_the_code_both_compare_and_marks_the_device_verified(
    tmp_path: Path,
) -> None:
    async with ada_and_bob(tmp_path) as (_, ada, keyboard, screen):
        bob_id = (await ada.api.user_by_name("bob")).id
        [bob_device] = await ada.e2e.devices(bob_id)
        keyboard.type("/verify ada")
        await screen.wait_for(bob_device.code.emoji_line())  # what ada's side shows too
        await screen.wait_for(bob_device.code.safety_number)
        await screen.wait_for("see the same on their screen")
        keyboard.type("y")
        await screen.wait_for(f"🔒 {ada.e2e.device_id} is verified")
        keyboard.type("/verify ada")
        await screen.wait_for(f"{ada.e2e.device_id} chorus-sdk: verified")
        server = ada.api.base_url
    # The verification was saved in bob's key file, sealed with his passphrase.
    state = KeyStore(key_file_for(tmp_path / "keys", server, "bob"), PASSPHRASE).load()
    assert state is not None
    assert [ada.id, ada.e2e.device_id, ada.e2e.machine.ed25519] in state["verified"]


async def test_an_encrypted_dm_shows_the_lock_and_the_senders_trust(tmp_path: Path) -> None:
    async with ada_and_bob(tmp_path) as (_, ada, keyboard, screen):
        keyboard.type("/edm ada")
        await screen.wait_for("🔒 encrypted, 1 unverified device(s): /verify NAME")
        keyboard.type("psst, ada")
        [dm] = [room for room in await ada.api.my_rooms() if room.encrypted]
        assert (await ada.wait_for_text(dm.id, "psst, ada")).trust is Trust.UNVERIFIED
        await ada.client.send(dm.id, "hello bob")
        await screen.wait_for("ada: hello bob")
        keyboard.type("/verify ada")
        await screen.wait_for("see the same on their screen")
        keyboard.type("y")
        await screen.wait_for("is verified")
        await ada.client.send(dm.id, "verified now")
        await screen.wait_for("ada: verified now")
        lines = screen.getvalue().splitlines()
        assert next(line for line in lines if "ada: hello bob" in line).startswith("🔒? ")
        assert next(line for line in lines if "ada: verified now" in line).startswith("🔒 ")


async def test_the_chorus_chat_command_keeps_the_keys_in_its_keys_dir(tmp_path: Path) -> None:
    async with open_node(tmp_path / "node") as running:
        argv = [*CHORUS, "chat", "--server", running.http_url, "--user", "bob"]
        argv += ["--keys-dir", str(tmp_path / "keys")]
        answers = "\n".join([*NEW_ACCOUNT, PASSPHRASE, "/quit", ""]).encode()
        with trio.fail_after(60):
            done = await trio.run_process(argv, stdin=answers, capture_stdout=True, check=False)
        assert done.returncode == 0, done.stdout.decode()
        assert b"Hello bob!" in done.stdout
        key_file = key_file_for(tmp_path / "keys", running.http_url, "bob")
        state = await trio.to_thread.run_sync(KeyStore(key_file, PASSPHRASE).load)
        assert state is not None
        async with HttpApi(running.http_url) as api:
            await api.login("bob", PASSWORD)
            [device] = await api.my_devices()  # registered by that run, still listed
        assert device["device_id"] == state["device_id"]


async def test_files_go_encrypted_both_ways_and_download_checks_and_decrypts(
    tmp_path: Path,
) -> None:
    ada_file = tmp_path / "for bob.txt"
    ada_file.write_bytes(b"from ada\n" * 20_000)
    bob_file = tmp_path / "for-ada.txt"
    bob_file.write_bytes(b"from bob\n" * 100)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    async with ada_and_bob(tmp_path) as (running, ada, keyboard, screen):
        keyboard.type("/edm ada")
        await screen.wait_for("🔒 encrypted, 1 unverified device(s)")
        [dm] = [room for room in await ada.api.my_rooms() if room.encrypted]
        await ada.client.join(dm.id)
        sent = await ada.client.send_file(dm.id, ada_file, caption="the notes")
        [opaque] = sent.attachments
        # Shown with the name and type the message gives, not the server's "attachment".
        await screen.wait_for("ada: the notes\n")
        await screen.wait_for(f"    [file] 🔒 for bob.txt, 176 KiB, text/plain ({opaque.id})\n")
        keyboard.type(f"/download 1 {downloads}")
        await screen.wait_for(f"saved {downloads / 'for bob.txt'}")
        assert (downloads / "for bob.txt").read_bytes() == ada_file.read_bytes()
        keyboard.type(f"/download {opaque.id} {tmp_path}")  # by id: its key was shown with it
        await screen.wait_for(f"saved {tmp_path / 'for bob.txt'}")
        # The server alters the stored bytes: refused, nothing saved.
        stored = running.node.settings.data_dir / FILES_DIR / variant_key(opaque.id, "original")
        # Its first byte flipped: a zero byte written over it would change nothing one
        # time in 256 (the bytes are ciphertext).
        original = stored.read_bytes()
        stored.write_bytes(bytes([original[0] ^ 0xFF]) + original[1:])
        (downloads / "for bob.txt").unlink()
        keyboard.type(f"/download 1 {downloads}")
        await screen.wait_for("! for bob.txt was altered on the server: not saved (tampered)")
        assert list(downloads.iterdir()) == []
        # Bob's upload is encrypted before it leaves, with progress, and no server check.
        keyboard.type(f"/upload {bob_file} back to you")
        await screen.wait_for("uploading for-ada.txt… 100% of 900 B")
        got = await ada.wait_for_text(dm.id, "back to you")
        [file] = got.files
        assert file.name == "for-ada.txt"
        copy = await ada.e2e.download_file(file, tmp_path / "copy.txt")
        assert copy.read_bytes() == bob_file.read_bytes()
        assert "checking for-ada.txt" not in screen.getvalue()
