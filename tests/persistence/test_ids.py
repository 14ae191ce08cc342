"""Ids: time-ordered, and strictly increasing within a process even in one millisecond."""

from __future__ import annotations

import random

import pytest

from chorus.persistence import _model
from chorus.persistence._model import _encode, new_id, new_ids


def test_ids_made_in_a_row_only_grow_even_within_one_millisecond() -> None:
    made = [new_id("m") for _ in range(5000)]  # many share a millisecond
    made += new_ids("m", 100)
    assert new_ids("m", 0) == []
    made.append(new_id("n").replace("n_", "m_"))
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_ids_have_a_prefix_and_a_fixed_length() -> None:
    for prefix in ("u", "r", "m", "s", "n"):
        made = new_id(prefix)
        assert made.startswith(f"{prefix}_")
        assert len(made) == 18


def _digits(value: int, width: int) -> str:
    """`value`'s last `width` digits in base 64 over the sorted url-safe alphabet, one by one:
    what an id has always been made of."""
    alphabet = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
    return "".join(alphabet[value >> 6 * k & 63] for k in reversed(range(width)))


def test_an_id_is_the_digits_of_its_millisecond_then_of_its_draw() -> None:
    # `_encode` writes the 16 digits with base64 and a translation: the same characters.
    rng = random.Random(15)
    cases = [(0, 0), (2**42 - 1, 2**54 - 1), (1_765_000_000_000, 1), (2**42 + 5, 7)]
    cases += [(rng.getrandbits(42), rng.getrandbits(54)) for _ in range(2000)]
    for millis, draw in cases:
        assert _encode(millis, draw) == _digits(millis, 7) + _digits(draw, 9)


def test_ids_borrow_the_next_millisecond_when_the_random_part_runs_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The newest id was the last of its millisecond, which is still "now" (or ahead of
    # the clock): the next ids take the following millisecond, counting from draw 0.
    millis = _model.now_ms() + 60_000
    last = (1 << 54) - 1
    monkeypatch.setattr(_model, "_last_id", (millis, last))
    assert new_ids("m", 2) == [f"m_{_encode(millis + 1, 0)}", f"m_{_encode(millis + 1, 1)}"]
    monkeypatch.setattr(_model, "_last_id", (millis, last - 2))
    assert new_id("m") == f"m_{_encode(millis, last - 1)}"
    assert new_ids("m", 1) == [f"m_{_encode(millis, last)}"]
    assert new_id("m") == f"m_{_encode(millis + 1, 0)}"
