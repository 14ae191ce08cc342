"""Polling with a deadline, for state that has no event to wait on (it lives in Redis)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio


async def until(check: Callable[[], Awaitable[bool]], *, timeout: float = 10.0) -> None:
    """Return once `check()` is true; `trio.TooSlowError` after `timeout` seconds."""
    with trio.fail_after(timeout):
        while not await check():  # noqa: ASYNC110 (nothing in-process to wait on)
            await trio.sleep(0.01)
