"""Encrypted direct rooms: envelopes only, stored opaque, never searched, content-free notices.

The ciphertexts are opaque test strings (base64 of random bytes): what the
server does with them does not depend on real Megolm output (the client
helper's tests use vodozemac).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chorus import protocol
from tests.http.conftest import Account, Server, assert_error
from tests.http.test_attachments import PNG, Chat, chat_node
from tests.http.test_file_delivery import fetch, url_of
from tests.http.test_files import FILES, TEXT, final, upload
from tests.http.test_rich import url


@pytest.fixture
async def chat(tmp_path: Path) -> AsyncIterator[Chat]:
    async with chat_node(tmp_path) as chat:
        yield chat


def envelope(**fields: str) -> dict[str, str]:
    """A Megolm envelope around opaque bytes (a unique, unguessable ciphertext)."""
    return {
        "algorithm": "m.megolm.v1.aes-sha2",
        "sender_key": base64.b64encode(secrets.token_bytes(32)).decode().rstrip("="),
        "device_id": "LAPTOP",
        "session_id": base64.b64encode(secrets.token_bytes(32)).decode().rstrip("="),
        "ciphertext": base64.b64encode(secrets.token_bytes(96)).decode(),
    } | fields


async def encrypted_dm(server: Server, ada: Account, *others: Account) -> dict[str, Any]:
    body: dict[str, Any] = {"encrypted": True}
    body |= {"user_id": others[0].id} if len(others) == 1 else {"user_ids": [o.id for o in others]}
    response = await server.post("/api/v1/dms", ada, json=body)
    assert response.status_code == 201, response.text
    room: dict[str, Any] = response.json()
    return room


async def seal(server: Server, user: Account, room: str, client_id: str, **extra: Any) -> Any:
    sealed = envelope()
    body = {"body": "", "client_id": client_id, "encrypted": sealed} | extra
    response = await server.post(url(room), user, json=body)
    assert response.status_code == 201, response.text
    message = response.json()["message"]
    assert (message["body"], message["encrypted"]) == ("", sealed)
    return message


async def test_an_encrypted_dm_is_its_own_room_for_good(
    server: Server, ada: Account, bob: Account
) -> None:
    plain = await server.post("/api/v1/dms", ada, json={"user_id": bob.id})
    assert plain.status_code == 201
    assert plain.json()["encrypted"] is False
    sealed = await encrypted_dm(server, ada, bob)
    assert sealed["encrypted"] is True
    assert sealed["id"] != plain.json()["id"]
    # The same users get the same encrypted room back, whoever asks...
    again = await server.post("/api/v1/dms", bob, json={"user_id": ada.id, "encrypted": True})
    assert (again.status_code, again.json()["id"]) == (200, sealed["id"])
    # ...and nothing turns the flag off: no room setting takes it.
    response = await server.call(
        "PATCH", f"/api/v1/rooms/{sealed['id']}", ada, json={"encrypted": False}
    )
    assert response.status_code in (400, 403), response.text
    listed = (await server.get("/api/v1/rooms", ada)).json()["rooms"]
    assert {r["id"]: r["encrypted"] for r in listed} == {
        plain.json()["id"]: False,
        sealed["id"]: True,
    }


async def test_group_dms_can_be_encrypted(server: Server, ada: Account, bob: Account) -> None:
    cy = await server.register("cyd")
    room = await encrypted_dm(server, ada, bob, cy)
    assert (room["kind"], room["encrypted"]) == ("direct", True)
    await seal(server, cy, room["id"], "c1")


async def test_plaintext_is_refused_in_an_encrypted_room(
    server: Server, ada: Account, bob: Account
) -> None:
    room = (await encrypted_dm(server, ada, bob))["id"]
    response = await server.post(url(room), ada, json={"body": "hello", "client_id": "p1"})
    assert "end-to-end encrypted" in assert_error(response, 400, "encryption_required")
    both = {"body": "hello", "client_id": "p2", "encrypted": envelope()}
    assert_error(await server.post(url(room), ada, json=both), 400, "encryption_required")
    other_algorithm = {"body": "", "client_id": "p3", "encrypted": envelope(algorithm="none")}
    assert_error(await server.post(url(room), ada, json=other_algorithm), 400, "invalid_value")
    message = await seal(server, ada, room, "m1")
    # Reactions would show their emoji: refused (they go inside encrypted messages).
    reaction = await server.call(
        "PUT", url(room, message["id"], "/reactions/%F0%9F%91%8D"), bob, params={"client_id": "r1"}
    )
    assert_error(reaction, 400, "encryption_required")
    edit = {"body": "plain edit", "client_id": "e1"}
    response = await server.call("PATCH", url(room, message["id"]), ada, json=edit)
    assert_error(response, 400, "encryption_required")
    history = (await server.get(url(room), bob)).json()["events"]
    assert [e["id"] for e in history] == [message["id"]]  # nothing else was stored


async def test_an_envelope_is_refused_in_a_plain_room(
    server: Server, ada: Account, bob: Account
) -> None:
    plain = (await server.post("/api/v1/dms", ada, json={"user_id": bob.id})).json()["id"]
    body = {"body": "", "client_id": "x1", "encrypted": envelope()}
    message = assert_error(await server.post(url(plain), ada, json=body), 400, "invalid_value")
    assert "not encrypted" in message


async def test_envelopes_are_stored_and_served_as_they_came(
    server: Server, ada: Account, bob: Account
) -> None:
    room = (await encrypted_dm(server, ada, bob))["id"]
    root = await seal(server, ada, room, "m1")
    reply = await seal(server, bob, room, "m2", thread=root["id"])
    assert reply["thread"] == root["id"]  # structure stays visible
    new_text = envelope()
    edit = {"body": "", "client_id": "e1", "encrypted": new_text}
    edited = await server.call("PATCH", url(room, root["id"]), ada, json=edit)
    assert edited.status_code == 200, edited.text
    assert edited.json()["event"]["encrypted"] == new_text
    assert edited.json()["event"]["body"] == ""
    events = (await server.get(url(room), bob)).json()["events"]
    assert [(e["type"], e["encrypted"]) for e in events] == [
        ("message", new_text),  # a message shows its latest state
        ("message", reply["encrypted"]),
        ("edited", new_text),
    ]
    detail = (await server.get(url(room, root["id"]), bob)).json()
    assert (detail["message"]["encrypted"], detail["reply_count"]) == (new_text, 1)
    thread = (await server.get(url(room, root["id"], "/thread"), bob)).json()
    assert [m["encrypted"] for m in thread["messages"]] == [reply["encrypted"]]
    # A delete leaves a tombstone without the envelope.
    deleted = await server.delete(url(room, root["id"]), ada, params={"client_id": "d1"})
    assert deleted.status_code == 200, deleted.text
    tombstone = (await server.get(url(room, root["id"]), bob)).json()["message"]
    assert (tombstone["body"], tombstone["encrypted"]) == ("", None)


async def test_encrypted_messages_are_never_found_by_search(
    server: Server, ada: Account, bob: Account
) -> None:
    room = (await encrypted_dm(server, ada, bob))["id"]
    sealed = envelope()
    response = await server.post(
        url(room), ada, json={"body": "", "client_id": "m1", "encrypted": sealed}
    )
    assert response.status_code == 201
    plain = await server.create_room(ada, "open")
    marker = sealed["ciphertext"][:24]
    posted = await server.post(url(plain), ada, json={"body": f"see {marker}", "client_id": "p"})
    assert posted.status_code == 201
    for term in (marker, sealed["session_id"], "megolm", "LAPTOP"):
        found = await server.get("/api/v1/search", ada, params={"q": term})
        assert found.status_code == 200, found.text
        rooms = {hit["message"]["room"] for hit in found.json()["hits"]}
        assert room not in rooms, term
    # The plain room's copy is found: search itself works.
    found = await server.get("/api/v1/search", ada, params={"q": marker})
    assert [hit["message"]["room"] for hit in found.json()["hits"]] == [plain]


async def test_notifications_of_an_encrypted_room_carry_no_content(chat: Chat) -> None:
    server = chat.server
    ada, bob = await server.register("ada"), await server.register("bob")
    room = (await encrypted_dm(server, ada, bob))["id"]
    root = await seal(server, bob, room, "m1")
    async with chat.connect(bob, room) as socket:
        await seal(server, ada, room, "m2", thread=root["id"])
        note = await socket.wait_for(lambda f: isinstance(f, protocol.NotificationEvent))
        assert (note.kind, note.room, note.preview) == ("reply", room, "")
        event = await socket.wait_for(
            lambda f: isinstance(f, protocol.MessageEvent) and f.message.thread == root["id"]
        )
        assert event.message.body == ""
        assert event.message.encrypted is not None


async def test_the_websocket_refuses_plaintext_and_relays_envelopes(chat: Chat) -> None:
    server = chat.server
    ada, bob = await server.register("ada"), await server.register("bob")
    room = (await encrypted_dm(server, ada, bob))["id"]
    async with chat.connect(ada, room) as sender, chat.connect(bob, room) as reader:
        plain = protocol.Send(ref="1", room=room, client_id="p1", body="hello")
        refused = await sender.request(plain)
        assert isinstance(refused, protocol.ErrorReply)
        assert refused.code is protocol.ErrorCode.ENCRYPTION_REQUIRED
        react = protocol.React(ref="2", room=room, message="m_x", client_id="r1", emoji="👍")
        await sender.send(react)
        refused = await sender.answer("2")
        assert isinstance(refused, protocol.ErrorReply)
        assert refused.code is protocol.ErrorCode.ENCRYPTION_REQUIRED
        fields = envelope()
        sealed = protocol.MegolmEnvelope(
            algorithm=protocol.MEGOLM,
            sender_key=fields["sender_key"],
            device_id=fields["device_id"],
            session_id=fields["session_id"],
            ciphertext=fields["ciphertext"],
        )
        ack = await sender.request(
            protocol.Send(ref="3", room=room, client_id="m1", body="", encrypted=sealed)
        )
        assert isinstance(ack, protocol.Ack), ack
        assert ack.message is not None
        relayed = await reader.message(ack.message.id)
        assert (relayed.body, relayed.encrypted) == ("", sealed)


async def test_encrypted_files_are_kept_as_they_came_and_go_only_in_encrypted_rooms(
    server: Server, ada: Account, bob: Account
) -> None:
    sealed_room = (await encrypted_dm(server, ada, bob))["id"]
    plain_room = (await server.post("/api/v1/dms", ada, json={"user_id": bob.id})).json()["id"]
    # Image bytes declared encrypted are not recognised, re-encoded or thumbnailed.
    uploaded = await server.post(
        FILES,
        ada,
        params={"name": "attachment", "encrypted": "true"},
        content=PNG,
        headers={"Content-Type": "image/png"},
    )
    assert uploaded.status_code == 202, uploaded.text
    sealed_file = await final(server, ada, uploaded.json()["id"])
    assert sealed_file["state"] == "ready"
    assert (sealed_file["content_type"], sealed_file["thumbnails"], sealed_file["width"]) == (
        "application/octet-stream",
        [],
        None,
    )
    got = await fetch(await url_of(server, ada, sealed_file["id"]))
    assert got.content == PNG
    plain_file = await final(server, ada, (await upload(server, ada, TEXT)).json()["id"])
    # Only encrypted files in encrypted rooms, and only there.
    post = {"body": "", "client_id": "f1", "encrypted": envelope(), "attachments": []}
    with_plain = post | {"attachments": [plain_file["id"]]}
    refused = await server.post(url(sealed_room), ada, json=with_plain)
    assert "not end-to-end encrypted" in assert_error(refused, 403, "forbidden")
    in_plain = {"body": "look", "client_id": "f2", "attachments": [sealed_file["id"]]}
    refused = await server.post(url(plain_room), ada, json=in_plain)
    assert "this room is not" in assert_error(refused, 403, "forbidden")
    with_sealed = post | {"client_id": "f3", "attachments": [sealed_file["id"]]}
    posted = await server.post(url(sealed_room), ada, json=with_sealed)
    assert posted.status_code == 201, posted.text
    assert [f["id"] for f in posted.json()["message"]["attachments"]] == [sealed_file["id"]]
