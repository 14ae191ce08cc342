"""`AuthService`: accounts, sessions and tokens on top of the store."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Final

import attrs

from chorus import persistence
from chorus.persistence import Conflict, NotFound, Session, Store, User, now_ms
from chorus.ratelimit import LocalRateLimiter, RateLimiter
from chorus.text import name_problem

from ._audit import AuditAction, AuditLog
from ._errors import InvalidCredentials, InvalidInput, InvalidToken, RefreshReused, UsernameTaken
from ._passwords import Passwords
from ._sessioncache import CachedSession, LocalSessionCache, SessionCache
from ._tokens import TokenSigner, hash_refresh_token, new_refresh_token
from ._twofactor import TwoFactor

USERNAME_CHARS: Final[tuple[int, int]] = (3, 32)
"""Shortest and longest username, in characters from a-z, 0-9, '_', '.', '-'."""
PASSWORD_CHARS: Final[tuple[int, int]] = (8, 1024)
DISPLAY_NAME_CHARS: Final[tuple[int, int]] = (1, 64)
"""Shortest and longest display name, once trimmed."""
MAX_USER_AGENT: Final = 256
"""Characters of a client's `User-Agent` kept with its session."""
USERNAME_PATTERN: Final = "^[A-Za-z0-9_.-]*$"
"""The characters of a username as given (JSON Schema); it is stored lowercased."""
_USERNAME = re.compile(USERNAME_PATTERN)
_SWEEP_BATCH: Final = 500
"""Session ids per store query of `forget_revoked`."""


@attrs.frozen(kw_only=True)
class Principal:
    """Who is making a request: a user within one live session."""

    user_id: str
    session_id: str


@attrs.frozen(kw_only=True)
class Device:
    """The client opening a session, as its owner will see it in the session list."""

    user_agent: str = ""
    address: str = ""
    """The client address (behind trusted proxies, the forwarded one)."""


@attrs.frozen(kw_only=True)
class Challenge:
    """The password was right but the account has 2FA: the second step's token."""

    challenge_token: str
    expires_in: int
    """Seconds the second step may take."""


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

    `on_revoked(session_id)` is called whenever a session ends (logout, a
    reused refresh token, a revocation by its owner, a password change), so
    the gateway can close that session's sockets. A session ends after
    `refresh_ttl` seconds without a refresh, and `session_max_age` seconds
    after it opened whatever happens.

    Two-factor authentication (`two_factor`) counts code attempts in
    `limiter` (the node's shared one; a per-process one if None) and seals
    TOTP secrets with `two_factor_key` (if None, a key kept in the store).

    Security events go to `audit` (logins and failures, 2FA changes, session
    revocations, refresh token reuse, password changes, deactivations). Session checks look
    in `session_cache` first (by default a small in-process one); every
    revocation invalidates it before the revoking call returns.
    """

    def __init__(
        self,
        store: Store,
        signer: TokenSigner,
        passwords: Passwords,
        *,
        refresh_ttl: int,
        session_max_age: int | None = None,
        on_revoked: Callable[[str], Awaitable[None]] | None = None,
        clock: Callable[[], int] = now_ms,
        limiter: RateLimiter | None = None,
        two_factor_key: bytes | None = None,
        two_factor_attempts_per_minute: int = 5,
        challenge_ttl: int = 300,
        issuer: str = "Chorus",
        audit_retention_days: int | Callable[[], int] = 365,
        session_cache: SessionCache | None = None,
    ) -> None:
        self._store = store
        self._signer = signer
        self._passwords = passwords
        self._refresh_ttl_ms = refresh_ttl * 1000
        max_age = refresh_ttl if session_max_age is None else session_max_age
        self._max_age_ms = max_age * 1000
        self._on_revoked = on_revoked
        self._clock = clock
        self._decoy_hash: str | None = None
        self._challenge_ttl = challenge_ttl
        self.audit = AuditLog(store, clock=clock, retention_days=audit_retention_days)
        """The audit log, for every service that records security events."""
        self._cache: SessionCache = (
            LocalSessionCache(max_entries=10_000, ttl=5.0)
            if session_cache is None
            else session_cache
        )
        self.two_factor = TwoFactor(
            store,
            passwords,
            LocalRateLimiter() if limiter is None else limiter,
            key=two_factor_key,
            attempts_per_minute=two_factor_attempts_per_minute,
            issuer=issuer,
            clock=clock,
            audit=self.audit,
        )
        """TOTP enrolment and codes; `login` and `complete_login` use it."""

    async def register(
        self, username: str, password: str, display_name: str | None, device: Device | None = None
    ) -> Tokens:
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
        await self.audit.record(AuditAction.ACCOUNT_CREATED, user.id, user.id)
        return await self.open_session(user, device, method="password")

    async def login(
        self, username: str, password: str, device: Device | None = None
    ) -> Tokens | Challenge:
        """A new session for valid credentials; raises `InvalidCredentials` otherwise.

        For an account with 2FA enabled the answer is a `Challenge` instead,
        and no session exists until `complete_login` accepts a code.
        """
        found = await self._store.get_credentials(username.lower())
        if found is None:
            # Spend the time a real check takes, so timing does not reveal usernames.
            await self._passwords.verify(await self._decoy(), password)
            await self._login_failed(username, None, "unknown_username", device)
            raise InvalidCredentials("wrong username or password")
        user, encoded = found
        if not await self._passwords.verify(encoded, password):
            await self._login_failed(username, user.id, "wrong_password", device)
            raise InvalidCredentials("wrong username or password")
        if await self.two_factor.required(user.id):
            token, _ = self._signer.issue_challenge(
                user.id, self._clock() // 1000, self._challenge_ttl
            )
            await self.audit.record(
                AuditAction.LOGIN_CHALLENGED, user.id, user.id, address=_address(device)
            )
            return Challenge(challenge_token=token, expires_in=self._challenge_ttl)
        return await self.open_session(user, device, method="password")

    async def _login_failed(
        self, username: str, user_id: str | None, reason: str, device: Device | None
    ) -> None:
        # The name tried, cut to a username's length: never the password.
        await self.audit.record(
            AuditAction.LOGIN_FAILED,
            None,
            username[: USERNAME_CHARS[1]],
            address=_address(device),
            details={"reason": reason, "user_id": user_id},
        )

    async def complete_login(
        self, challenge_token: str, code: str, device: Device | None = None
    ) -> Tokens:
        """The second login step: a session for a live challenge and a valid code.

        `code` is a TOTP code or an unused recovery code (which is then spent).
        Raises `InvalidToken` for a forged or expired challenge, `InvalidCode`,
        or `TooManyAttempts` (see `TwoFactor.check`).
        """
        user_id, challenge_id = self._signer.verify_challenge(
            challenge_token, self._clock() // 1000
        )
        await self.two_factor.check(
            user_id, code, challenge_id=challenge_id, address=_address(device)
        )
        user = await self._store.get_user(user_id)
        if user is None:
            raise InvalidToken("the account no longer exists")
        return await self.open_session(user, device, method="password+2fa")

    async def refresh(self, refresh_token: str) -> Tokens:
        """Rotate a refresh token: the presented one dies, a new pair is returned.

        Raises `RefreshReused` (and ends the session) for an already-used
        token, `InvalidToken` for an unknown, expired or revoked one.
        """
        new_token = new_refresh_token()
        now = self._clock()
        outcome = await self._store.rotate_refresh(
            hash_refresh_token(refresh_token),
            hash_refresh_token(new_token),
            now,
            now + self._refresh_ttl_ms,
        )
        if isinstance(outcome, persistence.RefreshReused):
            await self._revoked(outcome.session.id)
            await self.audit.record(
                AuditAction.REFRESH_REUSED, outcome.session.user_id, outcome.session.id
            )
            raise RefreshReused("refresh token already used: the session has been revoked")
        if not isinstance(outcome, persistence.RefreshRotated):
            raise InvalidToken(f"refresh token {outcome.reason}")
        user = await self._store.get_user(outcome.session.user_id)
        if user is None:
            raise InvalidToken("the account no longer exists")
        if await self._store.deactivated_at(user.id) is not None:
            raise InvalidToken("this account is deactivated")
        return self._tokens(user, outcome.session.id, new_token)

    async def logout(
        self, session_id: str, *, actor_id: str | None = None, reason: str = "logout"
    ) -> None:
        """End the session: its tokens stop working and its sockets are closed.

        Recorded in the audit log as a revocation by `actor_id` for `reason`.
        """
        await self._store.revoke_session(session_id, self._clock())
        await self._revoked(session_id)
        await self.audit.record(
            AuditAction.SESSION_REVOKED, actor_id, session_id, details={"reason": reason}
        )

    async def authenticate(self, access_token: str) -> Principal:
        """Check an access token and that its session is still live; raises `InvalidToken`.

        The session is looked up in the session cache first, then the store.
        """
        now = self._clock()
        claims = self._signer.verify(access_token, now // 1000)
        cached = await self._cache.get(claims.session_id)
        if cached is None or now >= cached.expires_at:
            generation = self._cache.generation()
            session = await self._store.get_session(claims.session_id)
            if session is None or not session.is_live(now):
                raise InvalidToken("the session has ended")
            cached = CachedSession(session.user_id, session.expires_at)
            await self._cache.put(session.id, cached, generation)
        if cached.user_id != claims.user_id:
            raise InvalidToken("the session has ended")
        return Principal(user_id=claims.user_id, session_id=claims.session_id)

    async def forget_revoked(self, session_ids: list[str]) -> list[str]:
        """Of `session_ids` (sessions with sockets open on this node), those revoked in the
        store by someone no node heard from (`chorus admin`): each is dropped from the
        session cache and its sockets are closed (`on_revoked`). Returns their ids."""
        revoked = []
        for start in range(0, len(session_ids), _SWEEP_BATCH):
            revoked += await self._store.revoked_among(session_ids[start : start + _SWEEP_BATCH])
        for session_id in revoked:
            await self._revoked(session_id)
        return revoked

    async def _revoked(self, session_id: str) -> None:
        """The session has ended in the store: forget it in the cache, close its sockets."""
        await self._cache.invalidate(session_id)
        if self._on_revoked is not None:
            await self._on_revoked(session_id)

    async def open_session(
        self,
        user: User,
        device: Device | None = None,
        *,
        method: str | None = None,
        details: dict[str, object] | None = None,
    ) -> Tokens:
        """A new session of `user` with its tokens, no password asked.

        For accounts the caller vouches for (registration, login, provisioned
        bots): the session is made exactly as a login makes it. With a
        `method` (how the user proved who they are), the login is audited,
        with `details` added. A deactivated account gets none (`InvalidCredentials`),
        whichever way it signs in.
        """
        if await self._store.deactivated_at(user.id) is not None:
            raise InvalidCredentials("this account is deactivated")
        now = self._clock()
        device = Device() if device is None else device
        refresh_token = new_refresh_token()
        session = await self._store.create_session(
            user.id,
            hash_refresh_token(refresh_token),
            now,
            now + min(self._refresh_ttl_ms, self._max_age_ms),
            max_expires_at=now + self._max_age_ms,
            user_agent=device.user_agent[:MAX_USER_AGENT],
            address=device.address,
        )
        if method is not None:
            await self.audit.record(
                AuditAction.LOGIN,
                user.id,
                session.id,
                address=device.address or None,
                details={"method": method, **(details or {})},
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

    # -- session management (issue #14) ----------------------------------------------------

    async def sessions(self, user_id: str) -> list[Session]:
        """The user's live sessions, oldest first."""
        return await self._store.list_sessions(user_id, self._clock())

    async def revoke(self, principal: Principal, session_id: str) -> None:
        """End one of the caller's own sessions (their current one too, like logout).

        Raises `NotFound` if the session is not the caller's or has ended.
        """
        found = await self._store.get_session(session_id)
        if found is None or found.user_id != principal.user_id or not found.is_live(self._clock()):
            raise NotFound(f"no live session {session_id!r} of yours")
        await self.logout(session_id, actor_id=principal.user_id, reason="revoked")

    async def revoke_others(self, principal: Principal, *, reason: str = "others_revoked") -> int:
        """End every live session of the caller but the current one; how many ended."""
        ended = await self._store.revoke_sessions(
            principal.user_id, self._clock(), keep=principal.session_id
        )
        for session_id in ended:
            await self._revoked(session_id)
            await self.audit.record(
                AuditAction.SESSION_REVOKED,
                principal.user_id,
                session_id,
                details={"reason": reason},
            )
        return len(ended)

    async def deactivate(self, user_id: str, *, actor_id: str | None) -> int:
        """Deactivate the account (no new session, whichever way it signs in) and end its
        sessions, closing its sockets on every node; how many sessions ended.

        Audited as `user.deactivated` by `actor_id`, then each session's revocation.
        """
        await self._store.set_deactivated(user_id, self._clock())
        await self.audit.record(AuditAction.USER_DEACTIVATED, actor_id, user_id)
        return await self.revoke_all(user_id, actor_id=actor_id, reason="deactivated")

    async def reactivate(self, user_id: str, *, actor_id: str | None) -> None:
        """Let a deactivated account sign in again (audited as `user.reactivated`)."""
        await self._store.set_deactivated(user_id, None)
        await self.audit.record(AuditAction.USER_REACTIVATED, actor_id, user_id)

    async def revoke_all(
        self, user_id: str, *, actor_id: str | None, reason: str = "revoked_by_admin"
    ) -> int:
        """End every live session of the user (an admin's action), closing their sockets on
        every node; how many ended. Each is audited as revoked by `actor_id` for `reason`."""
        ended = await self._store.revoke_sessions(user_id, self._clock(), keep=None)
        for session_id in ended:
            await self._revoked(session_id)
            await self.audit.record(
                AuditAction.SESSION_REVOKED, actor_id, session_id, details={"reason": reason}
            )
        return len(ended)

    async def change_password(self, principal: Principal, old: str, new: str) -> int:
        """Replace the caller's password (the old one must match) and end their other
        sessions; how many ended. Raises `WrongPassword`, `InvalidInput`."""
        _check_length("new_password", new, PASSWORD_CHARS)
        user = await self._store.get_user(principal.user_id)
        if user is None:
            raise InvalidToken("the account no longer exists")
        await self.two_factor.check_password(user, old)
        await self._store.set_password(user.id, await self._passwords.hash(new), self._clock())
        await self.audit.record(AuditAction.PASSWORD_CHANGED, user.id, user.id)
        return await self.revoke_others(principal, reason="password_changed")

    async def user(self, user_id: str) -> User:
        """The caller's account; raises `InvalidToken` if it no longer exists."""
        found = await self._store.get_user(user_id)
        if found is None:
            raise InvalidToken("the account no longer exists")
        return found

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


def _address(device: Device | None) -> str | None:
    """The device's address, or None: the current client's (`client_address`)."""
    return device.address if device is not None and device.address else None
