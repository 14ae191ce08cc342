"""Store contract: deployment secrets shared by every node on one database (any backend)."""

from __future__ import annotations

import trio

from chorus.persistence import Store
from tests.persistence.helpers import T0


async def test_the_first_stored_secret_wins_and_is_never_replaced(store: Store) -> None:
    assert await store.shared_secret("signing", b"first", T0) == b"first"
    assert await store.shared_secret("signing", b"second", T0 + 1) == b"first"
    assert await store.shared_secret("other", b"second", T0) == b"second"


async def test_concurrent_callers_all_get_one_value(store: Store) -> None:
    seen: list[bytes] = []

    async def ask(candidate: bytes) -> None:
        seen.append(await store.shared_secret("signing", candidate, T0))

    async with trio.open_nursery() as nursery:
        for n in range(8):
            nursery.start_soon(ask, bytes([n]) * 32)
    assert len(seen) == 8
    assert len(set(seen)) == 1
