"""The canary: an encrypted DM's plaintext appears nowhere but in its two clients.

Two `chorus serve` processes share PostgreSQL and Redis; ada is on one, bob
on the other, and they exchange messages, a thread reply and an edit that
carry a unique random marker. Meanwhile a `MONITOR` connection records every
command Redis receives, and carol, a third user, reads whatever the API and
the gateway give her. Afterwards the marker must be in neither the database
dump, the Redis traffic, the nodes' logs, any stored file, nor anything
carol got, while both clients read it. A plaintext control message in a
public room proves each of those places would have shown it.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio

from chorus import protocol
from chorus.client.e2e import Secured
from tests.cluster.nodes import chatter, running_nodes
from tests.e2e.secure import secure_user
from tests.pgserver import PgServer
from tests.redisserver import RedisServer, running_redis


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    async with running_redis(tmp_path / "redis") as server:
        yield server


async def _monitor(
    port: int, into: bytearray, until: trio.CancelScope, *, task_status: trio.TaskStatus[None]
) -> None:
    """Record every command Redis receives (its `MONITOR` feed) until `until` is cancelled."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    with until:
        await _record(stream, into, task_status)


async def _record(
    stream: trio.SocketStream, into: bytearray, task_status: trio.TaskStatus[None]
) -> None:
    async with stream:
        await stream.send_all(b"MONITOR\r\n")
        into += await stream.receive_some(64)  # +OK: recording from here on
        task_status.started()
        while data := await stream.receive_some(65536):
            into += data


async def _pg_dump(pg: PgServer, database: str) -> str:
    command = [str(pg.bin_dir / "pg_dump"), "--host", "127.0.0.1", "--port", str(pg.port)]
    command += ["--username", pg.user, "--data-only", database]
    result = await trio.run_process(command, capture_stdout=True, capture_stderr=True)
    return result.stdout.decode()


def _stored_bytes(folder: Path) -> bytes:
    """Every file under `folder` (data dirs, logs, Redis's dir, the clients' key files)."""
    return b"".join(path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file())


async def test_the_marker_of_an_encrypted_dm_is_nowhere_but_in_its_clients(
    tmp_path: Path, pg_server: PgServer, redis: RedisServer
) -> None:
    marker = f"canary-{secrets.token_hex(16)}"
    control = f"control-{secrets.token_hex(16)}"
    database, database_url = await pg_server.new_database()
    traffic = bytearray()
    async with (
        running_nodes(
            tmp_path / "nodes",
            2,
            database_url=database_url,
            redis_url=redis.url,
            env={"CHORUS_LOG_LEVEL": "debug"},  # log all there is: requests name the rooms
        ) as nodes,
        trio.open_nursery() as recording,
    ):
        monitoring = trio.CancelScope()
        await recording.start(_monitor, redis.port, traffic, monitoring)
        urls = [
            (f"http://127.0.0.1:{n.http_port}", f"ws://127.0.0.1:{n.gateway_port}/") for n in nodes
        ]
        keys = tmp_path / "clients"
        keys.mkdir()
        async with (
            secure_user(*urls[0], keys / "ada.keys") as ada,
            secure_user(*urls[1], keys / "bob.keys") as bob,
            chatter("carol", nodes[1].http_port, nodes[1].gateway_port) as carol,
        ):
            dm = await ada.api.direct_room(bob.id, encrypted=True)
            await ada.client.join(dm.id)
            first = await ada.client.send(dm.id, f"first {marker}")
            await bob.wait_for_text(dm.id, f"first {marker}")
            await bob.client.send(dm.id, f"reply {marker}", thread=first.id)
            await ada.wait_for_text(dm.id, f"reply {marker}")
            await ada.client.edit(dm.id, first.id, f"edited {marker}")
            await bob.wait_for(
                lambda e: isinstance(e, Secured) and isinstance(e.event, protocol.EditedEvent)
            )
            await ada.client.send(dm.id, f"last {marker}")
            for reader in (ada, bob):
                await reader.wait_for_text(dm.id, f"last {marker}")
            # The control: plaintext in a public room, which these places do show.
            lobby = await carol.api.create_room("lobby", "public")
            await carol.client.join(lobby.id)
            await carol.client.send(lobby.id, f"hello {control}")
            # What carol can get: the DM's history, search, her notifications, rooms.
            assert carol.api.session is not None
            headers = {"authorization": f"Bearer {carol.api.session.access_token}"}
            answers = []
            async with httpx.AsyncClient(base_url=urls[1][0] + "/api/v1", headers=headers) as http:
                for path in (
                    f"/rooms/{dm.id}/messages",
                    f"/rooms/{dm.id}",
                    "/rooms",
                    "/notifications",
                ):
                    answers.append((await http.get(path)).text)
                answers.append((await http.get("/search", params={"q": marker})).text)
            # And everything her WebSocket got (her room's message proves it was recording).
            await carol.wait_until(lambda: any(control in m.body for m in carol.received), 15)
            answers += [repr(message) for message in carol.received]
        monitoring.cancel()
        logs = "".join(node.log() for node in nodes)
        dump = await _pg_dump(pg_server, database)
    # Both clients read the marker...
    assert f"edited {marker}" in [
        s.event.body for s in bob.secured(dm.id) if isinstance(s.event, protocol.EditedEvent)
    ]
    assert {f"first {marker}", f"last {marker}"} <= set(bob.texts(dm.id))
    assert f"reply {marker}" in ada.texts(dm.id)
    # ...and nothing else holds it, where the control shows these places were looked at.
    assert control in dump
    assert marker not in dump
    assert control.encode() in traffic
    assert marker.encode() not in traffic
    assert dm.id in logs  # the nodes' logs were captured (they name the room, not its text)
    assert marker not in logs
    stored = _stored_bytes(tmp_path)
    assert dm.id.encode() in stored  # the data dirs were read
    assert marker.encode() not in stored
    assert marker not in "".join(answers)
