"""End-to-end encryption across `chorus serve` processes (PostgreSQL and Redis): a device
connected to one node gets what a device on the other node sent, once per connection,
and again after a reconnect (to either node) until it acknowledges it; one-time keys
claimed through both nodes at once are each handed out once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio

from chorus import protocol
from tests.cluster.nodes import running_nodes
from tests.http.conftest import PASSWORD, account_of
from tests.http.test_attachments import Socket, connect_socket
from tests.http.test_e2e_keys import ClientDevice
from tests.http.test_e2e_to_device import delivered, deliveries, olm
from tests.pgserver import PgServer
from tests.redisserver import RedisServer


async def signed_up(http: httpx.AsyncClient, username: str, device_id: str) -> ClientDevice:
    """A new user with a registered device (through the node `http` talks to)."""
    response = await http.post(
        "/api/v1/auth/register", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    user = account_of(response.json())
    device = ClientDevice(user, device_id)
    registered = await http.put(
        f"/api/v1/devices/{device_id}", json=device.registration(), headers=user.auth
    )
    assert registered.status_code == 201, registered.text
    return device


async def send(http: httpx.AsyncClient, sender: ClientDevice, to: ClientDevice, mid: str) -> Any:
    message = {
        "user_id": to.user.id,
        "device_id": to.device_id,
        "message_id": mid,
        "content": olm(sender),
    }
    body = {"sender_device": sender.device_id, "messages": [message]}
    response = await http.post("/api/v1/to-device", json=body, headers=sender.user.auth)
    assert response.status_code == 200, response.text
    assert response.json()["queued"] == 1
    return message


@attrs.frozen
class Nodes:
    ports: list[tuple[int, int]]
    """(http, gateway) port of each node."""

    def socket(self, node: int, device: ClientDevice) -> Any:
        gateway = self.ports[node][1]
        return connect_socket(gateway, device.user.access_token, device_id=device.device_id)


@asynccontextmanager
async def two_nodes(
    tmp_path: Path, pg_server: PgServer, redis: RedisServer
) -> AsyncIterator[tuple[Nodes, httpx.AsyncClient, httpx.AsyncClient]]:
    """Two `chorus serve` nodes on one PostgreSQL database and Redis, and an HTTP client
    of each."""
    _, database_url = await pg_server.new_database()
    async with running_nodes(tmp_path, 2, database_url=database_url, redis_url=redis.url) as ns:
        nodes = Nodes([(n.http_port, n.gateway_port) for n in ns])
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{nodes.ports[0][0]}") as node0,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{nodes.ports[1][0]}") as node1,
        ):
            yield nodes, node0, node1


async def test_to_device_messages_cross_nodes_exactly_once(
    tmp_path: Path, pg_server: PgServer, redis: RedisServer
) -> None:
    async with two_nodes(tmp_path, pg_server, redis) as (nodes, node0, node1):
        laptop = await signed_up(node0, "ada", "LAPTOP")
        phone = await signed_up(node1, "bob", "PHONE")
        # Connected to node 1, sent through node 0: the bus wakes node 1.
        async with nodes.socket(1, phone) as socket:
            sent = await send(node0, laptop, phone, "m1")
            event = await socket.wait_for(lambda f: delivered(f, "m1"))
            assert event.content.ciphertext.body == sent["content"]["ciphertext"]["body"]
            assert event.sender == laptop.user.id
        # Offline: queued in PostgreSQL; both unacknowledged ones come on node 0.
        await send(node1, laptop, phone, "m2")
        async with nodes.socket(0, phone) as socket:
            await socket.wait_for(lambda f: delivered(f, "m2"))
            again = deliveries(socket)
            assert [e.message_id for e in again] == ["m1", "m2"]
            await ack(socket, again)
        # Acknowledged: gone everywhere.
        async with nodes.socket(1, phone) as socket:
            await send(node0, laptop, phone, "m3")
            await socket.wait_for(lambda f: delivered(f, "m3"))
            assert [e.message_id for e in deliveries(socket)] == ["m3"]


async def ack(socket: Socket, events: list[protocol.ToDeviceEvent]) -> None:
    await socket.send(protocol.ToDeviceAck(ref="ack", ids=tuple(e.id for e in events)))
    assert isinstance(await socket.answer("ack"), protocol.Ack)


async def test_concurrent_claims_through_two_nodes_never_share_a_key(
    tmp_path: Path, pg_server: PgServer, redis: RedisServer
) -> None:
    async with two_nodes(tmp_path, pg_server, redis) as (_, node0, node1):
        laptop = await signed_up(node0, "ada", "LAPTOP")
        claimer = await signed_up(node1, "bob", "PHONE")
        keys = {
            "one_time_keys": [laptop.signed_key(f"k{i}") for i in range(3)],
            "fallback_key": laptop.signed_key("fb", fallback=True),
        }
        uploaded = await node0.post(
            "/api/v1/devices/LAPTOP/keys", json=keys, headers=laptop.user.auth
        )
        assert uploaded.status_code == 200, uploaded.text
        body = {"devices": [{"user_id": laptop.user.id, "device_id": "LAPTOP"}]}
        got: list[str] = []

        async def claim(http: httpx.AsyncClient) -> None:
            response = await http.post("/api/v1/keys/claim", json=body, headers=claimer.user.auth)
            assert response.status_code == 200, response.text
            got.extend(key["key_id"] for key in response.json()["keys"])

        async with trio.open_nursery() as nursery:
            for index in range(8):
                nursery.start_soon(claim, node0 if index % 2 else node1)
        assert sorted(got) == ["fb"] * 5 + ["k0", "k1", "k2"]
