"""The `file` frame reaches the uploader's sockets on other `chorus serve` processes, once."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.cluster.nodes import chatter, running_nodes
from tests.pgserver import PgServer
from tests.redisserver import RedisServer

DELIVERY_TIMEOUT = 30.0


async def test_a_file_checked_on_one_node_is_told_to_the_uploader_on_both(
    tmp_path: Path, pg_server: PgServer, redis: RedisServer
) -> None:
    _, database_url = await pg_server.new_database()
    async with (
        running_nodes(tmp_path, 2, database_url=database_url, redis_url=redis.url) as nodes,
        chatter("ada", nodes[1].http_port, nodes[1].gateway_port) as there,
    ):
        session = there.api.session
        assert session is not None
        auth = {"Authorization": f"Bearer {session.access_token}"}
        async with (
            chatter("bob", nodes[0].http_port, nodes[0].gateway_port) as bystander,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{nodes[0].http_port}") as http,
        ):
            response = await http.post(
                "/api/v1/files",
                params={"name": "notes.txt"},
                content=b"uploaded to node 0\n",
                headers=auth | {"Content-Type": "text/plain"},
            )
            assert response.status_code == 202, response.text
            file_id = response.json()["id"]
            await there.wait_until(lambda: bool(there.files), DELIVERY_TIMEOUT)
            assert [(f.id, f.state) for f in there.files] == [(file_id, "ready")]
            # Another user's connections are told nothing.
            follow_up = await http.get(f"/api/v1/files/{file_id}", headers=auth)
            assert follow_up.json()["state"] == "ready"
            assert bystander.files == []


async def test_a_message_posted_on_one_node_reaches_the_other_with_its_attachments(
    tmp_path: Path, pg_server: PgServer, redis: RedisServer
) -> None:
    _, database_url = await pg_server.new_database()
    async with (
        running_nodes(tmp_path, 2, database_url=database_url, redis_url=redis.url) as nodes,
        chatter("ada", nodes[1].http_port, nodes[1].gateway_port) as ada,
        chatter("bob", nodes[0].http_port, nodes[0].gateway_port) as bob,
    ):
        room = await ada.api.create_room("files")
        await bob.api.join_room(room.id)
        await bob.client.join(room.id)
        session = ada.api.session
        assert session is not None
        auth = {"Authorization": f"Bearer {session.access_token}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{nodes[1].http_port}") as http:
            uploaded = await http.post(
                "/api/v1/files",
                params={"name": "plan.txt"},
                content=b"the plan\n",
                headers=auth | {"Content-Type": "text/plain"},
            )
            assert uploaded.status_code == 202, uploaded.text
            file_id = uploaded.json()["id"]
            await ada.wait_until(lambda: [f.id for f in ada.files] == [file_id], DELIVERY_TIMEOUT)
            posted = await http.post(
                f"/api/v1/rooms/{room.id}/messages",
                json={"body": "", "client_id": "c1", "attachments": [file_id]},
                headers=auth,
            )
            assert posted.status_code == 201, posted.text
            message_id = posted.json()["message"]["id"]
        # bob's connection is on the other node: the event came over the bus, whole.
        await bob.wait_until(lambda: message_id in {m.id for m in bob.received}, DELIVERY_TIMEOUT)
        [message] = [m for m in bob.received if m.id == message_id]
        assert message.attachments == (ada.files[0],)
        # A member sees the file's metadata through the other node too.
        bob_session = bob.api.session
        assert bob_session is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{nodes[0].http_port}") as http:
            seen = await http.get(
                f"/api/v1/files/{file_id}",
                headers={"Authorization": f"Bearer {bob_session.access_token}"},
            )
        assert seen.status_code == 200, seen.text
        assert seen.json()["id"] == file_id
        assert seen.json()["name"] == "plan.txt"
