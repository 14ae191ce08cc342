"""A private redis-server for tests, on a free loopback port, that tests can stop and restart."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import coredis
import trio

from chorus.cluster import Commands, CoredisCommands, RespClient
from chorus.cluster._redis import cluster_nodes
from tests.ports import free_port
from tests.tlsfiles import TlsFiles


class RedisServer:
    """One redis-server process; `stop()` and `start()` again keep the same port.

    With `cluster=True` it is a one-node Redis Cluster owning every slot (the
    sharded pub/sub path), reachable at `cluster_url`. With `tls` (certificate,
    key and CA files) it also listens with TLS on `tls_port` (`tls_url`,
    `tls_cluster_url`); with `password` it requires it (AUTH).
    """

    def __init__(
        self,
        directory: Path,
        *,
        cluster: bool = False,
        tls: TlsFiles | None = None,
        password: str | None = None,
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed: install the Debian package redis-server "
                "(scripts/test does this)"
            )
        self._binary = binary
        self._directory = directory
        self.port = free_port()
        self._cluster = cluster
        self._cluster_port = free_port()
        self._tls = tls
        self.tls_port = free_port()
        self._password = password
        self._process: trio.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def cluster_url(self) -> str:
        return f"redis-cluster://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        assert self._tls is not None
        return f"rediss://{self._auth}127.0.0.1:{self.tls_port}/0?ssl_ca_certs={self._tls.ca}"

    @property
    def tls_cluster_url(self) -> str:
        assert self._tls is not None
        return f"rediss-cluster://{self._auth}127.0.0.1:{self.tls_port}?ssl_ca_certs={self._tls.ca}"

    @property
    def _auth(self) -> str:
        return f":{self._password}@" if self._password else ""

    def _hello(self) -> bytes:
        """What the harness sends first on its own (plain) connections."""
        return f"AUTH {self._password}\r\n".encode() if self._password else b""

    async def start(self) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        argv = [self._binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self._directory)]
        if self._cluster:
            argv += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            # Redis defaults the cluster bus to port + 10000, past 65535 for high ports.
            argv += ["--cluster-port", str(self._cluster_port)]
        if self._tls is not None:
            argv += ["--tls-port", str(self.tls_port), "--tls-cert-file", str(self._tls.cert)]
            argv += ["--tls-key-file", str(self._tls.key), "--tls-ca-cert-file", str(self._tls.ca)]
            argv += ["--tls-auth-clients", "no"]
            if self._cluster:  # the cluster announces its TLS port to clients
                argv += ["--tls-cluster", "yes"]
        if self._password:
            argv += ["--requirepass", self._password]
        argv += ["--logfile", str(self._directory / "redis.log")]
        self._process = await trio.lowlevel.open_process(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        await self._wait_ready()
        if self._cluster:
            await self._own_every_slot()

    async def _own_every_slot(self) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        async with stream:
            await stream.send_all(self._hello() + b"CLUSTER ADDSLOTSRANGE 0 16383\r\n")
            await stream.receive_some(256)  # +OK, or an error once the slots are ours
            with trio.fail_after(10):
                while True:
                    await stream.send_all(b"CLUSTER INFO\r\n")
                    if b"cluster_state:ok" in await stream.receive_some(4096):
                        return
                    await trio.sleep(0.05)  # the node is still taking the slots: poll, bounded

    async def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            await self._process.wait()
            self._process = None

    async def _wait_ready(self) -> None:
        with trio.fail_after(10):
            while True:
                try:
                    stream = await trio.open_tcp_stream("127.0.0.1", self.port)
                except OSError:
                    if self._process is not None and self._process.poll() is not None:
                        log = (self._directory / "redis.log").read_text(errors="replace")
                        raise RuntimeError(
                            f"redis-server exited with status {self._process.returncode}:\n"
                            + log[-2000:]
                        ) from None
                    await trio.sleep(0.02)  # the process is still starting: poll, bounded
                    continue
                async with stream:
                    await stream.send_all(self._hello() + b"PING\r\n")
                    if b"+PONG" in await stream.receive_some(64):
                        return


@asynccontextmanager
async def running_redis(
    directory: Path,
    *,
    cluster: bool = False,
    tls: TlsFiles | None = None,
    password: str | None = None,
) -> AsyncIterator[RedisServer]:
    server = RedisServer(directory, cluster=cluster, tls=tls, password=password)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


COMMANDS_KINDS = ("resp", "coredis", "coredis-cluster")
"""The `Commands` a node talks to its Redis through: `RespClient` on one server,
`CoredisCommands` on one server (as on a unix socket) and on a Redis Cluster."""


@asynccontextmanager
async def running_commands(server: RedisServer, kind: str) -> AsyncIterator[Commands]:
    """`Commands` of `kind` (one of `COMMANDS_KINDS`) to `server` (started with
    `cluster=True` for `coredis-cluster`), connected until the block ends."""
    if kind == "resp":
        resp = RespClient(server.url)
        async with trio.open_nursery() as nursery:
            await nursery.start(resp.run)
            yield resp
            nursery.cancel_scope.cancel()
        return
    client: Any = (
        coredis.RedisCluster(
            startup_nodes=cluster_nodes(server.cluster_url), decode_responses=False
        )
        if kind == "coredis-cluster"
        else coredis.Redis.from_url(server.url, decode_responses=False)
    )
    async with client:
        yield CoredisCommands(client)
