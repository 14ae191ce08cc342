"""A node's cost per publication of a peer's stored batch, from the bus to the room's members.

Usage: python bench/peer_instructions.py --redis-url redis://127.0.0.1:PORT/0
                                         [--members M] [--per-round P] [--rounds K] [--own]

Opens a SQLite store with one room and that room's actor on a Redis bus, as
a node of a cluster does, and subscribes M members to it (counting stubs:
the writes to connections are `fanout_instructions.py`'s part). Then K
rounds: "another node" (a child process, so that callgrind does not count
it) publishes P stored batches of one message each, with the room's next
seqs, in one write, and the round ends once every member has every message. The path counted is the
node's on a peer's publication: the subscriber's socket read and RESP
parsing, the bus's dispatch, the room's bus callback, its actor's wake-up
and its `Heard` handling, the frames and the broadcast.

With `--own`, each round first publishes the previous round's batches again,
and sends the new ones only once the node's bus has handed those to the
room (a second subscriber on the room's topic counts what the bus hands
over, in both kinds of run), so that they come in reads of their own: to
the node they are what its own publications are when the bus brings them
back (stored batches at or below the seq it delivered), so the difference
from a run without `--own`, divided by K*P, is its cost per own publication
read back.

Run it under `valgrind --tool=callgrind` twice, with `--rounds K` and with
`--rounds 0`, and divide the difference by K*P publications (Redis is
another process, not traced). See docs/benchmarks.md, "Issue #15, session
10: a peer's publication, and the append's earlier events".
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

from chorus.actors import Registry
from chorus.actors._reply import Reply
from chorus.actors.room import RoomConfig, Subscribe
from chorus.actors.rooms import Rooms
from chorus.cluster import open_redis_bus
from chorus.logs import silence_logging
from chorus.persistence import RoomKind, open_sqlite_store
from chorus.supervisors import Supervisor

EVENT = (
    b'{"type":"message","message":{"id":"m_0123456789abcdef","room":"%s","seq":%d,'
    b'"sender":"u_0123456789abcdef","body":"a message of about the benchmark\'s size, %d",'
    b'"client_id":"c-%d","created_at":1765000000000,"thread":null,"reply_count":0}}'
)
"""A message event as a peer encodes it (the node passes it on without decoding it)."""

# The other node: for each line `<channel> <first seq> <count>` it reads, publishes that
# many stored batches of one event in one write (as a node's publisher sends what a
# scheduler pass queued) and reads Redis' replies.
_PEER = """
import socket, sys
from urllib.parse import urlsplit
from chorus.actors.room import _stored_envelope
from chorus.cluster._subscriber import encode_command
url, event = urlsplit(sys.argv[1]), sys.argv[2].encode()
sock = socket.create_connection((url.hostname, url.port))
for line in sys.stdin:
    channel, first, count = line.split()
    room = channel.split(":", 1)[1].encode()
    seqs = range(int(first), int(first) + int(count))
    envelopes = [_stored_envelope([(s, event % (room, s, s, s))]) for s in seqs]
    sock.sendall(b"".join(encode_command([b"PUBLISH", channel.encode(), e]) for e in envelopes))
    replies = b""
    while replies.count(b"\\r\\n") < len(seqs):
        replies += sock.recv(65536)
"""


class Member:
    """A subscriber that counts what it is sent."""

    def __init__(self, number: int, counter: Counter) -> None:
        self.id = f"c{number}"
        self.user_id = f"u{number}"
        self._counter = counter

    def send(self, payload: bytes) -> bool:
        return self.send_frame(payload)

    def send_frame(self, frames: bytes) -> bool:
        # One call may carry several events' frames (`RoomActor._broadcast_all`).
        self._counter.add(frames.count(b'"seq":'))
        return True

    def close(self, code: int, reason: str) -> None:
        raise SystemExit(f"{self.id} was closed: {code} {reason}")


class Counter:
    """Events sent to members; `reached` once `expected` are in."""

    def __init__(self) -> None:
        self.count = 0
        self.expected = 0
        self.reached = trio.Event()

    def wait_for(self, expected: int) -> trio.Event:
        self.expected, self.reached = expected, trio.Event()
        if self.count >= expected:
            self.reached.set()
        return self.reached

    def add(self, frames: int) -> None:
        self.count += frames
        if self.count >= self.expected:
            self.reached.set()


async def run(
    url: str,
    peer: subprocess.Popen[bytes],
    data_dir: Path,
    members: int,
    per_round: int,
    rounds: int,
    own: bool,
) -> float:
    """CPU µs per publication (0 when `rounds` is 0)."""
    counter = Counter()
    published = Counter()
    """Publications the bus handed to the room's topic."""
    async with (
        open_sqlite_store(data_dir / "chorus.db") as store,
        open_redis_bus(url) as bus,
        trio.open_nursery() as nursery,
    ):
        owner = await store.create_user("owner", "Owner", "hash", 0)
        room_id = (await store.create_room("room", RoomKind.PUBLIC, owner.id, 0)).id
        supervisor = await nursery.start(Supervisor("rooms").run)
        actors = Rooms(supervisor, Registry(), store, RoomConfig(), bus=bus)
        await nursery.start(actors.resyncs.run)  # as the node runs it
        for number in range(members):
            reply = Reply[int]()
            subscribe = Subscribe(subscriber=Member(number, counter), after_seq=None, reply=reply)
            await actors.send(room_id, subscribe)
            await reply.wait()
        await bus.subscribe(f"room:{room_id}", lambda payload: published.add(1))
        assert peer.stdin is not None
        seq = 0
        start = 0.0
        with trio.fail_after(120 + rounds):
            for number in range(-1, rounds):  # round -1 warms up: counted in both runs
                if number == 0:
                    start = time.process_time()
                if own and seq:  # the last round's batches again, delivered already: read back
                    read_back = published.wait_for(published.count + per_round)
                    peer.stdin.write(f"room:{room_id} {seq + 1 - per_round} {per_round}\n".encode())
                    peer.stdin.flush()
                    await read_back.wait()
                reached = counter.wait_for(counter.count + members * per_round)
                peer.stdin.write(f"room:{room_id} {seq + 1} {per_round}\n".encode())
                peer.stdin.flush()  # a blocking write to a pipe: a few µs
                seq += per_round
                await reached.wait()
        spent = time.process_time() - start
        supervisor.request_stop()
        nursery.cancel_scope.cancel()
    return spent / (rounds * per_round) * 1e6 if rounds else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--members", type=int, default=17, help="local members of the room")
    parser.add_argument("--per-round", type=int, default=1, help="publications per round")
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument(
        "--own", action="store_true", help="also read back stale batches (own publications)"
    )
    args = parser.parse_args()
    silence_logging()
    peer = subprocess.Popen(
        [sys.executable, "-c", _PEER, args.redis_url, EVENT.decode()], stdin=subprocess.PIPE
    )
    with tempfile.TemporaryDirectory(prefix="chorus-peer-") as folder:
        cost = trio.run(
            run,
            args.redis_url,
            peer,
            Path(folder),
            args.members,
            args.per_round,
            args.rounds,
            args.own,
        )
    assert peer.stdin is not None
    peer.stdin.close()
    peer.wait(60)
    print(f"{args.rounds * args.per_round} publications: {cost:.1f} CPU µs per publication")


if __name__ == "__main__":
    main()
