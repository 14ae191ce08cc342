"""What `chorus chat` prints for each event, and the `#seq` handles users type to name a message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from chorus import protocol

Say = Callable[[str], None]
NameOf = Callable[[str], Awaitable[str]]
"""A user's display name by id (cached by the caller)."""


class Transcript:
    """Prints room events and remembers which message each `#seq` of a room is.

    Messages print as `#12 14:03 ada: hello` (a thread reply as
    `#13 14:04 bob ↳#12: yes`), so commands can say `/edit 12 …`.
    """

    def __init__(self, say: Say, name_of: NameOf) -> None:
        self._say = say
        self._name_of = name_of
        self._ids: dict[tuple[str, int], str] = {}
        self._seq_by_id: dict[str, int] = {}
        self._seqs: dict[str, int] = {}

    def message_id(self, room_id: str, seq: int) -> str | None:
        """The id of the message shown as `#seq` in the room, if it was shown."""
        return self._ids.get((room_id, seq))

    def shown(self, room_id: str, seq: int) -> bool:
        """True once the room's message `#seq` was printed."""
        return (room_id, seq) in self._ids

    def last_seq(self, room_id: str) -> int:
        """The newest seq seen in the room (0 if none)."""
        return self._seqs.get(room_id, 0)

    async def message(self, message: protocol.Message, prefix: str = "") -> None:
        self._remember(message.room, message.seq, message.id)
        when = datetime.fromtimestamp(message.created_at / 1000).strftime("%H:%M")
        thread = ""
        if message.thread is not None:
            thread = f" ↳#{self._seq_of(message.room, message.thread) or '?'}"
        body = message.body if message.body else "(deleted)"
        edited = " (edited)" if message.edited_at is not None and message.body else ""
        name = await self._name_of(message.sender)
        self._say(f"{prefix}#{message.seq} {when} {name}{thread}: {body}{edited}")

    async def event(self, event: protocol.ServerFrame, prefix: str = "") -> None:
        """A room event other than a message: an edit, delete or reaction."""
        match event:
            case protocol.EditedEvent(room=room, seq=seq, message=target, editor=editor):
                self._seqs[room] = max(self._seqs.get(room, 0), seq)
                name, shown = await self._name_of(editor), self._handle(room, target)
                self._say(f"{prefix}* {name} edited {shown}: {event.body}")
            case protocol.DeletedEvent(room=room, seq=seq, message=target, deleted_by=actor):
                self._seqs[room] = max(self._seqs.get(room, 0), seq)
                name, shown = await self._name_of(actor), self._handle(room, target)
                self._say(f"{prefix}* {name} deleted {shown}")
            case protocol.ReactionEvent(room=room, seq=seq, message=target, user=user):
                self._seqs[room] = max(self._seqs.get(room, 0), seq)
                name, shown = await self._name_of(user), self._handle(room, target)
                verb = "reacted" if event.present else "took back"
                self._say(f"{prefix}* {name} {verb} {event.emoji} on {shown}")

    async def notification(self, note: protocol.NotificationEvent, room_name: str) -> None:
        why = {"mention": "mentioned you", "room_mention": "mentioned @room", "reply": "replied"}
        name = await self._name_of(note.sender)
        self._say(f"! {name} {why[note.kind]} in {room_name} #{note.seq}: {note.preview}")

    def _remember(self, room_id: str, seq: int, message_id: str) -> None:
        self._ids[(room_id, seq)] = message_id
        self._seq_by_id[message_id] = seq
        self._seqs[room_id] = max(self._seqs.get(room_id, 0), seq)

    def _seq_of(self, room_id: str, message_id: str) -> int | None:
        seq = self._seq_by_id.get(message_id)
        return seq if seq is not None and self._ids.get((room_id, seq)) == message_id else None

    def _handle(self, room_id: str, message_id: str) -> str:
        seq = self._seq_of(room_id, message_id)
        return f"#{seq}" if seq is not None else "a message"
