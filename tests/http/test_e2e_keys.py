"""The key directory over HTTP: devices bound to sessions, signed keys, atomic claims, alerts.

Keys are real: each test device has an Ed25519 signing key and a Curve25519
key made with `cryptography`, and signs its keys the way docs/e2e.md says
(canonical JSON, written out here independently of the server's code).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from trio_websocket import ConnectionClosed

from chorus import protocol
from tests.http.conftest import (
    PASSWORD,
    Account,
    Server,
    account_of,
    assert_error,
    open_server,
)
from tests.http.test_attachments import Chat, chat_node
from tests.pgserver import PgServer
from tests.wsclient import ws_connect

ALGORITHMS = ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"]


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def public_key(key: Ed25519PrivateKey | X25519PrivateKey) -> str:
    return b64(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


@attrs.define
class ClientDevice:
    """A client device: its user, id and key pairs; signs as docs/e2e.md says."""

    user: Account
    device_id: str
    signing: Ed25519PrivateKey = attrs.field(factory=Ed25519PrivateKey.generate)
    identity: X25519PrivateKey = attrs.field(factory=X25519PrivateKey.generate)

    def sign(self, value: dict[str, Any]) -> str:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return b64(self.signing.sign(text.encode()))

    @property
    def keys(self) -> dict[str, str]:
        return {"curve25519": public_key(self.identity), "ed25519": public_key(self.signing)}

    def registration(self, display_name: str = "laptop") -> dict[str, Any]:
        signed = {
            "user_id": self.user.id,
            "device_id": self.device_id,
            "algorithms": ALGORITHMS,
            "keys": self.keys,
        }
        return {
            "display_name": display_name,
            "algorithms": ALGORITHMS,
            "keys": self.keys,
            "signature": self.sign(signed),
        }

    def signed_key(self, key_id: str, *, fallback: bool = False) -> dict[str, str]:
        key = public_key(X25519PrivateKey.generate())
        signed = {
            "user_id": self.user.id,
            "device_id": self.device_id,
            "key_id": key_id,
            "key": key,
            "fallback": fallback,
        }
        return {"key_id": key_id, "key": key, "signature": self.sign(signed)}


@pytest.fixture
async def chat(tmp_path: Path) -> AsyncIterator[Chat]:
    async with chat_node(tmp_path) as chat:
        yield chat


async def register(server: Server, device: ClientDevice) -> dict[str, Any]:
    response = await server.call(
        "PUT", f"/api/v1/devices/{device.device_id}", device.user, json=device.registration()
    )
    assert response.status_code == 201, response.text
    view: dict[str, Any] = response.json()["device"]
    return view


async def upload(server: Server, device: ClientDevice, *key_ids: str, fallback: str = "") -> Any:
    body: dict[str, Any] = {"one_time_keys": [device.signed_key(i) for i in key_ids]}
    if fallback:
        body["fallback_key"] = device.signed_key(fallback, fallback=True)
    response = await server.post(f"/api/v1/devices/{device.device_id}/keys", device.user, json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def claim(server: Server, caller: Account, *devices: ClientDevice) -> Any:
    body = {"devices": [{"user_id": d.user.id, "device_id": d.device_id} for d in devices]}
    response = await server.post("/api/v1/keys/claim", caller, json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def second_session(server: Server, user: Account) -> Account:
    """Another login of `user`: a session of its own."""
    response = await server.post(
        "/api/v1/auth/login", json={"username": user.username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return account_of(response.json())


async def test_a_signed_device_is_in_the_directory(
    server: Server, ada: Account, bob: Account
) -> None:
    laptop = ClientDevice(ada, "LAPTOP")
    view = await register(server, laptop)
    assert view["keys"] == laptop.keys
    assert (view["user_id"], view["device_id"], view["algorithms"]) == (
        ada.id,
        "LAPTOP",
        ALGORITHMS,
    )
    listed = (await server.get(f"/api/v1/users/{ada.id}/devices", bob)).json()["devices"]
    assert listed == [view]
    queried = await server.post("/api/v1/keys/query", bob, json={"user_ids": [ada.id, bob.id]})
    assert queried.json() == {"devices": {ada.id: [view], bob.id: []}}
    # Registering again with the same keys renames it (200).
    again = laptop.registration("work laptop")
    response = await server.call("PUT", "/api/v1/devices/LAPTOP", ada, json=again)
    assert response.status_code == 200
    assert response.json()["device"]["display_name"] == "work laptop"


async def test_a_forged_or_malformed_device_is_refused(server: Server, ada: Account) -> None:
    laptop = ClientDevice(ada, "LAPTOP")
    forged = laptop.registration() | {
        "signature": ClientDevice(ada, "X").registration()["signature"]
    }
    response = await server.call("PUT", "/api/v1/devices/LAPTOP", ada, json=forged)
    assert_error(response, 400, "bad_signature")
    # Signed for another user id (a replayed registration) does not verify either.
    stolen = attrs.evolve(laptop, user=attrs.evolve(ada, id="u_someone"))
    response = await server.call("PUT", "/api/v1/devices/LAPTOP", ada, json=stolen.registration())
    assert_error(response, 400, "bad_signature")
    short_key = laptop.registration() | {"keys": laptop.keys | {"curve25519": "AAAA"}}
    response = await server.call("PUT", "/api/v1/devices/LAPTOP", ada, json=short_key)
    assert "keys.curve25519" in assert_error(response, 400, "invalid_value")
    plain = laptop.registration() | {"algorithms": ["plaintext", "m.megolm.v1.aes-sha2"]}
    response = await server.call("PUT", "/api/v1/devices/LAPTOP", ada, json=plain)
    assert_error(response, 400, "invalid_value")
    response = await server.call(
        "PUT", "/api/v1/devices/LAP%20TOP", ada, json=laptop.registration()
    )
    assert_error(response, 400, "invalid_value")
    spoofing = laptop.registration("\u202egnp.exe")
    response = await server.call("PUT", "/api/v1/devices/LAPTOP", ada, json=spoofing)
    assert "bidi" in assert_error(response, 400, "invalid_value")
    assert (await server.get("/api/v1/devices", ada)).json() == {"devices": []}


async def test_a_device_belongs_to_its_session(server: Server, ada: Account, bob: Account) -> None:
    laptop = ClientDevice(ada, "LAPTOP")
    await register(server, laptop)
    phone_session = await second_session(server, ada)
    # Another session of the same user may not use the device's keys or queue...
    response = await server.get("/api/v1/devices/LAPTOP/keys", phone_session)
    assert_error(response, 403, "forbidden")
    response = await server.get("/api/v1/devices/LAPTOP/to-device", phone_session)
    assert_error(response, 403, "forbidden")
    # ...nor take its id with other keys.
    impostor = ClientDevice(phone_session, "LAPTOP")
    response = await server.call(
        "PUT", "/api/v1/devices/LAPTOP", phone_session, json=impostor.registration()
    )
    assert_error(response, 409, "device_exists")
    # Logging the session out takes the device out of the directory at once.
    response = await server.post("/api/v1/auth/logout", ada)
    assert response.status_code == 204, response.text
    listed = await server.get(f"/api/v1/users/{ada.id}/devices", bob)
    assert listed.json() == {"devices": []}
    assert (await claim(server, bob, laptop))["missing"] == [
        {"user_id": ada.id, "device_id": "LAPTOP"}
    ]


async def test_claims_take_one_time_keys_then_the_fallback(
    server: Server, ada: Account, bob: Account
) -> None:
    laptop = ClientDevice(ada, "LAPTOP")
    await register(server, laptop)
    counts = await upload(server, laptop, "k1", "k2", fallback="fb")
    assert counts == {"one_time_key_count": 2, "fallback_key": True}
    first = (await claim(server, bob, laptop))["keys"]
    second = (await claim(server, bob, laptop))["keys"]
    third = (await claim(server, bob, laptop))["keys"]
    assert [(k["key_id"], k["fallback"]) for k in first + second + third] == [
        ("k1", False),
        ("k2", False),
        ("fb", True),
    ]
    counts_now = await server.get("/api/v1/devices/LAPTOP/keys", ada)
    assert counts_now.json() == {"one_time_key_count": 0, "fallback_key": True}


async def test_concurrent_claims_of_the_last_key_get_different_keys(
    server: Server, ada: Account, bob: Account
) -> None:
    laptop = ClientDevice(ada, "LAPTOP")
    await register(server, laptop)
    await upload(server, laptop, "last", fallback="fb")
    got: list[tuple[str, bool]] = []

    async def take() -> None:
        [key] = (await claim(server, bob, laptop))["keys"]
        got.append((key["key_id"], key["fallback"]))

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(take)
    assert sorted(got) == [("fb", True), ("fb", True), ("fb", True), ("last", False)]


async def test_a_forged_one_time_key_is_refused(server: Server, ada: Account) -> None:
    laptop = ClientDevice(ada, "LAPTOP")
    await register(server, laptop)
    forged = ClientDevice(ada, "LAPTOP").signed_key("k1")  # signed with another key
    response = await server.post(
        "/api/v1/devices/LAPTOP/keys", ada, json={"one_time_keys": [forged]}
    )
    assert_error(response, 400, "bad_signature")
    # A fallback key signed as a one-time key does not verify as a fallback key.
    as_fallback = {"fallback_key": laptop.signed_key("fb", fallback=False)}
    response = await server.post("/api/v1/devices/LAPTOP/keys", ada, json=as_fallback)
    assert_error(response, 400, "bad_signature")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_key_id_given_twice_is_stored_once_or_refused_never_a_500(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    overrides: dict[str, Any] = {}
    if backend == "postgres":  # the insert failed on the primary key: 500 on both
        pg: PgServer = request.getfixturevalue("pg_server")
        _, overrides["database_url"] = await pg.new_database()
    async with open_server(tmp_path, **overrides) as server:
        ada = await server.register("ada")
        laptop = ClientDevice(ada, "LAPTOP")
        await register(server, laptop)
        path = "/api/v1/devices/LAPTOP/keys"
        k1 = laptop.signed_key("k1")
        # The same key twice in one request, then again in another: stored once.
        response = await server.post(path, ada, json={"one_time_keys": [k1, k1]})
        assert response.json() == {"one_time_key_count": 1, "fallback_key": False}
        response = await server.post(path, ada, json={"one_time_keys": [k1]})
        assert response.json() == {"one_time_key_count": 1, "fallback_key": False}
        # One id for two keys, in one request or across two, is refused whole.
        two = [laptop.signed_key("k2"), laptop.signed_key("k2")]
        message = assert_error(
            await server.post(path, ada, json={"one_time_keys": two}), 400, "invalid_value"
        )
        assert "'k2' is given twice" in message
        both = {
            "one_time_keys": [laptop.signed_key("k3")],
            "fallback_key": laptop.signed_key("k3", fallback=True),
        }
        message = assert_error(await server.post(path, ada, json=both), 400, "invalid_value")
        assert "one-time and a fallback key" in message
        other = {"one_time_keys": [laptop.signed_key("k4"), laptop.signed_key("k1")]}
        message = assert_error(await server.post(path, ada, json=other), 400, "invalid_value")
        assert "'k1' was uploaded before" in message
        counts = await server.get(path, ada)
        assert counts.json() == {"one_time_key_count": 1, "fallback_key": False}


async def test_a_device_running_low_is_told_on_its_socket(chat: Chat) -> None:
    server = chat.server
    ada, bob = await server.register("ada"), await server.register("bob")
    laptop = ClientDevice(ada, "LAPTOP")
    await register(server, laptop)
    await upload(server, laptop, *(f"k{i}" for i in range(11)), fallback="fb")
    async with chat.connect(ada, device_id="LAPTOP") as socket:
        ready = await socket.wait_for(lambda f: isinstance(f, protocol.Ready))
        assert (ready.device_id, ready.one_time_key_count) == ("LAPTOP", 11)
        await claim(server, bob, laptop)  # 10 left: not low yet
        await claim(server, bob, laptop)  # 9 left
        low = await socket.wait_for(lambda f: isinstance(f, protocol.OneTimeKeysLow))
        assert low == protocol.OneTimeKeysLow(device_id="LAPTOP", count=9, fallback_key=True)
        assert sum(isinstance(f, protocol.OneTimeKeysLow) for f in socket.frames) == 1


async def test_hello_with_another_sessions_device_is_refused(chat: Chat) -> None:
    server = chat.server
    ada = await server.register("ada")
    await register(server, ClientDevice(ada, "LAPTOP"))
    other = await second_session(server, ada)
    async with ws_connect(chat.gateway_port) as ws:
        hello = protocol.Hello(token=other.access_token, device_id="LAPTOP")
        await ws.send_message(protocol.encode(hello).decode())
        with trio.fail_after(15):
            answer = protocol.decode_server_frame(await ws.get_message())
            assert isinstance(answer, protocol.ErrorReply)
            assert answer.code is protocol.ErrorCode.FORBIDDEN
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
        reason = closed.value.reason
        assert reason is not None
        assert reason.code == protocol.CloseCode.AUTH_FAILED


async def test_claims_are_rate_limited_per_user(server: Server, ada: Account, bob: Account) -> None:
    laptop = ClientDevice(ada, "LAPTOP")
    await register(server, laptop)
    body = {"devices": [{"user_id": ada.id, "device_id": "LAPTOP"}]}
    answers = [await server.post("/api/v1/keys/claim", bob, json=body) for _ in range(80)]
    assert [a.status_code for a in answers[:50]] == [200] * 50  # the burst
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.headers["Retry-After"] == "1"
    assert_error(refused, 429, "rate_limited")
    # Another user's budget is their own.
    assert (await server.post("/api/v1/keys/claim", ada, json=body)).status_code == 200
