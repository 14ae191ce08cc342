"""TOTP (RFC 6238) codes, the encryption of TOTP secrets, and one-time recovery codes.

Pure functions and small classes with no I/O: `AuthService` puts them
together with the store (see `chorus.auth._twofactor`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from typing import Final

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

TOTP_STEP: Final = 30
"""Seconds per time step (RFC 6238's default, what every authenticator app assumes)."""
TOTP_DIGITS: Final = 6
TOTP_SKEW: Final = 1
"""Steps accepted either side of the current one (a clock off by up to 30 seconds)."""
RECOVERY_CODES: Final = 10
"""How many recovery codes an enrolment gets."""
RECOVERY_CODE_BYTES: Final = 10
"""Randomness of one recovery code: 80 bits, written as 16 base32 characters."""
KEY_BYTES: Final = 32
_BOX_VERSION: Final = b"\x01"
_NONCE_BYTES: Final = 12


def new_totp_secret() -> str:
    """A fresh TOTP secret: 160 random bits in base32 (RFC 4226's recommended length)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The `otpauth://totp/...` URI an authenticator app reads (as a QR code, usually)."""
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP).provisioning_uri(
        name=account, issuer_name=issuer
    )


def code_at(secret: str, step: int) -> str:
    """The code of time step `step` (what the authenticator app shows during it)."""
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP).generate_otp(step)


def time_step(now_ms: int) -> int:
    """The RFC 6238 time step at `now_ms` (milliseconds since the epoch)."""
    return now_ms // 1000 // TOTP_STEP


def matching_step(secret: str, code: str, now_ms: int) -> int | None:
    """The time step within ±`TOTP_SKEW` of `now_ms` whose code is `code`, or None.

    Only the format is checked here: whether that step was already used
    (a replay) is the store's to decide (`Store.use_totp_step`).
    """
    if len(code) != TOTP_DIGITS or not code.isascii() or not code.isdigit():
        return None
    current = time_step(now_ms)
    found = None
    # Every candidate is compared (in constant time), so timing tells nothing.
    for step in range(current - TOTP_SKEW, current + TOTP_SKEW + 1):
        if hmac.compare_digest(code_at(secret, step), code):
            found = step
    return found


def new_recovery_codes() -> list[str]:
    """`RECOVERY_CODES` fresh codes, each `xxxx-xxxx-xxxx-xxxx` (base32, lower case)."""
    return [_format_code(secrets.token_bytes(RECOVERY_CODE_BYTES)) for _ in range(RECOVERY_CODES)]


def _format_code(raw: bytes) -> str:
    text = base64.b32encode(raw).decode().lower()
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def normalize_recovery_code(code: str) -> str:
    """A recovery code as typed, without dashes or spaces and in lower case."""
    return "".join(char for char in code.lower() if char not in "- ")


def looks_like_totp(code: str) -> bool:
    """Whether `code` is shaped like a TOTP code (else it is taken for a recovery code)."""
    return len(code.strip()) == TOTP_DIGITS and code.strip().isdigit()


class TwoFactorKeys:
    """The deployment's 2FA key: encrypts TOTP secrets and keys recovery-code hashes.

    Two subkeys are derived (HMAC-SHA256 with distinct labels), so the
    encryption key is never used as a MAC key too.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"the two-factor key must have {KEY_BYTES} bytes")
        self._box = AESGCM(hmac.digest(key, b"chorus totp secret encryption", hashlib.sha256))
        self._mac = hmac.digest(key, b"chorus recovery code hashing", hashlib.sha256)

    def seal(self, user_id: str, secret: str) -> bytes:
        """`secret` encrypted (AES-256-GCM) for `user_id` alone.

        The user id is authenticated data: a sealed secret copied to another
        user's row does not open there.
        """
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._box.encrypt(nonce, secret.encode(), user_id.encode())
        return _BOX_VERSION + nonce + sealed

    def open(self, user_id: str, sealed: bytes) -> str:
        """The secret `seal` encrypted; raises `ValueError` if it was tampered with,
        belongs to another user or was sealed with another key."""
        version, nonce, body = sealed[:1], sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        if version != _BOX_VERSION:
            raise ValueError("unknown sealed secret version")
        try:
            return self._box.decrypt(nonce, body, user_id.encode()).decode()
        except InvalidTag:
            raise ValueError("the TOTP secret does not open with this key") from None

    def hash_recovery_code(self, user_id: str, code: str) -> str:
        """The keyed hash stored for a recovery code of `user_id` (HMAC-SHA256, hex)."""
        message = f"{user_id}\x00{normalize_recovery_code(code)}".encode()
        return hmac.digest(self._mac, message, hashlib.sha256).hex()

    def hash_recovery_codes(self, user_id: str, codes: Iterable[str]) -> list[str]:
        return [self.hash_recovery_code(user_id, code) for code in codes]


def new_two_factor_key() -> bytes:
    """A fresh random 2FA key."""
    return secrets.token_bytes(KEY_BYTES)
