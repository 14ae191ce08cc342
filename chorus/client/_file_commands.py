"""The `chorus chat` commands about files: `/upload PATH [caption]` and `/download`.

An upload is shown as it goes (a line per tenth sent), waits for the
server's check and posts a message with the file; a refused file is
explained, not posted. In an encrypted room the file is encrypted before
it leaves, and `/download` decrypts it (after checking it is the file its
sender sent).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import trio

from chorus import protocol

from ._e2e_commands import NO_KEYS
from ._files import FileRejected, Progress
from ._http import HttpApi
from ._message_commands import Command, Unknown, UsageError
from ._models import Room
from ._realtime import RealtimeClient
from ._transcript import human_size
from .e2e import E2EClient, EncryptedFile, FileTampered, Secured

CHECK_TIMEOUT = 120.0
"""Seconds `/upload` waits for the server's check (a scanner that is down holds files)."""

WHY_REJECTED = {
    "infected": "a virus scanner found malware in it",
    "type_not_allowed": "files of this type are not accepted",
    "type_mismatch": "its content is not of the type it claims",
    "empty": "it is empty",
    "image_too_large": "the image has too many pixels",
    "too_many_frames": "the animation has too many frames",
    "image_invalid": "the image is damaged or not an image",
    "interrupted": "the upload was interrupted; try again",
}
"""What each rejection reason means to the person who uploaded the file."""


class FileCommands:
    """Mixed into `Terminal`, which provides the state declared here."""

    _api: HttpApi
    _client: RealtimeClient
    _e2e: E2EClient | None
    _room: Room | None
    _sealed_files: dict[str, EncryptedFile]
    """The encrypted files of the messages shown, by id: `/download FILE_ID` needs their keys."""
    say: Callable[[str], None]
    _target: Callable[..., tuple[str, str, str]]
    _current: Callable[[str], Room]

    def file_commands(self) -> dict[str, Command]:
        return {
            "/upload": Command(
                "/upload PATH [CAPTION]",
                "send a file to the current room (quote a PATH with spaces)",
                self._upload,
            ),
            "/download": Command(
                "/download N|FILE_ID [DIR]",
                "save the files of message #N (or one file) in DIR (default: here)",
                self._download,
            ),
        }

    async def _upload(self, argument: str) -> None:
        path_text, caption = split_path(argument)
        room = self._current("")
        if room.encrypted and self._e2e is None:  # it takes encrypted files only
            raise Unknown(f"! {NO_KEYS}")
        path = await trio.Path(path_text).expanduser()
        if not await path.exists():
            raise Unknown(f"! no such file: {path}")
        if await path.is_dir():
            raise Unknown(f"! {path} is a directory: upload the files in it one by one")
        # The server checks plain files once they are in; encrypted ones it cannot read.
        checking = None if room.encrypted else f"checking {path.name}…"
        try:
            await self._client.send_file(
                room.id,
                Path(path),
                caption=caption,
                client_id=secrets.token_hex(8),
                progress=self._progress(path.name, then=checking),
                timeout=CHECK_TIMEOUT,
            )
        except FileRejected as refused:
            why = WHY_REJECTED.get(refused.reason, refused.reason)
            raise Unknown(f"! {path.name} was refused: {why} ({refused.reason})") from None
        except TimeoutError:  # before OSError, which it is a kind of
            raise Unknown(
                f"! {path.name} is still being checked after {CHECK_TIMEOUT:g} s"
                " (is the server's virus scanner down?); it was not posted"
            ) from None
        except OSError as exc:
            raise Unknown(f"! cannot read {path}: {exc.strerror or exc}") from None

    def _progress(self, name: str, *, then: str | None = None) -> Progress:
        """Says how far an upload got: at the start, each further tenth, and when sent
        (followed by `then`)."""
        shown = -1

        def show(sent: int, total: int | None) -> None:
            nonlocal shown
            if total is None:  # a pipe: only the start and the end are known
                if sent == 0:
                    self.say(f"uploading {name}…")
                return
            tenth = 10 if total == 0 else sent * 10 // total
            if tenth > shown:
                shown = tenth
                self.say(f"uploading {name}… {tenth * 10}% of {human_size(total)}")
                if tenth == 10 and then is not None:
                    self.say(then)

        return show

    async def _download(self, argument: str) -> None:
        what, _, dest = argument.partition(" ")
        if not what:
            raise UsageError
        directory = await trio.Path(dest.strip() or ".").expanduser()
        if not await directory.is_dir():
            raise Unknown(f"! {directory} is not a directory")
        files: list[str | EncryptedFile]
        if what.removeprefix("#").isdigit():
            room, message_id, _ = self._target(what)
            message = (await self._api.message(room, message_id)).message
            if not message.attachments:
                raise Unknown(f"! message {what} has no files")
            if message.encrypted is not None:
                files = list(await self._sealed_files_of(what, message))
            else:
                files = [file.id for file in message.attachments]
        else:
            files = [self._sealed_files.get(what, what)]
        for file in files:
            try:
                if isinstance(file, EncryptedFile):
                    assert self._e2e is not None  # it was opened with it
                    saved = await self._e2e.download_file(file, Path(directory))
                else:
                    saved = await self._api.download_file(file, Path(directory))
            except FileTampered:
                assert isinstance(file, EncryptedFile)  # only those are checked
                self.say(f"! {file.name} was altered on the server: not saved (tampered)")
                continue
            except OSError as exc:
                raise Unknown(f"! cannot write in {directory}: {exc.strerror or exc}") from None
            self.say(f"saved {saved}")

    async def _sealed_files_of(
        self, what: str, message: protocol.Message
    ) -> tuple[EncryptedFile, ...]:
        """The files of a message of an encrypted room, with their keys (from its ciphertext)."""
        if self._e2e is None:
            raise Unknown(f"! {NO_KEYS}")
        opened = await self._e2e.open_event(protocol.MessageEvent(message=message))
        if not isinstance(opened, Secured) or opened.problem is not None:
            problem = opened.problem if isinstance(opened, Secured) else "malformed"
            raise Unknown(f"! message {what} could not be decrypted ({problem})")
        if not opened.files:
            raise Unknown(f"! message {what} carries no key for its files")
        return opened.files


def split_path(argument: str) -> tuple[str, str]:
    """`PATH rest` or `"PATH with spaces" rest` -> (PATH, rest); `UsageError` if no PATH."""
    argument = argument.strip()
    quote = argument[:1]
    if quote in ("'", '"'):
        path, closed, rest = argument[1:].partition(quote)
        if not closed:
            raise UsageError
    else:
        path, _, rest = argument.partition(" ")
    if not path:
        raise UsageError
    return path, rest.strip()
