"""Download URLs: issued to those who may see a ready file, served with Range, revocable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import boto3
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chorus.files import SANDBOX_POLICY
from tests.files.samples import image_bytes
from tests.http.conftest import Account, Server, assert_error, open_server
from tests.http.test_files import FILES, final, upload
from tests.s3server import (
    S3_ACCESS_KEY_ID,
    S3_REGION,
    S3_SECRET_ACCESS_KEY,
    MotoServer,
    running_moto,
)

TEXT = b"0123456789abcdefghij"


async def ready_file(
    server: Server, user: Account, data: bytes = TEXT, **kwargs: str
) -> dict[str, object]:
    response = await upload(server, user, data, **kwargs)
    assert response.status_code == 202, response.text
    done = await final(server, user, response.json()["id"])
    assert done["state"] == "ready", done
    return done


async def url_of(server: Server, user: Account, file_id: object, variant: str = "original") -> str:
    response = await server.get(f"{FILES}/{file_id}/url", user, params={"variant": variant})
    assert response.status_code == 200, response.text
    url: str = response.json()["url"]
    return url


async def fetch(url: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(url, headers=headers)


async def test_a_ready_file_is_served_with_safe_headers(server: Server) -> None:
    ada = await server.register("ada")
    done = await ready_file(server, ada)
    got = await fetch(await url_of(server, ada, done["id"]))
    assert got.status_code == 200
    assert got.content == TEXT
    assert got.headers["content-type"].startswith("text/plain")
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"] == SANDBOX_POLICY
    assert got.headers["content-disposition"].startswith("attachment;")
    assert got.headers["content-length"] == str(len(TEXT))


async def test_thumbnails_are_served_inline(server: Server) -> None:
    ada = await server.register("ada")
    done = await ready_file(
        server, ada, image_bytes((800, 400), "PNG"), name="a.png", content_type="image/png"
    )
    got = await fetch(await url_of(server, ada, done["id"], "320"))
    assert got.status_code == 200
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-disposition"].startswith("inline;")
    absent = await server.get(f"{FILES}/{done['id']}/url", ada, params={"variant": "1280"})
    assert_error(absent, 404, "not_found")  # 800 px wide: no 1280 thumbnail


async def test_ranges_are_served(server: Server) -> None:
    ada = await server.register("ada")
    url = await url_of(server, ada, (await ready_file(server, ada))["id"])
    part = await fetch(url, Range="bytes=2-5")
    assert part.status_code == 206
    assert part.content == TEXT[2:6]
    assert part.headers["content-range"] == f"bytes 2-5/{len(TEXT)}"
    tail = await fetch(url, Range="bytes=-3")
    assert (tail.status_code, tail.content) == (206, TEXT[-3:])
    outside = await fetch(url, Range="bytes=100-200")
    assert_error(outside, 416, "range_not_satisfiable")
    assert outside.headers["content-range"] == f"bytes */{len(TEXT)}"


def _tampered(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | changes
    return parts._replace(query=urlencode(query)).geturl()


async def test_a_tampered_or_expired_url_is_refused(server: Server) -> None:
    ada = await server.register("ada")
    first = (await ready_file(server, ada))["id"]
    second = (await ready_file(server, ada, b"another file\n"))["id"]
    url = await url_of(server, ada, first)
    sig = dict(parse_qsl(urlsplit(url).query))["sig"]
    forged = [
        _tampered(url, sig=sig[:-2] + ("AA" if not sig.endswith("AA") else "BB")),
        _tampered(url, exp=str(int(dict(parse_qsl(urlsplit(url).query))["exp"]) + 3600)),
        _tampered(url, disp="inline"),
        url.replace(str(first), str(second)),  # another file, same signature
    ]
    for bad in forged:
        assert_error(await fetch(bad), 403, "forbidden")
    signer = server.services.files.url_signer
    expired = signer.sign(str(first), "original", disposition="attachment", expires_at=1)
    base = url.split("?")[0]
    assert_error(await fetch(f"{base}?{urlencode(expired)}"), 403, "forbidden")


async def test_only_the_owner_gets_a_url_for_an_unattached_file(server: Server) -> None:
    ada, bob = await server.register("ada"), await server.register("bob")
    file_id = (await ready_file(server, ada))["id"]
    refused = await server.get(f"{FILES}/{file_id}/url", bob)
    assert_error(refused, 404, "not_found")


async def test_deleting_a_file_stops_delivery_at_once(server: Server) -> None:
    ada = await server.register("ada")
    file_id = (await ready_file(server, ada))["id"]
    url = await url_of(server, ada, file_id)
    assert (await fetch(url)).status_code == 200
    assert (await server.delete(f"{FILES}/{file_id}", ada)).status_code == 204
    assert_error(await fetch(url), 404, "not_found")
    assert_error(await server.get(f"{FILES}/{file_id}/url", ada), 404, "not_found")


async def test_no_url_before_a_file_is_ready(server: Server) -> None:
    ada = await server.register("ada")
    response = await upload(
        server, ada, b"\x7fELF" + bytes(100), name="x.png", content_type="image/png"
    )
    file_id = response.json()["id"]
    assert (await final(server, ada, file_id))["state"] == "rejected"
    assert_error(await server.get(f"{FILES}/{file_id}/url", ada), 404, "not_found")


@pytest.fixture
def moto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with running_moto(tmp_path / "moto") as server:
        boto3.client(
            "s3",
            endpoint_url=server.endpoint_url,
            region_name=S3_REGION,
            aws_access_key_id=S3_ACCESS_KEY_ID,
            aws_secret_access_key=S3_SECRET_ACCESS_KEY,
        ).create_bucket(Bucket="files")
        yield server


async def test_with_s3_storage_files_go_to_the_bucket_and_urls_are_presigned(
    tmp_path: Path, moto: MotoServer
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
        done = await ready_file(server, ada)
        url = await url_of(server, ada, done["id"])
        assert url.startswith(f"{moto.endpoint_url}/files/chorus/files/{done['id']}/original?")
        assert "X-Amz-Signature=" in url
        got = await fetch(url)
        assert got.status_code == 200
        assert got.content == TEXT


async def test_with_a_cdn_urls_are_cloudfront_signed(tmp_path: Path, moto: MotoServer) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "cdn.pem").write_bytes(pem)
    settings = {
        "storage": "s3",
        "s3_bucket": "files",
        "s3_prefix": "chorus",
        "s3_region": S3_REGION,
        "s3_endpoint_url": moto.endpoint_url,
        "cdn_domain": "cdn.example.com",
        "cdn_key_id": "K2JCJMDEHXQW5F",
        "cdn_private_key_file": str(tmp_path / "cdn.pem"),
    }
    async with open_server(tmp_path / "node", **settings) as server:
        ada = await server.register("ada")
        done = await ready_file(server, ada)
        url = await url_of(server, ada, done["id"])
        assert url.startswith(f"https://cdn.example.com/chorus/files/{done['id']}/original?")
        query = dict(parse_qsl(urlsplit(url).query))
        assert query["Key-Pair-Id"] == "K2JCJMDEHXQW5F"
        assert {"Expires", "Signature"} <= set(query)
