"""The verification code: deterministic, symmetric, and bound to both devices' keys."""

from __future__ import annotations

from chorus.client.e2e import CryptoMachine
from chorus.client.e2e._verification import EMOJI, verification_code


def test_the_code_is_the_same_from_both_sides_and_changes_with_any_key() -> None:
    a = ("u_a", "DA", CryptoMachine.create("u_a", "DA").ed25519)
    b = ("u_b", "DB", CryptoMachine.create("u_b", "DB").ed25519)
    code = verification_code(a, b)
    assert code == verification_code(b, a)
    other = ("u_b", "DB", CryptoMachine.create("u_b", "DB").ed25519)
    assert verification_code(a, other) != code
    assert verification_code(a, ("u_b", "DX", b[2])) != code  # the ids are bound too
    assert all(pair in EMOJI for pair in code.emoji)
    assert len(code.emoji) == 7
    groups = code.safety_number.split()
    assert len(groups) == 12
    assert all(len(g) == 5 and g.isdigit() for g in groups)
    assert code.emoji_line().count("  ") == 6


def test_the_emoji_table_is_the_64_of_the_matrix_sas_specification() -> None:
    assert len(EMOJI) == 64
    assert len(set(EMOJI)) == 64
    assert EMOJI[0] == ("🐶", "Dog")
    assert EMOJI[63] == ("📌", "Pin")
