"""Whether a node's store answers: the check behind both `/readyz` probes."""

from __future__ import annotations

from chorus.persistence import NotFound, Store, StoreUnavailable

PROBE_ROOM = "r_none"
"""A room id that never exists: asking its last seq exercises the store and nothing else."""


async def store_answers(store: Store) -> bool:
    """True when the store answers a query (even "no such room"), False when it is unavailable."""
    try:
        await store.last_seq(PROBE_ROOM)
    except NotFound:
        pass  # the store answered
    except StoreUnavailable:
        return False
    return True
