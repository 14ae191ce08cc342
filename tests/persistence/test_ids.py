"""Ids: time-ordered, and strictly increasing within a process even in one millisecond."""

from __future__ import annotations

from chorus.persistence._model import new_id, new_ids


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
