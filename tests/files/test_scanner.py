"""Virus scanning with a real clamd over TCP and a Unix socket, failing closed (issue #13)."""

from __future__ import annotations

import tracemalloc
import zipfile
from pathlib import Path

import pytest
import trio
from prometheus_client import REGISTRY

from chorus.files import ClamdScanner, NoScanner, ScannerUnavailable, ScanResult, ScanStatus
from tests.clamdserver import EICAR, SIGNATURE, ClamdServer, running_clamd
from tests.files.samples import eicar_zip, write
from tests.ports import free_port

TRANSPORTS = ["tcp", "unix"]


def scanner_for(server: ClamdServer, transport: str) -> ClamdScanner:
    return ClamdScanner(server.tcp_address if transport == "tcp" else server.unix_address)


def scans(outcome: str) -> float:
    return REGISTRY.get_sample_value("chorus_file_scans_total", {"outcome": outcome}) or 0.0


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_clean_file_is_clean(clamd: ClamdServer, tmp_path: Path, transport: str) -> None:
    before = scans("clean")
    result = await scanner_for(clamd, transport).scan(write(tmp_path / "a.txt", b"hello"))
    assert result == ScanResult(ScanStatus.CLEAN)
    assert scans("clean") == before + 1


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_eicar_is_infected_with_its_signature_name(
    clamd: ClamdServer, tmp_path: Path, transport: str
) -> None:
    before = scans("infected")
    result = await scanner_for(clamd, transport).scan(write(tmp_path / "eicar.com", EICAR))
    assert result.status is ScanStatus.INFECTED
    assert result.signature is not None
    assert result.signature.startswith(SIGNATURE)
    assert scans("infected") == before + 1


async def test_eicar_inside_a_zip_is_infected(clamd: ClamdServer, tmp_path: Path) -> None:
    result = await ClamdScanner(clamd.tcp_address).scan(eicar_zip(tmp_path / "docs.zip"))
    assert result.status is ScanStatus.INFECTED
    assert result.signature is not None
    assert result.signature.startswith(SIGNATURE)


async def test_a_zip_of_clean_files_is_clean(clamd: ClamdServer, tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "ok.zip", "w") as archive:
        archive.writestr("readme.txt", b"nothing to see")
    result = await ClamdScanner(clamd.unix_address).scan(tmp_path / "ok.zip")
    assert result.status is ScanStatus.CLEAN


async def test_eicar_after_many_chunks_is_found(clamd: ClamdServer, tmp_path: Path) -> None:
    # Small chunks: the signature arrives split over several INSTREAM chunks.
    path = write(tmp_path / "eicar.com", EICAR)
    result = await ClamdScanner(clamd.tcp_address, chunk_size=7).scan(path)
    assert result.status is ScanStatus.INFECTED


async def test_a_big_file_is_streamed_in_bounded_memory(clamd: ClamdServer, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    with path.open("wb") as file:
        for _ in range(20):
            file.write(b"\xa5" * (1 << 20))  # 20 MiB, written 1 MiB at a time
    tracemalloc.start()
    try:
        result = await ClamdScanner(clamd.unix_address).scan(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.status is ScanStatus.CLEAN
    assert peak < 1 << 20, f"peak {peak} bytes while streaming a 20 MiB file"


async def test_a_stream_over_clamds_limit_is_an_error_not_a_verdict(tmp_path: Path) -> None:
    path = write(tmp_path / "big.bin", b"\0" * (3 << 20))
    before = scans("error")
    async with running_clamd(stream_max_length=1 << 20) as server:
        with pytest.raises(ScannerUnavailable, match="size limit"):
            await ClamdScanner(server.tcp_address).scan(path)
    assert scans("error") == before + 1


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_stopped_clamd_fails_closed_quickly(
    clamd: ClamdServer, tmp_path: Path, transport: str
) -> None:
    scanner = scanner_for(clamd, transport)
    await scanner.ping()
    await clamd.stop()
    path = write(tmp_path / "eicar.com", EICAR)
    with trio.fail_after(2):
        with pytest.raises(ScannerUnavailable, match="cannot connect"):
            await scanner.scan(path)
        with pytest.raises(ScannerUnavailable):
            await scanner.ping()


async def test_a_silent_scanner_times_out(tmp_path: Path) -> None:
    # A real socket that accepts and reads but never answers (a hung clamd).
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def swallow(stream: trio.SocketStream) -> None:
        async with stream:
            while await stream.receive_some(65536):
                pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, swallow, listeners)
        scanner = ClamdScanner(f"tcp://127.0.0.1:{port}", timeout=0.3)
        with trio.fail_after(5):
            with pytest.raises(ScannerUnavailable, match="timed out"):
                await scanner.scan(write(tmp_path / "a.txt", b"hello"))
            with pytest.raises(ScannerUnavailable, match="timed out"):
                await scanner.ping()
        nursery.cancel_scope.cancel()


async def test_nothing_listening_is_unavailable(tmp_path: Path) -> None:
    scanner = ClamdScanner(f"tcp://127.0.0.1:{free_port()}")
    with pytest.raises(ScannerUnavailable):
        await scanner.scan(write(tmp_path / "a.txt", b"hello"))
    with pytest.raises(ScannerUnavailable):
        await ClamdScanner(f"unix://{tmp_path}/no.sock").ping()


async def test_a_missing_file_is_not_a_scanner_fault(clamd: ClamdServer, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await ClamdScanner(clamd.tcp_address).scan(tmp_path / "gone")


@pytest.mark.parametrize(
    "address", ["clamd:3310", "tcp://127.0.0.1", "unix://host/sock", "http://127.0.0.1:3310", ""]
)
def test_addresses_are_checked_up_front(address: str) -> None:
    with pytest.raises(ValueError, match="tcp://host:port or unix:///path"):
        ClamdScanner(address)


async def test_no_scanner_says_unscanned(tmp_path: Path) -> None:
    before = scans("unscanned")
    scanner = NoScanner()
    await scanner.ping()
    assert await scanner.scan(write(tmp_path / "eicar.com", EICAR)) == ScanResult(
        ScanStatus.UNSCANNED
    )
    assert scans("unscanned") == before + 1
