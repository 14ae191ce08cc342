"""TOTP two-factor authentication: each user's encrypted secret, replay guard, recovery codes.

The store never sees a TOTP secret in clear nor a recovery code: callers
encrypt the one and hash the other (`chorus.auth`), and compare time steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from .._errors import Conflict, NotFound
from .._sql import Engine, ForeignKeyViolation, Tx, execute, execute_many, fetch_one


@attrs.frozen(kw_only=True)
class TotpState:
    """A user's TOTP enrolment: pending until `enabled_at` is set."""

    secret: bytes
    """The secret as the caller stored it (encrypted)."""
    created_at: int
    enabled_at: int | None
    last_step: int
    """The newest time step accepted; codes of this step or older are refused."""
    recovery_codes_left: int

    @property
    def enabled(self) -> bool:
        return self.enabled_at is not None


class TwoFactor(Protocol):
    """TOTP enrolments and recovery codes, one enrolment per user."""

    async def begin_totp(self, user_id: str, secret: bytes, now: int) -> None:
        """Store a pending enrolment with `secret`, replacing any pending one.

        Raises `Conflict` if 2FA is already enabled, `NotFound` if the user
        does not exist.
        """
        ...

    async def get_totp(self, user_id: str) -> TotpState | None:
        """The user's enrolment, pending or enabled, or None."""
        ...

    async def enable_totp(
        self, user_id: str, step: int, recovery_hashes: Sequence[str], now: int
    ) -> bool:
        """Enable the pending enrolment, accepting the code of `step`; its recovery codes
        become `recovery_hashes`. False (nothing changed) if there is no pending one."""
        ...

    async def use_totp_step(self, user_id: str, step: int) -> bool:
        """Accept a code of time step `step` once: True if 2FA is enabled and no code of
        this step or a later one was accepted before (then none of them ever will be)."""
        ...

    async def use_recovery_code(self, user_id: str, code_hash: str, now: int) -> bool:
        """Spend an unused recovery code of an enabled enrolment; False if there is none."""
        ...

    async def disable_totp(self, user_id: str) -> bool:
        """Forget the enrolment and its recovery codes; False if there was none."""
        ...


class TwoFactorOnSql(Engine):
    """`TwoFactor` for every engine."""

    async def begin_totp(self, user_id: str, secret: bytes, now: int) -> None:
        """See `TwoFactor.begin_totp`."""
        await self._write(lambda: begin_totp(user_id, secret, now))

    async def get_totp(self, user_id: str) -> TotpState | None:
        """See `TwoFactor.get_totp`."""
        return await self._read(lambda: get_totp(user_id))

    async def enable_totp(
        self, user_id: str, step: int, recovery_hashes: Sequence[str], now: int
    ) -> bool:
        """See `TwoFactor.enable_totp`."""
        return await self._write(lambda: enable_totp(user_id, step, recovery_hashes, now))

    async def use_totp_step(self, user_id: str, step: int) -> bool:
        """See `TwoFactor.use_totp_step`."""
        return await self._write(lambda: use_totp_step(user_id, step), one_statement=True)

    async def use_recovery_code(self, user_id: str, code_hash: str, now: int) -> bool:
        """See `TwoFactor.use_recovery_code`."""
        return await self._write(lambda: use_recovery_code(user_id, code_hash, now))

    async def disable_totp(self, user_id: str) -> bool:
        """See `TwoFactor.disable_totp`."""
        return await self._write(lambda: disable_totp(user_id))


def begin_totp(user_id: str, secret: bytes, now: int) -> Tx[None]:
    enabled = yield from fetch_one(
        "SELECT 1 FROM totp WHERE user_id = $1 AND enabled_at IS NOT NULL", user_id
    )
    if enabled is not None:
        raise Conflict("two-factor authentication is already enabled")
    yield from execute("DELETE FROM totp WHERE user_id = $1", user_id)
    try:
        yield from execute(
            "INSERT INTO totp (user_id, secret, created_at) VALUES ($1, $2, $3)",
            user_id,
            secret,
            now,
        )
    except ForeignKeyViolation as exc:
        raise NotFound(f"no user {user_id!r}") from exc


def get_totp(user_id: str) -> Tx[TotpState | None]:
    row = yield from fetch_one(
        "SELECT t.secret, t.created_at, t.enabled_at, t.last_step,"
        " (SELECT count(*) FROM recovery_codes c WHERE c.user_id = t.user_id"
        "  AND c.used_at IS NULL)"
        " FROM totp t WHERE t.user_id = $1",
        user_id,
    )
    if row is None:
        return None
    return TotpState(
        secret=bytes(row[0]),
        created_at=row[1],
        enabled_at=row[2],
        last_step=row[3],
        recovery_codes_left=row[4],
    )


def enable_totp(user_id: str, step: int, recovery_hashes: Sequence[str], now: int) -> Tx[bool]:
    row = yield from fetch_one(
        "UPDATE totp SET enabled_at = $1, last_step = $2"
        " WHERE user_id = $3 AND enabled_at IS NULL RETURNING 1",
        now,
        step,
        user_id,
    )
    if row is None:
        return False
    yield from execute("DELETE FROM recovery_codes WHERE user_id = $1", user_id)
    yield from execute_many(
        "INSERT INTO recovery_codes (user_id, hash) VALUES ($1, $2)",
        [(user_id, code_hash) for code_hash in recovery_hashes],
    )
    return True


def use_totp_step(user_id: str, step: int) -> Tx[bool]:
    # One conditional UPDATE: of two concurrent uses of one code, one wins.
    row = yield from fetch_one(
        "UPDATE totp SET last_step = $1"
        " WHERE user_id = $2 AND enabled_at IS NOT NULL AND last_step < $1 RETURNING 1",
        step,
        user_id,
    )
    return row is not None


def use_recovery_code(user_id: str, code_hash: str, now: int) -> Tx[bool]:
    enabled = yield from fetch_one(
        "SELECT 1 FROM totp WHERE user_id = $1 AND enabled_at IS NOT NULL", user_id
    )
    if enabled is None:
        return False
    row = yield from fetch_one(
        "UPDATE recovery_codes SET used_at = $1"
        " WHERE user_id = $2 AND hash = $3 AND used_at IS NULL RETURNING 1",
        now,
        user_id,
        code_hash,
    )
    return row is not None


def disable_totp(user_id: str) -> Tx[bool]:
    yield from execute("DELETE FROM recovery_codes WHERE user_id = $1", user_id)
    row = yield from fetch_one("DELETE FROM totp WHERE user_id = $1 RETURNING 1", user_id)
    return row is not None
