"""Encrypted attachments: Matrix's attachment encryption, version 2 (docs/e2e.md).

A file is encrypted with AES-256-CTR under a fresh random key and IV before
it is uploaded; the SHA-256 of the ciphertext, the key and the IV travel,
with the real name, type and size, inside the Megolm-encrypted message that
attaches it. CTR alone does not authenticate: the hash does, and it is
itself authenticated by Megolm. So a download is hashed whole and compared
before a single byte is decrypted, and a file whose bytes were changed,
reordered, cut short or extended is refused (`FileTampered`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Any, Final

import attrs
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from chorus.filenames import display_name

from .._files import CHUNK_BYTES
from ._machine import DecryptionError
from ._wire import b64decode, b64encode

VERSION: Final = "v2"
"""Matrix's attachment encryption version: a 64-bit random IV prefix, the counter from 0."""
_KEY_BYTES: Final = 32
_IV_BYTES: Final = 16
_HASH_BYTES: Final = 32


class FileTampered(DecryptionError):
    """A downloaded encrypted file is not the one its sender encrypted: nothing was saved."""

    def __init__(self, detail: str) -> None:
        super().__init__("tampered", detail)


@attrs.frozen(kw_only=True)
class EncryptedFile:
    """An end-to-end encrypted attachment: the server's file `id` and what opens it.

    `name` (made safe to show and to save under, as the server makes plain
    files' names), `content_type` and `size` are the sender's claims about
    the plaintext; `key`, `iv` and `sha256` (of the ciphertext) decrypt and
    verify it. Keep it secret: anyone holding it reads the file.
    """

    id: str
    name: str
    content_type: str
    size: int
    key: bytes = attrs.field(repr=False)
    iv: bytes
    sha256: bytes

    def to_content(self) -> dict[str, Any]:
        """The file's entry in a message's encrypted content (Matrix's `EncryptedFile`)."""
        return {
            "id": self.id,
            "name": self.name,
            "type": self.content_type,
            "size": self.size,
            "v": VERSION,
            "key": {
                "kty": "oct",
                "key_ops": ["encrypt", "decrypt"],
                "alg": "A256CTR",
                "k": base64.urlsafe_b64encode(self.key).decode().rstrip("="),
                "ext": True,
            },
            "iv": b64encode(self.iv),
            "hashes": {"sha256": b64encode(self.sha256)},
        }

    @classmethod
    def from_content(cls, entry: Any) -> EncryptedFile:
        """An entry of a decrypted message's `files`; `DecryptionError("malformed")` if it is
        not one of this format."""
        try:
            if not isinstance(entry, dict) or entry.get("v") != VERSION:
                raise ValueError("not a v2 encrypted file")
            jwk, hashes = entry["key"], entry["hashes"]
            if jwk.get("kty") != "oct" or jwk.get("alg") != "A256CTR":
                raise ValueError("not an AES-256-CTR key")
            key = base64.urlsafe_b64decode(_padded(_text(jwk["k"])))
            iv, sha256 = b64decode(_text(entry["iv"])), b64decode(_text(hashes["sha256"]))
            size = entry["size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise ValueError("size")
            if (len(key), len(iv), len(sha256)) != (_KEY_BYTES, _IV_BYTES, _HASH_BYTES):
                raise ValueError("key, IV or hash of the wrong length")
            return cls(
                id=_text(entry["id"]),
                name=display_name(_text(entry["name"])),
                content_type=_text(entry["type"]),
                size=size,
                key=key,
                iv=iv,
                sha256=sha256,
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise DecryptionError("malformed", f"an attached file: {exc}") from exc


class FileCipher:
    """Encrypts one upload as its chunks are read: AES-256-CTR under a fresh random key
    and IV, hashing the ciphertext (a `ChunkCipher` for `chorus.client`'s uploads)."""

    def __init__(self) -> None:
        self.key = secrets.token_bytes(_KEY_BYTES)
        # v2: 64 random bits, then a 64-bit block counter starting at 0.
        self.iv = secrets.token_bytes(_IV_BYTES // 2) + bytes(_IV_BYTES // 2)
        self._cipher = Cipher(algorithms.AES(self.key), modes.CTR(self.iv))
        self.restart()

    def restart(self) -> None:
        """Back to the first byte (the same key and IV give the same ciphertext)."""
        self._encryptor: CipherContext = self._cipher.encryptor()
        self._hash = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes) -> bytes:
        encrypted = self._encryptor.update(chunk)
        self._hash.update(encrypted)
        self.size += len(encrypted)
        return encrypted

    def sealed(self, file_id: str, name: str, content_type: str) -> EncryptedFile:
        """What opens the file uploaded as `file_id`, once all of it went through `update`."""
        return EncryptedFile(
            id=file_id,
            name=name,
            content_type=content_type,
            size=self.size,
            key=self.key,
            iv=self.iv,
            sha256=self._hash.digest(),
        )


def verify_and_decrypt(file: EncryptedFile, ciphertext: Path, dest: Path) -> None:
    """Write the plaintext of `ciphertext` to `dest`, after checking its SHA-256.

    Blocking (run it in a thread). `FileTampered`, with nothing written, if
    the hash differs; decrypts `CHUNK_BYTES` at a time, never the whole file.
    """
    digest = hashlib.sha256()
    with ciphertext.open("rb") as source:
        while chunk := source.read(CHUNK_BYTES):
            digest.update(chunk)
    if not hmac.compare_digest(digest.digest(), file.sha256):
        raise FileTampered(
            f"{file.name} ({file.id}) is not the file its sender encrypted: its SHA-256 differs"
        )
    decryptor = Cipher(algorithms.AES(file.key), modes.CTR(file.iv)).decryptor()
    with ciphertext.open("rb") as source, dest.open("wb") as out:
        while chunk := source.read(CHUNK_BYTES):
            out.write(decryptor.update(chunk))
        out.write(decryptor.finalize())


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def _padded(text: str) -> str:
    return text + "=" * (-len(text) % 4)
