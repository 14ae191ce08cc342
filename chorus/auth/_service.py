"""`AuthService`: accounts, sessions and tokens on top of the store."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Final

import attrs

from chorus import persistence
from chorus.persistence import Conflict, Store, User, now_ms
from chorus.text import name_problem

from ._errors import InvalidCredentials, InvalidInput, InvalidToken, RefreshReused, UsernameTaken
from ._passwords import Passwords
from ._tokens import TokenSigner, hash_refresh_token, new_refresh_token

USERNAME_CHARS: Final[tuple[int, int]] = (3, 32)
"""Shortest and longest username, in characters from a-z, 0-9, '_', '.', '-'."""
PASSWORD_CHARS: Final[tuple[int, int]] = (8, 1024)
DISPLAY_NAME_CHARS: Final[tuple[int, int]] = (1, 64)
"""Shortest and longest display name, once trimmed."""
USERNAME_PATTERN: Final = "^[A-Za-z0-9_.-]*$"
"""The characters of a username as given (JSON Schema); it is stored lowercased."""
_USERNAME = re.compile(USERNAME_PATTERN)


@attrs.frozen(kw_only=True)
class Principal:
    """Who is making a request: a user within one live session."""

    user_id: str
    session_id: str


@attrs.frozen(kw_only=True)
class Tokens:
    """What register, login and refresh return to the client."""

    access_token: str
    refresh_token: str
    expires_in: int
    """Seconds until `access_token` expires."""
    session_id: str
    user: User


class AuthService:
    """Registers users, opens sessions, rotates refresh tokens, checks access tokens.

    `on_revoked(session_id)` is called whenever a session ends (logout, or a
    reused refresh token), so the gateway can close that session's sockets.
    """

    def __init__(
        self,
        store: Store,
        signer: TokenSigner,
        passwords: Passwords,
        *,
        refresh_ttl: int,
        on_revoked: Callable[[str], Awaitable[None]] | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._store = store
        self._signer = signer
        self._passwords = passwords
        self._refresh_ttl_ms = refresh_ttl * 1000
        self._on_revoked = on_revoked
        self._clock = clock
        self._decoy_hash: str | None = None

    async def register(self, username: str, password: str, display_name: str | None) -> Tokens:
        """Create an account and its first session; raises `InvalidInput`, `UsernameTaken`."""
        # Checked before lowercasing: "\u212a".lower() is "k" (KELVIN SIGN), a look-alike.
        _check_username(username)
        username = username.lower()
        display_name = username if display_name is None else display_name.strip()
        _check_length("password", password, PASSWORD_CHARS)
        # The name rule first: a name of spaces only is "at least one visible character".
        if (problem := name_problem(display_name)) is not None:
            raise InvalidInput(f"display_name: {problem}")
        _check_length("display_name", display_name, DISPLAY_NAME_CHARS)
        encoded = await self._passwords.hash(password)
        try:
            user = await self._store.create_user(username, display_name, encoded, self._clock())
        except Conflict:
            raise UsernameTaken(f"username {username!r} is taken") from None
        return await self.open_session(user)

    async def login(self, username: str, password: str) -> Tokens:
        """A new session for valid credentials; raises `InvalidCredentials` otherwise."""
        found = await self._store.get_credentials(username.lower())
        if found is None:
            # Spend the time a real check takes, so timing does not reveal usernames.
            await self._passwords.verify(await self._decoy(), password)
            raise InvalidCredentials("wrong username or password")
        user, encoded = found
        if not await self._passwords.verify(encoded, password):
            raise InvalidCredentials("wrong username or password")
        return await self.open_session(user)

    async def refresh(self, refresh_token: str) -> Tokens:
        """Rotate a refresh token: the presented one dies, a new pair is returned.

        Raises `RefreshReused` (and ends the session) for an already-used
        token, `InvalidToken` for an unknown, expired or revoked one.
        """
        new_token = new_refresh_token()
        outcome = await self._store.rotate_refresh(
            hash_refresh_token(refresh_token), hash_refresh_token(new_token), self._clock()
        )
        if isinstance(outcome, persistence.RefreshReused):
            await self._revoked(outcome.session.id)
            raise RefreshReused("refresh token already used: the session has been revoked")
        if not isinstance(outcome, persistence.RefreshRotated):
            raise InvalidToken(f"refresh token {outcome.reason}")
        user = await self._store.get_user(outcome.session.user_id)
        if user is None:
            raise InvalidToken("the account no longer exists")
        return self._tokens(user, outcome.session.id, new_token)

    async def logout(self, session_id: str) -> None:
        """End the session: its tokens stop working and its sockets are closed."""
        await self._store.revoke_session(session_id, self._clock())
        await self._revoked(session_id)

    async def authenticate(self, access_token: str) -> Principal:
        """Check an access token and that its session is still live; raises `InvalidToken`."""
        now = self._clock()
        claims = self._signer.verify(access_token, now // 1000)
        session = await self._store.get_session(claims.session_id)
        if session is None or not session.is_live(now) or session.user_id != claims.user_id:
            raise InvalidToken("the session has ended")
        return Principal(user_id=claims.user_id, session_id=claims.session_id)

    async def _revoked(self, session_id: str) -> None:
        if self._on_revoked is not None:
            await self._on_revoked(session_id)

    async def open_session(self, user: User) -> Tokens:
        """A new session of `user` with its tokens, no password asked.

        For accounts the caller vouches for (registration, login, provisioned
        bots): the session is made exactly as a login makes it.
        """
        now = self._clock()
        refresh_token = new_refresh_token()
        session = await self._store.create_session(
            user.id, hash_refresh_token(refresh_token), now, now + self._refresh_ttl_ms
        )
        return self._tokens(user, session.id, refresh_token)

    def _tokens(self, user: User, session_id: str, refresh_token: str) -> Tokens:
        access = self._signer.issue(user.id, session_id, self._clock() // 1000)
        return Tokens(
            access_token=access,
            refresh_token=refresh_token,
            expires_in=self._signer.access_ttl,
            session_id=session_id,
            user=user,
        )

    async def _decoy(self) -> str:
        if self._decoy_hash is None:
            self._decoy_hash = await self._passwords.hash("decoy password, never matches")
        return self._decoy_hash


def _check_username(username: str) -> None:
    low, high = USERNAME_CHARS
    if not (low <= len(username) <= high and _USERNAME.fullmatch(username)):
        raise InvalidInput(
            f"username: {low} to {high} characters from a-z, A-Z, 0-9, '_', '.', '-'"
        )


def _check_length(field: str, value: str, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if not low <= len(value) <= high:
        raise InvalidInput(f"{field}: {low} to {high} characters")
