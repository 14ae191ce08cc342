"""What `chorus chat` prints for each event, and the `#N` handles users type to name a message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from chorus import protocol
from chorus.text import printable

from .e2e import EncryptedFile

Say = Callable[[str], None]
NameOf = Callable[[str], Awaitable[str]]
"""A user's display name by id (cached by the caller)."""

WHY = {"mention": "mentioned you", "room_mention": "mentioned @room", "reply": "replied"}
"""How each notification kind reads after the sender's name."""


def human_size(size: int) -> str:
    """`size` bytes for people: 512 B, 1.5 KiB, 12 MiB, 3.2 GiB."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"


def attachment_line(file: protocol.FileInfo) -> str:
    """How an attached file shows: `[file] cat.png, 1.5 MiB, image/png, 640x480 (id)`."""
    details = [human_size(file.size), printable(file.content_type)]
    if file.width is not None and file.height is not None:
        details.append(f"{file.width}x{file.height}")
    return f"[file] {printable(file.name)}, {', '.join(details)} ({file.id})"


def sealed_attachment_line(file: EncryptedFile) -> str:
    """How an encrypted file shows, as its message names it: `[file] 🔒 plan.pdf, 2.0 MiB,
    application/pdf (id)`."""
    details = f"{human_size(file.size)}, {printable(file.content_type)}"
    return f"[file] 🔒 {printable(file.name)}, {details} ({file.id})"


class Transcript:
    """Prints room events and numbers the messages `#1`, `#2`, … for the session.

    A message gets the next number the first time it is seen (shown, or named
    as a thread's root), in whatever room: numbers are unique in the session
    and never change, so commands can say `/edit 3 …` from anywhere. Edits,
    deletes and reactions take no number. Messages print as
    `#12 14:03 ada: hello` (a thread reply as `#13 14:04 bob ↳#12: yes`).
    """

    def __init__(self, say: Say, name_of: NameOf) -> None:
        self._say = say
        self._name_of = name_of
        self._handles: dict[str, int] = {}
        self._messages: dict[int, tuple[str, str]] = {}
        """Handle -> (room id, message id)."""
        self._seqs: dict[str, dict[int, int]] = {}
        """Room id -> {a message's seq: its handle}."""
        self._printed: set[str] = set()
        self._newest: dict[str, int] = {}

    def message_at(self, handle: int) -> tuple[str, str] | None:
        """The (room id, message id) of the message numbered `handle`, if there is one."""
        return self._messages.get(handle)

    def printed(self, message_id: str) -> bool:
        """True once the message was printed."""
        return message_id in self._printed

    def last_seq(self, room_id: str) -> int:
        """The newest seq seen in the room, of any event (0 if none)."""
        return self._newest.get(room_id, 0)

    def handle_up_to(self, room_id: str, seq: int) -> int | None:
        """The handle of the room's latest numbered message at or before `seq`."""
        seqs = self._seqs.get(room_id, {})
        at_or_before = [s for s in seqs if s <= seq]
        return seqs[max(at_or_before)] if at_or_before else None

    def handle(self, room_id: str, message_id: str, seq: int | None = None) -> int:
        """The message's number, giving it the next one if it has none yet."""
        handle = self._handles.get(message_id)
        if handle is None:
            handle = self._handles[message_id] = len(self._handles) + 1
            self._messages[handle] = (room_id, message_id)
        if seq is not None:
            self._seqs.setdefault(room_id, {})[seq] = handle
        return handle

    async def message(
        self,
        message: protocol.Message,
        prefix: str = "",
        *,
        sealed: Sequence[EncryptedFile] | None = None,
    ) -> None:
        """Print a message and its files (with `sealed`, those of its encrypted content,
        instead of the server's opaque ones)."""
        handle = self.handle(message.room, message.id, message.seq)
        self._printed.add(message.id)
        self._saw(message.room, message.seq)
        when = datetime.fromtimestamp(message.created_at / 1000).strftime("%H:%M")
        thread = ""
        if message.thread is not None:
            thread = f" ↳#{self.handle(message.room, message.thread)}"
        body = printable(message.body) if message.body else "(deleted)"
        edited = " (edited)" if message.edited_at is not None and message.body else ""
        name = await self._name_of(message.sender)
        if message.attachments and not message.body:
            body = ""  # a file without a caption: its own line says it all
        self._say(f"{prefix}#{handle} {when} {name}{thread}: {body}{edited}".rstrip())
        lines = (
            [attachment_line(file) for file in message.attachments]
            if sealed is None
            else [sealed_attachment_line(file) for file in sealed]
        )
        for line in lines:
            self._say(f"{prefix}    {line}")

    async def event(self, event: protocol.ServerFrame, prefix: str = "") -> None:
        """A room event other than a message: an edit, delete or reaction."""
        match event:
            case protocol.EditedEvent(room=room, seq=seq, message=target, editor=editor):
                self._saw(room, seq)
                name, shown = await self._name_of(editor), self._shown(target)
                self._say(f"{prefix}* {name} edited {shown}: {printable(event.body)}")
            case protocol.DeletedEvent(room=room, seq=seq, message=target, deleted_by=actor):
                self._saw(room, seq)
                name, shown = await self._name_of(actor), self._shown(target)
                self._say(f"{prefix}* {name} deleted {shown}")
            case protocol.ReactionEvent(room=room, seq=seq, message=target, user=user):
                self._saw(room, seq)
                name, shown = await self._name_of(user), self._shown(target)
                verb = "reacted" if event.present else "took back"
                self._say(f"{prefix}* {name} {verb} {printable(event.emoji)} on {shown}")

    async def notification(self, note: protocol.NotificationEvent, room_name: str) -> None:
        name = await self._name_of(note.sender)
        handle = self.handle(note.room, note.message, note.seq)
        preview = printable(note.preview)
        self._say(f"! {name} {WHY[note.kind]} in {room_name} #{handle}: {preview}")

    def _saw(self, room_id: str, seq: int) -> None:
        self._newest[room_id] = max(self._newest.get(room_id, 0), seq)

    def _shown(self, message_id: str) -> str:
        """How an edit or reaction names its message: by number once it has one."""
        handle = self._handles.get(message_id)
        return f"#{handle}" if handle is not None else "a message"
