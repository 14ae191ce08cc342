"""Chorus nodes as separate `chorus serve` processes, a failover proxy, and SDK chatters.

Each node gets its own data dir, and all share one PostgreSQL database (which
also holds the token signing key the first node generates) and one Redis. Clients reach the
nodes through `FailoverProxy`: an in-test TCP forwarder (the "load balancer")
that connects each new connection to the first of its nodes that accepts, so a
client has a home node and lands on another one once its home is dead.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import trio

from chorus import protocol
from chorus.client import HttpApi, RealtimeClient

CHORUS = [sys.executable, "-m", "chorus"]
PASSWORD = "correct horse battery staple"
START_TIMEOUT = 60.0
"""Seconds a node gets to print its addresses (and a client to connect): a bound on a hang,
not a wait. Tests start three nodes at once, beside the other pytest-xdist worker's; on
the shared two-core machine at load 13 a start took more than 30 s (a parallel run)."""


@attrs.define(eq=False)
class NodeProcess:
    """One `chorus serve` child process and where it listens."""

    name: str
    process: trio.Process
    data_dir: Path
    http_port: int
    gateway_port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log_file(self) -> Path:
        return self.data_dir / "stderr.log"

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    async def kill9(self) -> None:
        """SIGKILL this process (by its own PID) and reap it."""
        self.process.kill()
        with trio.fail_after(10):
            await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within a deadline."""
        if self.process.returncode is not None:
            return
        self.process.terminate()
        with trio.move_on_after(10):
            await self.process.wait()
            return
        self.process.kill()
        await self.process.wait()


async def _read_until(stream: trio.abc.ReceiveStream, patterns: list[str]) -> list[re.Match[str]]:
    seen = ""
    with trio.fail_after(START_TIMEOUT):
        while True:
            found = [re.search(pattern, seen) for pattern in patterns]
            if all(found):
                return [match for match in found if match is not None]
            chunk = await stream.receive_some(4096)
            if not chunk:
                raise RuntimeError(f"node output ended before its addresses; got:\n{seen}")
            seen += chunk.decode()


async def start_node(
    name: str, data_dir: Path, env: dict[str, str], *, http_port: int = 0, gateway_port: int = 0
) -> NodeProcess:
    """Start `chorus serve` (on free ports unless given: a restart takes its old ones)
    and wait (bounded) until it prints its addresses."""
    argv = [*CHORUS, "serve", "--data-dir", str(data_dir), "--http-port", str(http_port)]
    argv += ["--gateway-port", str(gateway_port), "--log-format", "json"]
    log = (data_dir / "stderr.log").open("ab")
    try:
        process = await trio.lowlevel.open_process(
            argv, stdout=subprocess.PIPE, stderr=log, env={**os.environ, **env}
        )
    finally:
        log.close()  # the child holds its own descriptor
    try:
        assert process.stdout is not None
        http, gateway = await _read_until(
            process.stdout,
            [r"HTTP API +http://127\.0\.0\.1:(\d+)/api/v1", r"gateway +ws://127\.0\.0\.1:(\d+)/"],
        )
    except BaseException:
        process.kill()
        await process.wait()
        raise
    return NodeProcess(name, process, data_dir, int(http.group(1)), int(gateway.group(1)))


@asynccontextmanager
async def running_nodes(
    base: Path,
    count: int,
    *,
    database_url: str,
    redis_url: str,
    env: dict[str, str] | None = None,
) -> AsyncIterator[list[NodeProcess]]:
    """`count` nodes on one database and one Redis (and any other settings in `env`);
    stopped after."""
    env = {"CHORUS_DATABASE_URL": database_url, "CHORUS_REDIS_URL": redis_url, **(env or {})}
    dirs = [base / f"node{n}" for n in range(count)]
    for folder in dirs:
        folder.mkdir(parents=True)
    # Migrate once up front, so the nodes do not race to create the schema.
    migrate = await trio.run_process(
        [*CHORUS, "migrate", "--data-dir", str(dirs[0])],
        env={**os.environ, **env},
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr.decode()
    nodes: list[NodeProcess | None] = [None] * count

    async def start(n: int) -> None:
        nodes[n] = await start_node(f"node{n}", dirs[n], env)

    try:
        async with trio.open_nursery() as nursery:
            for n in range(count):
                nursery.start_soon(start, n)
        yield [node for node in nodes if node is not None]
    finally:
        with trio.CancelScope(shield=True):
            for node in nodes:
                if node is not None:
                    await node.stop()


async def pump(source: trio.SocketStream, sink: trio.SocketStream, scope: trio.CancelScope) -> None:
    """Copy `source` to `sink` until either side ends, then cancel `scope` (both directions)."""
    try:
        while data := await source.receive_some(65536):
            await sink.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        scope.cancel()


class FailoverProxy:
    """A loopback TCP forwarder: each connection goes to the first backend that accepts.

    Closing either side closes both (so a killed node's connections drop for
    the client too, as behind a real load balancer).
    """

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.port = 0
        self.connections: list[int] = []
        """The backend port each accepted connection went to."""

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, client: trio.SocketStream) -> None:
        async with client:
            for port in self.backends:
                try:
                    backend = await trio.open_tcp_stream("127.0.0.1", port)
                except OSError:
                    continue  # that node is down: try the next one
                self.connections.append(port)
                async with backend, trio.open_nursery() as nursery:
                    nursery.start_soon(pump, client, backend, nursery.cancel_scope)
                    nursery.start_soon(pump, backend, client, nursery.cancel_scope)
                return


@attrs.define(eq=False)
class Chatter:
    """A registered user with a live SDK connection (through its proxy) and what it got."""

    name: str
    api: HttpApi
    client: RealtimeClient
    received: list[protocol.Message] = attrs.field(factory=list)
    acked: list[protocol.Message] = attrs.field(factory=list)
    """Its own messages, in the order their sends were acknowledged."""
    presence: list[protocol.PresenceEvent] = attrs.field(factory=list)
    memberships: list[protocol.RoomAdded | protocol.RoomRemoved] = attrs.field(factory=list)
    files: list[protocol.FileInfo] = attrs.field(factory=list)
    changed: trio.Event = attrs.field(factory=trio.Event)

    async def collect(self) -> None:
        async for event in self.client.events:
            if isinstance(event, protocol.MessageEvent):
                self.received.append(event.message)
            elif isinstance(event, protocol.PresenceEvent):
                self.presence.append(event)
            elif isinstance(event, protocol.RoomAdded | protocol.RoomRemoved):
                self.memberships.append(event)
            elif isinstance(event, protocol.FileUpdate):
                self.files.append(event.file)
            self.changed.set()
            self.changed = trio.Event()

    async def wait_until_received(self, ids: set[str], timeout: float) -> None:
        with trio.move_on_after(timeout):
            while not ids <= {m.id for m in self.received}:
                await self.changed.wait()

    async def wait_until(self, condition: Callable[[], bool], timeout: float) -> None:
        """Wait until `condition()` holds; fails the test after `timeout` seconds."""
        with trio.fail_after(timeout):
            while not condition():
                await self.changed.wait()


@asynccontextmanager
async def chatter(name: str, http_port: int, gateway_port: int) -> AsyncIterator[Chatter]:
    """Register a fresh user through the given proxy ports, connect, and collect events."""
    async with HttpApi(f"http://127.0.0.1:{http_port}") as api:
        await api.register(f"{name}{secrets.token_hex(3)}", PASSWORD)
        client = RealtimeClient(api, gateway_url=f"ws://127.0.0.1:{gateway_port}/", max_backoff=1.0)
        user = Chatter(name, api, client)
        async with trio.open_nursery() as nursery:
            with trio.fail_after(START_TIMEOUT):
                await nursery.start(client.run)
            nursery.start_soon(user.collect)
            try:
                yield user
            finally:
                nursery.cancel_scope.cancel()


@attrs.frozen
class Tally:
    lost: int
    duplicated: int
    reordered: int


def tally(
    received: list[protocol.Message],
    acked: list[protocol.Message],
    senders: list[list[protocol.Message]],
) -> Tally:
    """Lost (acknowledged, never received), duplicated and reordered messages of one member.

    `senders` holds each sender's messages in the order they were acknowledged
    (each sender sends one at a time). Reordered counts seq inversions in what
    the member received plus, per sender, inversions against that order.
    """
    received_ids = [m.id for m in received]
    lost = len({m.id for m in acked} - set(received_ids))
    duplicated = len(received_ids) - len(set(received_ids))
    reordered = sum(1 for a, b in itertools.pairwise([m.seq for m in received]) if b <= a)
    position = {m.id: i for i, m in enumerate(received)}
    for sent in senders:
        places = [position[m.id] for m in sent if m.id in position]
        reordered += sum(1 for a, b in itertools.pairwise(places) if b <= a)
    return Tally(lost, duplicated, reordered)
