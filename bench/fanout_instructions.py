"""The outbound path's cost per delivery, with real sockets: for instruction counts.

Usage: python bench/fanout_instructions.py [--rooms N] [--members M] [--posts P] [--rounds K]

Opens a SQLite store and the room actors as a node does, subscribes M
gateway connections to each of N rooms (loopback TCP connections, whose
client ends a separate process reads and discards), then posts K rounds of P
messages to every room at once (as when every member of busy rooms sends),
waiting for every acknowledgement and for the flusher before the next round.
The path measured is the node's: the room actor's batch, the encoding of
each event frame, the appends to the outboxes, the flusher's `send()` calls.

Run it under `valgrind --tool=callgrind` twice, with `--rounds K` and with
`--rounds 0`, and divide the difference by N*M*P*K deliveries (the reading
process is not traced: callgrind follows no `exec`). `strace -c` on the same
command counts the `sendto` calls per delivery. With `--busy-ms`, a task
keeps every scheduling pass at least that long while posts are in flight (a
node near saturation, where the flusher's window turns on) and the posts of
a round come in one per room per pass: for counting sends, not instructions
(the spinning is timed). See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio
import trio.testing
from room_posts import Acks  # a sibling script: run as `python bench/fanout_instructions.py`

from chorus.actors import Registry
from chorus.actors._reply import Reply
from chorus.actors.room import Post, RoomConfig, Subscribe
from chorus.actors.rooms import Rooms
from chorus.admission import TrustedProxies
from chorus.deadlines import Deadlines
from chorus.gateway._connection import Connection
from chorus.gateway._outbox import Flusher
from chorus.logs import silence_logging
from chorus.persistence import RoomKind, open_sqlite_store
from chorus.supervisors import Supervisor

# The reader: drains every client socket it was given until all are closed.
_DRAIN = """
import selectors, socket, sys
fds = [int(fd) for fd in sys.argv[1:]]
selector = selectors.DefaultSelector()
for fd in fds:
    selector.register(socket.socket(fileno=fd), selectors.EVENT_READ)
total, open_ = 0, len(fds)
while open_:
    for key, _ in selector.select():
        data = key.fileobj.recv(1 << 20)
        total += len(data)
        if not data:
            selector.unregister(key.fileobj)
            key.fileobj.close()
            open_ -= 1
print(total)
"""


class Member:
    """A room subscriber backed by a gateway `Connection`, as `ChatConnection` is."""

    def __init__(self, conn: Connection, user_id: str) -> None:
        self.id = conn.id
        self.user_id = user_id
        self.send = conn.send
        self.send_frame = conn.send_frame
        self.close = conn.close


def connected_pairs(count: int) -> list[tuple[socket.socket, socket.socket]]:
    """`count` loopback TCP connections: (server end, non-blocking; client end)."""
    with socket.create_server(("127.0.0.1", 0), backlog=count) as listener:
        pairs = []
        for _ in range(count):
            client = socket.create_connection(listener.getsockname())
            server, _ = listener.accept()
            server.setblocking(False)
            pairs.append((server, client))
    return pairs


async def spin(
    seconds: float, *, task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED
) -> None:
    """Make every scheduling pass take at least `seconds` (as on a saturated node)."""
    with trio.CancelScope() as scope:
        task_status.started(scope)
        while True:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                pass
            await trio.lowlevel.checkpoint()


async def run(
    data_dir: Path,
    servers: list[socket.socket],
    room_count: int,
    posts: int,
    rounds: int,
    busy: float,
) -> None:
    members = len(servers) // room_count
    async with open_sqlite_store(data_dir / "chorus.db") as store, trio.open_nursery() as nursery:
        flusher = await nursery.start(Flusher().run)
        sender = await store.create_user("sender", "Sender", "hash", 0)
        rooms = [
            (await store.create_room(f"room{n}", RoomKind.PUBLIC, sender.id, 0)).id
            for n in range(room_count)
        ]
        supervisor = await nursery.start(Supervisor("rooms").run)
        actors = Rooms(supervisor, Registry(), store, RoomConfig())
        deadlines = Deadlines()  # not run: the connections never read here
        conns = [
            Connection(
                f"c{n}",
                server,
                ("127.0.0.1", n),
                flusher,
                deadlines,
                max_outbox_bytes=1 << 24,
                proxies=TrustedProxies(),
            )
            for n, server in enumerate(servers)
        ]
        for n, conn in enumerate(conns):
            reply = Reply[int]()
            subscribe = Subscribe(subscriber=Member(conn, sender.id), after_seq=None, reply=reply)
            await actors.send(rooms[n // members], subscribe)
            await reply.wait()
        for number in range(-1, rounds):  # round -1 starts the actors: counted in both runs
            acks = Acks(room_count * posts)
            spinner = await nursery.start(spin, busy) if busy else None
            for index in range(posts):
                for room_id in rooms:
                    post = Post(
                        sender_id=sender.id,
                        body=f"message {index} of round {number} of room {room_id}, some text",
                        client_id=f"{room_id}-{number}-{index}",
                        created_at=1,
                        responder=acks,
                    )
                    await actors.send(room_id, post)
                if spinner is not None:
                    await trio.sleep(busy)  # a post to every room per pass or so, as they come in
            with trio.fail_after(60):
                await acks.done.wait()
                if spinner is not None:
                    spinner.cancel()
                await trio.testing.wait_all_tasks_blocked()  # the flusher has sent the round
            if acks.refusals:
                raise SystemExit(f"{acks.refusals} posts were refused")
        with trio.fail_after(60):
            for conn in conns:
                await conn.outbox.drained()
        for server in servers:
            server.close()
        supervisor.request_stop()
        nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--posts", type=int, default=1, help="posts per room per round")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--busy-ms", type=float, default=0.0, help="minimum pass length")
    args = parser.parse_args()
    silence_logging()
    pairs = connected_pairs(args.rooms * args.members)
    clients = [client.fileno() for _, client in pairs]
    drain = subprocess.Popen(
        [sys.executable, "-c", _DRAIN, *map(str, clients)], pass_fds=clients, stdout=subprocess.PIPE
    )
    for _, client in pairs:
        client.close()
    servers = [server for server, _ in pairs]
    with tempfile.TemporaryDirectory(prefix="chorus-fanout-") as folder:
        trio.run(
            run, Path(folder), servers, args.rooms, args.posts, args.rounds, args.busy_ms / 1000
        )
    out, _ = drain.communicate(timeout=60)
    deliveries = args.rooms * args.members * args.posts * args.rounds
    print(f"{deliveries} deliveries counted; {int(out)} bytes read")


if __name__ == "__main__":
    main()
