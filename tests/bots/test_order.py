"""The order in which the swarm's senders take turns."""

from __future__ import annotations

import itertools

from chorus.bots._worker import sending_order

# (bot, its room), in bot order: rooms are consecutive runs of bots, as provisioned.
SENDERS = [("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B"), ("b2", "B"), ("c1", "C")]


def room_of(sender: tuple[str, str]) -> str:
    return sender[1]


def test_interleaved_sends_go_round_the_rooms() -> None:
    turns = sending_order(SENDERS, "interleaved", room_of)
    assert [name for name, _ in turns] == ["a1", "b1", "c1", "a2", "b2", "a3"]
    rooms = [room for _, room in turns]
    assert all(first != second for first, second in itertools.pairwise(rooms))


def test_grouped_keeps_bot_order_each_rooms_members_in_a_row() -> None:
    assert sending_order(SENDERS, "grouped", room_of) == SENDERS


def test_every_sender_takes_a_turn_once_per_round_either_way() -> None:
    for order in ("interleaved", "grouped"):
        assert sorted(sending_order(SENDERS, order, room_of)) == sorted(SENDERS)
