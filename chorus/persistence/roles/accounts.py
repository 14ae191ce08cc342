"""Accounts and sessions: users, password hashes, sessions and refresh-token rotation."""

from __future__ import annotations

from typing import Protocol

import attrs

from .._errors import Conflict, NotFound
from .._model import (
    RefreshInvalid,
    RefreshOutcome,
    RefreshReused,
    RefreshRotated,
    Session,
    User,
    new_id,
)
from .._rows import SESSION, USER, session, user
from .._sql import Engine, ForeignKeyViolation, Tx, UniqueViolation, execute, fetch_one


class Accounts(Protocol):
    """Users and their credentials, sessions and refresh tokens.

    Tokens are stored only as hashes: callers hash what the client presents.
    """

    async def create_user(
        self,
        username: str,
        display_name: str,
        password_hash: str | None,
        now: int,
        *,
        bot_run: str | None = None,
    ) -> User:
        """Create an account; `username` is stored lower-case.

        `password_hash` is None for users who sign in through an external
        identity provider. Raises `Conflict` if the username is taken, in any
        letter case. Validating the username's format is the caller's job.
        `bot_run` marks a user of the bot swarm run with that id (see
        `remove_bot_run`).
        """
        ...

    async def get_user(self, user_id: str) -> User | None:
        """The user with this id, or None."""
        ...

    async def get_user_by_username(self, username: str) -> User | None:
        """The user with this username (any letter case), or None."""
        ...

    async def get_credentials(self, username: str) -> tuple[User, str] | None:
        """The user with this username (any letter case) and their password hash.

        None when there is no such user or the user has no password.
        """
        ...

    async def create_session(
        self,
        user_id: str,
        refresh_hash: str,
        now: int,
        expires_at: int,
        *,
        max_expires_at: int | None = None,
        user_agent: str = "",
        address: str = "",
    ) -> Session:
        """Open a session whose current refresh token has hash `refresh_hash`.

        `expires_at` is its idle deadline, `max_expires_at` (default:
        `expires_at`) the absolute one that no refresh moves; `user_agent`
        and `address` describe the client for the session list. Raises
        `NotFound` if the user does not exist, `Conflict` if the hash is
        already stored.
        """
        ...

    async def get_session(self, session_id: str) -> Session | None:
        """The session with this id (live or not), or None."""
        ...

    async def rotate_refresh(
        self, presented_hash: str, new_hash: str, now: int, expires_at: int | None = None
    ) -> RefreshOutcome:
        """Exchange a refresh token for a new one, atomically.

        - `RefreshRotated`: the presented token was the current one of a live
          session; it is now used and `new_hash` is the session's current token.
          The session was seen at `now`, and its idle deadline becomes
          `expires_at` (None: unchanged), never past its `max_expires_at`;
          the outcome carries the session so updated.
        - `RefreshReused`: the presented token had already been used (a stolen
          copy, or a client replaying it); the session is now revoked, so every
          token of it, even the newest, is refused from now on.
        - `RefreshInvalid`: unknown token, or its session is expired or
          revoked; nothing changed.

        There is no grace period: a client that retries a rotation whose answer
        it lost finds its session revoked and must sign in again.
        """
        ...

    async def revoke_session(self, session_id: str, now: int) -> bool:
        """Revoke a session; False if it does not exist or was already revoked."""
        ...

    async def set_password(self, user_id: str, password_hash: str, now: int) -> bool:
        """Replace the user's password hash; False if the user has no password."""
        ...


class AccountsOnSql(Engine):
    """`Accounts` for every engine: each method runs one transaction below."""

    async def create_user(
        self,
        username: str,
        display_name: str,
        password_hash: str | None,
        now: int,
        *,
        bot_run: str | None = None,
    ) -> User:
        """See `Accounts.create_user`."""
        new = User(
            id=new_id("u"), username=username.lower(), display_name=display_name, created_at=now
        )
        return await self._write(lambda: create_user(new, password_hash, bot_run))

    async def get_user(self, user_id: str) -> User | None:
        """See `Accounts.get_user`."""
        return await self._read(lambda: find_user("u.id = $1", user_id))

    async def get_user_by_username(self, username: str) -> User | None:
        """See `Accounts.get_user_by_username`."""
        return await self._read(lambda: find_user(_BY_USERNAME, username.lower()))

    async def get_credentials(self, username: str) -> tuple[User, str] | None:
        """See `Accounts.get_credentials`."""
        return await self._read(lambda: get_credentials(username.lower()))

    async def create_session(
        self,
        user_id: str,
        refresh_hash: str,
        now: int,
        expires_at: int,
        *,
        max_expires_at: int | None = None,
        user_agent: str = "",
        address: str = "",
    ) -> Session:
        """See `Accounts.create_session`."""
        new = Session(
            id=new_id("s"),
            user_id=user_id,
            created_at=now,
            expires_at=expires_at,
            revoked_at=None,
            max_expires_at=expires_at if max_expires_at is None else max_expires_at,
            user_agent=user_agent,
            address=address,
        )
        return await self._write(lambda: create_session(new, refresh_hash))

    async def get_session(self, session_id: str) -> Session | None:
        """See `Accounts.get_session`."""
        return await self._read(lambda: get_session(session_id))

    async def rotate_refresh(
        self, presented_hash: str, new_hash: str, now: int, expires_at: int | None = None
    ) -> RefreshOutcome:
        """See `Accounts.rotate_refresh`."""
        return await self._write(lambda: rotate_refresh(presented_hash, new_hash, now, expires_at))

    async def revoke_session(self, session_id: str, now: int) -> bool:
        """See `Accounts.revoke_session`."""
        return await self._write(lambda: revoke_session(session_id, now), one_statement=True)

    async def set_password(self, user_id: str, password_hash: str, now: int) -> bool:
        """See `Accounts.set_password`."""
        return await self._write(
            lambda: set_password(user_id, password_hash, now), one_statement=True
        )


# Usernames are stored lower-case: PostgreSQL's unique index is on lower(username),
# SQLite's username column is NOCASE (its dialect reads this as `u.username`).
_BY_USERNAME = "lower(u.username) = $1"


def create_user(new: User, password_hash: str | None, bot_run: str | None) -> Tx[User]:
    try:
        yield from execute(
            "INSERT INTO users (id, username, display_name, created_at, bot_run)"
            " VALUES ($1, $2, $3, $4, $5)",
            new.id,
            new.username,
            new.display_name,
            new.created_at,
            bot_run,
        )
    except UniqueViolation as exc:
        raise Conflict(f"username {new.username!r} is taken") from exc
    if password_hash is not None:
        yield from execute(
            "INSERT INTO credentials (user_id, password_hash, updated_at) VALUES ($1, $2, $3)",
            new.id,
            password_hash,
            new.created_at,
        )
    return new


def find_user(where: str, key: str) -> Tx[User | None]:
    row = yield from fetch_one(f"SELECT {USER} FROM users u WHERE {where}", key)
    return None if row is None else user(row)


def get_credentials(username: str) -> Tx[tuple[User, str] | None]:
    row = yield from fetch_one(
        f"SELECT {USER}, c.password_hash FROM users u"
        f" JOIN credentials c ON c.user_id = u.id WHERE {_BY_USERNAME}",
        username,
    )
    return None if row is None else (user(row), row[4])


def create_session(new: Session, refresh_hash: str) -> Tx[Session]:
    try:
        yield from execute(
            "INSERT INTO sessions (id, user_id, created_at, expires_at, max_expires_at,"
            " last_seen_at, user_agent, address) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            new.id,
            new.user_id,
            new.created_at,
            new.expires_at,
            new.max_expires_at,
            new.last_seen_at,
            new.user_agent,
            new.address,
        )
    except ForeignKeyViolation as exc:
        raise NotFound(f"no user {new.user_id!r}") from exc
    yield from _insert_refresh_token(refresh_hash, new.id, new.created_at)
    return new


def get_session(session_id: str) -> Tx[Session | None]:
    row = yield from fetch_one(f"SELECT {SESSION} FROM sessions s WHERE s.id = $1", session_id)
    return None if row is None else session(row)


def rotate_refresh(
    presented_hash: str, new_hash: str, now: int, expires_at: int | None
) -> Tx[RefreshOutcome]:
    # Locking both rows makes two concurrent rotations of one token take
    # turns: the second sees the token used, as a replay would.
    row = yield from fetch_one(
        f"SELECT t.used_at, {SESSION} FROM refresh_tokens t"
        " JOIN sessions s ON s.id = t.session_id WHERE t.hash = $1 FOR NO KEY UPDATE",
        presented_hash,
    )
    if row is None:
        return RefreshInvalid(reason="unknown")
    used_at, found = row[0], session(row[1:])
    if found.revoked_at is not None:
        return RefreshInvalid(reason="revoked")
    if now >= found.expires_at:
        return RefreshInvalid(reason="expired")
    if used_at is not None:
        yield from execute("UPDATE sessions SET revoked_at = $1 WHERE id = $2", now, found.id)
        return RefreshReused(session=attrs.evolve(found, revoked_at=now))
    yield from execute(
        "UPDATE refresh_tokens SET used_at = $1 WHERE hash = $2", now, presented_hash
    )
    yield from _insert_refresh_token(new_hash, found.id, now)
    deadline = found.expires_at if expires_at is None else min(expires_at, found.max_expires_at)
    yield from execute(
        "UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE id = $3",
        now,
        deadline,
        found.id,
    )
    return RefreshRotated(session=attrs.evolve(found, last_seen_at=now, expires_at=deadline))


def revoke_session(session_id: str, now: int) -> Tx[bool]:
    row = yield from fetch_one(
        "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING 1",
        now,
        session_id,
    )
    return row is not None


def set_password(user_id: str, password_hash: str, now: int) -> Tx[bool]:
    row = yield from fetch_one(
        "UPDATE credentials SET password_hash = $1, updated_at = $2 WHERE user_id = $3 RETURNING 1",
        password_hash,
        now,
        user_id,
    )
    return row is not None


def _insert_refresh_token(token_hash: str, session_id: str, now: int) -> Tx[None]:
    try:
        yield from execute(
            "INSERT INTO refresh_tokens (hash, session_id, issued_at) VALUES ($1, $2, $3)",
            token_hash,
            session_id,
            now,
        )
    except UniqueViolation as exc:
        raise Conflict("that refresh token hash is already stored") from exc
