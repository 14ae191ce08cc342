"""The `chorus chat` commands about the account: two-factor authentication, sessions, password."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ._console import Console
from ._http import HttpApi
from ._message_commands import Command, Unknown, UsageError
from ._models import SessionInfo


class AccountCommands:
    """Mixed into `Terminal`, which provides the state declared here."""

    _api: HttpApi
    _console: Console
    say: Callable[[str], None]
    _listed_sessions: list[SessionInfo]

    def account_commands(self) -> dict[str, Command]:
        return {
            "/2fa": Command(
                "/2fa [on|off]",
                "two-factor authentication: its state, turn it on or off",
                self._2fa,
            ),
            "/sessions": Command(
                "/sessions", "your signed-in sessions (devices), numbered", self._sessions
            ),
            "/revoke": Command(
                "/revoke N|ID|others",
                "sign out session N of /sessions, or all others",
                self._revoke,
            ),
            "/password": Command(
                "/password", "change your password (signs out your other sessions)", self._password
            ),
        }

    async def _2fa(self, argument: str) -> None:
        if argument == "":
            state = await self._api.two_factor()
            if state.enabled:
                self.say(
                    f"two-factor authentication is on ({state.recovery_codes_left} recovery"
                    " codes left)"
                )
            else:
                self.say("two-factor authentication is off (/2fa on turns it on)")
        elif argument == "on":
            await self._turn_on()
        elif argument == "off":
            password = await self._console.ask_secret("password: ")
            code = await self._console.ask("a code of your app, or a recovery code: ")
            await self._api.disable_two_factor(password, code)
            self.say("two-factor authentication is off")
        else:
            raise UsageError

    async def _turn_on(self) -> None:
        password = await self._console.ask_secret("password: ")
        enrolment = await self._api.enrol_two_factor(password)
        self.say("add this to your authenticator app (shown once):")
        self.say(f"  secret: {enrolment.secret}")
        self.say(f"  or its URI (a QR code of it): {enrolment.otpauth_uri}")
        code = await self._console.ask("the code the app shows now: ")
        answer = await self._console.ask("sign out your other sessions too? [y/N] ")
        codes, revoked = await self._api.confirm_two_factor(
            code, revoke_other_sessions=answer.lower() in ("y", "yes")
        )
        self.say(
            "two-factor authentication is on. Recovery codes (each works once; keep them"
            " safe, they are not shown again):"
        )
        for recovery_code in codes:
            self.say(f"  {recovery_code}")
        if revoked:
            self.say(f"signed out {revoked} other session(s)")

    async def _sessions(self, argument: str) -> None:
        if argument:
            raise UsageError
        self._listed_sessions = await self._api.sessions()
        for number, session in enumerate(self._listed_sessions, start=1):
            seen = datetime.fromtimestamp(session.last_seen_at / 1000).strftime("%Y-%m-%d %H:%M")
            this = " (this one)" if session.current else ""
            agent = session.user_agent or "unknown client"
            self.say(
                f"{number}. {agent} from {session.address or '?'}, last seen {seen}"
                f" [{session.id}]{this}"
            )

    async def _revoke(self, argument: str) -> None:
        if not argument:
            raise UsageError
        if argument == "others":
            revoked = await self._api.revoke_other_sessions()
            self.say(f"signed out {revoked} other session(s)")
            return
        session_id = argument
        if argument.isdigit():
            number = int(argument)
            if not 1 <= number <= len(self._listed_sessions):
                raise Unknown(f"no session {number}: /sessions lists them")
            session_id = self._listed_sessions[number - 1].id
        await self._api.revoke_session(session_id)
        self.say(f"signed out session {session_id}")

    async def _password(self, argument: str) -> None:
        if argument:
            raise UsageError
        old = await self._console.ask_secret("current password: ")
        new = await self._console.ask_secret("new password: ")
        if new != await self._console.ask_secret("the same new password again: "):
            self.say("the two passwords differ; nothing changed")
            return
        revoked = await self._api.change_password(old, new)
        self.say(f"password changed; signed out {revoked} other session(s)")
