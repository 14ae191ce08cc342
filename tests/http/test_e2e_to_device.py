"""To-device messages on one node: queued per device, delivered once per connection,
again after a reconnect until acknowledged, fetched over HTTP, expired after their TTL."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chorus import protocol
from chorus.actors.housekeeping import Housekeeper, HousekeepingLimits
from chorus.persistence import now_ms
from tests.http.conftest import Server, assert_error
from tests.http.test_attachments import Chat, Socket, chat_node
from tests.http.test_e2e_keys import ClientDevice, register
from tests.polling import until


@pytest.fixture
async def chat(tmp_path: Path) -> AsyncIterator[Chat]:
    async with chat_node(tmp_path) as chat:
        yield chat


def olm(sender: ClientDevice) -> dict[str, Any]:
    """An Olm envelope around opaque bytes."""
    return {
        "algorithm": "m.olm.v1.curve25519-aes-sha2",
        "sender_key": sender.keys["curve25519"],
        "ciphertext": {"type": 0, "body": base64.b64encode(secrets.token_bytes(64)).decode()},
    }


async def send(
    server: Server, sender: ClientDevice, to: ClientDevice, *message_ids: str
) -> dict[str, Any]:
    """`sender` sends one message per id to `to`; the envelopes are in the answer's `sent`."""
    messages = [
        {"user_id": to.user.id, "device_id": to.device_id, "message_id": m, "content": olm(sender)}
        for m in message_ids
    ]
    body = {"sender_device": sender.device_id, "messages": messages}
    response = await server.post("/api/v1/to-device", sender.user, json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json() | {"sent": messages}
    return answer


async def pair(server: Server) -> tuple[ClientDevice, ClientDevice]:
    ada, bob = await server.register("ada"), await server.register("bob")
    laptop, phone = ClientDevice(ada, "LAPTOP"), ClientDevice(bob, "PHONE")
    await register(server, laptop)
    await register(server, phone)
    return laptop, phone


def delivered(frame: protocol.ServerFrame, message_id: str) -> bool:
    return isinstance(frame, protocol.ToDeviceEvent) and frame.message_id == message_id


def deliveries(socket: Socket) -> list[protocol.ToDeviceEvent]:
    return [f for f in socket.frames if isinstance(f, protocol.ToDeviceEvent)]


async def test_a_message_reaches_the_connected_device_once_and_stays_until_acked(
    chat: Chat,
) -> None:
    server = chat.server
    laptop, phone = await pair(server)
    async with chat.connect(phone.user, device_id="PHONE") as socket:
        sent = await send(server, laptop, phone, "m1")
        assert (sent["queued"], sent["undeliverable"]) == (1, [])
        event = await socket.wait_for(lambda f: isinstance(f, protocol.ToDeviceEvent))
        assert (event.sender, event.sender_device, event.message_id) == (
            laptop.user.id,
            "LAPTOP",
            "m1",
        )
        assert event.content.ciphertext.body == sent["sent"][0]["content"]["ciphertext"]["body"]
        # A retry of the same message id is stored (and delivered) once.
        assert (await send(server, laptop, phone, "m1"))["queued"] == 0
        await send(server, laptop, phone, "m2")
        await socket.wait_for(
            lambda f: isinstance(f, protocol.ToDeviceEvent) and f.message_id == "m2"
        )
        assert [e.message_id for e in deliveries(socket)] == ["m1", "m2"]
    # Not acknowledged: both come again on the next connection, in order, and only then go.
    async with chat.connect(phone.user, device_id="PHONE") as socket:
        await socket.wait_for(
            lambda f: isinstance(f, protocol.ToDeviceEvent) and f.message_id == "m2"
        )
        again = deliveries(socket)
        assert [e.message_id for e in again] == ["m1", "m2"]
        await socket.send(protocol.ToDeviceAck(ref="a1", ids=tuple(e.id for e in again)))
        assert isinstance(await socket.answer("a1"), protocol.Ack)
    async with chat.connect(phone.user, device_id="PHONE") as socket:
        await send(server, laptop, phone, "m3")
        await socket.wait_for(lambda f: isinstance(f, protocol.ToDeviceEvent))
        assert [e.message_id for e in deliveries(socket)] == ["m3"]


async def test_a_connection_without_the_device_gets_nothing(chat: Chat) -> None:
    server = chat.server
    laptop, phone = await pair(server)
    async with (
        chat.connect(phone.user) as plain,
        chat.connect(phone.user, device_id="PHONE") as dev,
    ):
        await send(server, laptop, phone, "m1")
        await dev.wait_for(lambda f: isinstance(f, protocol.ToDeviceEvent))
        event = deliveries(dev)[0]
        # An acknowledgement without the device deletes nothing: it comes again.
        await plain.send(protocol.ToDeviceAck(ref="a1", ids=(event.id,)))
        assert isinstance(await plain.answer("a1"), protocol.Ack)
        assert deliveries(plain) == []
    async with chat.connect(phone.user, device_id="PHONE") as dev:
        await dev.wait_for(lambda f: delivered(f, "m1"))


async def test_a_device_fetches_and_acknowledges_over_http(server: Server) -> None:
    laptop, phone = await pair(server)
    await send(server, laptop, phone, "m1", "m2")
    queue = f"/api/v1/devices/{phone.device_id}/to-device"
    pending = (await server.get(queue, phone.user)).json()["messages"]
    assert [m["message_id"] for m in pending] == ["m1", "m2"]
    assert pending[0]["content"]["algorithm"] == "m.olm.v1.curve25519-aes-sha2"
    # The sender cannot read or acknowledge the recipient's queue.
    assert_error(await server.get(queue, laptop.user), 404, "not_found")
    acked = await server.post(f"{queue}/ack", phone.user, json={"ids": [pending[0]["id"]]})
    assert acked.json() == {"deleted": 1}
    left = (await server.get(queue, phone.user)).json()["messages"]
    assert [m["message_id"] for m in left] == ["m2"]


async def test_only_olm_ciphertext_is_relayed(server: Server) -> None:
    laptop, phone = await pair(server)
    message = {
        "user_id": phone.user.id,
        "device_id": "PHONE",
        "message_id": "m1",
        "content": olm(laptop) | {"algorithm": "m.plaintext"},
    }
    body = {"sender_device": "LAPTOP", "messages": [message]}
    response = await server.post("/api/v1/to-device", laptop.user, json=body)
    assert "algorithm" in assert_error(response, 400, "invalid_value")
    # A sender must be this session's device.
    body = {"sender_device": "PHONE", "messages": [message | {"content": olm(laptop)}]}
    response = await server.post("/api/v1/to-device", laptop.user, json=body)
    assert_error(response, 404, "not_found")


async def test_unknown_devices_are_reported_undeliverable(server: Server) -> None:
    laptop, phone = await pair(server)
    ghost = ClientDevice(phone.user, "GHOST")
    sent = await send(server, laptop, ghost, "m1")
    assert sent == sent | {
        "queued": 0,
        "undeliverable": [{"user_id": phone.user.id, "device_id": "GHOST"}],
    }


async def test_a_message_expires_after_its_ttl(tmp_path: Path) -> None:
    async with chat_node(tmp_path, to_device_ttl=0.05) as chat:
        server = chat.server
        laptop, phone = await pair(server)
        await send(server, laptop, phone, "m1")
        queue = f"/api/v1/devices/{phone.device_id}/to-device"

        async def expired() -> bool:
            pending: list[object] = (await server.get(queue, phone.user)).json()["messages"]
            return pending == []

        await until(expired)
        async with chat.connect(phone.user, device_id="PHONE") as socket:
            # The queue is sent right after `ready`, before the next frame is read.
            await socket.send(protocol.Ping(nonce="after-queue"))
            await socket.wait_for(lambda f: isinstance(f, protocol.Pong))
            assert deliveries(socket) == []


async def test_a_full_queue_refuses_more(server: Server) -> None:
    laptop, phone = await pair(server)
    for batch in range(10):
        await send(server, laptop, phone, *(f"m{batch}-{i}" for i in range(100)))
    message = {
        "user_id": phone.user.id,
        "device_id": "PHONE",
        "message_id": "one-more",
        "content": olm(laptop),
    }
    body = {"sender_device": "LAPTOP", "messages": [message]}
    response = await server.post("/api/v1/to-device", laptop.user, json=body)
    assert_error(response, 429, "queue_full")


async def test_housekeeping_deletes_expired_messages(server: Server) -> None:
    laptop, phone = await pair(server)
    await send(server, laptop, phone, "m1")
    keeper = Housekeeper(
        server.services.store,
        server.services.files,
        HousekeepingLimits(interval=60, unattached_ttl=3600, retention=3600),
    )
    assert (await keeper.sweep(now_ms())).to_device_expired == 0
    ttl_ms = int(server.services.settings.to_device_ttl * 1000)
    assert (await keeper.sweep(now_ms() + ttl_ms + 1)).to_device_expired == 1
