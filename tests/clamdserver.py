"""A private clamd for tests: loopback TCP port and Unix socket, signatures made here.

No network and no freshclam: the signature database is one `.hdb` line (MD5,
size, name: what `sigtool --md5` prints) for the EICAR test file, so clamd
finds `EICAR` — alone or inside an archive — and nothing else.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from tests.ports import free_port

# The standard antivirus test file (eicar.org), split so this source file is no match itself.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SIGNATURE = "Chorus.Test.EICAR"
"""The name our database gives EICAR (clamd may append `.UNOFFICIAL`)."""

INSTALL_HINT = (
    "clamd is not installed: install the Debian package clamav-daemon (scripts/test does this)"
)


def find_clamd() -> str:
    """The clamd binary; fails with `INSTALL_HINT` when there is none."""
    for candidate in (shutil.which("clamd"), "/usr/sbin/clamd"):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError(INSTALL_HINT)


class ClamdServer:
    """One clamd process in a private temporary folder; `stop()` kills it by its PID.

    `stream_max_length` is clamd's `StreamMaxLength` (bytes an INSTREAM may carry).
    """

    def __init__(self, *, stream_max_length: int = 32 * 1024 * 1024) -> None:
        self._binary = find_clamd()
        # Not pytest's tmp_path: a Unix socket path must stay under ~108 bytes.
        self.directory = Path(tempfile.mkdtemp(prefix="chorus-clamd-"))
        self.port = free_port()
        self.socket_path = self.directory / "clamd.sock"
        self.log_path = self.directory / "clamd.log"
        self._stream_max_length = stream_max_length
        self._process: trio.Process | None = None

    @property
    def tcp_address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def unix_address(self) -> str:
        return f"unix://{self.socket_path}"

    def _write_config(self) -> Path:
        database = self.directory / "db"
        database.mkdir(exist_ok=True)
        digest = hashlib.md5(EICAR).hexdigest()  # what `sigtool --md5` prints, computed here
        (database / "test.hdb").write_text(f"{digest}:{len(EICAR)}:{SIGNATURE}\n")
        config = self.directory / "clamd.conf"
        config.write_text(
            "\n".join(
                [
                    "Foreground yes",
                    f"TCPSocket {self.port}",
                    "TCPAddr 127.0.0.1",
                    f"LocalSocket {self.socket_path}",
                    f"DatabaseDirectory {database}",
                    f"LogFile {self.log_path}",
                    f"PidFile {self.directory / 'clamd.pid'}",
                    f"StreamMaxLength {self._stream_max_length}",
                    "ScanArchive yes",
                    "Bytecode no",
                    # No `User`: clamd keeps the identity it was started with (root here).
                ]
            )
            + "\n"
        )
        return config

    async def start(self) -> None:
        """Start clamd and return once it answers PING (deadline 30 s)."""
        config = self._write_config()
        self._process = await trio.lowlevel.open_process(
            [self._binary, "--config-file", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with trio.fail_after(30):
            while not await self._pong():
                if self._process.poll() is not None:
                    log = (
                        self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
                    )
                    raise RuntimeError(
                        f"clamd exited with status {self._process.returncode}:\n{log[-2000:]}"
                    )
                await trio.sleep(0.05)  # clamd is still loading: poll, bounded

    async def _pong(self) -> bool:
        try:
            stream = await trio.open_unix_socket(str(self.socket_path))
        except OSError:
            return False
        async with stream:
            await stream.send_all(b"zPING\0")
            return await stream.receive_some(16) == b"PONG\0"

    async def stop(self) -> None:
        """Kill clamd (as a crash would) and wait for it to exit."""
        if self._process is not None:
            self._process.kill()
            await self._process.wait()
            self._process = None

    async def remove(self) -> None:
        await self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@asynccontextmanager
async def running_clamd(*, stream_max_length: int = 32 * 1024 * 1024) -> AsyncIterator[ClamdServer]:
    """A started `ClamdServer`, killed and removed on exit."""
    server = ClamdServer(stream_max_length=stream_max_length)
    try:
        await server.start()
        yield server
    finally:
        await server.remove()
