"""The SDK never reuses an idle connection the server may be closing."""

from __future__ import annotations

from chorus.client._http import KEEPALIVE_EXPIRY
from chorus.config import Settings


def test_idle_connections_expire_before_the_default_server_idle_timeout() -> None:
    # A request written onto a keep-alive connection just as the node closes it for
    # idleness fails ("Server disconnected without sending a response"; seen in
    # tests/cluster under load). Leave a margin for a loaded machine and a proxy.
    assert Settings().http_idle_timeout / 2 >= KEEPALIVE_EXPIRY
