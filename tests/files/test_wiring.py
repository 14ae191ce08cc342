"""How a node builds its file services from the settings (issue #13)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chorus.config import Settings
from chorus.files import ClamdScanner, LocalStorage, NoScanner, S3Storage
from chorus.node import file_services, load_node_name
from tests.cli.test_serve import read_until
from tests.test_layering import modules_loaded_by

KEY = bytes(range(32))


def test_a_local_node_loads_no_s3_module() -> None:
    loaded = modules_loaded_by("chorus.node")
    assert not loaded & {"boto3", "botocore", "chorus.files._s3_storage"}


def test_the_node_name_is_made_once_and_kept(tmp_path: Path) -> None:
    first = load_node_name(tmp_path / "data")
    assert first.startswith("node-")
    assert load_node_name(tmp_path / "data") == first
    assert load_node_name(tmp_path / "other") != first


def test_local_storage_and_no_scanner_by_default(tmp_path: Path) -> None:
    files = file_services(Settings(data_dir=tmp_path), KEY)
    assert isinstance(files.storage, LocalStorage)
    assert isinstance(files.scanner, NoScanner)
    assert (files.s3, files.cdn) == (None, None)
    assert files.spool_dir == tmp_path / "spool"
    assert files.spool_dir.is_dir()
    assert files.node_name == load_node_name(tmp_path)


def test_clamd_s3_and_cdn_when_configured(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "cdn.pem").write_bytes(pem)
    settings = Settings(
        data_dir=tmp_path,
        scanner="clamd",
        clamd_address="tcp://127.0.0.1:3310",
        storage="s3",
        s3_bucket="files",
        s3_prefix="chorus",
        s3_region="eu-west-1",
        cdn_domain="cdn.example.com",
        cdn_key_id="K2JCJMDEHXQW5F",
        cdn_private_key_file=str(tmp_path / "cdn.pem"),
    )
    files = file_services(settings, KEY)
    assert isinstance(files.scanner, ClamdScanner)
    assert isinstance(files.storage, S3Storage)
    assert files.s3 is files.storage
    assert files.s3.object_key("files/x/original") == "chorus/files/x/original"
    assert files.cdn is not None
    assert files.cdn.signed_url("a", expires_at=_aware()).startswith("https://cdn.example.com/a?")


def _aware() -> datetime:
    return datetime.now(UTC) + timedelta(minutes=5)


async def _serve_log_until_ready(tmp_path: Path, *flags: str) -> str:
    argv = [sys.executable, "-m", "chorus", "serve", "--data-dir", str(tmp_path / "data")]
    argv += ["--http-port", "0", "--gateway-port", "0", "--log-format", "json", *flags]
    process = await trio.lowlevel.open_process(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        assert process.stderr is not None
        found = await read_until(process.stderr, r"(?s)^.*node\.ready")
        return found.group(0)
    finally:
        process.kill()
        await process.wait()


async def test_serve_warns_at_start_up_when_files_are_not_scanned(tmp_path: Path) -> None:
    log = await _serve_log_until_ready(tmp_path)
    assert "files are not virus-scanned; their metadata says unscanned" in log
    assert '"level": "warning"' in log or '"level":"warning"' in log


async def test_serve_does_not_warn_when_clamd_scans(tmp_path: Path) -> None:
    # Start-up does not reach clamd (it may start later): files wait while it is down.
    log = await _serve_log_until_ready(
        tmp_path, "--scanner", "clamd", "--clamd-address", "tcp://127.0.0.1:9"
    )
    assert "not virus-scanned" not in log
