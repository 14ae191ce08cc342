"""`chorus serve` near its open-file limit: new clients are refused at once, never left waiting.

Each node runs as a process of its own, started with RLIMIT_NOFILE at 256.
"""

from __future__ import annotations

import re
import resource
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import attrs
import orjson
import trio

from tests.admission.sockets import END_OF_HEAD, HEALTHZ, UPGRADE, connect_from, exchange
from tests.polling import until

CHORUS = [sys.executable, "-m", "chorus"]
FILE_LIMIT = 256


def low_file_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))


@attrs.frozen
class Served:
    http: int
    gateway: int
    log_file: Path

    def events(self, name: str) -> list[dict[str, object]]:
        lines = self.log_file.read_text(errors="replace").splitlines()
        entries = [orjson.loads(line) for line in lines if line.startswith("{")]
        return [entry for entry in entries if entry.get("event") == name]


@asynccontextmanager
async def serve_near_limit(tmp_path: Path, *flags: str) -> AsyncIterator[Served]:
    """`chorus serve` with a 256 open-file limit; idle connections stay open for a minute."""
    argv = [*CHORUS, "serve", "--data-dir", str(tmp_path / "data"), "--log-format", "json"]
    argv += ["--http-port", "0", "--gateway-port", "0"]
    argv += ["--http-idle-timeout", "60", "--auth-timeout", "60", *flags]
    log_file = tmp_path / "stderr.log"
    with log_file.open("wb") as log:
        process = await trio.lowlevel.open_process(
            argv, stdout=subprocess.PIPE, stderr=log, preexec_fn=low_file_limit
        )
    try:
        assert process.stdout is not None
        seen = ""
        pattern = r"HTTP API +http://127\.0\.0\.1:(\d+)/(?s:.)*gateway +ws://127\.0\.0\.1:(\d+)/"
        with trio.fail_after(30):
            while (found := re.search(pattern, seen)) is None:
                chunk = await process.stdout.receive_some(4096)
                assert chunk, f"output ended before the addresses; got:\n{seen}"
                seen += chunk.decode()
        yield Served(int(found.group(1)), int(found.group(2)), log_file)
    finally:
        process.terminate()
        with trio.move_on_after(30):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


def is_refusal(answer: bytes) -> bool:
    return answer.startswith(b"HTTP/1.1 503 ")


async def is_served(node: Served) -> bool:
    ok = await exchange("127.0.0.3", node.http, HEALTHZ)
    upgraded = await exchange("127.0.0.3", node.gateway, UPGRADE, until=END_OF_HEAD)
    return ok.startswith(b"HTTP/1.1 200 ") and upgraded.startswith(b"HTTP/1.1 101 ")


async def test_near_the_file_limit_new_clients_get_503_at_once_until_idle_ones_leave(
    tmp_path: Path,
) -> None:
    # 256 - 128 reserved (the default): room for 128 client sockets.
    async with serve_near_limit(tmp_path) as node, AsyncExitStack() as idle:
        for _ in range(128):
            await idle.enter_async_context(await connect_from("127.0.0.2", node.http))
        started = trio.current_time()
        for _ in range(3):
            assert is_refusal(await exchange("127.0.0.3", node.http, HEALTHZ))
            assert is_refusal(await exchange("127.0.0.3", node.gateway, UPGRADE))
        assert trio.current_time() - started < 5  # each one answered at once
        await idle.aclose()
        await until(lambda: is_served(node), timeout=10)

        async def recovered() -> bool:
            return len(node.events("admission.limit_recovered")) == 1

        await until(recovered, timeout=5)
        reached = node.events("admission.limit_reached")
        assert [entry["reason"] for entry in reached] == ["file_limit"]  # logged once
        assert reached[0]["open_file_limit"] == FILE_LIMIT


async def test_out_of_descriptors_the_backlog_is_drained_not_left_waiting(
    tmp_path: Path,
) -> None:
    # No reserve: the process runs out of descriptors before the admission cap,
    # and accept() fails (EMFILE); connections are then shed at once.
    flags = ("--reserved-file-descriptors", "0")
    async with serve_near_limit(tmp_path, *flags) as node, AsyncExitStack() as idle:
        for _ in range(FILE_LIMIT):
            await idle.enter_async_context(await connect_from("127.0.0.2", node.http))
        started = trio.current_time()
        # Answered 503 or closed, within `exchange`'s 5 seconds: never a timeout.
        assert not (await exchange("127.0.0.3", node.http, HEALTHZ)).startswith(b"HTTP/1.1 200")
        assert not (await exchange("127.0.0.3", node.gateway, UPGRADE)).startswith(b"HTTP/1.1 1")
        assert trio.current_time() - started < 5
        await idle.aclose()
        await until(lambda: is_served(node), timeout=10)
        shed = [entry["reason"] for entry in node.events("admission.limit_reached")]
        assert shed == ["out_of_descriptors"]
