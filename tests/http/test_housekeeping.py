"""File housekeeping on a real node: expiry, purge after retention, the spool after a crash."""

from __future__ import annotations

import hashlib
from pathlib import Path

import boto3
import trio

from chorus.actors.housekeeping import Housekeeper, HousekeepingLimits, Swept
from chorus.files import LocalStorage, Storage
from chorus.node import FILES_DIR, SPOOL_DIR, load_node_name, open_node_store
from chorus.persistence import NewFile, now_ms
from tests.files.samples import image_bytes
from tests.fixtures import node_settings
from tests.http.conftest import Account, Server, assert_error, open_server
from tests.http.test_file_delivery import moto  # noqa: F401 (fixture)
from tests.http.test_files import TEXT, final, upload
from tests.s3server import S3_ACCESS_KEY_ID, S3_REGION, S3_SECRET_ACCESS_KEY, MotoServer

FILES = "/api/v1/files"
DAY = 24 * 3600
TTL, RETENTION = DAY, 7 * DAY


def housekeeper(server: Server, *, retention: float = RETENTION) -> Housekeeper:
    """A housekeeper on the node's own store and storage (as the node builds it)."""
    limits = HousekeepingLimits(
        interval=3600, unattached_ttl=TTL, retention=retention, batch=2, max_batches=10
    )
    return Housekeeper(server.services.store, server.services.files, limits)


async def ready(server: Server, user: Account, data: bytes = TEXT, **kwargs: str) -> str:
    response = await upload(server, user, data, **kwargs)
    assert response.status_code == 202, response.text
    done = await final(server, user, response.json()["id"])
    assert done["state"] == "ready", done
    file_id: str = done["id"]
    return file_id


def stored_dir(server: Server, file_id: str) -> Path:
    return server.services.settings.data_dir / FILES_DIR / "files" / file_id


async def test_unattached_uploads_expire_then_are_purged_and_sweeping_again_changes_nothing(
    server: Server,
) -> None:
    ada = await server.register("ada")
    png = image_bytes((1600, 900), "PNG")
    ids = [
        await ready(server, ada),
        await ready(server, ada, png, name="map.png", content_type="image/png"),
        await ready(server, ada, b"third\n"),
    ]
    assert all((stored_dir(server, i) / "original").is_file() for i in ids)
    assert (stored_dir(server, ids[1]) / "320").is_file()
    keeper = housekeeper(server)
    start = now_ms()
    assert await keeper.sweep(start) == Swept()  # younger than the TTL: kept

    expired = await keeper.sweep(start + TTL * 1000 + 1000)
    assert (expired.expired, expired.purged, expired.failed) == (3, 0, 0)  # in batches of 2
    assert expired.bytes_freed > len(TEXT) + len(b"third\n")
    assert not any(stored_dir(server, i).exists() for i in ids)  # every variant
    for file_id in ids:
        assert_error(await server.get(f"{FILES}/{file_id}", ada), 404, "not_found")
        row = await server.services.store.get_file(file_id)
        assert row is not None
        assert row.deleted_at == start + TTL * 1000 + 1000
        [*_, last] = await server.services.store.file_transitions(file_id)
        assert last[1:] == ("deleted", "unattached")
    assert await server.services.store.bytes_stored(ada.id) == 0
    assert await keeper.sweep(start + TTL * 1000 + 2000) == Swept()  # again: nothing to do

    late = start + (TTL + RETENTION) * 1000 + 2000
    purged = await keeper.sweep(late)
    assert (purged.expired, purged.purged, purged.bytes_freed, purged.failed) == (0, 3, 0, 0)
    assert [await server.services.store.get_file(i) for i in ids] == [None] * 3
    assert await keeper.sweep(late) == Swept()


async def test_a_deleted_file_keeps_its_bytes_for_the_retention(server: Server) -> None:
    ada = await server.register("ada")
    file_id = await ready(server, ada)
    assert (await server.delete(f"{FILES}/{file_id}", ada)).status_code == 204
    keeper = housekeeper(server)
    soon = now_ms() + 1000
    assert await keeper.sweep(soon) == Swept()
    assert (stored_dir(server, file_id) / "original").read_bytes() == TEXT
    later = await keeper.sweep(soon + RETENTION * 1000)
    assert (later.purged, later.bytes_freed) == (1, len(TEXT))
    assert not stored_dir(server, file_id).exists()
    assert await server.services.store.get_file(file_id) is None
    # Retention 0: a file deleted now is purged by the next sweep.
    other = await ready(server, ada)
    assert (await server.delete(f"{FILES}/{other}", ada)).status_code == 204
    assert (await housekeeper(server, retention=0).sweep(now_ms())).purged == 1
    assert await server.services.store.get_file(other) is None


async def test_two_nodes_sweeping_at_once_remove_each_file_once(server: Server) -> None:
    ada = await server.register("ada")
    ids = [await ready(server, ada, f"file {n}\n".encode()) for n in range(5)]
    first, second = housekeeper(server), housekeeper(server)
    results: list[Swept] = []
    when = now_ms() + TTL * 1000 + 1000

    async def sweep(keeper: Housekeeper) -> None:
        results.append(await keeper.sweep(when))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sweep, first)
        nursery.start_soon(sweep, second)
    assert sum(r.expired for r in results) == len(ids)
    assert all(r.failed == 0 for r in results)
    for file_id in ids:
        transitions = await server.services.store.file_transitions(file_id)
        assert [t[1] for t in transitions].count("deleted") == 1
        assert not stored_dir(server, file_id).exists()


async def test_a_storage_failure_is_logged_and_retried_at_the_next_sweep(
    tmp_path: Path,
    moto: MotoServer,  # noqa: F811 (the fixture)
) -> None:
    settings = {
        "storage": "s3",
        "s3_bucket": "files",
        "s3_prefix": "chorus",
        "s3_region": S3_REGION,
        "s3_endpoint_url": moto.endpoint_url,
    }
    async with open_server(tmp_path / "node", **settings) as server:
        ada = await server.register("ada")
        file_id = await ready(server, ada)
        storage: Storage = server.services.files.storage
        assert await storage.exists(f"files/{file_id}/original")
        assert (await server.delete(f"{FILES}/{file_id}", ada)).status_code == 204
        keeper = housekeeper(server, retention=0)
        moto.stop()
        failed = await keeper.sweep(now_ms())
        assert (failed.purged, failed.failed) == (0, 1)
        assert await server.services.store.get_file(file_id) is not None  # left for later
        moto.start()  # an empty moto: the object is gone, which is not an error
        boto3.client(
            "s3",
            endpoint_url=moto.endpoint_url,
            region_name=S3_REGION,
            aws_access_key_id=S3_ACCESS_KEY_ID,
            aws_secret_access_key=S3_SECRET_ACCESS_KEY,
        ).create_bucket(Bucket="files")
        done = await keeper.sweep(now_ms())
        assert (done.purged, done.failed) == (1, 0)
        assert await server.services.store.get_file(file_id) is None


async def test_at_start_the_spool_is_swept_and_other_nodes_files_are_left_alone(
    tmp_path: Path,
) -> None:
    settings = node_settings(tmp_path)
    node = load_node_name(tmp_path)
    async with open_server(tmp_path) as server:
        ada = await server.register("ada")
        finished = await ready(server, ada)
    spool = tmp_path / SPOOL_DIR

    def new(name: str, on: str) -> NewFile:
        return NewFile(
            owner_id=ada.id,
            name=name,
            declared_type="text/plain",
            size=len(TEXT),
            sha256=hashlib.sha256(TEXT).hexdigest(),
            node=on,
            created_at=now_ms(),
        )

    # What a crash leaves: a half-streamed upload, a spool file and a work folder
    # of a file already finished, bytes nobody recorded, a file of this node
    # still to check (spooled), one whose bytes are lost, and another node's file.
    async with open_node_store(settings) as store:
        mine = await store.create_file(new("mine.txt", node))
        lost = await store.create_file(new("lost.txt", node))
        elsewhere = await store.create_file(new("other.txt", "node-elsewhere"))
    (spool / "upload-0123456789abcdef01234567.part").write_bytes(b"half an upl")
    (spool / finished).write_bytes(TEXT)
    (spool / f"{finished}.work").mkdir()
    (spool / f"{finished}.work" / "original").write_bytes(b"re-encoded")
    (spool / "f_unknown").write_bytes(b"orphan")
    (spool / mine.id).write_bytes(TEXT)
    async with open_server(tmp_path) as server:
        assert (await final(server, ada, mine.id))["state"] == "ready"
        done = await final(server, ada, lost.id)
        assert (done["state"], done["reason"]) == ("rejected", "interrupted")
        assert sorted(p.name for p in spool.iterdir()) == []
        other = await server.services.store.get_file(elsewhere.id)
        assert other is not None
        assert other.state.value == "pending"  # another node's: its own spool has it
        assert isinstance(server.services.files.storage, LocalStorage)
        assert (stored_dir(server, finished) / "original").read_bytes() == TEXT
