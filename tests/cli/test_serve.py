"""`chorus serve` and `chorus migrate` as a user runs them: real processes and sockets."""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
import trio

from chorus.protocol import CloseCode, reconnect_delay
from tests.gateway.test_gateway import read_close, upgraded
from tests.httpraw import read_response, refuses_connections, request_awaiting_body
from tests.polling import until
from tests.ports import free_port

CHORUS = [sys.executable, "-m", "chorus"]


async def read_until(stream: trio.abc.ReceiveStream, pattern: str) -> re.Match[str]:
    seen = ""
    with trio.fail_after(30):
        while (match := re.search(pattern, seen)) is None:
            chunk = await stream.receive_some(4096)
            assert chunk, f"output ended before {pattern!r}; got:\n{seen}"
            seen += chunk.decode()
    return match


async def test_serve_announces_its_addresses_and_stops_gracefully_on_sigterm(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    argv = [*CHORUS, "serve", "--data-dir", str(data_dir), "--http-port", "0"]
    argv += ["--gateway-port", "0", "--log-format", "json"]
    process = await trio.lowlevel.open_process(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        found = await read_until(process.stdout, r"gateway +ws://127\.0\.0\.1:(\d+)/")
        async with upgraded(int(found.group(1))) as client:
            process.send_signal(signal.SIGTERM)
            stopped_at = trio.current_time()
            close = await read_close(client)
        # Drained at once: 4007 with a delay hint in [0, drain_reconnect_window = 2 s).
        assert close is not None
        code, reason = close
        assert code == CloseCode.RECONNECT
        assert re.fullmatch(r"draining; retry_after_ms=\d+", reason), reason
        delay = reconnect_delay(reason)
        assert delay is not None
        assert 0 <= delay < 2
        with trio.fail_after(30):
            assert await process.wait() == 0
        assert trio.current_time() - stopped_at < 10  # within the default shutdown_grace
        assert (data_dir / "chorus.db").exists()
        # The data dir holds password hashes and the signing key: owner-only.
        assert data_dir.stat().st_mode & 0o077 == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_sigterm_lets_a_request_in_flight_finish(tmp_path: Path) -> None:
    argv = [*CHORUS, "serve", "--data-dir", str(tmp_path), "--http-port", "0"]
    # A grace far longer than the waits below: the answer and the exit must not wait for it.
    argv += ["--gateway-port", "0", "--log-format", "json", "--shutdown-grace", "60"]
    process = await trio.lowlevel.open_process(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        found = await read_until(
            process.stdout, r"HTTP API +http://127\.0\.0\.1:(\d+)/(?s:.)*gateway"
        )
        port = int(found.group(1))
        assert f"web client http://127.0.0.1:{port}/ " in found.string  # the same banner
        body = orjson.dumps({"username": "latecomer", "password": "correct horse battery"})
        async with await request_awaiting_body(port, "/api/v1/auth/register", len(body)) as held:
            process.send_signal(signal.SIGTERM)
            await until(functools.partial(refuses_connections, port))  # stops accepting at once
            await held.send_all(body)
            response = await read_response(held)
        assert response.startswith(b"HTTP/1.1 201 "), response
        with trio.fail_after(10):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def answers(process: trio.Process, url: str) -> bool:
    assert process.returncode is None, f"the node exited with {process.returncode}"
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(url)).status_code == 200
    except httpx.TransportError:  # not listening yet
        return False


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
async def test_serve_survives_full_stdout_and_stderr(tmp_path: Path) -> None:
    # Issue #12: every write to /dev/full fails with ENOSPC. The node used to stop at its
    # banner (exit 1); it must start, answer, count the lost lines and stop with 0.
    port = free_port()
    argv = [*CHORUS, "serve", "--data-dir", str(tmp_path), "--http-port", str(port)]
    argv += ["--gateway-port", "0", "--log-format", "json"]
    # Buffered output, as deployed: a buffer keeps the bytes it failed to write.
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        process = await trio.lowlevel.open_process(argv, stdout=full, stderr=full, env=env)
    finally:
        os.close(full)  # the child has its own copies
    try:
        health = f"http://127.0.0.1:{port}/healthz"
        await until(functools.partial(answers, process, health), timeout=30)
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        failures = re.search(r"^chorus_log_write_failures_total (\S+)$", metrics, re.MULTILINE)
        assert failures is not None
        assert float(failures.group(1)) > 0
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_serve_refuses_bad_settings_with_a_clear_message(tmp_path: Path) -> None:
    argv = [*CHORUS, "serve", "--data-dir", str(tmp_path), "--http-port", "eighty"]
    result = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False)
    assert result.returncode == 2
    assert b"--http-port in command line: expected an integer" in result.stderr


async def test_migrate_creates_the_schema_once(tmp_path: Path) -> None:
    argv = [*CHORUS, "migrate", "--data-dir", str(tmp_path)]
    first = await trio.run_process(argv, capture_stdout=True, check=False)
    second = await trio.run_process(argv, capture_stdout=True, check=False)
    assert (first.returncode, second.returncode) == (0, 0)
    assert b"applied migrations 1" in first.stdout
    assert b"already up to date" in second.stdout
