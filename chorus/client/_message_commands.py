"""The `chorus chat` commands about messages: threads, edits, reactions, reads, search.

They name messages by the `#seq` the transcript prints (see `_transcript`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from ._http import HttpApi
from ._models import Room
from ._realtime import RealtimeClient
from ._transcript import Transcript


class MessageCommands:
    """Mixed into `Terminal`, which provides the state declared here."""

    _api: HttpApi
    _client: RealtimeClient
    _room: Room | None
    _transcript: Transcript
    say: Callable[[str], None]
    _name: Callable[[str], Awaitable[str]]
    _room_name: Callable[[str], str]

    def message_commands(self) -> dict[str, Callable[[str], Awaitable[None]]]:
        return {
            "/reply": self._reply,
            "/thread": self._thread,
            "/threads": self._threads,
            "/edit": self._edit,
            "/edits": self._edits,
            "/delete": self._delete,
            "/react": self._react,
            "/unreact": self._unreact,
            "/reactions": self._reactions,
            "/read": self._read,
            "/unread": self._unread,
            "/notifications": self._notifications,
            "/notify": self._notify,
            "/search": self._search,
        }

    async def _reply(self, argument: str) -> None:
        target, text = self._target(argument)
        if self._room is not None and target is not None and text:
            await self._client.send(self._room.id, text, thread=target)
        elif target is not None:
            self.say("usage: /reply SEQ TEXT")

    async def _thread(self, argument: str) -> None:
        target, _ = self._target(argument)
        if self._room is None or target is None:
            return
        replies = await self._api.thread(self._room.id, target)
        self.say(f"{len(replies)} repl{'y' if len(replies) == 1 else 'ies'}")
        for reply in replies:
            await self._transcript.message(reply, "  ")

    async def _edit(self, argument: str) -> None:
        target, text = self._target(argument)
        if self._room is not None and target is not None and text:
            await self._client.edit(self._room.id, target, text)
        elif target is not None:
            self.say("usage: /edit SEQ TEXT")

    async def _delete(self, argument: str) -> None:
        target, _ = self._target(argument)
        if self._room is not None and target is not None:
            await self._client.delete(self._room.id, target)

    async def _react(self, argument: str, *, remove: bool = False) -> None:
        target, emoji = self._target(argument)
        if self._room is None or target is None:
            return
        if not emoji:
            self.say("usage: /react SEQ EMOJI")
        elif await self._client.react(self._room.id, target, emoji, remove=remove) is None:
            self.say("nothing to change")

    async def _unreact(self, argument: str) -> None:
        await self._react(argument, remove=True)

    async def _read(self, _argument: str) -> None:
        if self._room is None:
            self.say("join a room first")
            return
        marker = await self._client.mark_read(
            self._room.id, self._transcript.last_seq(self._room.id)
        )
        self.say(f"read up to #{marker}")

    async def _unread(self, _argument: str) -> None:
        counts = {room: n for room, n in (await self._api.unread()).items() if n.unread}
        if not counts:
            self.say("all read")
        for room, n in counts.items():
            self.say(f"  {self._room_name(room)}: {n.unread} unread, {n.mentions} mentions")

    async def _notifications(self, _argument: str) -> None:
        notes = await self._api.notifications(limit=20)
        if not notes:
            self.say("no notifications")
        for note in reversed(notes):
            when = datetime.fromtimestamp(note.created_at / 1000).strftime("%H:%M")
            fresh = "" if note.read_at is not None else " (new)"
            self.say(f"  {when} {note.kind} in {self._room_name(note.room)} #{note.seq}{fresh}")
        await self._api.mark_notifications_read()

    async def _search(self, argument: str) -> None:
        if not argument:
            self.say("usage: /search TEXT")
            return
        hits = await self._api.search(argument)
        if not hits:
            self.say("no messages found")
        for hit in hits:
            name = await self._name(hit.message.sender)
            where = self._room_name(hit.message.room)
            self.say(f"  [{where}] #{hit.message.seq} {name}: {hit.snippet}")

    async def _threads(self, _argument: str) -> None:
        threads = await self._api.followed_threads()
        if not threads:
            self.say("you follow no threads yet (start one with /reply)")
        for thread in threads:
            root = thread.message
            name = await self._name(root.sender)
            where = self._room_name(root.room)
            self.say(f"  [{where}] #{root.seq} {name}: {root.body} ({thread.reply_count} replies)")

    async def _edits(self, argument: str) -> None:
        target, _ = self._target(argument)
        if self._room is None or target is None:
            return
        edits = await self._api.edit_history(self._room.id, target)
        if not edits:
            self.say("never edited")
        for edit in edits:
            when = datetime.fromtimestamp(edit.written_at / 1000).strftime("%H:%M")
            self.say(f"  {when} {edit.body}")

    async def _reactions(self, argument: str) -> None:
        target, _ = self._target(argument)
        if self._room is None or target is None:
            return
        detail = await self._api.message(self._room.id, target)
        if not detail.reactions:
            self.say("no reactions")
        for emoji in detail.reactions:
            users = await self._api.reactors(self._room.id, target, emoji)
            names = ", ".join([await self._name(user) for user in users])
            self.say(f"  {emoji} {detail.reactions[emoji]}: {names}")

    async def _notify(self, argument: str) -> None:
        if self._room is None or argument not in ("all", "mentions", "none"):
            self.say("usage (in a room): /notify all|mentions|none")
            return
        await self._api.set_notify(self._room.id, argument)
        self.say(f"notifications for {self._room_name(self._room.id)}: {argument}")

    def _target(self, argument: str) -> tuple[str | None, str]:
        """The message `#SEQ` (first word of `argument`) of the current room, and the rest."""
        seq, _, rest = argument.partition(" ")
        if self._room is None:
            self.say("join a room first")
            return None, ""
        message_id = self._transcript.message_id(self._room.id, int(seq)) if seq.isdigit() else None
        if message_id is None:
            self.say(f"no message #{seq} shown in this room; /history shows recent ones")
        return message_id, rest.strip()
