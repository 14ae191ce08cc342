"""A local file holding a device's secrets, encrypted with a key derived from a passphrase.

The key is derived with scrypt (RFC 7914) and the file sealed with AES-256-GCM,
both from `cryptography`; nothing here is home-made. The whole JSON state (the
Olm account, sessions, room keys, verified devices) is one sealed blob, so a
stolen file reveals nothing without the passphrase and a tampered one does not
open.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ._wire import b64decode, b64encode

_FORMAT = "chorus-e2e-keystore-v1"
_AAD = _FORMAT.encode()
SCRYPT_N = 2**15
"""scrypt cost: 32 MiB and about 0.1 s per unlock (the OWASP minimum is 2**17 with r=8
for password storage; a local file unlocked once per run affords this, see
docs/security.md)."""


class KeyStoreError(Exception):
    """The key file cannot be opened: wrong passphrase, tampered or not a key file."""


class KeyStore:
    """One sealed file. `load` and `save` are blocking (call them in a thread from trio).

    The key is derived once when the store is opened; every `save` uses a fresh
    random nonce and replaces the file atomically (a crash leaves the old or
    the new state, never a mix), readable by its owner only.
    """

    def __init__(self, path: Path, passphrase: str, *, scrypt_n: int = SCRYPT_N) -> None:
        self.path = path
        if path.exists():
            header = self._read()
            salt = b64decode(header["salt"])
            scrypt_n = int(header["n"])
        else:
            salt = secrets.token_bytes(16)
        self._salt = salt
        self._n = scrypt_n
        self._key = Scrypt(salt=salt, length=32, n=scrypt_n, r=8, p=1).derive(passphrase.encode())

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None if there is no file yet; `KeyStoreError` if it won't open."""
        if not self.path.exists():
            return None
        header = self._read()
        try:
            plain = AESGCM(self._key).decrypt(
                b64decode(header["nonce"]), b64decode(header["ciphertext"]), _AAD
            )
        except (InvalidTag, ValueError) as exc:
            raise KeyStoreError(f"{self.path}: wrong passphrase or damaged key file") from exc
        state = orjson.loads(plain)
        if not isinstance(state, dict):
            raise KeyStoreError(f"{self.path}: not a key file")
        return state

    def save(self, state: dict[str, Any]) -> None:
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self._key).encrypt(nonce, orjson.dumps(state), _AAD)
        header = {
            "format": _FORMAT,
            "kdf": "scrypt",
            "n": self._n,
            "r": 8,
            "p": 1,
            "salt": b64encode(self._salt),
            "cipher": "aes-256-gcm",
            "nonce": b64encode(nonce),
            "ciphertext": b64encode(sealed),
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(orjson.dumps(header))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)

    def _read(self) -> dict[str, Any]:
        try:
            header = orjson.loads(self.path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise KeyStoreError(f"{self.path}: not a key file") from exc
        if not isinstance(header, dict) or header.get("format") != _FORMAT:
            raise KeyStoreError(f"{self.path}: not a key file")
        return header
