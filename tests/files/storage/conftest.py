import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from chorus.files import LocalStorage, S3Storage, Storage
from tests.s3server import (
    S3_ACCESS_KEY_ID,
    S3_REGION,
    S3_SECRET_ACCESS_KEY,
    MotoServer,
    running_moto,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Every backend the contract suite (tests/files/storage/test_storage.py) runs against.
BACKENDS = ["local", "s3"]


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One S3 API (moto) for the session; tests that stop a server start their own."""
    with running_moto(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """boto3's credential chain finds the test keys in the environment, and nothing else."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def s3_client(server: MotoServer) -> "S3Client":
    """A plain boto3 client on `server`, to look at the bucket behind the backend's back."""
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name=S3_REGION,
        aws_access_key_id=S3_ACCESS_KEY_ID,
        aws_secret_access_key=S3_SECRET_ACCESS_KEY,
    )


def new_bucket(server: MotoServer) -> str:
    """A fresh, empty bucket on `server` (a new name per test: no state shared)."""
    name = f"chorus-{uuid.uuid4().hex[:16]}"
    s3_client(server).create_bucket(Bucket=name)
    return name


def s3_storage(server: MotoServer, bucket: str, **options: Any) -> S3Storage:
    return S3Storage(
        bucket, prefix="chorus", region=S3_REGION, endpoint_url=server.endpoint_url, **options
    )


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """A fresh, empty store of each backend, seen only through the `Storage` protocol."""
    backend: str = request.param
    if backend == "local":
        return LocalStorage(tmp_path / "store")
    if backend == "s3":
        # Requested lazily, so local-only runs (-k local) start no moto.
        server: MotoServer = request.getfixturevalue("moto_server")
        return s3_storage(server, new_bucket(server))
    raise AssertionError(f"no fixture for backend {backend!r}")
