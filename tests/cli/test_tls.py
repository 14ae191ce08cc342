"""`chorus serve` terminating TLS itself: https with HSTS, wss, reload on SIGHUP (issue #16)."""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio

from chorus.bots import SwarmOptions, failures, provision_node, run_swarm
from chorus.client import ConnectionLost, HttpApi, RealtimeClient
from chorus.config import Settings
from tests.cli.test_serve import read_until
from tests.cluster.nodes import PASSWORD
from tests.e2e.test_terminal import NEW_ACCOUNT, Output
from tests.polling import until
from tests.tlsfiles import TlsFiles, tls_files

CHORUS = [sys.executable, "-m", "chorus"]


async def presents(port: int, ca: Path) -> bool:
    """Whether a TLS handshake with the port succeeds trusting only `ca`."""
    context = ssl.create_default_context(cafile=str(ca))
    stream = await trio.open_ssl_over_tcp_stream("127.0.0.1", port, ssl_context=context)
    try:
        await stream.do_handshake()
    except (OSError, trio.BrokenResourceError):  # ssl.SSLError is an OSError
        return False
    finally:
        await trio.aclose_forcefully(stream)
    return True


async def test_a_failed_tls_handshake_leaves_the_gateway_listening(tmp_path: Path) -> None:
    tls, stranger = tls_files(tmp_path / "tls"), tls_files(tmp_path / "stranger")
    async with tls_node(tmp_path, tls.cert, tls.key) as (_process, _http_port, gateway_port):
        for _ in range(3):  # each one refused by the client: the connection must still be taken
            assert not await presents(gateway_port, stranger.ca)
        assert await presents(gateway_port, tls.ca)


def install(files: TlsFiles, cert: Path, key: Path) -> None:
    shutil.copy(files.cert, cert)
    shutil.copy(files.key, key)


@asynccontextmanager
async def tls_node(
    tmp_path: Path, cert: Path, key: Path
) -> AsyncIterator[tuple[trio.Process, int, int]]:
    """`chorus serve` with TLS: the process, its HTTP and gateway ports; exits 0 on SIGTERM."""
    argv = [*CHORUS, "serve", "--data-dir", str(tmp_path / "data"), "--http-port", "0"]
    argv += ["--gateway-port", "0", "--log-format", "json"]
    argv += ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    with (tmp_path / "stderr.log").open("wb") as log:
        process = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE, stderr=log)
    try:
        assert process.stdout is not None
        banner = await read_until(process.stdout, r"gateway +wss://127\.0\.0\.1:(\d+)/")
        http = re.search(r"HTTP API +https://127\.0\.0\.1:(\d+)/", banner.string)
        assert http is not None, banner.string  # the banner's line before the gateway's
        yield process, int(http.group(1)), int(banner.group(1))
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_serve_speaks_tls_with_hsts_and_reloads_its_certificate_on_sighup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tls_files(tmp_path / "first"), tls_files(tmp_path / "second")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    install(first, cert, key)
    # The SDK trusts the system's CAs, or the file SSL_CERT_FILE names (httpx and ssl).
    monkeypatch.setenv("SSL_CERT_FILE", str(first.ca))
    events: list[object] = []
    async with (
        tls_node(tmp_path, cert, key) as (process, http_port, gateway_port),
        HttpApi(f"https://127.0.0.1:{http_port}") as api,
        trio.open_nursery() as nursery,
    ):
        await api.register("ada", PASSWORD)
        room = (await api.create_room("general")).id
        client = RealtimeClient(api, gateway_url=f"wss://127.0.0.1:{gateway_port}/")
        with trio.fail_after(30):
            await nursery.start(client.run)

        async def collect() -> None:
            async for event in client.events:
                events.append(event)

        nursery.start_soon(collect)
        await client.join(room)
        before = await client.send(room, "before the reload")
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=first.ca)) as h:
            health = await h.get(f"https://127.0.0.1:{http_port}/healthz")

        install(second, cert, key)
        process.send_signal(signal.SIGHUP)
        await until(lambda: presents(gateway_port, second.ca), timeout=15)
        assert await presents(http_port, second.ca)
        assert not await presents(http_port, first.ca)
        # The WebSocket opened before the reload is still the same connection.
        after = await client.send(room, "after the reload")
        nursery.cancel_scope.cancel()
    assert health.status_code == 200
    assert health.headers["strict-transport-security"] == "max-age=31536000"
    assert after.seq == before.seq + 1
    assert not [event for event in events if isinstance(event, ConnectionLost)]


async def test_chorus_chat_trusts_the_ca_file_it_is_given(tmp_path: Path) -> None:
    tls = tls_files(tmp_path / "tls")
    env = {name: value for name, value in os.environ.items() if name != "SSL_CERT_FILE"}
    async with tls_node(tmp_path, tls.cert, tls.key) as (_process, http_port, _gateway):
        argv = [*CHORUS, "chat", "--server", f"https://127.0.0.1:{http_port}", "--user", "bob"]
        argv.append("--no-e2e")  # no key-file passphrase to answer
        with trio.fail_after(60):
            answers = "\n".join([*NEW_ACCOUNT, "/create general", ""]).encode()
            refused = await trio.run_process(
                argv, stdin=answers, capture_stdout=True, capture_stderr=True, check=False, env=env
            )
            async with trio.open_nursery() as nursery:
                chat = functools.partial(
                    trio.run_process,
                    [*argv, "--ca-file", str(tls.ca)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    check=False,
                    env=env,
                )
                trusted: trio.Process = await nursery.start(chat)
                assert trusted.stdin is not None
                assert trusted.stdout is not None
                await trusted.stdin.send_all(answers)
                await Output(trusted.stdout).wait_for("== general ==")  # signed up, in a room
                await trusted.stdin.aclose()  # Ctrl+D
    assert trusted.returncode == 0
    assert refused.returncode == 1
    assert b"cannot reach" in refused.stderr  # the certificate is not trusted without it


async def test_the_bot_swarm_runs_over_wss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tls = tls_files(tmp_path / "tls")
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))  # what `chorus bots --ca-file` sets
    async with tls_node(tmp_path, tls.cert, tls.key) as (_process, http_port, gateway_port):
        settings = Settings(data_dir=tmp_path / "data")
        provisioned = await provision_node(settings, bots=10, rooms=1, room_size=10)
        options = SwarmOptions(
            gateways=(f"wss://127.0.0.1:{gateway_port}/",),
            apis=(f"https://127.0.0.1:{http_port}",),
            rate=20.0,
            duration=2.0,
            ramp_up=0.5,
            workers=0,
        )
        with trio.fail_after(60):
            report = await trio.to_thread.run_sync(run_swarm, options, provisioned)
    assert failures(report) == []
    assert report["connections"]["held"] == 10
    assert report["messages"]["acked"] == report["messages"]["sent"] > 0
