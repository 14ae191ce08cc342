"""The sealed key file: opens with the passphrase only, and refuses tampering."""

from __future__ import annotations

import stat
from pathlib import Path

import orjson
import pytest

from chorus.client.e2e import CryptoMachine, KeyStore, KeyStoreError

FAST = 2**10  # a weak scrypt cost keeps the tests quick; the default is 2**15


def test_state_round_trips_and_nothing_secret_is_readable_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    machine = CryptoMachine.create("u_alice", "ALAPTOP")
    state = machine.to_state()
    KeyStore(path, "correct horse", scrypt_n=FAST).save(state)
    assert KeyStore(path, "correct horse").load() == state  # the cost is read from the file
    raw = path.read_bytes()
    for secret in (state["pickle_key"], state["account"], "correct horse", "u_alice"):
        assert secret.encode() not in raw
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.with_name("keys.json.tmp").exists()


def test_a_wrong_passphrase_does_not_open_the_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    KeyStore(path, "right", scrypt_n=FAST).save({"a": 1})
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        KeyStore(path, "wrong").load()


def test_a_tampered_file_does_not_open(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    store = KeyStore(path, "right", scrypt_n=FAST)
    store.save({"a": 1})
    header = orjson.loads(path.read_bytes())
    sealed = bytearray(header["ciphertext"].encode())
    sealed[5] = ord("A") if sealed[5] != ord("A") else ord("B")
    path.write_bytes(orjson.dumps({**header, "ciphertext": sealed.decode()}))
    with pytest.raises(KeyStoreError):
        store.load()
    path.write_text("not json")
    with pytest.raises(KeyStoreError, match="not a key file"):
        KeyStore(path, "right")


def test_no_file_yet_loads_nothing(tmp_path: Path) -> None:
    assert KeyStore(tmp_path / "absent.json", "pw", scrypt_n=FAST).load() is None
