"""`TwoFactor`: TOTP enrolment, the second login step's code check, recovery codes, disabling."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from chorus.persistence import Conflict, Store, TotpState, User
from chorus.ratelimit import RateLimiter

from ._audit import AuditAction, AuditLog
from ._errors import InvalidCode, TooManyAttempts, WrongPassword
from ._passwords import Passwords
from ._totp import (
    TwoFactorKeys,
    looks_like_totp,
    matching_step,
    new_recovery_codes,
    new_totp_secret,
    new_two_factor_key,
    provisioning_uri,
)

TWO_FACTOR_KEY_SECRET = "two-factor-key"
"""Name of the store's shared secret used when no `two_factor_key` setting is given."""


@attrs.frozen(kw_only=True)
class Enrolment:
    """A pending TOTP enrolment: what the user puts in their authenticator app, once."""

    secret: str
    """The base32 secret (for typing in by hand)."""
    otpauth_uri: str
    """The same as an `otpauth://totp/...` URI (for a QR code)."""


class TwoFactor:
    """TOTP 2FA of local accounts over the store.

    Guarantees: a TOTP secret leaves the server once (in the `Enrolment`)
    and is stored only encrypted; recovery codes are returned once and
    stored only as keyed hashes; a TOTP code is accepted at most once (and
    none of an earlier step after it); every code check counts against the
    user's budget, and a login step's also against its challenge's, both
    `attempts_per_minute` (in bursts of as many), before the code is looked at.
    Enrolments, enabling, disabling, refused codes and spent recovery codes
    are recorded in `audit` (never a secret or a code).
    """

    def __init__(
        self,
        store: Store,
        passwords: Passwords,
        limiter: RateLimiter,
        *,
        key: bytes | None,
        attempts_per_minute: int,
        issuer: str,
        clock: Callable[[], int],
        audit: AuditLog,
    ) -> None:
        self._store = store
        self._passwords = passwords
        self._limiter = limiter
        self._key = key
        self._rate = attempts_per_minute / 60
        self._burst = attempts_per_minute
        self._issuer = issuer
        self._clock = clock
        self._keys: TwoFactorKeys | None = None
        self._audit = audit

    async def status(self, user_id: str) -> TotpState | None:
        """The user's enrolment (pending or enabled), or None."""
        return await self._store.get_totp(user_id)

    async def required(self, user_id: str) -> bool:
        """Whether logging in as the user takes a second step."""
        state = await self._store.get_totp(user_id)
        return state is not None and state.enabled

    async def enrol(self, user: User, password: str) -> Enrolment:
        """Start (or restart) an enrolment; it is active only once `confirm`ed.

        Raises `WrongPassword`, or `Conflict` when 2FA is already enabled.
        """
        await self.check_password(user, password)
        secret = new_totp_secret()
        keys = await self._load_keys()
        await self._store.begin_totp(user.id, keys.seal(user.id, secret), self._clock())
        uri = provisioning_uri(secret, user.username, self._issuer)
        await self._audit.record(AuditAction.TWO_FACTOR_ENROLMENT_STARTED, user.id, user.id)
        return Enrolment(secret=secret, otpauth_uri=uri)

    async def confirm(self, user_id: str, code: str) -> list[str]:
        """Enable the pending enrolment with its first code; the new recovery codes.

        Raises `Conflict` without a pending enrolment, `InvalidCode` for a
        wrong code, `TooManyAttempts` past the user's budget.
        """
        await self._count(f"limit:2fa:user:{user_id}")
        state = await self._store.get_totp(user_id)
        if state is None or state.enabled:
            raise Conflict("no pending two-factor enrolment: enrol first")
        keys = await self._load_keys()
        step = matching_step(keys.open(user_id, state.secret), code.strip(), self._clock())
        if step is None:
            await self._failed(user_id, "wrong_code", None, purpose="confirm")
            raise InvalidCode("wrong code: check the authenticator app's clock and the secret")
        codes = new_recovery_codes()
        hashes = keys.hash_recovery_codes(user_id, codes)
        if not await self._store.enable_totp(user_id, step, hashes, self._clock()):
            raise Conflict("no pending two-factor enrolment: enrol first")
        await self._audit.record(AuditAction.TWO_FACTOR_ENABLED, user_id, user_id)
        return codes

    async def check(
        self,
        user_id: str,
        code: str,
        *,
        challenge_id: str | None = None,
        address: str | None = None,
    ) -> None:
        """Accept a TOTP code or a recovery code of the user, once; raise if refused.

        Raises `TooManyAttempts` past the user's (or the challenge's) budget,
        `InvalidCode` for a wrong, replayed or spent code, or when 2FA is off.
        `address` is the client's for the audit log (default: the current one).
        """
        try:
            await self._count(f"limit:2fa:user:{user_id}")
            if challenge_id is not None:
                await self._count(f"limit:2fa:challenge:{challenge_id}")
        except TooManyAttempts:
            await self._failed(user_id, "too_many_attempts", address)
            raise
        state = await self._store.get_totp(user_id)
        if state is None or not state.enabled:
            raise InvalidCode("two-factor authentication is not enabled")
        keys = await self._load_keys()
        if looks_like_totp(code):
            step = matching_step(keys.open(user_id, state.secret), code.strip(), self._clock())
            if step is not None and await self._store.use_totp_step(user_id, step):
                return
            await self._failed(user_id, "wrong_or_used_code", address)
            raise InvalidCode("wrong or already used code")
        code_hash = keys.hash_recovery_code(user_id, code)
        if not await self._store.use_recovery_code(user_id, code_hash, self._clock()):
            await self._failed(user_id, "wrong_or_used_recovery_code", address)
            raise InvalidCode("wrong or already used recovery code")
        await self._audit.record(
            AuditAction.TWO_FACTOR_RECOVERY_CODE_USED,
            user_id,
            user_id,
            address=address,
            details={"recovery_codes_left": state.recovery_codes_left - 1},
        )

    async def _failed(
        self, user_id: str, reason: str, address: str | None, *, purpose: str = "check"
    ) -> None:
        await self._audit.record(
            AuditAction.TWO_FACTOR_CODE_FAILED,
            user_id,
            user_id,
            address=address,
            details={"reason": reason, "purpose": purpose},
        )

    async def disable(self, user: User, password: str, code: str) -> None:
        """Turn 2FA off (secret and recovery codes forgotten) with the password and a code."""
        await self.check_password(user, password)
        await self.check(user.id, code)
        await self._store.disable_totp(user.id)
        await self._audit.record(AuditAction.TWO_FACTOR_DISABLED, user.id, user.id)

    async def check_password(self, user: User, password: str) -> None:
        """Raises `WrongPassword` unless `password` is the user's."""
        found = await self._store.get_credentials(user.username)
        if found is None or not await self._passwords.verify(found[1], password):
            raise WrongPassword("wrong password")

    async def _count(self, key: str) -> None:
        if not await self._limiter.allow(key, rate=self._rate, burst=self._burst):
            raise TooManyAttempts("too many two-factor attempts; retry later", 1 / self._rate)

    async def _load_keys(self) -> TwoFactorKeys:
        if self._keys is None:
            key = self._key
            if key is None:
                candidate = new_two_factor_key()
                key = await self._store.shared_secret(
                    TWO_FACTOR_KEY_SECRET, candidate, self._clock()
                )
            self._keys = TwoFactorKeys(key)
        return self._keys
