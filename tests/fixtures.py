"""A real node for suites that test one of its fronts: SQLite in a temporary folder, ports 0."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from chorus.auth import Passwords
from chorus.config import Settings
from chorus.node import (
    Addresses,
    Node,
    load_file_url_key,
    load_signing_key,
    open_node_bus,
    open_node_store,
)


def cheap_passwords() -> Passwords:
    """Real argon2id, but cheap, so that registering users does not dominate a suite."""
    return Passwords(time_cost=1, memory_cost_kib=1024)


def node_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings of a test node: its data in `data_dir`, any free ports, JSON logs."""
    fields: dict[str, Any] = {
        "data_dir": data_dir,
        "http_port": 0,
        "gateway_port": 0,
        "log_format": "json",
    }
    return Settings(**(fields | overrides))


@asynccontextmanager
async def open_test_node(data_dir: Path, **overrides: Any) -> AsyncIterator[tuple[Node, Addresses]]:
    """Run a whole node (as `chorus serve` builds it) until the block ends, then stop it."""
    settings = node_settings(data_dir, **overrides)
    async with (
        open_node_store(settings) as store,
        open_node_bus(settings) as bus,
        trio.open_nursery() as nursery,
    ):
        node = Node(
            settings,
            store,
            signing_key=await load_signing_key(store),
            file_url_key=await load_file_url_key(store),
            bus=bus,
            passwords=cheap_passwords(),
        )
        addresses: Addresses = await nursery.start(node.run)
        try:
            yield node, addresses
        finally:
            node.request_stop()
