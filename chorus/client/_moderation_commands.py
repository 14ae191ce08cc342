"""The `chorus chat` moderation commands, on the current room (who may: docs/permissions.md).

`/kick`, `/ban`, `/unban`, `/mute [MINUTES]`, `/unmute`, `/role NAME
moderator|member`, `/lock`, `/unlock`, and `/block`/`/unblock` (about direct
messages, not the room). A refusal is the server's answer, shown as any
other API error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ._http import HttpApi
from ._message_commands import Command, Unknown, UsageError
from ._models import Room, User


class ModerationCommands:
    """Mixed into `Terminal`, which provides the state declared here."""

    _api: HttpApi
    say: Callable[[str], None]
    _current: Callable[[str], Room]
    _user: Callable[[str], Awaitable[User | None]]

    def moderation_commands(self) -> dict[str, Command]:
        return {
            "/kick": Command("/kick NAME", "remove someone from the current room", self._kick),
            "/ban": Command(
                "/ban NAME [REASON]", "remove someone and keep them out of the room", self._ban
            ),
            "/unban": Command("/unban NAME", "let a banned user back in", self._unban),
            "/mute": Command(
                "/mute NAME [MINUTES]", "make someone read-only here (for MINUTES)", self._mute
            ),
            "/unmute": Command("/unmute NAME", "let a muted member post again", self._unmute),
            "/role": Command(
                "/role NAME moderator|member", "set someone's role in this room", self._role
            ),
            "/lock": Command("/lock", "only moderators may post here", self._lock),
            "/unlock": Command("/unlock", "everyone may post here again", self._unlock),
            "/block": Command("/block NAME", "refuse direct messages from someone", self._block),
            "/unblock": Command(
                "/unblock NAME", "accept their direct messages again", self._unblock
            ),
        }

    async def _named(self, name: str) -> User:
        user = await self._user(name)
        if user is None:
            raise Unknown(f"nobody is called {name!r}")
        return user

    async def _one_user(self, argument: str) -> tuple[Room, User]:
        if not argument or " " in argument:
            raise UsageError
        return self._current(""), await self._named(argument)

    async def _kick(self, argument: str) -> None:
        room, user = await self._one_user(argument)
        await self._api.remove_member(room.id, user.id)
        self.say(f"removed {user.display_name} from {room.label()}")

    async def _ban(self, argument: str) -> None:
        name, _, reason = argument.partition(" ")
        if not name:
            raise UsageError
        room, user = self._current(""), await self._named(name)
        await self._api.ban(room.id, user.id, reason.strip())
        self.say(f"banned {user.display_name} from {room.label()}")

    async def _unban(self, argument: str) -> None:
        room, user = await self._one_user(argument)
        await self._api.unban(room.id, user.id)
        self.say(f"unbanned {user.display_name}")

    async def _mute(self, argument: str) -> None:
        name, _, minutes_text = argument.partition(" ")
        minutes_text = minutes_text.strip()
        if not name or (minutes_text and not minutes_text.isdigit()):
            raise UsageError
        minutes = int(minutes_text) if minutes_text else None
        if minutes == 0:
            raise UsageError
        room, user = self._current(""), await self._named(name)
        await self._api.mute(room.id, user.id, minutes)
        how_long = f" for {minutes} min" if minutes else ""
        self.say(f"muted {user.display_name}{how_long}")

    async def _unmute(self, argument: str) -> None:
        room, user = await self._one_user(argument)
        await self._api.unmute(room.id, user.id)
        self.say(f"unmuted {user.display_name}")

    async def _role(self, argument: str) -> None:
        name, _, role = argument.partition(" ")
        if not name or role.strip() not in ("moderator", "member"):
            raise UsageError
        room, user = self._current(""), await self._named(name)
        await self._api.set_role(room.id, user.id, role.strip())
        self.say(f"{user.display_name} is now {role.strip()} of {room.label()}")

    async def _lock(self, argument: str) -> None:
        if argument:
            raise UsageError
        room = self._current("")
        await self._api.lock(room.id, True)
        self.say(f"locked {room.label()}: only moderators post")

    async def _unlock(self, argument: str) -> None:
        if argument:
            raise UsageError
        room = self._current("")
        await self._api.lock(room.id, False)
        self.say(f"unlocked {room.label()}")

    async def _block(self, argument: str) -> None:
        if not argument or " " in argument:
            raise UsageError
        user = await self._named(argument)
        await self._api.block(user.id)
        self.say(f"blocked {user.display_name}: no direct messages from them")

    async def _unblock(self, argument: str) -> None:
        if not argument or " " in argument:
            raise UsageError
        user = await self._named(argument)
        await self._api.unblock(user.id)
        self.say(f"unblocked {user.display_name}")
