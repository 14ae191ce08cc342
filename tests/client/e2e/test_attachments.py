"""Encrypted attachments without a server: the cipher, the message entry, the check."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from chorus.client.e2e import DecryptionError, EncryptedFile, FileTampered
from chorus.client.e2e._attachments import FileCipher, verify_and_decrypt

# NIST SP 800-38A, F.5.5 CTR-AES256.Encrypt: the first two blocks.
NIST_KEY = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
NIST_COUNTER = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
NIST_PLAIN = bytes.fromhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
NIST_CIPHER = bytes.fromhex("601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5")


def _encrypt(cipher: FileCipher, plain: bytes, step: int) -> bytes:
    return b"".join(cipher.update(plain[i : i + step]) for i in range(0, len(plain), step))


def test_the_cipher_is_standard_aes_256_ctr(tmp_path: Path) -> None:
    sealed = tmp_path / "sealed"
    sealed.write_bytes(NIST_CIPHER)
    file = EncryptedFile(
        id="f_1",
        name="nist.bin",
        content_type="application/octet-stream",
        size=len(NIST_PLAIN),
        key=NIST_KEY,
        iv=NIST_COUNTER,
        sha256=hashlib.sha256(NIST_CIPHER).digest(),
    )
    verify_and_decrypt(file, sealed, tmp_path / "plain")
    assert (tmp_path / "plain").read_bytes() == NIST_PLAIN


def test_a_file_round_trips_through_its_message_entry(tmp_path: Path) -> None:
    plain = bytes(range(256)) * 1000
    cipher = FileCipher()
    first = _encrypt(cipher, plain, 4096)
    assert first != plain
    assert len(first) == len(plain)
    cipher.restart()  # an upload sent again encrypts to the same bytes
    assert _encrypt(cipher, plain, 65536) == first
    assert cipher.iv[8:] == bytes(8)  # v2: the counter half starts at zero
    entry = cipher.sealed("f_1", "plan.pdf", "application/pdf").to_content()
    assert entry["v"] == "v2"
    assert entry["key"]["alg"] == "A256CTR"
    assert "=" not in entry["key"]["k"]
    assert "=" not in entry["iv"]
    file = EncryptedFile.from_content(entry)
    assert (file.id, file.name, file.content_type, file.size) == (
        "f_1",
        "plan.pdf",
        "application/pdf",
        len(plain),
    )
    assert "key=" not in repr(file)  # never printed by accident
    sealed = tmp_path / "sealed"
    sealed.write_bytes(first)
    verify_and_decrypt(file, sealed, tmp_path / "plain")
    assert (tmp_path / "plain").read_bytes() == plain


@pytest.mark.parametrize(
    "change",
    [
        lambda data: data[:-1],  # cut short
        lambda data: data + b"\0",  # extended
        lambda data: data[4096:] + data[:4096],  # reordered
        lambda data: bytes([data[0] ^ 1]) + data[1:],  # one bit flipped
    ],
)
def test_altered_ciphertext_is_refused_before_anything_is_written(
    tmp_path: Path, change: Callable[[bytes], bytes]
) -> None:
    cipher = FileCipher()
    data = _encrypt(cipher, b"secret plans " * 1000, 4096)
    file = cipher.sealed("f_1", "plans.txt", "text/plain")
    sealed = tmp_path / "sealed"
    sealed.write_bytes(change(data))
    with pytest.raises(FileTampered) as refused:
        verify_and_decrypt(file, sealed, tmp_path / "plain")
    assert refused.value.reason == "tampered"
    assert "plans.txt" in str(refused.value)
    assert not (tmp_path / "plain").exists()


def test_a_sender_cannot_name_a_path(tmp_path: Path) -> None:
    entry = FileCipher().sealed("f_1", "x", "text/plain").to_content()
    for given, kept in (
        ("../../.bashrc", "bashrc"),
        ("a\u202egnp.exe", "agnp.exe"),
        ("..", "file"),
    ):
        assert EncryptedFile.from_content(entry | {"name": given}).name == kept


def test_a_malformed_entry_is_refused() -> None:
    entry = FileCipher().sealed("f_1", "x", "text/plain").to_content()
    short_key = base64.urlsafe_b64encode(bytes(16)).decode().rstrip("=")
    for broken in (
        "not an object",
        entry | {"v": "v1"},
        entry | {"key": entry["key"] | {"alg": "A128CTR"}},
        entry | {"key": entry["key"] | {"k": short_key}},
        entry | {"iv": "AAAA"},
        entry | {"hashes": {}},
        entry | {"size": -1},
        entry | {"size": True},
        entry | {"name": 7},
        {k: v for k, v in entry.items() if k != "id"},
    ):
        with pytest.raises(DecryptionError) as refused:
            EncryptedFile.from_content(broken)
        assert refused.value.reason == "malformed"
