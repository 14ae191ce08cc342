"""The gateway over real loopback sockets: handshake, framing rules, closing, slow clients."""

from __future__ import annotations

import gc
import os
import socket
import struct
import weakref

import pytest
import trio
import trio.testing
from prometheus_client import REGISTRY
from trio_websocket import ConnectionClosed, WebSocketConnection

from chorus.deadlines import COMPACT_MIN
from chorus.gateway import READ_BUDGET, Connection, Gateway, GatewayConfig, text_frame
from chorus.protocol import CloseCode
from chorus.supervisors import Supervisor
from tests.wsclient import ws_connect


class Echo:
    """Answers every text message with itself; "flood N" sends N 16 KiB messages."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def on_text(self, text: str) -> None:
        if text.startswith("flood "):
            frame = text_frame(b"x" * 16384)
            for _ in range(int(text.split()[1])):
                self.conn.send_frame(frame)
        elif text.startswith("deadline"):  # "deadline [SECONDS]", 0.2 s by default
            seconds = float(text.split()[1]) if " " in text else 0.2
            self.conn.set_deadline(seconds, CloseCode.AUTH_TIMEOUT, sliding=False)
            self.conn.send(b"armed")
        elif text == "work past the deadline":
            self.conn.set_deadline(0.05, CloseCode.AUTH_TIMEOUT, sliding=False)
            await trio.sleep(0.3)
            self.conn.send(b"done")
        else:
            self.conn.send(text.encode())

    def on_ping(self) -> bool:
        return True

    async def on_disconnect(self) -> None:
        pass


class Running:
    def __init__(self, gateway: Gateway, tree: Supervisor) -> None:
        self.gateway = gateway
        self.tree = tree
        assert gateway.address is not None
        self.url = f"ws://127.0.0.1:{gateway.address[1]}/"
        self.port = gateway.address[1]


async def start_gateway(nursery: trio.Nursery, **config: object) -> Running:
    gateway = Gateway(GatewayConfig(port=0, **config), Echo)  # type: ignore[arg-type]
    tree = gateway.supervisor()
    await nursery.start(tree.run)
    return Running(gateway, tree)


@pytest.fixture
async def server(nursery: trio.Nursery) -> Running:
    return await start_gateway(nursery, allowed_origins=("https://chat.example",))


async def closed_code(ws: WebSocketConnection) -> int | None:
    """Read until the server closes; the close code it sent."""
    with trio.fail_after(10):
        try:
            while True:
                await ws.get_message()
        except ConnectionClosed as closed:
            return None if closed.reason is None else closed.reason.code


# -- handshake ---------------------------------------------------------------------------


async def test_echo_over_the_negotiated_subprotocol(server: Running) -> None:
    async with ws_connect(server.port) as ws:
        assert ws.subprotocol == "chorus.v1"
        await ws.send_message('{"type":"ping"}')
        assert await ws.get_message() == '{"type":"ping"}'
        await ws.send_message("ü" * 1000)
        assert await ws.get_message() == "ü" * 1000


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/", b"", 400),  # no chorus.v1 subprotocol offered
        ("/elsewhere", b"Sec-WebSocket-Protocol: chorus.v1\r\n", 404),
        ("/", b"Sec-WebSocket-Protocol: chorus.v1\r\nOrigin: https://evil.example\r\n", 403),
    ],
)
async def test_bad_upgrades_are_rejected_with_a_status(
    server: Running, path: str, headers: bytes, status: int
) -> None:
    # Raw HTTP: trio-websocket leaks its socket when an upgrade is rejected.
    async with raw_socket(server.port) as stream:
        await stream.send_all(upgrade_request(path.encode(), headers))
        answer = await read_until_closed(stream)
    assert answer.startswith(b"HTTP/1.1 %d" % status)


async def test_an_allowed_origin_is_accepted(server: Running) -> None:
    headers = [(b"origin", b"https://chat.example")]
    async with ws_connect(server.port, extra_headers=headers) as ws:
        await ws.send_message("hi")
        assert await ws.get_message() == "hi"


async def test_garbage_instead_of_an_upgrade_gets_400(server: Running) -> None:
    async with raw_socket(server.port) as stream:
        await stream.send_all(b"NOT HTTP AT ALL\r\n\r\n")
        answer = await read_until_closed(stream)
    assert answer.startswith(b"HTTP/1.1 400")


async def probe(port: int, path: str) -> bytes:
    """The gateway's whole answer to a plain `GET path` (it closes after answering)."""
    async with raw_socket(port) as stream:
        await stream.send_all(b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path.encode())
        return await read_until_closed(stream)


async def test_health_and_readiness_probes_are_answered_on_the_gateway_port(
    server: Running,
) -> None:
    health = await probe(server.port, "/healthz")
    assert health.startswith(b"HTTP/1.1 200 ")
    assert health.endswith(b'{"status":"ok"}')
    ready = await probe(server.port, "/readyz")
    assert ready.startswith(b"HTTP/1.1 200 ")
    assert ready.endswith(b'{"status":"ready"}')
    assert b"content-type: application/json" in ready
    assert (await probe(server.port, "/elsewhere")).startswith(b"HTTP/1.1 400 ")


async def test_readiness_is_503_while_the_node_says_it_is_not_ready(
    nursery: trio.Nursery,
) -> None:
    ready = True

    async def readiness() -> bool:
        return ready

    gateway = Gateway(GatewayConfig(port=0), Echo, readiness)
    await nursery.start(gateway.supervisor().run)
    assert gateway.address is not None
    port = gateway.address[1]
    assert (await probe(port, "/readyz")).startswith(b"HTTP/1.1 200 ")
    ready = False
    unready = await probe(port, "/readyz")
    assert unready.startswith(b"HTTP/1.1 503 ")
    assert unready.endswith(b'{"status":"unavailable"}')
    assert (await probe(port, "/healthz")).startswith(b"HTTP/1.1 200 ")  # still alive
    async with ws_connect(port) as ws:  # and still serving WebSockets
        await ws.send_message("hi")
        assert await ws.get_message() == "hi"


# -- framing rules -----------------------------------------------------------------------


async def test_binary_messages_close_with_1003(server: Running) -> None:
    async with ws_connect(server.port) as ws:
        await ws.send_message(b"\x00\x01")
        assert await closed_code(ws) == CloseCode.UNSUPPORTED_DATA


async def test_oversized_messages_close_with_1009(server: Running) -> None:
    async with ws_connect(server.port) as ws:
        await ws.send_message("x" * 70_000)
        assert await closed_code(ws) == CloseCode.MESSAGE_TOO_BIG


async def test_invalid_utf8_text_closes_with_1007(server: Running) -> None:
    async with upgraded(server.port) as stream:
        await stream.send_all(masked_frame(0x1, b"\xff\xfe"))
        assert await read_close_code(stream) == CloseCode.INVALID_PAYLOAD


async def test_unmasked_client_frames_close_with_1002(server: Running) -> None:
    async with upgraded(server.port) as stream:
        await stream.send_all(bytes((0x81, 2)) + b"hi")
        assert await read_close_code(stream) == CloseCode.PROTOCOL_ERROR


async def test_a_fragmented_message_with_a_ping_between_its_fragments(server: Running) -> None:
    async with upgraded(server.port) as stream:
        first = masked_frame(0x1, b"hello ")
        await stream.send_all(
            bytes((first[0] & 0x7F,))
            + first[1:]  # FIN cleared: a first fragment
            + masked_frame(0x9, b"between")
            + masked_frame(0x0, b"world")  # the continuation, FIN set
        )
        answers = await read_frames(stream, 2)
    assert answers == [(0xA, b"between"), (0x1, b"hello world")]


async def test_frames_sent_right_behind_the_upgrade_request_are_read(server: Running) -> None:
    async with raw_socket(server.port) as stream:
        request = upgrade_request(b"/", b"Sec-WebSocket-Protocol: chorus.v1\r\n")
        await stream.send_all(request + masked_frame(0x1, b"early"))
        head, _, rest = (await read_until(stream, b"\r\n\r\n")).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        assert await read_frames(stream, 1, rest) == [(0x1, b"early")]


async def read_until(stream: trio.SocketStream, marker: bytes) -> bytes:
    data = b""
    with trio.fail_after(10):
        while marker not in data:
            data += await stream.receive_some(65536)
    return data


async def read_frames(
    stream: trio.SocketStream, count: int, buffer: bytes = b""
) -> list[tuple[int, bytes]]:
    """The next `count` server frames: (opcode, payload) each."""
    frames: list[tuple[int, bytes]] = []
    with trio.fail_after(10):
        while len(frames) < count:
            while len(frames) < count and (frame := split_frame(buffer)) is not None:
                opcode, payload, buffer = frame
                frames.append((opcode, payload))
            if len(frames) < count:
                buffer += await stream.receive_some(65536)
    return frames


async def test_websocket_pings_are_answered(server: Running) -> None:
    async with ws_connect(server.port) as ws:
        with trio.fail_after(5):
            await ws.ping(b"are you there")


async def test_a_missed_deadline_closes_with_its_code(server: Running) -> None:
    async with ws_connect(server.port) as ws:
        await ws.send_message("deadline")
        assert await ws.get_message() == "armed"
        assert await closed_code(ws) == CloseCode.AUTH_TIMEOUT


async def test_connections_time_out_in_deadline_order(server: Running) -> None:
    closed: list[float] = []

    async def armed(seconds: float) -> None:
        async with ws_connect(server.port) as ws:
            await ws.send_message(f"deadline {seconds}")
            assert await ws.get_message() == "armed"
            assert await closed_code(ws) == CloseCode.AUTH_TIMEOUT
            closed.append(seconds)

    async with trio.open_nursery() as nursery:
        for seconds in (1.2, 0.4, 2.0, 0.8):
            nursery.start_soon(armed, seconds)
    assert closed == [0.4, 0.8, 1.2, 2.0]


async def test_a_deadline_moved_earlier_is_honoured(server: Running) -> None:
    async with ws_connect(server.port) as ws:
        await ws.send_message("deadline 60")
        assert await ws.get_message() == "armed"
        await ws.send_message("deadline 0.2")
        assert await ws.get_message() == "armed"
        assert await closed_code(ws) == CloseCode.AUTH_TIMEOUT  # within 10 s, not 60


async def test_a_deadline_cuts_only_the_wait_never_the_handlers_work(server: Running) -> None:
    async with ws_connect(server.port) as ws:
        await ws.send_message("work past the deadline")
        assert await ws.get_message() == "done"
        assert await closed_code(ws) == CloseCode.AUTH_TIMEOUT


async def test_a_deadline_while_the_socket_is_full_keeps_the_backlog_and_close_frame(
    nursery: trio.Nursery,
) -> None:
    # The timer interrupts the read with `notify_closing`, which wakes the outbox's wait
    # to write as well: that wait must go on (the socket is open), not drop the backlog.
    server = await start_gateway(nursery, max_outbox_bytes=16 << 20)
    async with upgraded(server.port, rcvbuf=4096) as slow:
        # 6.4 MB: more than the kernel's buffers take (tcp_wmem's maximum is 4 MiB).
        await slow.send_all(masked_frame(0x1, b"deadline 0.2") + masked_frame(0x1, b"flood 400"))
        [conn] = server.gateway.connections
        with trio.fail_after(10):
            while conn.close_code is None:
                await trio.testing.wait_all_tasks_blocked(cushion=0.01)
        assert conn.close_code == CloseCode.AUTH_TIMEOUT
        assert conn.outbox.pending > 0  # the timeout came while the outbox waited to write
        assert await read_close_code(slow) == CloseCode.AUTH_TIMEOUT


async def test_a_client_close_is_answered_and_the_connection_ends(server: Running) -> None:
    async with ws_connect(server.port) as ws:
        await ws.send_message("hi")
        await ws.get_message()
    with trio.fail_after(5):
        while server.gateway.connections:
            await trio.testing.wait_all_tasks_blocked()
    assert ws.closed is not None
    assert ws.closed.code == CloseCode.NORMAL


# -- fairness ----------------------------------------------------------------------------


class Ticks:
    """Records, for each message, how often another task had run by then (`clock[0]`)."""

    def __init__(self, clock: list[int], seen: list[int], done: trio.Event, count: int) -> None:
        self.clock, self.seen, self.done, self.count = clock, seen, done, count

    async def on_text(self, text: str) -> None:
        self.seen.append(self.clock[0])  # never waits: like a ping or a refused frame
        if len(self.seen) == self.count:
            self.done.set()

    def on_ping(self) -> bool:
        return True

    async def on_disconnect(self) -> None:
        pass


async def test_a_flood_in_one_read_lets_other_tasks_run_every_read_budget(
    nursery: trio.Nursery,
) -> None:
    count = 50 * READ_BUDGET
    clock, seen, done = [0], list[int](), trio.Event()
    gateway = Gateway(GatewayConfig(port=0), lambda conn: Ticks(clock, seen, done, count))
    await nursery.start(gateway.supervisor().run)
    assert gateway.address is not None

    async def other_task() -> None:
        while True:
            clock[0] += 1
            await trio.lowlevel.checkpoint()

    async with upgraded(gateway.address[1]) as flooder:
        nursery.start_soon(other_task)
        await flooder.send_all(b"".join(masked_frame(0x1, b"p") for _ in range(count)))
        with trio.fail_after(10):
            await done.wait()
    nursery.cancel_scope.cancel()
    longest_run = max(seen.count(tick) for tick in set(seen))
    # Trio runs each batch of ready tasks in random order, so the other task can run
    # just before one yield of the reader and just after the next: two budgets at most.
    assert longest_run <= 2 * READ_BUDGET


# -- slow consumers and shutdown ---------------------------------------------------------


async def test_a_client_that_stops_reading_is_closed_without_slowing_others(
    nursery: trio.Nursery,
) -> None:
    server = await start_gateway(nursery, max_outbox_bytes=256 * 1024)
    closes = _closes(CloseCode.SLOW_CONSUMER)
    async with upgraded(server.port, rcvbuf=4096) as slow:
        await slow.send_all(masked_frame(0x1, b"flood 400"))  # 6.4 MB, far over the bound
        async with ws_connect(server.port) as fast:
            await fast.send_message("still quick")
            with trio.fail_after(5):
                assert await fast.get_message() == "still quick"
        # The slow client finds 4004 after the backlog it was sent before the bound.
        assert await read_close_code(slow) == CloseCode.SLOW_CONSUMER
    # Counted for the slow-consumer alert (ops/prometheus).
    assert _closes(CloseCode.SLOW_CONSUMER) == closes + 1


def _closes(code: int) -> float:
    return REGISTRY.get_sample_value("chorus_connection_closes_total", {"code": str(code)}) or 0.0


async def test_stopping_the_gateway_tells_clients_to_go_away(nursery: trio.Nursery) -> None:
    server = await start_gateway(nursery)
    async with ws_connect(server.port) as ws:
        await ws.send_message("hi")
        await ws.get_message()
        server.tree.request_stop()
        assert await closed_code(ws) == CloseCode.GOING_AWAY
    with trio.fail_after(5):
        while server.gateway.connections:
            await trio.testing.wait_all_tasks_blocked()
    with pytest.raises(OSError, match="connect"):
        await trio.open_tcp_stream("127.0.0.1", server.port)


async def test_closed_connections_are_let_go_before_their_deadlines(
    nursery: trio.Nursery,
) -> None:
    """Churn: the timer's heap let a closed connection (and its buffers) go only at its deadline."""
    opened: list[weakref.ref[Connection]] = []

    def new_handler(conn: Connection) -> Echo:
        opened.append(weakref.ref(conn))
        return Echo(conn)

    # Deadlines far off: nothing comes up during the test and lets a connection go by itself.
    gateway = Gateway(GatewayConfig(port=0, handshake_timeout=600), new_handler)
    await nursery.start(gateway.supervisor().run)
    assert gateway.address is not None
    port = gateway.address[1]

    async def talk_once() -> None:
        async with ws_connect(port) as ws:
            await ws.send_message("hi")
            assert await ws.get_message() == "hi"

    for _ in range(4):
        async with trio.open_nursery() as clients:
            for _ in range(50):
                clients.start_soon(talk_once)
    with trio.fail_after(10):
        while gateway.connections:
            await trio.testing.wait_all_tasks_blocked()
    gc.collect()  # a connection and its outbox refer to each other
    assert len(opened) == 200
    # The connections' supervisor holds its last exit report until the next one comes.
    assert len([ref for ref in opened if ref() is not None]) <= 1
    assert len(gateway._deadlines) <= COMPACT_MIN  # dead entries are bounded too


# -- metrics -----------------------------------------------------------------------------


def metric_series() -> int:
    """How many samples the Prometheus registry exposes (one per series and suffix)."""
    return sum(len(family.samples) for family in REGISTRY.collect())


async def test_a_thousand_connections_leave_the_number_of_metric_series_unchanged(
    server: Running,
) -> None:
    async def talk_once() -> None:
        async with ws_connect(server.port) as ws:
            await ws.send_message("hi")
            assert await ws.get_message() == "hi"

    async def connections_ended() -> None:
        with trio.fail_after(10):
            while server.gateway.connections:
                await trio.testing.wait_all_tasks_blocked()

    await talk_once()  # the first connection may add the series that every later one shares
    await connections_ended()
    before = metric_series()
    for _ in range(20):
        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(talk_once)
    await connections_ended()
    # Each connection is a child of the gateway's supervisor; labelled by its id, every
    # one of them left two series behind (issue #10: 506 series after 248 connects).
    assert metric_series() == before


# -- raw WebSocket helpers (for what a well-behaved client library cannot send) ----------


def upgrade_request(path: bytes, headers: bytes) -> bytes:
    return (
        b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n" + headers + b"\r\n"
    )


def masked_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    else:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    return header + mask + masked


class raw_socket:  # noqa: N801 - used like a function: `async with raw_socket(port)`
    def __init__(self, port: int, rcvbuf: int | None = None) -> None:
        self.port = port
        self.rcvbuf = rcvbuf

    async def __aenter__(self) -> trio.SocketStream:
        sock = trio.socket.socket()
        if self.rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        try:
            await sock.connect(("127.0.0.1", self.port))
        except BaseException:
            sock.close()
            raise
        self.stream = trio.SocketStream(sock)
        return self.stream

    async def __aexit__(self, *exc: object) -> None:
        await self.stream.aclose()


class upgraded(raw_socket):  # noqa: N801
    async def __aenter__(self) -> trio.SocketStream:
        stream = await super().__aenter__()
        await stream.send_all(upgrade_request(b"/", b"Sec-WebSocket-Protocol: chorus.v1\r\n"))
        head = b""
        with trio.fail_after(5):
            while b"\r\n\r\n" not in head:
                head += await stream.receive_some(1)
        assert head.startswith(b"HTTP/1.1 101")
        return stream


async def read_until_closed(stream: trio.SocketStream) -> bytes:
    data = b""
    with trio.fail_after(10):
        while chunk := await stream.receive_some(65536):
            data += chunk
    return data


def split_frame(buffer: bytes) -> tuple[int, bytes, bytes] | None:
    """(opcode, payload, rest) of the first complete server frame in `buffer`, if any."""
    if len(buffer) < 2:
        return None
    size, offset = buffer[1] & 0x7F, 2
    if size == 126:
        if len(buffer) < 4:
            return None  # the extended length has not arrived yet
        size, offset = struct.unpack("!H", buffer[2:4])[0], 4
    elif size == 127:
        if len(buffer) < 10:
            return None
        size, offset = struct.unpack("!Q", buffer[2:10])[0], 10
    if len(buffer) < offset + size:
        return None
    return buffer[0] & 0x0F, buffer[offset : offset + size], buffer[offset + size :]


async def read_close_code(stream: trio.SocketStream) -> int | None:
    """Read frames until the server's close frame; its code (None if the TCP just ended)."""
    close = await read_close(stream)
    return None if close is None else close[0]


async def read_close(stream: trio.SocketStream) -> tuple[int, str] | None:
    """Read frames until the server's close frame; its code and reason (None: the TCP ended)."""
    buffer = b""
    with trio.fail_after(30):
        while True:
            while (frame := split_frame(buffer)) is not None:
                opcode, payload, buffer = frame
                if opcode == 0x8:
                    code: int = struct.unpack("!H", payload[:2])[0]
                    return code, payload[2:].decode()
            chunk = await stream.receive_some(1 << 20)
            if not chunk:
                return None
            buffer += chunk


def test_the_test_frame_splitter_waits_for_extended_lengths() -> None:
    # Regression: a read ending inside a frame's extended length crashed the splitter.
    frame = text_frame(b"x" * 300)
    for cut in range(len(frame)):
        assert split_frame(frame[:cut]) is None
    assert split_frame(frame) == (0x1, b"x" * 300, b"")
