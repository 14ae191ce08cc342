"""The delay hint of a draining node's 4007 close (docs/protocol.md, Draining nodes)."""

from __future__ import annotations

import pytest

from chorus.protocol import MAX_RECONNECT_DELAY_MS, reconnect_delay, reconnect_reason


def test_the_reason_carries_the_delay_in_milliseconds() -> None:
    reason = reconnect_reason(1234)
    assert reason == "draining; retry_after_ms=1234"
    assert len(reason.encode()) <= 123  # what a WebSocket close frame can hold
    assert reconnect_delay(reason) == 1.234


@pytest.mark.parametrize("reason", ["", "draining", "retry_after_ms=", "retry_after_ms=-5"])
def test_a_reason_without_a_hint_has_no_delay(reason: str) -> None:
    assert reconnect_delay(reason) is None


def test_a_huge_hint_is_capped() -> None:
    assert reconnect_delay("draining; retry_after_ms=999999999") == MAX_RECONNECT_DELAY_MS / 1000
