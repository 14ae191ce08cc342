"""The `chorus chat` commands about end-to-end encryption: `/edm` and `/verify`.

Also how an encrypted room's events are marked: a lock, and how far the
sending device is trusted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ._console import Console
from ._message_commands import Command, Unknown, UsageError
from ._models import User
from .e2e import E2EClient, Trust

LOCKS = {
    Trust.OWN: "🔒 ",
    Trust.VERIFIED: "🔒 ",
    Trust.UNVERIFIED: "🔒? ",
    Trust.UNKNOWN: "🔒⚠ ",
}
"""The mark before a message of an encrypted room, by the trust of the device that sent it:
verified (or this user's own), unverified (`/verify` its owner), unknown to the directory."""

NO_KEYS = "end-to-end encryption is off: start `chorus chat` without --no-e2e"


def lock(trust: Trust | None) -> str:
    """The mark of a message opened with this trust (None: it could not be opened)."""
    return "⚠ " if trust is None else LOCKS[trust]


class E2ECommands:
    """Mixed into `Terminal`, which provides the state declared here."""

    _e2e: E2EClient | None
    _console: Console
    say: Callable[[str], None]
    _user: Callable[[str], Awaitable[User | None]]
    _users: Callable[[str], Awaitable[list[User]]]
    _open_direct: Callable[..., Awaitable[None]]

    def e2e_commands(self) -> dict[str, Command]:
        return {
            "/edm": Command(
                "/edm NAME[,NAME...]",
                "an end-to-end encrypted direct conversation (🔒), by username",
                self._edm,
            ),
            "/verify": Command(
                "/verify NAME",
                "compare security codes with someone's devices; mark them verified",
                self._verify,
            ),
        }

    async def _edm(self, argument: str) -> None:
        if self._e2e is None:
            raise Unknown(NO_KEYS)
        await self._open_direct(await self._users(argument), encrypted=True)

    async def _verify(self, argument: str) -> None:
        if not argument or " " in argument:
            raise UsageError
        if self._e2e is None:
            raise Unknown(NO_KEYS)
        user = await self._user(argument)
        if user is None:
            raise Unknown(f"nobody is called {argument!r}")
        statuses = await self._e2e.devices(user.id)
        if not statuses:
            self.say(f"{user.display_name} has no device with encryption keys yet")
            return
        for status in statuses:
            device = status.device
            named = f"{user.display_name}'s device {device.device_id} {device.display_name}"
            self.say(f"{named}: {status.trust.value}")
            self.say(f"  emoji:  {status.code.emoji_line()}")
            self.say(f"  number: {status.code.safety_number}")
            if status.trust is Trust.VERIFIED:
                continue
            answer = await self._console.ask(
                f"does {user.display_name} see the same on their screen for your device? [y/N] "
            )
            if answer.strip().lower() in ("y", "yes"):
                await self._e2e.mark_verified(device)
                self.say(f"🔒 {device.device_id} is verified")
            else:
                self.say(
                    f"{device.device_id} stays unverified (if the codes differ, do not trust it)"
                )
