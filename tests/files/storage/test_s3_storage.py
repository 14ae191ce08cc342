"""S3 specifics against a real S3 API (moto on loopback): headers, prefix, presigning, faults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import trio
from werkzeug.http import parse_options_header

from chorus.files import S3Storage, StorageUnavailable, content_disposition
from tests.cutproxy import CuttingProxy
from tests.files.storage.conftest import new_bucket, s3_client, s3_storage
from tests.files.storage.sigv4 import PresignRefused, check_presigned_get
from tests.s3server import S3_REGION, S3_SECRET_ACCESS_KEY, MotoServer, running_moto

HOSTILE_NAME = 'évil "report"\r\nSet-Cookie: x=1; .pdf'


@pytest.fixture
def bucket(moto_server: MotoServer) -> str:
    return new_bucket(moto_server)


@pytest.fixture
def storage(moto_server: MotoServer, bucket: str) -> S3Storage:
    return s3_storage(moto_server, bucket)


async def test_objects_live_under_the_prefix_with_their_headers(
    moto_server: MotoServer, bucket: str, storage: S3Storage, tmp_path: Path
) -> None:
    source = tmp_path / "upload"
    source.write_bytes(b"%PDF-1.7")
    disposition = content_disposition("report.pdf", "application/pdf")
    await storage.put(
        "files/f1/original",
        source,
        content_type="application/pdf",
        content_disposition=disposition,
    )
    assert storage.object_key("files/f1/original") == "chorus/files/f1/original"
    client = s3_client(moto_server)
    listed = client.list_objects_v2(Bucket=bucket)
    assert [item["Key"] for item in listed.get("Contents", [])] == ["chorus/files/f1/original"]
    head = client.head_object(Bucket=bucket, Key="chorus/files/f1/original")
    assert head["ContentType"] == "application/pdf"
    assert head["ContentDisposition"] == disposition


async def test_a_presigned_get_serves_the_bytes_with_the_delivery_headers(
    storage: S3Storage, tmp_path: Path
) -> None:
    source = tmp_path / "upload"
    source.write_bytes(b"%PDF-1.7 body")
    await storage.put("files/f1/original", source, content_type="application/pdf")
    url = await storage.presigned_get(
        "files/f1/original", ttl=300, display_name=HOSTILE_NAME, content_type="application/pdf"
    )
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == b"%PDF-1.7 body"
    assert response.headers["content-type"] == "application/pdf"
    assert "set-cookie" not in response.headers
    kind, options = parse_options_header(response.headers["content-disposition"])
    assert kind == "attachment"
    assert options["filename"] == 'évil "report"Set-Cookie: x=1; .pdf'  # CR/LF dropped


async def test_a_presigned_url_is_a_valid_signature_that_expires_after_the_ttl(
    storage: S3Storage,
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    url = await storage.presigned_get(
        "files/f1/320", ttl=120, display_name="cat.png", content_type="image/png"
    )
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["120"]
    assert query["response-content-disposition"] == [
        "inline; filename=\"cat.png\"; filename*=UTF-8''cat.png"
    ]
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert before <= signed_at <= datetime.now(UTC)
    check_presigned_get(url, secret_access_key=S3_SECRET_ACCESS_KEY, now=signed_at)
    last_second = signed_at + timedelta(seconds=120)
    check_presigned_get(url, secret_access_key=S3_SECRET_ACCESS_KEY, now=last_second)
    with pytest.raises(PresignRefused, match="expired"):
        check_presigned_get(
            url, secret_access_key=S3_SECRET_ACCESS_KEY, now=last_second + timedelta(seconds=1)
        )


@pytest.mark.parametrize(
    ("original", "tampered"),
    [
        ("/files/f1/320?", "/files/f2/320?"),  # another object
        ("X-Amz-Expires=120", "X-Amz-Expires=99999"),  # a longer life
        ("=inline", "=attachment"),  # another disposition
        ("image%2Fpng", "text%2Fhtml"),  # another type
    ],
)
async def test_a_tampered_presigned_url_is_refused(
    storage: S3Storage, original: str, tampered: str
) -> None:
    url = await storage.presigned_get(
        "files/f1/320", ttl=120, display_name="cat.png", content_type="image/png"
    )
    now = datetime.now(UTC)
    check_presigned_get(url, secret_access_key=S3_SECRET_ACCESS_KEY, now=now)
    changed = url.replace(original, tampered)
    assert changed != url
    with pytest.raises(PresignRefused, match="SignatureDoesNotMatch"):
        check_presigned_get(changed, secret_access_key=S3_SECRET_ACCESS_KEY, now=now)
    with pytest.raises(PresignRefused, match="SignatureDoesNotMatch"):
        check_presigned_get(url, secret_access_key="another secret", now=now)


@pytest.mark.parametrize("ttl", [0, -1, 7 * 24 * 3600 + 1])
async def test_presigned_lifetimes_s3_would_refuse_are_refused(
    storage: S3Storage, ttl: int
) -> None:
    with pytest.raises(ValueError, match="presigned URL lives"):
        await storage.presigned_get(
            "files/f1/original", ttl=ttl, display_name="a", content_type="a/b"
        )


async def test_a_stopped_s3_fails_every_call_clearly(tmp_path: Path) -> None:
    with running_moto(tmp_path / "moto") as server:
        storage = s3_storage(server, new_bucket(server))
        source = tmp_path / "upload"
        source.write_bytes(b"x")
        server.stop()
        with trio.fail_after(30):  # connection refused, retried twice with backoff
            with pytest.raises(StorageUnavailable) as failed:
                await storage.put("files/f1/original", source, content_type="text/plain")
            message = str(failed.value)
            assert server.endpoint_url in message
            assert "cannot store 'files/f1/original'" in message
            assert "Could not connect" in message
            for call in (storage.exists, storage.size, storage.delete, storage.delete_prefix):
                with pytest.raises(StorageUnavailable):
                    await call("files/f1/original")


PART = 5 * 1024 * 1024  # S3's smallest multipart part


async def test_a_multipart_upload_that_fails_midway_leaves_nothing(
    moto_server: MotoServer, bucket: str, tmp_path: Path
) -> None:
    # Part 1 (and 3) reach S3, part 2's connection is cut every time: the
    # transfer must abort the multipart upload, not leave parts behind.
    source = tmp_path / "upload"
    source.write_bytes(bytes(range(256)) * (3 * PART // 256))
    proxy = CuttingProxy(moto_server.port, cut_on=b"partNumber=2")
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.serve)
        storage = S3Storage(
            bucket,
            region=S3_REGION,
            endpoint_url=proxy.endpoint_url,
            part_size=PART,
            max_attempts=2,
        )
        with pytest.raises(StorageUnavailable, match="cannot store 'files/big/original'"):
            await storage.put("files/big/original", source, content_type="application/zip")
        nursery.cancel_scope.cancel()
    assert proxy.cuts >= 1  # the fault did happen (each attempt at part 2 is cut)
    client = s3_client(moto_server)
    assert client.list_objects_v2(Bucket=bucket).get("Contents", []) == []
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


async def test_the_multipart_upload_goes_through_the_proxy_when_nothing_is_cut(
    moto_server: MotoServer, bucket: str, tmp_path: Path
) -> None:
    # The fault test's control: same file, same path, no cut pattern sent.
    source = tmp_path / "upload"
    source.write_bytes(bytes(range(256)) * (3 * PART // 256))
    proxy = CuttingProxy(moto_server.port, cut_on=b"never sent by boto3")
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.serve)
        storage = S3Storage(
            bucket, region=S3_REGION, endpoint_url=proxy.endpoint_url, part_size=PART
        )
        await storage.put("files/big/original", source, content_type="application/zip")
        nursery.cancel_scope.cancel()
    head = s3_client(moto_server).head_object(Bucket=bucket, Key="files/big/original")
    assert head["ContentLength"] == 3 * PART
    assert head["ETag"].endswith('-3"')  # three parts: a multipart upload
