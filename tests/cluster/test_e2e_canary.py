"""The canary: an encrypted DM's plaintext appears nowhere but in its two clients.

Two `chorus serve` processes share PostgreSQL, Redis and an S3 bucket (moto);
ada is on one, bob on the other, and they exchange messages, a thread reply,
an edit and a file (its name and bytes) that carry a unique random marker.
Meanwhile a `MONITOR` connection records every command Redis receives, and
carol, a third user, reads whatever the API and the gateway give her.
Afterwards the marker must be in neither the database dump, the Redis
traffic, the nodes' logs, any stored file, the bucket, nor anything carol
got, while both clients read it. A plaintext control message and file in a
public room prove each of those places would have shown it.
"""

from __future__ import annotations

import io
import secrets
from pathlib import Path

import httpx
import pytest
import trio

from chorus import protocol
from chorus.client.e2e import Secured
from tests.cluster.nodes import chatter, running_nodes
from tests.e2e.secure import secure_user
from tests.files.storage.conftest import s3_client
from tests.http.test_file_delivery import moto as moto  # a fixture: the files bucket on moto
from tests.pgserver import PgServer
from tests.redisserver import RedisServer
from tests.s3server import S3_REGION, MotoServer


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


def _bucket_bytes(moto: MotoServer) -> bytes:
    """Every object of the files bucket."""
    s3 = s3_client(moto)
    listed = s3.list_objects_v2(Bucket="files").get("Contents", [])
    return b"".join(s3.get_object(Bucket="files", Key=o["Key"])["Body"].read() for o in listed)


async def test_the_marker_of_an_encrypted_dm_is_nowhere_but_in_its_clients(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    pg_server: PgServer,
    redis: RedisServer,
    moto: MotoServer,
) -> None:
    marker = f"canary-{secrets.token_hex(16)}"
    control = f"control-{secrets.token_hex(16)}"
    # The file's plaintext lives outside tmp_path, whose every byte is searched below.
    plaintext = tmp_path_factory.mktemp("plaintext")
    secret_file = plaintext / f"plan {marker}.txt"
    secret_file.write_bytes(secrets.token_bytes(100_000) + f"the plan: {marker}".encode())
    database, database_url = await pg_server.new_database()
    traffic = bytearray()
    async with (
        running_nodes(
            tmp_path / "nodes",
            2,
            database_url=database_url,
            redis_url=redis.url,
            env={
                "CHORUS_LOG_LEVEL": "debug",  # log all there is: requests name the rooms
                # Both nodes serve every file: they share the bucket.
                "CHORUS_STORAGE": "s3",
                "CHORUS_S3_BUCKET": "files",
                "CHORUS_S3_REGION": S3_REGION,
                "CHORUS_S3_ENDPOINT_URL": moto.endpoint_url,
            },
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
            # A file through ada's node, fetched by bob through his.
            await ada.client.send_file(dm.id, secret_file, caption=f"file {marker}")
            opened = await bob.wait_for_text(dm.id, f"file {marker}")
            [sealed] = opened.files
            assert sealed.name == secret_file.name
            fetched = await bob.e2e.download_file(sealed, plaintext / "fetched")
            assert fetched.read_bytes() == secret_file.read_bytes()
            # The control: plaintext in a public room, which these places do show.
            lobby = await carol.api.create_room("lobby", "public")
            await carol.client.join(lobby.id)
            await carol.client.send(lobby.id, f"hello {control}")
            shown = await carol.api.upload_file(
                io.BytesIO(f"notes: {control}\n".encode()), name=f"{control}.txt"
            )
            await carol.client.wait_for_file(shown.id)
            await carol.client.send(lobby.id, "", attachments=[shown.id])
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
    bucket = await trio.to_thread.run_sync(_bucket_bytes, moto)
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
    assert control.encode() in bucket  # carol's plain file
    assert marker.encode() not in bucket
    assert marker not in "".join(answers)
