"""Deployment secrets: values every node on one database must share (the token signing key)."""

from __future__ import annotations

from typing import Protocol

from .._sql import Engine, Tx, execute, fetch_value


class Secrets(Protocol):
    """Named secrets, stored once per database."""

    async def shared_secret(self, name: str, candidate: bytes, now: int) -> bytes:
        """The secret stored under `name`, storing `candidate` first if there is none.

        Every node on one database gets the same value, even when several
        call this at once for a new name: the first stored value wins and is
        never replaced.
        """
        ...


class SecretsOnSql(Engine):
    """`Secrets` for every engine."""

    async def shared_secret(self, name: str, candidate: bytes, now: int) -> bytes:
        """See `Secrets.shared_secret`."""
        return await self._write(lambda: shared_secret(name, candidate, now))


def shared_secret(name: str, candidate: bytes, now: int) -> Tx[bytes]:
    # On PostgreSQL (READ COMMITTED) a concurrent insert of the same name makes
    # ON CONFLICT wait for it and then do nothing; the SELECT that follows (a
    # new snapshot) sees the winner's value.
    yield from execute(
        "INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (name) DO NOTHING",
        name,
        candidate,
        now,
    )
    value = yield from fetch_value("SELECT value FROM secrets WHERE name = $1", name)
    return bytes(value)
