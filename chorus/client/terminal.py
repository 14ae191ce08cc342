"""`chorus chat`: a line-based terminal client built on the SDK.

Type a line to send it to the current room; commands start with a slash
(`/help` lists them). Incoming messages, typing and presence are printed as
they arrive.
"""

from __future__ import annotations

import getpass
import secrets
import sys
from collections.abc import Awaitable, Callable
from typing import Protocol, TextIO

import trio

from chorus import protocol

from ._http import ApiError, HttpApi
from ._message_commands import MessageCommands
from ._models import Room
from ._realtime import RealtimeClient
from ._transcript import Transcript

HELP = """\
commands:
  /rooms                 your rooms and the public directory
  /join NAME|ID          join a public room (or switch to one of yours)
  /create NAME [private] create a room and switch to it
  /history [N]           the last N events of the current room (default 20)
  /who                   members of the current room, who is online, their ids
  /invite USER_ID        add someone to the current room (owners and moderators)
  /leave                 leave the current room
  /dm USER_ID[,USER_ID]  a direct conversation with one or more people
messages show as #SEQ; these commands take that number:
  /reply SEQ TEXT        reply in the thread of message #SEQ
  /thread SEQ            the replies in the thread of #SEQ
  /edit SEQ TEXT         change your message #SEQ
  /delete SEQ            delete #SEQ (yours; anyone's as owner or moderator)
  /threads               the threads you started or replied to
  /edits SEQ             the earlier texts of #SEQ
  /react SEQ EMOJI       react to #SEQ (/unreact SEQ EMOJI takes it back)
  /reactions SEQ         the reactions to #SEQ and who made them
  /read                  mark the current room read up to its newest message
  /unread                unread messages and mentions in your rooms
  /notifications         your latest mentions and replies (marks them read)
  /notify all|mentions|none  which messages of the current room notify you
  /search TEXT           search the messages of your rooms
mention people with @username, or everyone in the room with @room
  /help                  this list
  /quit                  exit (Ctrl+D works too)
anything else is sent to the current room"""


class Terminal(MessageCommands):
    """The chat session: one user, one current room, the gateway connection."""

    def __init__(self, api: HttpApi, client: RealtimeClient, out: TextIO) -> None:
        self._api = api
        self._client = client
        self._out = out
        self._room: Room | None = None
        self._names: dict[str, str] = {}
        self._rooms: dict[str, Room] = {}
        self._commands: dict[str, Callable[[str], Awaitable[None]]] = {
            "/rooms": self._list_rooms,
            "/join": self._join,
            "/create": self._create,
            "/history": self._history,
            "/who": self._who,
            "/invite": self._invite,
            "/leave": self._leave,
            "/dm": self._dm,
            **self.message_commands(),
            "/help": self._help,
        }
        self._transcript = Transcript(self.say, self._name)

    def say(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    async def handle_line(self, line: str) -> bool:
        """Act on one input line; False means quit."""
        line = line.strip()
        if not line:
            return True
        command, _, argument = line.partition(" ")
        if command in ("/quit", "/exit"):
            return False
        try:
            if command in self._commands:
                await self._commands[command](argument.strip())
            elif command.startswith("/"):
                self.say(f"unknown command {command}; /help lists them")
            elif self._room is None:
                self.say("join a room first (/rooms, /join NAME, /create NAME)")
            else:
                await self._client.send(self._room.id, line, client_id=secrets.token_hex(8))
        except ApiError as exc:
            self.say(f"! {exc.message} ({exc.code})")
        return True

    async def show_events(self) -> None:
        async for event in self._client.events:
            match event:
                case protocol.MessageEvent(message=message):
                    await self._show_message(message)
                case protocol.EditedEvent() | protocol.DeletedEvent() | protocol.ReactionEvent():
                    await self._transcript.event(event, self._prefix(event.room))
                case protocol.NotificationEvent(room=room):
                    await self._transcript.notification(event, self._room_name(room))
                case protocol.TypingEvent(room=room, user=user) if self._is_current(room):
                    self.say(f"  ({await self._name(user)} is typing…)")
                case protocol.PresenceEvent(user=user, status=status):
                    if user != self._api.user.id:
                        self.say(f"* {await self._name(user)} is {status}")
                case protocol.Notice(message=text):
                    self.say(f"* server: {text}")
                case _:
                    pass

    async def start(self) -> None:
        rooms = await self._api.my_rooms()
        self._rooms = {room.id: room for room in rooms}
        for room in rooms:
            await self._client.join(room.id)
        self.say(f"Hello {self._api.user.display_name}! /help lists the commands.")
        await self._list_rooms("")

    # -- commands -----------------------------------------------------------------------

    async def _list_rooms(self, _argument: str) -> None:
        mine = await self._api.my_rooms()
        self._rooms.update({room.id: room for room in mine})
        self.say("your rooms: " + (", ".join(_label(room) for room in mine) or "none yet"))
        public = [room for room in await self._api.public_rooms() if room.id not in self._rooms]
        if public:
            self.say("public rooms: " + ", ".join(_label(room) for room in public))

    async def _join(self, argument: str) -> None:
        room = await self._find_room(argument)
        if room is None:
            self.say(f"no room called {argument!r}; /rooms lists them, /create makes one")
            return
        if room.id not in self._rooms:
            await self._api.join_room(room.id)
            self._rooms[room.id] = room
        await self._client.join(room.id)
        await self._switch(room)

    async def _create(self, argument: str) -> None:
        name, _, kind = argument.partition(" ")
        if not name:
            self.say("usage: /create NAME [private]")
            return
        room = await self._api.create_room(name, "private" if kind == "private" else "public")
        self._rooms[room.id] = room
        await self._client.join(room.id)
        await self._switch(room)

    async def _history(self, argument: str) -> None:
        if self._room is None:
            self.say("join a room first")
            return
        count = int(argument) if argument.isdigit() else 20
        for event in await self._api.events(self._room.id, limit=min(count, 100)):
            if isinstance(event, protocol.MessageEvent):
                await self._show_message(event.message, live=False)
            else:
                await self._transcript.event(event)

    async def _who(self, _argument: str) -> None:
        if self._room is None:
            self.say("join a room first")
            return
        details = await self._api.get_room(self._room.id)
        for member in details.get("members", []):
            user_id = member["user_id"]
            role, status = member.get("role", "member"), member.get("status", "?")
            read = member.get("read_seq")  # null where the room hides read receipts
            seen = f", read up to #{read}" if read else ""
            self.say(f"  {await self._name(user_id)} ({role}, {status}{seen}) {user_id}")

    async def _invite(self, argument: str) -> None:
        if self._room is None or not argument:
            self.say("usage (in a room): /invite USER_ID")
            return
        await self._api.invite(self._room.id, argument)
        self.say(f"added {await self._name(argument)}")

    async def _leave(self, _argument: str) -> None:
        if self._room is None:
            self.say("you are not in a room")
            return
        room = self._room
        await self._api.remove_member(room.id, self._api.user.id)
        await self._client.leave(room.id)
        self._rooms.pop(room.id, None)
        self._room = None
        self.say(f"left {room.name}")

    async def _dm(self, argument: str) -> None:
        others = [part.strip() for part in argument.split(",") if part.strip()]
        if not others:
            self.say("usage: /dm USER_ID[,USER_ID...] (/who shows ids)")
            return
        if len(others) == 1:
            room = await self._api.direct_room(others[0])
        else:
            room = await self._api.group_room(others)
        self._rooms[room.id] = room
        await self._client.join(room.id)
        await self._switch(room)

    async def _help(self, _argument: str) -> None:
        self.say(HELP)

    # -- helpers ------------------------------------------------------------------------

    async def _switch(self, room: Room) -> None:
        self._room = room
        self.say(f"== {room.name} ==")
        await self._history("20")

    async def _find_room(self, name_or_id: str) -> Room | None:
        if not name_or_id:
            return None
        candidates = list(self._rooms.values()) + await self._api.public_rooms(limit=100)
        for room in candidates:
            if name_or_id in (room.id, room.name):
                return room
        return None

    async def _show_message(self, message: protocol.Message, *, live: bool = True) -> None:
        if live and self._transcript.shown(message.room, message.seq):
            return  # the history printed on joining had it already
        if live or self._is_current(message.room):
            await self._transcript.message(message, self._prefix(message.room))

    def _prefix(self, room_id: str) -> str:
        """Events of rooms other than the current one are labelled with the room's name."""
        return "" if self._is_current(room_id) else f"[{self._room_name(room_id)}] "

    def _is_current(self, room_id: str) -> bool:
        return self._room is not None and self._room.id == room_id

    def _room_name(self, room_id: str) -> str:
        room = self._rooms.get(room_id)
        return room.label() if room is not None else room_id

    async def _name(self, user_id: str) -> str:
        if user_id not in self._names:
            try:
                self._names[user_id] = (await self._api.get_user(user_id)).display_name
            except ApiError:
                self._names[user_id] = user_id
        return self._names[user_id]


def _label(room: Room) -> str:
    return f"{room.label()} ({room.kind}, {room.id})"


class LineSource(Protocol):
    """Where input lines come from (standard input, or a test's keyboard)."""

    def readline(self) -> str: ...


async def _lines(stream: LineSource) -> str:
    """One line from `stream` without blocking trio; "" at end of input."""
    return await trio.to_thread.run_sync(stream.readline, abandon_on_cancel=True)


async def _log_in(api: HttpApi, username: str, password: str, out: TextIO) -> None:
    try:
        await api.login(username, password)
        return
    except ApiError as exc:
        if exc.code != "invalid_credentials":
            raise
    try:
        await api.register(username, password)
        print(f"created account {username!r}", file=out)
    except ApiError as exc:
        if exc.code == "username_taken":
            raise ApiError(exc.status, "invalid_credentials", "wrong password") from None
        raise


async def run_chat(
    server: str, username: str, password: str, stdin: LineSource, out: TextIO
) -> int:
    """The whole `chorus chat` session; returns the exit status."""
    async with HttpApi(server) as api:
        try:
            await _log_in(api, username, password, out)
        except ApiError as exc:
            print(f"chorus chat: {exc.message}", file=sys.stderr)
            return 1
        client = RealtimeClient(api)
        terminal = Terminal(api, client, out)
        async with trio.open_nursery() as nursery:
            await nursery.start(client.run)
            nursery.start_soon(terminal.show_events)
            await terminal.start()
            while line := await _lines(stdin):
                if not await terminal.handle_line(line):
                    break
            nursery.cancel_scope.cancel()
    return 0


def read_password(stdin: TextIO) -> str:
    """Prompt on a terminal; otherwise the first line of standard input is the password."""
    if stdin.isatty():
        return getpass.getpass("password: ")
    return stdin.readline().rstrip("\n")
