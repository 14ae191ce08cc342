"""`chorus chat`: a terminal client built on the SDK.

Type a line to send it to the current room; commands start with a slash
(`/help` lists them). Incoming messages, typing, presence and the connection's
state are printed as they arrive; while you type a message, the room is told
(see `_console` for when keys can be seen before Enter).
"""

from __future__ import annotations

import contextlib
import re
import secrets
import sys
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import attrs
import httpx
import trio

from chorus import protocol
from chorus.text import printable

from ._account_commands import AccountCommands
from ._console import Console, Keys
from ._console import StdinKeys as StdinKeys
from ._e2e_commands import E2ECommands, lock
from ._file_commands import FileCommands
from ._http import ApiError, HttpApi, RoomEvent, TwoFactorRequired
from ._message_commands import Command, MessageCommands, NotInRoom, Unknown, UsageError
from ._models import Room, SessionInfo, User
from ._moderation_commands import ModerationCommands
from ._realtime import ConnectionLost, RealtimeClient, Reconnected, RoomFound
from ._transcript import Transcript
from .e2e import E2EClient, E2EProblem, EncryptedFile, KeyStoreError, Secured, Trust

TYPING_EVERY = 3.0
"""Seconds between two `typing` signals to one room while the person keeps typing
(the server forwards at most one per 2 s; receivers show one for 6 s)."""


class TypingThrottle:
    """Decides when typing is worth telling a room: at most once per `every` seconds."""

    def __init__(self, every: float = TYPING_EVERY) -> None:
        self._every = every
        self._last: dict[str, float] = {}

    def due(self, room_id: str) -> bool:
        """True (and counted as sent) if the room was not told within `every` seconds."""
        now = trio.current_time()
        if now - self._last.get(room_id, -self._every) < self._every:
            return False
        self._last[room_id] = now
        return True

    def sent(self, room_id: str) -> None:
        """A message went to the room: receivers stop showing the typing, so the next key tells."""
        self._last.pop(room_id, None)


class Terminal(MessageCommands, FileCommands, AccountCommands, ModerationCommands, E2ECommands):
    """The chat session: one user, one current room, the gateway connection."""

    def __init__(
        self,
        api: HttpApi,
        client: RealtimeClient,
        console: Console,
        e2e: E2EClient | None = None,
    ) -> None:
        self._api = api
        self._client = client
        self._console = console
        self._e2e = e2e
        self._room: Room | None = None
        self._names: dict[str, str] = {}
        self._rooms: dict[str, Room] = {}
        self._typing = TypingThrottle()
        self._listed_sessions: list[SessionInfo] = []
        self._sealed_files: dict[str, EncryptedFile] = {}
        self._commands: dict[str, Command] = {
            "/rooms": Command("/rooms", "your rooms and the public directory", self._list_rooms),
            "/join": Command(
                "/join NAME",
                "enter a room by the name /rooms shows (or a DM by a username)",
                self._join,
            ),
            "/create": Command(
                "/create NAME [private]", "create a room and enter it", self._create
            ),
            "/dm": Command(
                "/dm NAME[,NAME...]", "a direct conversation with people, by username", self._dm
            ),
            "/history": Command(
                "/history [COUNT]",
                "the last COUNT events of the current room (default 20)",
                self._history,
            ),
            "/who": Command("/who", "members of the current room, who is online", self._who),
            "/invite": Command(
                "/invite NAME",
                "invite someone to the current private room (owners, moderators)",
                self._invite,
            ),
            "/invites": Command("/invites", "your pending invitations", self._invites),
            "/accept": Command(
                "/accept ROOM", "accept an invitation and enter the room", self._accept
            ),
            "/decline": Command("/decline ROOM", "decline an invitation", self._decline),
            "/leave": Command("/leave", "leave the current room", self._leave),
            **self.message_commands(),
            **self.file_commands(),
            **self.account_commands(),
            **self.moderation_commands(),
            **self.e2e_commands(),
            "/help": Command("/help", "this list", self._help),
        }
        self._transcript = Transcript(self.say, self._name)

    def say(self, text: str) -> None:
        """Print a line (or lines of our own); other people's text in it cannot drive
        the terminal (escapes, bidi overrides become visible)."""
        self._console.say(printable(text, one_line=False))

    def help(self) -> str:
        """The /help text: every command with its usage."""
        lines = ["commands (N is a message's number: messages show as #N):"]
        lines += [f"  {c.usage:<26} {c.summary}" for c in self._commands.values()]
        lines += [
            "  /quit                      exit (Ctrl+D works too)",
            "mention people with @username, or everyone in the room with @room;",
            "anything else is sent to the current room",
        ]
        return "\n".join(lines)

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
                await self._commands[command].run(argument.strip())
            elif command.startswith("/"):
                self.say(f"unknown command {command}; /help lists them")
            elif self._room is None:
                raise NotInRoom
            else:
                self._typing.sent(self._room.id)
                await self._client.send(self._room.id, line, client_id=secrets.token_hex(8))
        except UsageError:
            self.say(f"usage: {self._commands[command].usage}")
        except NotInRoom:
            self.say("join a room first (/rooms, /join NAME, /create NAME, /dm NAME)")
        except Unknown as exc:
            self.say(str(exc))
        except ApiError as exc:
            self.say(f"! {exc.message} ({exc.code})")
        except httpx.TransportError as exc:
            self.say(f"! cannot reach the server now ({exc}); try again in a moment")
        return True

    async def typing(self, partial: str) -> None:
        """The person has typed `partial` of a line: tell the room now and then.

        Only for a message to the current room (not a command), at most once
        per `TYPING_EVERY` seconds.
        """
        if self._room is None or not partial.strip() or partial.startswith("/"):
            return
        if self._typing.due(self._room.id):
            await self._client.typing(self._room.id)

    async def show_events(self) -> None:
        async for event in self._client.events:
            match event:
                case (
                    protocol.MessageEvent()
                    | protocol.EditedEvent()
                    | protocol.DeletedEvent()
                    | protocol.ReactionEvent()
                    | Secured()
                ):
                    await self._show(event)
                case E2EProblem(sender=sender, sender_device=device, reason=reason):
                    who = await self._name(sender)
                    self.say(f"⚠ refused an encrypted message from {who}'s {device} ({reason})")
                case protocol.NotificationEvent(room=room):
                    await self._transcript.notification(event, self._room_name(room))
                case protocol.TypingEvent(room=room, user=user) if self._is_current(room):
                    self.say(f"  ({await self._name(user)} is typing…)")
                case protocol.PresenceEvent(user=user, status=status):
                    if user != self._api.user.id:
                        self.say(f"* {await self._name(user)} is {status}")
                case protocol.Notice(message=text):
                    self.say(f"* server: {text}")
                case ConnectionLost():
                    self.say("* connection lost, reconnecting…")
                case Reconnected(caught_up=count):
                    self.say(f"* reconnected, caught up {count} message{'' if count == 1 else 's'}")
                case protocol.RoomAdded(room=room_id, by=by):
                    added = await self._learn_room(room_id)
                    if added is not None and by != self._api.user.id:  # else: joined by this user
                        who, label = await self._name(by), added.label()
                        if added.kind == "direct":
                            self.say(f"* {who} started a conversation with you: /join {label}")
                        else:
                            self.say(f"* {who} added you to {label}: /join {label}")
                case RoomFound(room=found):
                    self._rooms[found.id] = found
                    self.say(f"* while you were away you were added to {found.label()}")
                case protocol.RoomRemoved():
                    await self._forget_room(event)
                case protocol.RoomInvited(name=name, by=by):
                    who = await self._name(by)
                    self.say(f"* {who} invited you to {name}: /accept {name} or /decline {name}")
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

    async def _list_rooms(self, argument: str) -> None:
        if argument:
            raise UsageError
        mine = await self._api.my_rooms()
        self._rooms.update({room.id: room for room in mine})
        self.say("your rooms: " + (", ".join(_label(room) for room in mine) or "none yet"))
        public = [room for room in await self._api.public_rooms() if room.id not in self._rooms]
        if public:
            self.say("public rooms: " + ", ".join(_label(room) for room in public))

    async def _join(self, argument: str) -> None:
        if not argument:
            raise UsageError
        room = await self._find_room(argument)
        if room is None:
            user = await self._user(argument)
            if user is None:
                raise Unknown(f"no room or person called {argument!r}; /rooms lists rooms")
            await self._open_direct([user])
            return
        if room.id not in self._rooms:
            await self._api.join_room(room.id)
            self._rooms[room.id] = room
        await self._client.join(room.id)
        await self._switch(room)

    async def _create(self, argument: str) -> None:
        name, _, kind = argument.partition(" ")
        if not name or kind not in ("", "public", "private"):
            raise UsageError
        room = await self._api.create_room(name, kind or "public")
        self._rooms[room.id] = room
        await self._client.join(room.id)
        await self._switch(room)

    async def _dm(self, argument: str) -> None:
        await self._open_direct(await self._users(argument))

    async def _users(self, argument: str) -> list[User]:
        """The users a comma-separated list of usernames names (at least one)."""
        names = [part.strip() for part in argument.split(",") if part.strip()]
        if not names:
            raise UsageError
        users = []
        for name in names:
            user = await self._user(name)
            if user is None:
                raise Unknown(f"nobody is called {name!r}")
            users.append(user)
        return users

    async def _history(self, argument: str) -> None:
        if argument and not argument.isdigit():
            raise UsageError
        room = self._current("")
        count = int(argument) if argument else 20
        for event in await self._api.events(room.id, limit=min(count, 100)):
            await self._show(
                await self._e2e.open_event(event) if self._e2e is not None else event, history=True
            )

    async def _who(self, argument: str) -> None:
        room = self._current(argument)
        details = await self._api.get_room(room.id)
        for member in details.get("members", []):
            user_id = member["user_id"]
            role, status = member.get("role", "member"), member.get("status", "?")
            read = member.get("read_seq")  # null where the room hides read receipts
            handle = self._transcript.handle_up_to(room.id, read) if read else None
            seen = f", read up to #{handle}" if handle is not None else ""
            self.say(f"  {await self._name(user_id)} ({role}, {status}{seen}) {user_id}")

    async def _invite(self, argument: str) -> None:
        if not argument or " " in argument:
            raise UsageError
        room = self._current("")
        user = await self._user(argument)
        if user is None:
            raise Unknown(f"nobody is called {argument!r}")
        if room.kind != "private":
            raise Unknown(f"{room.label()} is not private: anyone may /join it")
        await self._api.create_invite(room.id, user.id)
        self.say(f"invited {user.display_name} (they /accept {room.name})")

    async def _invites(self, argument: str) -> None:
        if argument:
            raise UsageError
        found = await self._api.my_invites()
        if not found:
            self.say("no pending invitations")
            return
        for invitation in found:
            by = await self._name(invitation.invited_by)
            self.say(f"  {invitation.room.label()}  (from {by}; /accept or /decline it)")

    async def _invitation(self, argument: str) -> Room:
        """The room of one of the caller's pending invitations, by id or name."""
        if not argument or " " in argument:
            raise UsageError
        for invitation in await self._api.my_invites():
            room = invitation.room
            if argument == room.id or argument.casefold() == room.name.casefold():
                return room
        raise Unknown(f"no pending invitation to {argument!r}; /invites lists them")

    async def _accept(self, argument: str) -> None:
        room = await self._api.accept_invite((await self._invitation(argument)).id)
        self._rooms[room.id] = room
        await self._client.join(room.id)
        await self._switch(room)

    async def _decline(self, argument: str) -> None:
        room = await self._invitation(argument)
        await self._api.decline_invite(room.id)
        self.say(f"declined the invitation to {room.label()}")

    async def _leave(self, argument: str) -> None:
        room = self._current(argument)
        await self._api.remove_member(room.id, self._api.user.id)
        await self._client.leave(room.id)
        self._rooms.pop(room.id, None)
        self._room = None
        self.say(f"left {room.label()}")

    async def _help(self, argument: str) -> None:
        if argument:
            raise UsageError
        self.say(self.help())

    # -- helpers ------------------------------------------------------------------------

    async def _open_direct(self, users: list[User], *, encrypted: bool = False) -> None:
        """Open (or find) the direct room of the caller and `users`, and enter it."""
        ids = [user.id for user in users]
        room = await (
            self._api.direct_room(ids[0], encrypted=encrypted)
            if len(ids) == 1
            else self._api.group_room(ids, encrypted=encrypted)
        )
        others = [user for user in users if user.id != self._api.user.id]
        room = attrs.evolve(room, others=others)  # what its label and header show
        self._rooms[room.id] = room
        await self._client.join(room.id)
        await self._switch(room)

    async def _switch(self, room: Room) -> None:
        self._room = room
        direct = " (direct)" if room.kind == "direct" else ""
        self.say(f"== {room.label()}{direct}{await self._security(room)} ==")
        await self._history("20")

    async def _security(self, room: Room) -> str:
        """The header's lock: whether the room is encrypted and its devices verified."""
        if not room.encrypted:
            return ""
        if self._e2e is None:
            return " 🔒 encrypted: start chorus chat with encryption on to read it"
        others = [u for u in (room.others or []) if u.id != self._api.user.id]
        trusts = [s.trust for u in others for s in await self._e2e.devices(u.id)]
        unverified = sum(t is not Trust.VERIFIED for t in trusts)
        if not trusts:
            return " 🔒 encrypted"
        if unverified:
            return f" 🔒 encrypted, {unverified} unverified device(s): /verify NAME"
        return " 🔒 encrypted, all devices verified"

    async def _find_room(self, name: str) -> Room | None:
        """One of the caller's rooms, or a public one, by id or by the name /rooms shows."""
        candidates = list(self._rooms.values()) + await self._api.public_rooms(limit=100)
        for room in candidates:
            if name == room.id or name.casefold() in (
                room.name.casefold(),
                room.label().casefold(),
            ):
                return room
        return None

    async def _user(self, name: str) -> User | None:
        """The user with this username (a leading @ is fine) or id; None if there is none."""
        try:
            return await self._api.user_by_name(name.removeprefix("@"))
        except ApiError as exc:
            if exc.status != 404:
                raise
        if name.startswith("u_"):
            with contextlib.suppress(ApiError):
                return await self._api.get_user(name)
        return None

    async def _show(self, event: RoomEvent | Secured, *, history: bool = False) -> None:
        """A room event; one of an encrypted room is marked with its sender's trust.

        A live message already printed (by the history shown on entering) is skipped.
        """
        inner: RoomEvent = event.event if isinstance(event, Secured) else event
        room = inner.message.room if isinstance(inner, protocol.MessageEvent) else inner.room
        prefix = "" if history else self._prefix(room)
        if isinstance(event, Secured):
            prefix += lock(event.trust)
            if event.problem is not None:
                self.say(f"{prefix}could not decrypt a message ({event.problem})")
                return
        elif _sealed(inner):  # encryption is off in this client (--no-e2e)
            self.say(f"{prefix}🔒 an encrypted message (this client has encryption off)")
            return
        if not isinstance(inner, protocol.MessageEvent):
            await self._transcript.event(inner, prefix)
            return
        sealed = None
        if isinstance(event, Secured):  # its files as the sender named them, with their keys
            sealed = event.files
            self._sealed_files.update((file.id, file) for file in sealed)
        if history or not self._transcript.printed(inner.message.id):
            await self._transcript.message(inner.message, prefix, sealed=sealed)

    def _prefix(self, room_id: str) -> str:
        """Events of rooms other than the current one are labelled with the room's name."""
        return "" if self._is_current(room_id) else f"[{self._room_name(room_id)}] "

    def _is_current(self, room_id: str) -> bool:
        return self._room is not None and self._room.id == room_id

    async def _learn_room(self, room_id: str) -> Room | None:
        """One of the user's rooms, fetched (with a direct room's members) if not known yet;
        None if the user is no longer in it."""
        if room_id not in self._rooms:
            self._rooms.update({room.id: room for room in await self._api.my_rooms()})
        return self._rooms.get(room_id)

    async def _forget_room(self, removed: protocol.RoomRemoved) -> None:
        """The user is no longer in a room: say so (unless they just left it here)."""
        room = self._rooms.pop(removed.room, None)
        if self._is_current(removed.room):
            self._room = None
        if room is None:
            return  # left with /leave, which said so
        if removed.by == self._api.user.id:
            self.say(f"* you left {room.label()} (on another device)")
        elif removed.by is None:
            self.say(f"* you are no longer in {room.label()}")
        else:
            self.say(f"* {await self._name(removed.by)} removed you from {room.label()}")

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


def _sealed(event: RoomEvent) -> bool:
    """Whether `event` carries ciphertext (shown unopened by a client without encryption)."""
    if isinstance(event, protocol.MessageEvent):
        return event.message.encrypted is not None
    return isinstance(event, protocol.EditedEvent) and event.encrypted is not None


def _label(room: Room) -> str:
    return f"{room.label()} ({room.kind}, {room.id})"


async def _log_in(api: HttpApi, username: str, console: Console) -> bool:
    """Log in, or register `username` if the person says so; False if they did not get in.

    The server does not tell an unknown username from a wrong password, so
    the person is asked before an account is created. A new password is
    asked twice, and again while the server refuses it (e.g. too short).
    Raises `EOFError` if the input ends first.
    """
    password = await console.ask_secret("password: ")
    try:
        await api.login(username, password)
        return True
    except TwoFactorRequired as needed:
        return await _second_step(api, needed, console)
    except ApiError as exc:
        if exc.code != "invalid_credentials":
            raise
    answer = await console.ask(f"wrong password, or no account {username!r}: create it? [y/N] ")
    if answer.lower() not in ("y", "yes"):
        console.say("not logged in")
        return False
    while True:
        if password != await console.ask_secret("the same password again: "):
            console.say("the two passwords differ")
        else:
            try:
                await api.register(username, password)
                console.say(f"created account {username!r}")
                return True
            except ApiError as exc:
                if exc.code == "username_taken":
                    console.say(f"{username!r} exists: the password was wrong")
                    return False
                if exc.code == "registration_closed":
                    console.say("sign-up is closed on this server: ask an admin for an account")
                    return False
                if exc.status != 400 or "password" not in exc.message:
                    raise
                console.say(exc.message)
        password = await console.ask_secret("new password: ")


def key_file_for(key_dir: Path, server: str, username: str) -> Path:
    """Where `chorus chat` keeps a user's device keys for a server: one file per both."""
    where = urlsplit(server).netloc or server
    name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{username.casefold()}@{where}")
    return key_dir / f"{name}.keys"


async def _open_keys(api: HttpApi, key_file: Path, console: Console) -> E2EClient:
    """This device's end-to-end keys, unsealed with a passphrase (chosen on first use)."""
    if await trio.Path(key_file).exists():
        passphrase = await console.ask_secret(f"passphrase of {key_file}: ")
    else:
        await trio.Path(key_file.parent).mkdir(parents=True, exist_ok=True)
        passphrase = await console.ask_secret(f"new passphrase to protect {key_file}: ")
    return await E2EClient.open(api, key_file, passphrase, display_name="chorus chat")


SECOND_STEP_TRIES = 3


async def _second_step(api: HttpApi, needed: TwoFactorRequired, console: Console) -> bool:
    """Ask for a two-factor code until one is accepted (a few tries); False if none was."""
    for _ in range(SECOND_STEP_TRIES):
        code = await console.ask("two-factor code (or a recovery code): ")
        try:
            await api.complete_login(needed.challenge_token, code)
            return True
        except ApiError as exc:
            if exc.code != "invalid_code":
                raise
            console.say("wrong or already used code")
    console.say("not logged in")
    return False


async def run_chat(
    server: str, username: str | None, keys: Keys, out: TextIO, *, key_dir: Path | None = None
) -> int:
    """The whole `chorus chat` session (asking for what is missing); the exit status.

    With `key_dir`, end-to-end encryption is on: the device's keys live in a
    file there (`key_file_for`), sealed with a passphrase asked after logging in.
    """
    console = Console(keys, out)
    async with HttpApi(server) as api:
        try:
            username = username or await console.ask("username: ")
            if not await _log_in(api, username, console):
                return 1
        except EOFError:
            return 1
        except ApiError as exc:
            print(f"chorus chat: {exc.message}", file=sys.stderr)
            return 1
        e2e = None
        if key_dir is not None:
            try:
                e2e = await _open_keys(api, key_file_for(key_dir, server, username), console)
            except EOFError:
                return 1
            except KeyStoreError as exc:
                print(f"chorus chat: {exc}", file=sys.stderr)
                return 1
        client = RealtimeClient(api, e2e=e2e)
        terminal = Terminal(api, client, console, e2e)
        with console.keystrokes():
            async with trio.open_nursery() as nursery:
                await nursery.start(client.run)
                nursery.start_soon(terminal.show_events)
                await terminal.start()
                await _converse(console, terminal)
                nursery.cancel_scope.cancel()
    return 0


async def _converse(console: Console, terminal: Terminal) -> None:
    """Hand each typed line to the terminal, and tell it what is being typed, until quit."""
    while True:
        try:
            lines = await console.typed()
        except EOFError:
            return
        for line in lines:
            if not await terminal.handle_line(line):
                return
        await terminal.typing(console.partial)
