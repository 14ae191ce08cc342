"""Both listeners of a real node refuse over-cap connections at once with a 503, per address and
in total, and believe X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import orjson
import trio
from prometheus_client import REGISTRY

from chorus.admission import Admission, ConnectionLimits
from chorus.gateway import Gateway, GatewayConfig
from chorus.node import Node
from tests.admission.sockets import END_OF_HEAD, HEALTHZ, UPGRADE, connect_from, exchange
from tests.fixtures import open_test_node
from tests.gateway.test_gateway import Echo
from tests.polling import until

# Idle connections must outlive the test: nothing closes them but the test.
PATIENT = {"http_idle_timeout": 60.0, "auth_timeout": 60.0}


def refusals(listener: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "chorus_connections_refused_total", {"listener": listener, "reason": reason}
    )
    return value or 0.0


def assert_refused(answer: bytes) -> None:
    head, _, body = answer.partition(END_OF_HEAD)
    assert head.startswith(b"HTTP/1.1 503 "), answer
    assert b"\r\nconnection: close" in head
    assert b"\r\nretry-after: 5" in head
    assert orjson.loads(body)["error"]["code"] == "unavailable"


async def admitted(node: Node, count: int) -> None:
    """Wait until the node holds `count` connections (the listeners accept concurrently)."""

    async def holds() -> bool:
        return node.admission.open == count

    await until(holds, timeout=5)


@asynccontextmanager
async def idle_connections(source: str, ports: list[int]) -> AsyncIterator[list[trio.SocketStream]]:
    async with AsyncExitStack() as stack:
        streams = [
            await stack.enter_async_context(await connect_from(source, port)) for port in ports
        ]
        yield streams


async def test_an_address_at_its_cap_is_refused_while_other_addresses_are_served(
    tmp_path: Path,
) -> None:
    async with open_test_node(tmp_path, max_connections_per_address=3, **PATIENT) as (
        node,
        addresses,
    ):
        assert addresses.http is not None
        assert addresses.gateway is not None
        http, gateway = addresses.http[1], addresses.gateway[1]
        before = refusals("http", "per_address"), refusals("gateway", "per_address")
        # One cap over both listeners: two HTTP connections and one WebSocket fill it.
        async with idle_connections("127.0.0.2", [http, http, gateway]) as idle:
            await admitted(node, 3)
            started = trio.current_time()
            assert_refused(await exchange("127.0.0.2", http, HEALTHZ))
            assert_refused(await exchange("127.0.0.2", gateway, UPGRADE))
            assert trio.current_time() - started < 2  # refused at once, not left waiting
            assert (refusals("http", "per_address"), refusals("gateway", "per_address")) == (
                before[0] + 1,
                before[1] + 1,
            )
            ok = await exchange("127.0.0.3", http, HEALTHZ)
            assert ok.startswith(b"HTTP/1.1 200 "), ok
            upgraded = await exchange("127.0.0.3", gateway, UPGRADE, until=END_OF_HEAD)
            assert upgraded.startswith(b"HTTP/1.1 101 "), upgraded
            # A place freed is a place given again.
            await idle[0].aclose()

            async def served() -> bool:
                answer = await exchange("127.0.0.2", http, HEALTHZ)
                return answer.startswith(b"HTTP/1.1 200 ")

            await until(served, timeout=5)


async def test_the_node_total_is_capped_over_both_listeners(tmp_path: Path) -> None:
    async with open_test_node(tmp_path, max_connections=3, **PATIENT) as (node, addresses):
        assert addresses.http is not None
        assert addresses.gateway is not None
        http, gateway = addresses.http[1], addresses.gateway[1]
        before = refusals("http", "total"), refusals("gateway", "total")
        async with (
            idle_connections("127.0.0.2", [http]),
            idle_connections("127.0.0.3", [gateway]),
            idle_connections("127.0.0.4", [http]),
        ):
            await admitted(node, 3)
            assert_refused(await exchange("127.0.0.5", http, HEALTHZ))
            assert_refused(await exchange("127.0.0.5", gateway, UPGRADE))
            assert (refusals("http", "total"), refusals("gateway", "total")) == (
                before[0] + 1,
                before[1] + 1,
            )


async def test_trusted_proxies_are_exempt_from_the_address_cap(tmp_path: Path) -> None:
    async with open_test_node(
        tmp_path, max_connections_per_address=1, trusted_proxies=("127.0.0.2",), **PATIENT
    ) as (node, addresses):
        assert addresses.http is not None
        http = addresses.http[1]
        async with idle_connections("127.0.0.2", [http, http]):
            await admitted(node, 2)
            ok = await exchange("127.0.0.2", http, HEALTHZ)
            assert ok.startswith(b"HTTP/1.1 200 "), ok
        async with idle_connections("127.0.0.3", [http]):
            await admitted(node, 1)
            assert_refused(await exchange("127.0.0.3", http, HEALTHZ))


@asynccontextmanager
async def client_from(source: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


async def test_auth_attempts_are_counted_per_forwarded_client_only_behind_a_trusted_proxy(
    tmp_path: Path,
) -> None:
    async with open_test_node(
        tmp_path, role="api", trusted_proxies=("127.0.0.2",), auth_attempts_per_minute=2
    ) as (_node, addresses):
        assert addresses.http is not None
        url = f"http://127.0.0.1:{addresses.http[1]}/api/v1/auth/login"
        body = {"username": "nobody", "password": "not the password"}
        async with client_from("127.0.0.2") as proxy, client_from("127.0.0.3") as direct:

            async def login(client: httpx.AsyncClient, forwarded_for: str) -> int:
                headers = {"X-Forwarded-For": forwarded_for}
                return (await client.post(url, json=body, headers=headers)).status_code

            # Behind the proxy, each forwarded client has attempts of its own...
            assert [await login(proxy, "203.0.113.9, 198.51.100.7") for _ in range(3)] == [
                401,
                401,
                429,
            ]
            assert await login(proxy, "198.51.100.8") == 401
            # ...and what the client wrote left of the proxy's entry changes nothing.
            assert await login(proxy, "203.0.113.10, 198.51.100.7") == 429
            # From anyone else the header is ignored: the peer's address counts.
            statuses = [await login(direct, f"198.51.100.{20 + i}") for i in range(3)]
            assert statuses == [401, 401, 429]


async def test_a_websocket_behind_a_trusted_proxy_is_logged_as_the_forwarded_client(
    nursery: trio.Nursery,
) -> None:
    admission = Admission(ConnectionLimits(trusted_proxies=("127.0.0.2",)))
    gateway = Gateway(GatewayConfig(port=0), Echo, admission=admission)
    await nursery.start(gateway.supervisor().run)
    assert gateway.address is not None
    port = gateway.address[1]
    forwarded = UPGRADE.replace(END_OF_HEAD, b"\r\nX-Forwarded-For: 198.51.100.7" + END_OF_HEAD)
    remotes = set()
    for source in ("127.0.0.2", "127.0.0.3"):
        async with await connect_from(source, port) as stream:
            await stream.send_all(forwarded)
            with trio.fail_after(5):
                assert (await stream.receive_some(4096)).startswith(b"HTTP/1.1 101 ")
            remotes |= {conn.remote for conn in gateway.connections}
    assert "198.51.100.7" in remotes
    assert any(remote.startswith("127.0.0.3:") for remote in remotes)
    assert not any(remote.startswith("127.0.0.2") for remote in remotes)
