"""A private S3 API for tests: moto's standalone server on a free loopback port.

`MotoServer` runs `python -m moto.server` as a child process in its own temp
directory; `stop()` kills it by PID (its in-memory buckets are lost), `start()`
brings it back on the same port. Tests reach it through boto3 with the
credentials in `S3_ENV` (any value works: moto checks no signature).

moto does not check presigned URLs either (signature nor expiry): tests of
those check the URL itself (tests/files/sigv4.py).
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.ports import free_port

S3_REGION = "us-east-1"
S3_ACCESS_KEY_ID = "chorus-test"
S3_SECRET_ACCESS_KEY = "chorus-test-secret"


class MotoServer:
    """One moto server process; `stop()` then `start()` again keeps the same port."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        log = (self._directory / "moto.log").open("ab")
        with log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                cwd=self._directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready(deadline=time.monotonic() + 30)

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def _wait_ready(self, *, deadline: float) -> None:
        assert self._process is not None
        while True:
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1):
                    return
            except urllib.error.HTTPError:
                return  # it answers: up
            except OSError:
                if self._process.poll() is not None:
                    log = (self._directory / "moto.log").read_text(errors="replace")
                    raise RuntimeError(
                        f"moto server exited with status {self._process.returncode}:\n"
                        + log[-2000:]
                    ) from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"moto server not answering on port {self.port}") from None
                time.sleep(0.05)  # still starting: poll, bounded by the deadline


@contextmanager
def running_moto(directory: Path) -> Iterator[MotoServer]:
    server = MotoServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
