"""Free loopback ports for the servers the tests start."""

from __future__ import annotations

import random
import socket

_FIRST, _LAST = 10_000, 32_767
"""Ports are drawn below Linux's ephemeral range (32768-60999 by default). A port taken
from the kernel with `bind(0)` and closed again lies in that range, where any outgoing
connection on the machine (a benchmark's thousands of bots, another test's client) may
be given it before our server binds it: seen as `EADDRINUSE` under load."""
_handed_out: set[int] = set()
"""Ports this process has already returned (a server may not have bound one yet)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now and that this process
    has not returned before; outside the ephemeral range, so no outgoing connection
    takes it before the server that asked for it binds it."""
    for _ in range(1_000):
        port = random.randint(_FIRST, _LAST)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {_FIRST}-{_LAST} after 1,000 tries")
