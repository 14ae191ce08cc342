"""Checking the Ed25519 signatures devices put on their keys (docs/e2e.md, "Signatures").

The server verifies, and never makes, signatures: it holds no private key.
A signed object is signed over its canonical JSON (keys sorted, no
insignificant whitespace, UTF-8 with non-ASCII characters as they are),
the form vodozemac's `Account.sign` is given by clients.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

KEY_BYTES: Final = 32
"""Curve25519 and Ed25519 public keys are 32 bytes (43 characters of unpadded base64)."""
SIGNATURE_BYTES: Final = 64
KEY_PATTERN: Final = "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]$"
"""A 32-byte key in unpadded standard base64, as vodozemac writes keys (43 characters)."""
BASE64_PATTERN: Final = "^[A-Za-z0-9+/]+={0,2}$"
"""Standard base64 (signatures, session ids, ciphertext), padded or not."""
_KEY = re.compile(KEY_PATTERN.strip("^$"))
_BASE64 = re.compile(BASE64_PATTERN.strip("^$"))


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """The bytes a device signs for `value`."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def decode_base64(text: str) -> bytes | None:
    """The bytes of unpadded (or padded) standard base64, or None if it is not base64."""
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def is_public_key(text: str) -> bool:
    """Whether `text` follows `KEY_PATTERN`: 32 bytes (the curve is not checked here)."""
    return _KEY.fullmatch(text) is not None


def is_base64(text: str) -> bool:
    """Whether `text` follows `BASE64_PATTERN`."""
    return _BASE64.fullmatch(text) is not None


def verify(ed25519: str, signature: str, signed: Mapping[str, Any]) -> bool:
    """Whether `signature` (base64) is the Ed25519 signature of `signed` by the key `ed25519`."""
    key, sig = decode_base64(ed25519), decode_base64(signature)
    if key is None or sig is None or len(key) != KEY_BYTES or len(sig) != SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(sig, canonical_json(signed))
    except (InvalidSignature, ValueError):
        return False
    return True
