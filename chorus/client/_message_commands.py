"""The `chorus chat` commands about messages: threads, edits, reactions, reads, search.

They name messages by the `#N` the transcript prints (see `_transcript`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import attrs

from ._http import HttpApi
from ._models import Room
from ._realtime import RealtimeClient
from ._transcript import WHY, Transcript


class UsageError(Exception):
    """The command's argument is wrong: the terminal prints the command's usage."""


class NotInRoom(Exception):
    """The command needs a current room and there is none."""


class Unknown(Exception):
    """The command names something that does not exist; the message says what."""


@attrs.frozen
class Command:
    """A slash command: its usage line, what it does (for /help), and the code."""

    usage: str
    summary: str
    run: Callable[[str], Awaitable[None]]


class MessageCommands:
    """Mixed into `Terminal`, which provides the state declared here."""

    _api: HttpApi
    _client: RealtimeClient
    _room: Room | None
    _transcript: Transcript
    say: Callable[[str], None]
    _name: Callable[[str], Awaitable[str]]
    _room_name: Callable[[str], str]

    def message_commands(self) -> dict[str, Command]:
        return {
            "/reply": Command("/reply N TEXT", "reply in the thread of message #N", self._reply),
            "/thread": Command("/thread N", "the replies in the thread of #N", self._thread),
            "/edit": Command("/edit N TEXT", "change your message #N", self._edit),
            "/delete": Command(
                "/delete N", "delete #N (yours; anyone's as owner or moderator)", self._delete
            ),
            "/threads": Command("/threads", "the threads you started or replied to", self._threads),
            "/edits": Command("/edits N", "the earlier texts of #N", self._edits),
            "/react": Command("/react N EMOJI", "react to #N", self._react),
            "/unreact": Command("/unreact N EMOJI", "take your reaction back", self._unreact),
            "/reactions": Command(
                "/reactions N", "the reactions to #N and who made them", self._reactions
            ),
            "/read": Command(
                "/read", "mark the current room read up to its newest message", self._read
            ),
            "/unread": Command("/unread", "unread messages and mentions per room", self._unread),
            "/notifications": Command(
                "/notifications",
                "your latest mentions and replies (marks them read)",
                self._notifications,
            ),
            "/notify": Command(
                "/notify all|mentions|none",
                "which messages of the current room notify you",
                self._notify,
            ),
            "/search": Command("/search TEXT", "search the messages of your rooms", self._search),
        }

    async def _reply(self, argument: str) -> None:
        room, target, text = self._target(argument, rest=True)
        await self._client.send(room, text, thread=target)

    async def _thread(self, argument: str) -> None:
        room, target, _ = self._target(argument)
        replies = await self._api.thread(room, target)
        self.say(f"{len(replies)} repl{'y' if len(replies) == 1 else 'ies'}")
        for reply in replies:
            await self._transcript.message(reply, "  ")

    async def _edit(self, argument: str) -> None:
        room, target, text = self._target(argument, rest=True)
        await self._client.edit(room, target, text)

    async def _delete(self, argument: str) -> None:
        room, target, _ = self._target(argument)
        await self._client.delete(room, target)

    async def _react(self, argument: str, *, remove: bool = False) -> None:
        room, target, emoji = self._target(argument, rest=True)
        if " " in emoji:
            raise UsageError
        if await self._client.react(room, target, emoji, remove=remove) is None:
            self.say("nothing to change")

    async def _unreact(self, argument: str) -> None:
        await self._react(argument, remove=True)

    async def _read(self, argument: str) -> None:
        room = self._current(argument)
        marker = await self._client.mark_read(room.id, self._transcript.last_seq(room.id))
        handle = self._transcript.handle_up_to(room.id, marker)
        self.say(f"read up to #{handle}" if handle is not None else "marked read")

    async def _unread(self, argument: str) -> None:
        _no_argument(argument)
        counts = {room: n for room, n in (await self._api.unread()).items() if n.unread}
        if not counts:
            self.say("all read")
        for room, n in counts.items():
            self.say(f"  {self._room_name(room)}: {n.unread} unread, {n.mentions} mentions")

    async def _notifications(self, argument: str) -> None:
        _no_argument(argument)
        notes = await self._api.notifications(limit=20)
        if not notes:
            self.say("no notifications")
        for note in reversed(notes):
            # The inbox lists which message; its text comes with the message.
            message = (await self._api.message(note.room, note.message)).message
            when = datetime.fromtimestamp(note.created_at / 1000).strftime("%H:%M")
            who, why = await self._name(message.sender), WHY.get(note.kind, note.kind)
            handle = self._transcript.handle(note.room, note.message, note.seq)
            fresh = "" if note.read_at is not None else " (new)"
            where = self._room_name(note.room)
            self.say(f"  {when} {who} {why} in {where} #{handle}: {message.body}{fresh}")
        await self._api.mark_notifications_read()

    async def _search(self, argument: str) -> None:
        if not argument:
            raise UsageError
        hits = await self._api.search(argument)
        if not hits:
            self.say("no messages found")
        for hit in hits:
            message = hit.message
            name = await self._name(message.sender)
            handle = self._transcript.handle(message.room, message.id, message.seq)
            self.say(f"  [{self._room_name(message.room)}] #{handle} {name}: {hit.snippet}")

    async def _threads(self, argument: str) -> None:
        _no_argument(argument)
        threads = await self._api.followed_threads()
        if not threads:
            self.say("you follow no threads yet (start one with /reply)")
        for thread in threads:
            root = thread.message
            name = await self._name(root.sender)
            handle = self._transcript.handle(root.room, root.id, root.seq)
            where = self._room_name(root.room)
            self.say(f"  [{where}] #{handle} {name}: {root.body} ({thread.reply_count} replies)")

    async def _edits(self, argument: str) -> None:
        room, target, _ = self._target(argument)
        edits = await self._api.edit_history(room, target)
        if not edits:
            self.say("never edited")
        for edit in edits:
            when = datetime.fromtimestamp(edit.written_at / 1000).strftime("%H:%M")
            self.say(f"  {when} {edit.body}")

    async def _reactions(self, argument: str) -> None:
        room, target, _ = self._target(argument)
        detail = await self._api.message(room, target)
        if not detail.reactions:
            self.say("no reactions")
        for emoji in detail.reactions:
            users = await self._api.reactors(room, target, emoji)
            names = ", ".join([await self._name(user) for user in users])
            self.say(f"  {emoji} {detail.reactions[emoji]}: {names}")

    async def _notify(self, argument: str) -> None:
        if argument not in ("all", "mentions", "none"):
            raise UsageError
        room = self._current("")
        await self._api.set_notify(room.id, argument)
        self.say(f"notifications for {self._room_name(room.id)}: {argument}")

    def _current(self, argument: str) -> Room:
        """The current room, for a command that takes no argument."""
        _no_argument(argument)
        if self._room is None:
            raise NotInRoom
        return self._room

    def _target(self, argument: str, *, rest: bool = False) -> tuple[str, str, str]:
        """The room and id of message `#N` (the first word of `argument`), and the rest.

        Raises `UsageError` unless the first word is a number followed by more
        text exactly when `rest` is wanted. A number no message has is told.
        """
        number, _, more = argument.partition(" ")
        more = more.strip()
        if not number.removeprefix("#").isdigit() or bool(more) != rest:
            raise UsageError
        found = self._transcript.message_at(int(number.removeprefix("#")))
        if found is None:
            raise Unknown(f"no message {number}; messages show as #N before their text")
        room, message_id = found
        return room, message_id, more


def _no_argument(argument: str) -> None:
    if argument:
        raise UsageError
