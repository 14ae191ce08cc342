"""External identities: users who sign in with a token of a trusted provider (issue #14)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .._errors import Conflict, NotFound
from .._model import User, new_id
from .._rows import USER, user
from .._sql import Engine, ForeignKeyViolation, Tx, UniqueViolation, execute, fetch_one
from .accounts import create_user


class Identities(Protocol):
    """Links from a provider's `(issuer, subject)` to a local user.

    A subject is linked to exactly one user, for ever (until the user is
    deleted); a user may have several identities (one per provider, say).
    """

    async def get_external_user(self, issuer: str, subject: str) -> User | None:
        """The user linked to `subject` at `issuer`, or None."""
        ...

    async def create_external_user(
        self,
        issuer: str,
        subject: str,
        username: str,
        display_name: str,
        email: str | None,
        now: int,
    ) -> User:
        """Create a user without a password, linked to `subject` at `issuer`.

        Raises `Conflict` (creating nothing) if the username is taken or the
        identity is already linked (a concurrent first sign-in won: read it
        with `get_external_user`).
        """
        ...

    async def link_external_identity(
        self, issuer: str, subject: str, user_id: str, email: str | None, now: int
    ) -> User:
        """Link `subject` at `issuer` to an existing user, and return that user.

        Raises `NotFound` if the user does not exist, `Conflict` if the
        identity is already linked.
        """
        ...

    async def find_user_by_external_email(self, email: str, issuers: Sequence[str]) -> User | None:
        """A user with an identity at one of `issuers` whose stored e-mail is `email`.

        E-mails are compared lower-case; the oldest such identity wins.
        """
        ...


class IdentitiesOnSql(Engine):
    """`Identities` for every engine."""

    async def get_external_user(self, issuer: str, subject: str) -> User | None:
        """See `Identities.get_external_user`."""
        return await self._read(lambda: get_external_user(issuer, subject))

    async def create_external_user(
        self,
        issuer: str,
        subject: str,
        username: str,
        display_name: str,
        email: str | None,
        now: int,
    ) -> User:
        """See `Identities.create_external_user`."""
        new = User(
            id=new_id("u"), username=username.lower(), display_name=display_name, created_at=now
        )
        return await self._write(lambda: create_external_user(issuer, subject, new, email))

    async def link_external_identity(
        self, issuer: str, subject: str, user_id: str, email: str | None, now: int
    ) -> User:
        """See `Identities.link_external_identity`."""
        return await self._write(lambda: link_identity(issuer, subject, user_id, email, now))

    async def find_user_by_external_email(self, email: str, issuers: Sequence[str]) -> User | None:
        """See `Identities.find_user_by_external_email`."""
        return await self._read(lambda: find_user_by_email(email.lower(), tuple(issuers)))


def get_external_user(issuer: str, subject: str) -> Tx[User | None]:
    row = yield from fetch_one(
        f"SELECT {USER} FROM external_identities i JOIN users u ON u.id = i.user_id"
        " WHERE i.issuer = $1 AND i.subject = $2",
        issuer,
        subject,
    )
    return None if row is None else user(row)


def create_external_user(issuer: str, subject: str, new: User, email: str | None) -> Tx[User]:
    yield from create_user(new, None, None)
    yield from _insert_identity(issuer, subject, new.id, email, new.created_at)
    return new


def link_identity(issuer: str, subject: str, user_id: str, email: str | None, now: int) -> Tx[User]:
    row = yield from fetch_one(f"SELECT {USER} FROM users u WHERE u.id = $1", user_id)
    if row is None:
        raise NotFound(f"no user {user_id!r}")
    yield from _insert_identity(issuer, subject, user_id, email, now)
    return user(row)


def find_user_by_email(email: str, issuers: tuple[str, ...]) -> Tx[User | None]:
    if not issuers:
        return None
    # One placeholder per issuer: both engines take the same `IN ($2, $3...)`.
    listed = ", ".join(f"${index}" for index in range(2, len(issuers) + 2))
    row = yield from fetch_one(
        f"SELECT {USER} FROM external_identities i JOIN users u ON u.id = i.user_id"
        f" WHERE i.email = $1 AND i.issuer IN ({listed})"
        " ORDER BY i.created_at, i.issuer, i.subject LIMIT 1",
        email,
        *issuers,
    )
    return None if row is None else user(row)


def _insert_identity(
    issuer: str, subject: str, user_id: str, email: str | None, now: int
) -> Tx[None]:
    try:
        yield from execute(
            "INSERT INTO external_identities (issuer, subject, user_id, email, created_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            issuer,
            subject,
            user_id,
            None if email is None else email.lower(),
            now,
        )
    except UniqueViolation as exc:
        raise Conflict(f"the identity {subject!r} of {issuer!r} is already linked") from exc
    except ForeignKeyViolation as exc:
        raise NotFound(f"no user {user_id!r}") from exc
