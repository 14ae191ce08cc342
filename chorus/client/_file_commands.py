"""The `chorus chat` commands about files: `/upload PATH [caption]` and `/download`.

An upload is shown as it goes (a line per tenth sent), waits for the
server's check and posts a message with the file; a refused file is
explained, not posted.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import trio

from ._files import FileRejected, Progress
from ._http import HttpApi
from ._message_commands import Command, Unknown, UsageError
from ._models import Room
from ._realtime import RealtimeClient
from ._transcript import human_size

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
    _room: Room | None
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
        if room.encrypted:  # the server takes only encrypted files there (docs/e2e.md)
            raise Unknown("! files cannot be sent to an encrypted room from this client yet")
        path = await trio.Path(path_text).expanduser()
        if not await path.exists():
            raise Unknown(f"! no such file: {path}")
        if await path.is_dir():
            raise Unknown(f"! {path} is a directory: upload the files in it one by one")
        try:
            file = await self._api.upload_file(Path(path), progress=self._progress(path.name))
        except OSError as exc:
            raise Unknown(f"! cannot read {path}: {exc.strerror or exc}") from None
        self.say(f"checking {file.name}…")
        try:
            file = await self._client.wait_for_file(file.id, timeout=CHECK_TIMEOUT)
        except FileRejected as refused:
            why = WHY_REJECTED.get(refused.reason, refused.reason)
            raise Unknown(f"! {file.name} was refused: {why} ({refused.reason})") from None
        except TimeoutError:
            raise Unknown(
                f"! {file.name} is still being checked after {CHECK_TIMEOUT:g} s"
                " (is the server's virus scanner down?); it was not posted"
            ) from None
        await self._client.send(
            room.id, caption, client_id=secrets.token_hex(8), attachments=[file.id]
        )

    def _progress(self, name: str) -> Progress:
        """Says how far an upload got: at the start, each further tenth, and when sent."""
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

        return show

    async def _download(self, argument: str) -> None:
        what, _, dest = argument.partition(" ")
        if not what:
            raise UsageError
        directory = await trio.Path(dest.strip() or ".").expanduser()
        if not await directory.is_dir():
            raise Unknown(f"! {directory} is not a directory")
        if what.removeprefix("#").isdigit():
            room, message_id, _ = self._target(what)
            message = (await self._api.message(room, message_id)).message
            files = [file.id for file in message.attachments]
            if not files:
                raise Unknown(f"! message {what} has no files")
        else:
            files = [what]
        for file_id in files:
            try:
                saved = await self._api.download_file(file_id, Path(directory))
            except OSError as exc:
                raise Unknown(f"! cannot write in {directory}: {exc.strerror or exc}") from None
            self.say(f"saved {saved}")


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
