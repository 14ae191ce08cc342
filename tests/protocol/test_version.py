"""Subprotocol negotiation."""

from __future__ import annotations

import pytest

from chorus.protocol import SUBPROTOCOL, select_subprotocol


def test_the_subprotocol_is_chorus_v1() -> None:
    assert SUBPROTOCOL == "chorus.v1"


@pytest.mark.parametrize(
    "offered",
    [["chorus.v1"], ["chorus.v2", "chorus.v1"], ("graphql-ws", "chorus.v1", "wamp")],
)
def test_chorus_v1_is_selected_when_offered(offered: list[str]) -> None:
    assert select_subprotocol(offered) == "chorus.v1"


@pytest.mark.parametrize(
    "offered", [[], ["chorus.v2"], ["Chorus.V1"], ["chorus.v1 "], ["chorus"], ["chorus.v1,x"]]
)
def test_nothing_is_selected_without_an_exact_offer(offered: list[str]) -> None:
    assert select_subprotocol(offered) is None
